"""Ray orchestration: one stateful worker per GPU (or per CPU slot), a bounded queue, retries.

The driver alone writes the ledger, so a worker that dies mid-unit takes nothing finished with
it: its unit goes back on the queue (counted as an attempt), the worker is replaced, and the
temporary file it may have left is removed.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.unit import failed_record, process_unit

# process_unit's signature: (row, out_dir, *, device, worker, attempt) -> record
Processor = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    address: str | None = None  # a running Ray cluster; None = RAY_ADDRESS or an embedded local Ray
    workers: int | None = None  # CPU workers when there is no GPU; None = one per 2 CPUs
    retries: int = 2  # extra attempts for a failing unit
    force: bool = False  # redo units the ledger has as done
    processor: Processor = process_unit  # what a worker does with a unit (a stand-in in benchmarks)


@dataclass(frozen=True)
class Plan:
    units: list[ManifestRow]  # to run
    skipped: list[ManifestRow]  # already done according to the ledger
    workers: int
    gpus_per_worker: int
    cpus_per_worker: int

    @property
    def estimated_iterations(self) -> int:
        """Upper bound on optimisation iterations (the iteration caps) of the planned units."""
        from dip_engine import get_task

        return sum(row.max_iterations or get_task(row.task).config.fit.max_iterations for row in self.units)


@dataclass
class Progress:
    """Counts reported to the caller after every change."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    retried: int = 0
    started: float = field(default_factory=time.perf_counter)
    last_record: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunSummary:
    progress: Progress
    records: list[dict[str, Any]]  # one per unit finished in this run (done or failed), in finishing order
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.progress.failed == 0


@ray.remote(max_restarts=0)
class Worker:
    """Owns one GPU (or a few CPU cores) and restores the units sent to it, one at a time."""

    def __init__(self, name: str, processor: Processor, threads: int) -> None:
        import torch

        self.device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(max(1, threads))
        self.name = f"{socket.gethostname()}:{self.device}{name}"
        self.processor = processor

    def run(self, row: ManifestRow, out_dir: str, attempt: int) -> dict[str, Any]:
        return self.processor(row, Path(out_dir), device=self.device, worker=self.name, attempt=attempt)

    def pid(self) -> int:
        return os.getpid()


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join `address` (or RAY_ADDRESS), or start an embedded local Ray; reuse one already up."""
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        ray.init(address=target, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def plan_run(rows: list[ManifestRow], options: RunOptions, *, cluster: dict[str, float] | None = None) -> Plan:
    """Which units run, which are skipped, and how they are sharded over workers."""
    done = set() if options.force else Ledger(options.out_dir).done_ids()
    units = [row for row in rows if row.id not in done]
    skipped = [row for row in rows if row.id in done]
    resources = cluster if cluster is not None else {"CPU": float(os.cpu_count() or 1), "GPU": 0.0}
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpus > 0:
        return Plan(units, skipped, workers=gpus, gpus_per_worker=1, cpus_per_worker=max(1, cpus // gpus))
    workers = options.workers or max(1, cpus // 2)
    return Plan(units, skipped, workers=workers, gpus_per_worker=0, cpus_per_worker=max(1, cpus // workers))


class _Pool:
    """Live workers by slot; a dead one is replaced in its slot."""

    def __init__(self, plan: Plan, processor: Processor) -> None:
        self.plan = plan
        self.processor = processor
        self.actors: list[Any] = [self._start(slot) for slot in range(plan.workers)]

    def _start(self, slot: int) -> Any:
        options: dict[str, Any] = {"num_cpus": self.plan.cpus_per_worker, "num_gpus": self.plan.gpus_per_worker}
        return Worker.options(**options).remote(str(slot), self.processor, self.plan.cpus_per_worker)

    def replace(self, slot: int) -> None:
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._start(slot)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    text = str(cause if cause is not None else error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


def execute(
    plan: Plan,
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Run the planned units on a pool of Ray workers; every outcome goes to the ledger first."""
    ledger = Ledger(options.out_dir)
    ledger.clean_all_partials()
    progress = Progress(total=len(plan.units) + len(plan.skipped), skipped=len(plan.skipped))
    records: list[dict[str, Any]] = []
    queue: deque[tuple[ManifestRow, int]] = deque((row, 1) for row in plan.units)
    pool = _Pool(plan, options.processor)
    idle = list(range(plan.workers))
    in_flight: dict[Any, tuple[ManifestRow, int, int]] = {}
    out_dir = str(options.out_dir)

    def finish(record: dict[str, Any]) -> None:
        ledger.append(record)
        records.append(record)
        progress.last_record = record
        if record["status"] == "done":
            progress.done += 1
        else:
            progress.failed += 1

    try:
        while queue or in_flight:
            while queue and idle:
                row, attempt = queue.popleft()
                slot = idle.pop()
                in_flight[pool.actors[slot].run.remote(row, out_dir, attempt)] = (row, attempt, slot)
            progress.running = len(in_flight)
            if on_progress is not None:
                on_progress(progress)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                row, attempt, slot = in_flight.pop(ref)
                try:
                    finish(ray.get(ref))
                except RayActorError as error:  # the worker process died: replace it, requeue the unit
                    pool.replace(slot)
                    ledger.clean_partials(options.out_dir / row.output)
                    _retry_or_fail(row, attempt, f"worker died: {_error_text(error)}", options, queue, progress, finish)
                except RayError as error:  # the unit raised (or its error did not unpickle): the worker is fine
                    _retry_or_fail(row, attempt, _error_text(error), options, queue, progress, finish)
                idle.append(slot)
    finally:
        pool.shutdown()
        ledger.write_csv()
    progress.running = 0
    if on_progress is not None:
        on_progress(progress)
    return RunSummary(progress=progress, records=records, seconds=time.perf_counter() - progress.started)


def _retry_or_fail(
    row: ManifestRow,
    attempt: int,
    error: str,
    options: RunOptions,
    queue: deque[tuple[ManifestRow, int]],
    progress: Progress,
    finish: Callable[[dict[str, Any]], None],
) -> None:
    if attempt <= options.retries:
        progress.retried += 1
        queue.append((row, attempt + 1))
    else:
        finish(failed_record(row, error=error, worker="", attempt=attempt))


def run(
    rows: list[ManifestRow],
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Plan and execute a manifest's rows on Ray (connecting or starting it as needed)."""
    connect(options.address)
    plan = plan_run(rows, options, cluster=ray.cluster_resources())
    return execute(plan, options, on_progress)
