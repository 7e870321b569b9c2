"""Ray orchestration: one stateful worker per GPU (or per CPU slot), a bounded queue, retries.

Units (`pipeline.units`) are image rows, video segments and video assemblies; they share one
queue, so the segments of several videos and the images run side by side on all workers. A
video's assembly is queued as soon as its last segment is done; a segment that fails for good
fails its video (its other segments still run, and are kept for the next run).

The driver alone writes the ledger, so a worker that dies mid-unit takes nothing finished with
it: its unit goes back on the queue (counted as an attempt), the worker is replaced, and the
temporary files or folders it may have left are removed.

A stop request (`RunOptions.stop_requested`, polled; `pipeline.slurm.preempt` sets it on SLURM's
warning signal) ends the run early and cleanly: no new unit starts, running units get
`stop_grace` seconds to finish and record, then their workers are killed and their temporary
files removed. With `RunOptions.shard` the run takes one shard of the rows and appends to that
shard's ledger file; with `in_process` the units run in this process without Ray
(`pipeline.inprocess`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from pipeline.assembly import assemble_video
from pipeline.executor import UnitExecutor
from pipeline.inprocess import InProcessPool, UnitError
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.segment_unit import process_segment
from pipeline.shard import Shard
from pipeline.unit import process_unit
from pipeline.units import (
    AssemblyUnit,
    FramesFormat,
    SegmentUnit,
    Unit,
    failed_unit_record,
    unit_outputs,
    video_work_folder,
)
from pipeline.video_plan import VideoBook, VideoJob, plan_video

# A processor's signature: (unit, out_dir, *, device, worker, attempt) -> record, the unit being a
# ManifestRow (process_unit), a SegmentUnit (process_segment) or an AssemblyUnit (assemble_video).
Processor = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    address: str | None = None  # a running Ray cluster; None = RAY_ADDRESS or an embedded local Ray
    workers: int | None = None  # CPU workers when there is no GPU; None = one per 2 CPUs
    retries: int = 2  # extra attempts for a failing unit
    force: bool = False  # redo units the ledger has as done
    processor: Processor = process_unit  # what a worker does with an image row (a stand-in in benchmarks)
    segment_frames: int = 48  # frames kept per video segment; 0 = each video one chain
    overlap: int = 3  # frames that only warm a segment's chain up (see pipeline.segments)
    frames_format: FramesFormat | None = None  # also write videos' restored frames as images
    warping_error: bool = True  # measure videos' warping error against their reference (optical flow)
    segment_processor: Processor = process_segment  # what a worker does with a video segment
    assembler: Processor = assemble_video  # what a worker does with a video whose segments are done
    shard: Shard | None = None  # run only this shard of the rows; its ledger lines go to its own file
    in_process: bool = False  # run the units in this process, one at a time, without Ray
    stop_requested: Callable[[], bool] | None = None  # polled; once true, no new unit starts
    stop_grace: float = 60.0  # seconds running units get to finish after a stop; then they are abandoned


@dataclass(frozen=True)
class Plan:
    units: list[Unit]  # runnable now: image rows, video segments, assemblies of videos whose segments are done
    skipped: list[ManifestRow]  # rows already done according to the ledger (images and whole videos)
    workers: int
    gpus_per_worker: int
    cpus_per_worker: int
    videos: list[VideoJob] = field(default_factory=list)  # video rows to finish in this run

    @property
    def unit_count(self) -> int:
        """Units this run executes: `units`, plus the assemblies that follow pending segments."""
        return len(self.units) + sum(1 for job in self.videos if job.pending)

    @property
    def segments_done(self) -> int:
        """Segments of unfinished videos that an earlier run finished (skipped in this one)."""
        return sum(len(job.done) for job in self.videos)

    @property
    def images(self) -> list[ManifestRow]:
        return [unit for unit in self.units if isinstance(unit, ManifestRow)]

    @property
    def segments(self) -> list[SegmentUnit]:
        return [unit for unit in self.units if isinstance(unit, SegmentUnit)]

    @property
    def estimated_iterations(self) -> int:
        """Upper bound on optimisation iterations (the iteration caps) of the planned units.

        A segment counts its cold first frame at the row's cap (or, when the segment starts with
        warm-up frames, at the chain's short warm-up cold start) and every other frame of its
        chain (warm-up frames included) at the task's `ChainConfig.for_task` warm cap.
        """
        from dip_engine import get_task
        from dip_engine.video import ChainConfig

        total = 0
        for unit in self.units:
            if isinstance(unit, AssemblyUnit):
                continue
            row = unit if isinstance(unit, ManifestRow) else unit.row
            task = get_task(row.task)
            cap = row.max_iterations or task.config_for(scale=row.scale).fit.max_iterations
            if isinstance(unit, ManifestRow):
                total += cap
                continue
            chain = ChainConfig.for_task(task)
            first = min(cap, chain.warmup_cold_iterations) if unit.segment.warmup else cap
            total += first + (unit.segment.chain_frames - 1) * chain.warm_max_iterations
        return total


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
    records: list[dict[str, Any]] = field(default_factory=list)  # every record of this run so far, in order
    stopped: bool = False  # a stop was requested: the units not finished are left for the next run
    abandoned: list[str] = field(default_factory=list)  # ids of units left unfinished by the stop


@dataclass(frozen=True)
class RunSummary:
    progress: Progress
    records: list[dict[str, Any]]  # one per unit finished in this run (done or failed), in finishing order
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.progress.failed == 0

    @property
    def stopped(self) -> bool:
        """The run was stopped on request before every unit ran (see `Progress.abandoned`)."""
        return self.progress.stopped


@dataclass(frozen=True)
class Processors:
    """What a worker runs for each kind of unit."""

    image: Processor = process_unit
    segment: Processor = process_segment
    assembly: Processor = assemble_video

    def of(self, unit: Unit) -> Processor:
        if isinstance(unit, SegmentUnit):
            return self.segment
        if isinstance(unit, AssemblyUnit):
            return self.assembly
        return self.image


@ray.remote(max_restarts=0)
class Worker:
    """Owns one GPU (or a few CPU cores) and runs the units sent to it, one at a time."""

    def __init__(self, name: str, processors: Processors, threads: int) -> None:
        import torch

        device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        self.executor = UnitExecutor(processors, device, name, threads)

    def run(self, unit: Unit, out_dir: str, attempt: int) -> dict[str, Any]:
        return self.executor.run(unit, out_dir, attempt)

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
    """Which units run, which are skipped, and how they are sharded over workers.

    A row whose latest ledger line is done (and whose output exists) is skipped, image or
    video. An unfinished video is cut into segments, and those an earlier run finished are
    skipped (`pipeline.video_plan.plan_video`, which probes the video: frame count, frame rate).
    Raises `pipeline.video_plan.VideoPlanError` for a video input that cannot be probed.
    With `options.shard`, only that shard's rows are planned (`pipeline.shard.Shard.select`).
    """
    if options.shard is not None:
        rows = options.shard.select(rows)
    ledger = Ledger(options.out_dir)
    records = {} if options.force else ledger.load()
    done = {unit_id for unit_id, record in records.items() if ledger.is_done(record)}
    units: list[Unit] = []
    skipped: list[ManifestRow] = []
    videos: list[VideoJob] = []
    for row in rows:
        if row.id in done:
            skipped.append(row)
        elif not row.is_video:
            units.append(row)
        else:
            job = plan_video(
                row, segment_frames=options.segment_frames, overlap=options.overlap, ledger=ledger, records=records, force=options.force
            )
            videos.append(job)
            units.extend(VideoBook([job]).initial_units())
    resources = cluster if cluster is not None else {"CPU": float(os.cpu_count() or 1), "GPU": 0.0}
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if options.in_process:
        return Plan(units, skipped, workers=1, gpus_per_worker=min(gpus, 1), cpus_per_worker=cpus, videos=videos)
    if gpus > 0:
        return Plan(units, skipped, workers=gpus, gpus_per_worker=1, cpus_per_worker=max(1, cpus // gpus), videos=videos)
    workers = options.workers or max(1, cpus // 2)
    return Plan(units, skipped, workers=workers, gpus_per_worker=0, cpus_per_worker=max(1, cpus // workers), videos=videos)


class _Pool:
    """Live Ray workers by slot; a dead one is replaced in its slot.

    The pool interface of `execute` (also `pipeline.inprocess.InProcessPool`): `submit` a unit to
    a slot, `wait` for finished ones, `get` an outcome (raising the unit's error), `replace`, `shutdown`.
    """

    def __init__(self, plan: Plan, processors: Processors) -> None:
        self.plan = plan
        self.processors = processors
        self.actors: list[Any] = [self._start(slot) for slot in range(plan.workers)]

    def _start(self, slot: int) -> Any:
        options: dict[str, Any] = {"num_cpus": self.plan.cpus_per_worker, "num_gpus": self.plan.gpus_per_worker}
        return Worker.options(**options).remote(str(slot), self.processors, self.plan.cpus_per_worker)

    def submit(self, slot: int, unit: Unit, out_dir: str, attempt: int) -> Any:
        return self.actors[slot].run.remote(unit, out_dir, attempt)

    def wait(self, keys: list[Any], timeout: float) -> list[Any]:
        ready, _ = ray.wait(keys, num_returns=1, timeout=timeout)
        return ready

    def get(self, key: Any) -> dict[str, Any]:
        return ray.get(key)

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


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    text = str(cause if cause is not None else error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


def execute(
    plan: Plan,
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Run the planned units on a pool of Ray workers; every outcome goes to the ledger first.

    A video's assembly is queued when its last segment is done. The work folder of a video's
    segment frames is removed once the video's done line is in the ledger (and at the start for
    videos an earlier run finished).
    """
    ledger = Ledger(options.out_dir, shard=options.shard.name if options.shard is not None else None)
    if options.shard is None:
        ledger.clean_all_partials()
    else:  # the other shards may be writing into the same folder now: clean only this shard's outputs
        for unit in plan.units:
            for output in unit_outputs(unit):
                ledger.clean_partials(options.out_dir / output)
    _remove_work_folders(options.out_dir, [row for row in plan.skipped if row.is_video])
    skipped = len(plan.skipped) + plan.segments_done
    progress = Progress(total=plan.unit_count + skipped, skipped=skipped)
    records = progress.records
    book = VideoBook(plan.videos, options.frames_format, options.warping_error)
    queue: deque[tuple[Unit, int]] = deque((unit, 1) for unit in plan.units)
    processors = Processors(options.processor, options.segment_processor, options.assembler)
    pool: Any = InProcessPool(processors, plan.cpus_per_worker) if options.in_process else _Pool(plan, processors)
    idle = list(range(plan.workers))
    in_flight: dict[Any, tuple[Unit, int, int]] = {}
    out_dir = str(options.out_dir)

    def record(outcome: dict[str, Any]) -> None:
        ledger.append(outcome)
        records.append(outcome)
        progress.last_record = outcome
        if outcome["status"] == "done":
            progress.done += 1
        else:
            progress.failed += 1

    def finish(unit: Unit, outcome: dict[str, Any]) -> None:
        record(outcome)
        if isinstance(unit, SegmentUnit):
            follow = book.segment_finished(unit, outcome)
            if isinstance(follow, AssemblyUnit):
                queue.append((follow, 1))
            elif follow is not None:
                record(follow)  # the video fails with its segment
        elif isinstance(unit, AssemblyUnit) and outcome["status"] == "done":
            _remove_work_folders(options.out_dir, [unit.row])

    stop_at: float | None = None  # when running units are abandoned, once a stop was requested
    try:
        while in_flight or (queue and stop_at is None):
            if stop_at is None and options.stop_requested is not None and options.stop_requested():
                stop_at = time.monotonic() + options.stop_grace
                progress.stopped = True
            if stop_at is not None and time.monotonic() >= stop_at:
                break  # the grace is over: the finally clause abandons what still runs
            while queue and idle and stop_at is None:
                unit, attempt = queue.popleft()
                slot = idle.pop()
                in_flight[pool.submit(slot, unit, out_dir, attempt)] = (unit, attempt, slot)
            progress.running = len(in_flight)
            if on_progress is not None:
                on_progress(progress)
            for ref in pool.wait(list(in_flight), timeout=1.0):
                unit, attempt, slot = in_flight.pop(ref)
                try:
                    outcome = pool.get(ref)
                except RayActorError as error:  # the worker process died: replace it, requeue the unit
                    pool.replace(slot)
                    for output in unit_outputs(unit):
                        ledger.clean_partials(options.out_dir / output)
                    _retry_or_fail(unit, attempt, f"worker died: {_error_text(error)}", options, queue, progress, finish)
                except (RayError, UnitError) as error:  # the unit raised (or its error did not unpickle): the worker is fine
                    _retry_or_fail(unit, attempt, _error_text(error), options, queue, progress, finish)
                else:
                    finish(unit, outcome)
                idle.append(slot)
    finally:
        if in_flight and isinstance(pool, _Pool):
            pool.abandon(list(in_flight))
        else:
            pool.shutdown()
        for unit, _, _ in in_flight.values():  # abandoned (a stop, an interrupt): no temporary file stays
            for output in unit_outputs(unit):
                ledger.clean_partials(options.out_dir / output)
        progress.abandoned = [unit.id for unit, _, _ in in_flight.values()] + [unit.id for unit, _ in queue]
        ledger.write_csv()
    progress.running = 0
    if on_progress is not None:
        on_progress(progress)
    return RunSummary(progress=progress, records=list(records), seconds=time.perf_counter() - progress.started)


def _remove_work_folders(out_dir: Path, rows: list[ManifestRow]) -> None:
    """Remove the segment frames of finished videos (`pipeline.units.video_work_folder`), and the
    work folder itself once it is empty."""
    for row in rows:
        folder = Path(out_dir) / video_work_folder(row.id)
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.parent.rmdir()
        except OSError:  # absent, or other videos' segments are still in it
            pass


def _retry_or_fail(
    unit: Unit,
    attempt: int,
    error: str,
    options: RunOptions,
    queue: deque[tuple[Unit, int]],
    progress: Progress,
    finish: Callable[[Unit, dict[str, Any]], None],
) -> None:
    if attempt <= options.retries:
        progress.retried += 1
        queue.append((unit, attempt + 1))
    else:
        finish(unit, failed_unit_record(unit, error=error, worker="", attempt=attempt))


def run(
    rows: list[ManifestRow],
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Plan and execute a manifest's rows on Ray (connecting or starting it as needed)."""
    connect(options.address)
    plan = plan_run(rows, options, cluster=ray.cluster_resources())
    return execute(plan, options, on_progress)
