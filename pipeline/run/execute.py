"""Executing a plan: a bounded queue of units over a pool of workers, retries, and the ledger.

Units (`pipeline.work.units`) are image rows, video segments, groups of tiles of large images,
and the assemblies of videos and tiled images; they share one queue, so the parts of several rows
and the images run side by side on all workers. A row's assembly is queued as soon as its last
part is done; a part that fails for good fails its row (its other parts still run, and are kept
for the next run; `pipeline.run.book`).

The driver alone writes the ledger, so a worker that dies mid-unit takes nothing finished with
it: its unit goes back on the queue (counted as an attempt), the worker is replaced, and the
temporary files or folders it may have left are removed. A unit that fails is queued again only
when a retry can change the outcome (`pipeline.run.pools.fault_of`): a bad input or value fails
at once. A write the file system refuses (full, read-only, over quota) fails its unit at once and
halts the run: no new unit starts, running ones finish and are recorded where the ledger still
takes lines, and an output whose ledger line cannot be written is removed, so there is never an
output without its line nor a done line without its output.

A stop request (`RunOptions.stop_requested`, polled; `pipeline.slurm.preempt` sets it on SLURM's
warning signal) ends the run early and cleanly: no new unit starts, running units get
`stop_grace` seconds to finish and record, then their workers are killed and their temporary
files removed. With `RunOptions.shard` the run takes one shard of the rows and appends to that
shard's ledger file; with `in_process` the units run in this process and Ray is never started.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ray.exceptions import RayActorError

from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.records import is_done
from pipeline.run.book import Book
from pipeline.run.options import RunOptions
from pipeline.run.plan import Plan, plan_run
from pipeline.run.pools import InProcessPool, Pool, RayPool, UnitFailed
from pipeline.run.ray_session import connect
from pipeline.work.units import (
    SegmentUnit,
    TileGroupUnit,
    Unit,
    failed_record,
    tiles_work_folder,
    unit_outputs,
    video_work_folder,
    work_folder,
)


@dataclass
class RunState:
    """Where a run stands, reported to the caller after every change."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0
    started: float = field(default_factory=time.perf_counter)
    records: list[dict[str, Any]] = field(default_factory=list)  # every record of this run so far, in order
    stopped: bool = False  # a stop was requested: the units not finished are left for the next run
    abandoned: list[str] = field(default_factory=list)  # ids of units left unfinished by the stop (or a write error)
    retry_lines: list[str] = field(default_factory=list)  # one per attempt queued again, naming its unit and why
    write_error: str | None = None  # the file system refused a write: the run took no new unit after it

    @property
    def retried(self) -> int:
        """Attempts queued again so far."""
        return len(self.retry_lines)


@dataclass(frozen=True)
class RunSummary:
    state: RunState
    records: list[dict[str, Any]]  # one per unit finished in this run (done or failed), in finishing order
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.state.failed == 0

    @property
    def stopped(self) -> bool:
        """The run was stopped on request before every unit ran (see `RunState.abandoned`)."""
        return self.state.stopped

    @property
    def write_error(self) -> str | None:
        """Why the run stopped taking units early: a write the file system refused (None if none was)."""
        return self.state.write_error


def run(rows: list[ManifestRow], options: RunOptions, on_progress: Callable[[RunState], None] | None = None) -> RunSummary:
    """Plan and execute a manifest's rows: on Ray (joined or started as needed), or with
    `options.in_process` in this process, without starting or joining Ray."""
    if options.in_process:
        return execute(plan_run(rows, options), options, on_progress)
    import ray

    connect(options.address)
    return execute(plan_run(rows, options, cluster=ray.cluster_resources()), options, on_progress)


def execute(plan: Plan, options: RunOptions, on_progress: Callable[[RunState], None] | None = None) -> RunSummary:
    """Run the planned units on a pool of workers; every outcome goes to the ledger first.

    A row's assembly is queued when its last part is done. The work folder of a row's parts
    (segment frames, restored tiles) is removed once the row's done line is in the ledger (and at
    the start for rows an earlier run finished).
    """
    ledger = Ledger(options.out_dir, shard=options.shard.name if options.shard is not None else None)
    ledger.check_writable()
    if options.shard is None:
        ledger.clean_all_partials()
    else:  # the other shards may be writing into the same folder now: clean only this shard's outputs
        for unit in plan.units:
            for output in unit_outputs(unit):
                ledger.clean_partials(options.out_dir / output)
    for row in plan.skipped:
        _remove_work_folder(options.out_dir, video_work_folder(row.id) if row.is_video else tiles_work_folder(row.id))
    skipped = len(plan.skipped) + plan.parts_done
    state = RunState(total=plan.unit_count + skipped, skipped=skipped)
    records = state.records
    book = Book(plan.parted)
    queue: deque[tuple[Unit, int]] = deque((unit, 1) for unit in plan.units)
    pool: Pool = (
        InProcessPool(options.processors, plan.cpus_per_worker)
        if options.in_process
        else RayPool(plan.workers, plan.cpus_per_worker, plan.gpus_per_worker, options.processors)
    )
    idle = list(range(plan.workers))
    in_flight: dict[Any, tuple[Unit, int, int]] = {}
    out_dir = str(options.out_dir)

    def halt(reason: str) -> None:
        """Take no new unit: the file system refuses what the units would write."""
        if state.write_error is None:
            state.write_error = reason

    def record(unit: Unit, outcome: dict[str, Any]) -> bool:
        """Append `outcome`, with its row's fingerprint, to the ledger; when that fails, remove what
        the unit wrote (no output without its ledger line), halt the run and return False."""
        row_fingerprint = plan.fingerprints.get(_row_of(unit).id)
        if row_fingerprint is not None:
            outcome["fingerprint"] = row_fingerprint.to_dict()
        try:
            ledger.append(outcome)
        except OSError as error:
            if is_done(outcome):
                for output in unit_outputs(unit):
                    _remove_output(options.out_dir / output)
            halt(f"cannot record unit {unit.id} in {ledger.path}: {error} (its output was removed; it runs again next time)")
            return False
        records.append(outcome)
        if is_done(outcome):
            state.done += 1
        else:
            state.failed += 1
        return True

    def finish(unit: Unit, outcome: dict[str, Any]) -> None:
        if not record(unit, outcome):
            return
        folder = work_folder(unit)
        if isinstance(unit, (SegmentUnit, TileGroupUnit)):
            follow = book.part_finished(unit, outcome)
            if isinstance(follow, dict):
                record(unit, follow)  # the row fails with its part
            elif follow is not None:
                queue.append((follow, 1))
        elif folder is not None and is_done(outcome):
            _remove_work_folder(options.out_dir, folder)

    def retry_or_fail(unit: Unit, attempt: int, error: str, fault: str = "transient") -> None:
        """Queue a transient failure again (up to the retries); fail the unit at once otherwise.
        A refused write also halts the run."""
        if fault == "write":
            halt(error)
        if fault == "transient" and attempt <= options.retries:
            state.retry_lines.append(
                f"{_unit_name(unit)}: attempt {attempt} failed ({error}); attempt {attempt + 1} of {options.retries + 1} queued"
            )
            queue.append((unit, attempt + 1))
        else:
            finish(unit, failed_record(unit, error=error, attempt=attempt))

    stop_at: float | None = None  # when running units are abandoned, once a stop was requested
    try:
        while in_flight or (queue and stop_at is None and state.write_error is None):
            if stop_at is None and options.stop_requested is not None and options.stop_requested():
                stop_at = time.monotonic() + options.stop_grace
                state.stopped = True
            if stop_at is not None and time.monotonic() >= stop_at:
                break  # the grace is over: the finally clause abandons what still runs
            while queue and idle and stop_at is None and state.write_error is None:
                unit, attempt = queue.popleft()
                slot = idle.pop()
                in_flight[pool.submit(slot, unit, out_dir, attempt)] = (unit, attempt, slot)
            state.running = len(in_flight)
            if on_progress is not None:
                on_progress(state)
            for ref in pool.wait(list(in_flight), timeout=1.0):
                unit, attempt, slot = in_flight.pop(ref)
                try:
                    outcome = pool.get(ref)
                except RayActorError as error:  # the worker process died: replace it, requeue the unit
                    pool.replace(slot)
                    for output in unit_outputs(unit):
                        ledger.clean_partials(options.out_dir / output)
                    retry_or_fail(unit, attempt, f"worker died: {_last_line(error)}")
                except UnitFailed as error:
                    retry_or_fail(unit, attempt, _last_line(error), error.fault)
                else:
                    finish(unit, outcome)
                idle.append(slot)
    finally:
        if in_flight:
            pool.abandon(list(in_flight))
        else:
            pool.shutdown()
        for unit, _, _ in in_flight.values():  # abandoned (a stop, an interrupt): no temporary file stays
            for output in unit_outputs(unit):
                ledger.clean_partials(options.out_dir / output)
        state.abandoned = [unit.id for unit, _, _ in in_flight.values()] + [unit.id for unit, _ in queue]
        try:
            ledger.write_csv()
        except OSError as error:  # the table is rebuilt from the ledger by the next run
            halt(f"cannot write {ledger.csv_path}: {error}")
    state.running = 0
    if on_progress is not None:
        on_progress(state)
    return RunSummary(state=state, records=list(records), seconds=time.perf_counter() - state.started)


def _row_of(unit: Unit) -> ManifestRow:
    return unit if isinstance(unit, ManifestRow) else unit.row


def _unit_name(unit: Unit) -> str:
    """How a retry line names a unit: its row and its id (a part's id names the part)."""
    return f"row {_row_of(unit).row_number} ({unit.id})"


def _remove_output(path: Path) -> None:
    """Remove an output file or folder that could not be recorded."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _last_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


def _remove_work_folder(out_dir: Path, folder: PurePosixPath) -> None:
    """Remove a finished row's work folder (its parts' outputs), and the folder of all rows' work
    folders (``.segments``, ``.tiles``) once it is empty."""
    path = Path(out_dir) / folder
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()
    except OSError:  # absent, or other rows' parts are still in it
        pass
