"""Units run in the calling process, one at a time, without Ray (`pipeline run --no-ray`).

For clusters that forbid long-lived daemons (a SLURM job array, `slurm/array.sbatch`): the
same queue, retries, ledger and resume as the Ray runner, on one worker that is this process.
The device is the first visible GPU when torch sees one, else the CPU with `threads` threads.
A unit runs to its end once started: a stop request takes effect between units.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pipeline.executor import UnitExecutor
from pipeline.units import Unit


class UnitError(Exception):
    """A unit raised in this process (the in-process counterpart of Ray's task error)."""


@dataclass
class _Pending:
    unit: Unit
    out_dir: str
    attempt: int
    outcome: dict[str, Any] | None = None
    error: BaseException | None = None


class InProcessPool:
    """The runner's pool interface (`submit`, `wait`, `get`, `shutdown`) with one slot: this process."""

    def __init__(self, processors: Any, threads: int) -> None:
        import torch

        self.executor = UnitExecutor(processors, "cuda" if torch.cuda.is_available() else "cpu", "-local", threads)
        self._pending: dict[int, _Pending] = {}
        self._keys = itertools.count()

    def submit(self, slot: int, unit: Unit, out_dir: str, attempt: int) -> int:
        key = next(self._keys)
        self._pending[key] = _Pending(unit, out_dir, attempt)
        return key

    def wait(self, keys: list[int], timeout: float) -> list[int]:
        """Run the first submitted unit to its end; return its key (the timeout does not apply)."""
        if not keys:
            return []
        pending = self._pending[keys[0]]
        try:
            pending.outcome = self.executor.run(pending.unit, pending.out_dir, pending.attempt)
        except Exception as error:  # noqa: BLE001 - a failing unit is recorded and retried, like on Ray
            pending.error = error
        return [keys[0]]

    def get(self, key: int) -> dict[str, Any]:
        pending = self._pending.pop(key)
        if pending.error is not None:
            raise UnitError(f"{type(pending.error).__name__}: {pending.error}") from pending.error
        if pending.outcome is None:
            raise RuntimeError(f"unit {pending.unit.id} was collected before it ran")
        return pending.outcome

    def replace(self, slot: int) -> None:
        """Nothing to replace: this process cannot die and go on."""

    def shutdown(self) -> None:
        self._pending.clear()
