"""Where units run: a pool of Ray workers, or this process alone, behind one small interface.

`execute` `submit`s a unit to a free slot, `wait`s for finished ones, `get`s an outcome (raising
the unit's error as `UnitFailed`, or Ray's `RayActorError` when the worker process died),
`replace`s a dead worker, and `abandon`s the running units or `shutdown`s the pool at the end.

`RayPool`: one stateful `Worker` actor per GPU (or per few CPU cores), replaced in its slot when
it dies; while a replacement is not up and the cluster has no room for it (its node is gone, and
the others are full), its slot's units queue behind those of the other workers. `InProcessPool`:
one slot, this process (`pipeline run --no-ray`, for clusters that forbid long-lived daemons, such
as a SLURM job array); a unit runs to its end once started, so a stop request takes effect
between units. The device is then the first visible GPU when torch sees one,
else the CPU.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import ray
from ray.exceptions import RayError

from pipeline.io.write_errors import WRITE_ERRNOS, OutputWriteError
from pipeline.work.processors import Processors, UnitRunner
from pipeline.work.units import Unit


class UnitFailed(Exception):
    """A unit raised on its worker (the worker itself is fine); the message is the unit's error.

    `fault` says what a retry can do (`fault_of`): "transient" (retried), "permanent" (a bad input
    or value, refused output path: failing again the same way, so not retried) or "write" (the
    file system refused an output: not retried, and the run takes no new unit)."""

    def __init__(self, message: str, fault: str = "transient") -> None:
        super().__init__(message)
        self.fault = fault


def fault_of(error: BaseException | None) -> str:
    """ "write" for a refused write (`OutputWriteError`), "permanent" for what the user must fix
    (`UnitError` and every other ValueError: undecodable input, non-binary mask, bad value; an
    output path outside the output folder), else "transient" (a crash, out of memory, ...)."""
    if isinstance(error, OutputWriteError) or (isinstance(error, OSError) and error.errno in WRITE_ERRNOS):
        return "write"
    if isinstance(error, ValueError):  # OutsideOutputError is one too
        return "permanent"
    return "transient"


class Pool(Protocol):
    workers: int

    def submit(self, slot: int, unit: Unit, out_dir: str, attempt: int) -> Any: ...

    def wait(self, keys: list[Any], timeout: float) -> list[Any]: ...

    def get(self, key: Any) -> dict[str, Any]: ...

    def replace(self, slot: int) -> None: ...

    def abandon(self, keys: list[Any]) -> None: ...

    def shutdown(self) -> None: ...


@ray.remote(max_restarts=0)
class Worker:
    """Owns one GPU (or a few CPU cores) and runs the units sent to it, one at a time."""

    def __init__(self, name: str, processors: Processors, threads: int) -> None:
        import torch

        device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        self.runner = UnitRunner(processors, device, name, threads)

    def ready(self) -> bool:
        """Answers once the worker is up (placed on a node, its model code imported)."""
        return True

    def run(self, unit: Unit, out_dir: str, attempt: int) -> dict[str, Any]:
        return self.runner.run(unit, out_dir, attempt)


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    text = str(cause if cause is not None else error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


class RayPool:
    """Live Ray workers by slot, each with `cpus` CPUs and `gpus` GPUs; a dead one is replaced in its slot.

    A replacement may never come up: when its node is gone and the other nodes are full (one worker
    per GPU), Ray keeps it pending, and a unit sent to it would wait forever. So a unit for a slot
    whose worker is not up yet goes to the least busy worker that is up (behind the unit it runs),
    unless the cluster has room for the replacement now; the slot's own worker takes its units
    again once it is up.
    """

    def __init__(self, workers: int, cpus: int, gpus: int, processors: Processors) -> None:
        self.workers, self.cpus, self.gpus = workers, cpus, gpus
        self.processors = processors
        started = [self._start(slot) for slot in range(workers)]
        self.actors: list[Any] = [actor for actor, _ in started]
        self.ready: list[Any] = [ready for _, ready in started]  # per slot: answered once its worker is up
        self.runs_on: dict[Any, int] = {}  # a submitted unit's ref -> the slot whose worker runs it

    def _start(self, slot: int) -> tuple[Any, Any]:
        """A new worker for `slot`, and the ref of its `ready` answer."""
        actor = Worker.options(num_cpus=self.cpus, num_gpus=self.gpus).remote(str(slot), self.processors, self.cpus)  # type: ignore[attr-defined]
        return actor, actor.ready.remote()

    def _up(self, slot: int) -> bool:
        done, _ = ray.wait([self.ready[slot]], num_returns=1, timeout=0)
        return bool(done)

    def _room(self) -> bool:
        """Whether the cluster has the resources of one more worker free now (summed over its nodes)."""
        free = ray.available_resources()
        return free.get("CPU", 0.0) >= self.cpus and free.get("GPU", 0.0) >= self.gpus

    def _target(self, slot: int) -> int:
        """The slot whose worker takes a unit sent to `slot`: `slot` itself, unless its worker is
        not up, another one is, and the cluster has no room for it."""
        if self._up(slot):
            return slot
        others = [other for other in range(self.workers) if other != slot and self._up(other)]
        if not others or self._room():
            return slot
        busy = Counter(self.runs_on.values())
        return min(others, key=lambda other: busy[other])

    def submit(self, slot: int, unit: Unit, out_dir: str, attempt: int) -> Any:
        target = self._target(slot)
        ref = self.actors[target].run.remote(unit, out_dir, attempt)
        self.runs_on[ref] = target
        return ref

    def wait(self, keys: list[Any], timeout: float) -> list[Any]:
        ready, _ = ray.wait(keys, num_returns=1, timeout=timeout)
        return ready

    def get(self, key: Any) -> dict[str, Any]:
        self.runs_on.pop(key, None)
        try:
            return ray.get(key)
        except ray.exceptions.RayActorError:
            raise
        except RayError as error:  # the unit raised (or its error did not unpickle): the worker is fine
            raise UnitFailed(_error_text(error), fault_of(getattr(error, "cause", None))) from error

    def replace(self, slot: int) -> None:
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot], self.ready[slot] = self._start(slot)

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
            raise UnitFailed(f"{type(pending.error).__name__}: {pending.error}", fault_of(pending.error)) from pending.error
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
