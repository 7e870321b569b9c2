"""Where units run: a pool of Ray workers, or this process alone, behind one small interface.

`execute` `submit`s a unit to a free slot, `wait`s for finished ones, `get`s an outcome (raising
the unit's error as `UnitFailed`, or Ray's `RayActorError` when the worker process died),
`replace`s a dead worker, and `abandon`s the running units or `shutdown`s the pool at the end.

`RayPool`: one stateful `Worker` actor per GPU (or per few CPU cores), replaced in its slot when
it dies. `InProcessPool`: one slot, this process (`pipeline run --no-ray`, for clusters that forbid
long-lived daemons, such as a SLURM job array); a unit runs to its end once started, so a stop
request takes effect between units. The device is then the first visible GPU when torch sees one,
else the CPU.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any, Protocol

import ray
from ray.exceptions import RayError

from pipeline.work.processors import Processors, UnitRunner
from pipeline.work.units import Unit


class UnitFailed(Exception):
    """A unit raised on its worker (the worker itself is fine); the message is the unit's error."""


class Pool(Protocol):
    workers: int

    def submit(self, slot: int, unit: Unit, out_dir: str, attempt: int) -> Any: ...

    def wait(self, keys: list[Any], timeout: float) -> list[Any]: ...

    def get(self, key: Any) -> dict[str, Any]: ...

    def replace(self, slot: int) -> None: ...

    def abandon(self, keys: list[Any]) -> None: ...

    def shutdown(self) -> None: ...


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join `address` (or RAY_ADDRESS), or start an embedded local Ray; reuse one already up."""
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        ray.init(address=target, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


@ray.remote(max_restarts=0)
class Worker:
    """Owns one GPU (or a few CPU cores) and runs the units sent to it, one at a time."""

    def __init__(self, name: str, processors: Processors, threads: int) -> None:
        import torch

        device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        self.runner = UnitRunner(processors, device, name, threads)

    def run(self, unit: Unit, out_dir: str, attempt: int) -> dict[str, Any]:
        return self.runner.run(unit, out_dir, attempt)


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    text = str(cause if cause is not None else error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


class RayPool:
    """Live Ray workers by slot, each with `cpus` CPUs and `gpus` GPUs; a dead one is replaced in its slot."""

    def __init__(self, workers: int, cpus: int, gpus: int, processors: Processors) -> None:
        self.workers, self.cpus, self.gpus = workers, cpus, gpus
        self.processors = processors
        self.actors: list[Any] = [self._start(slot) for slot in range(workers)]

    def _start(self, slot: int) -> Any:
        return Worker.options(num_cpus=self.cpus, num_gpus=self.gpus).remote(str(slot), self.processors, self.cpus)  # type: ignore[attr-defined]

    def submit(self, slot: int, unit: Unit, out_dir: str, attempt: int) -> Any:
        return self.actors[slot].run.remote(unit, out_dir, attempt)

    def wait(self, keys: list[Any], timeout: float) -> list[Any]:
        ready, _ = ray.wait(keys, num_returns=1, timeout=timeout)
        return ready

    def get(self, key: Any) -> dict[str, Any]:
        try:
            return ray.get(key)
        except ray.exceptions.RayActorError:
            raise
        except RayError as error:  # the unit raised (or its error did not unpickle): the worker is fine
            raise UnitFailed(_error_text(error)) from error

    def replace(self, slot: int) -> None:
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._start(slot)

    def abandon(self, keys: list[Any], timeout: float = 10.0) -> None:
        """Kill every worker and wait (up to `timeout` s) until their running units have ended."""
        self.shutdown()
        if keys:
            ray.wait(keys, num_returns=len(keys), timeout=timeout)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


@dataclass
class _Pending:
    unit: Unit
    out_dir: str
    attempt: int
    outcome: dict[str, Any] | None = None
    error: BaseException | None = None


class InProcessPool:
    """The pool interface with one slot: this process, with `threads` CPU threads."""

    workers = 1

    def __init__(self, processors: Processors, threads: int) -> None:
        import torch

        self.runner = UnitRunner(processors, "cuda" if torch.cuda.is_available() else "cpu", "-local", threads)
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
            pending.outcome = self.runner.run(pending.unit, pending.out_dir, pending.attempt)
        except Exception as error:  # noqa: BLE001 - a failing unit is recorded and retried, like on Ray
            pending.error = error
        return [keys[0]]

    def get(self, key: int) -> dict[str, Any]:
        pending = self._pending.pop(key)
        if pending.error is not None:
            raise UnitFailed(f"{type(pending.error).__name__}: {pending.error}") from pending.error
        if pending.outcome is None:
            raise RuntimeError(f"unit {pending.unit.id} was collected before it ran")
        return pending.outcome

    def replace(self, slot: int) -> None:
        """Nothing to replace: this process cannot die and go on."""

    def abandon(self, keys: list[Any]) -> None:
        """Nothing runs between calls: a unit in this process has ended before the pool hears of a stop."""
        self.shutdown()

    def shutdown(self) -> None:
        self._pending.clear()
