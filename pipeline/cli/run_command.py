"""`pipeline run`: plan a manifest, run it on Ray (or in this process), and report.

Exit codes: 0 success (every unit done); 1 some units failed (the others are done, and
rerunning the same command retries only the failed ones); 2 a usage error, a manifest that
cannot be used, or a Ray cluster that cannot be reached (nothing was run); 3 the run itself
stopped on an unexpected error (a bug: the traceback is printed; finished units are kept in
the ledger); 75 stopped on SIGUSR1 (SLURM's warning before the time limit: finished units are
kept, the job was requeued when it runs under SLURM, and rerunning resumes); 130 interrupted
(Ctrl-C, or SIGTERM such as `scancel`).
"""

from __future__ import annotations

import os
import traceback
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.cli.common import (
    EXIT_FAILED_UNITS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_STOPPED,
    EXIT_USAGE,
    check_out_folder,
    console,
    fail,
    plural,
    print_problems,
)
from pipeline.cli.interrupts import exits_on_interrupt
from pipeline.cli.report_command import write_report_after_run
from pipeline.io import VideoCodecName, VideoOutput
from pipeline.io.write_errors import free_bytes
from pipeline.manifest import InvalidRow, ManifestRow, read_manifest
from pipeline.run.shard import Shard
from pipeline.work.units import FramesFormat

if TYPE_CHECKING:
    from pipeline.run.execute import RunSummary
    from pipeline.run.options import RunOptions
    from pipeline.run.plan import Plan


@exits_on_interrupt
def run_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest CSV: one row per image or video to restore.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: restored files, results.jsonl, results.csv.")],
    address: Annotated[
        str | None, typer.Option(help="A running Ray cluster (ray://... or host:port). Default: RAY_ADDRESS, else a local Ray.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="CPU workers when there is no GPU. Default: one per 2 CPUs. With GPUs: one per GPU.")
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Extra attempts for a unit that fails.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Redo units the ledger already has as done.")] = False,
    segment_frames: Annotated[
        int,
        typer.Option(min=0, help="Video frames per segment, each restored as its own chain on a worker; 0 = a whole video as one chain."),
    ] = 48,
    overlap: Annotated[
        int,
        typer.Option(
            min=0,
            help="Frames each video segment's chain restores first and drops, so that seams do not show (the first segment of several takes its own next frames, in reverse).",
        ),
    ] = 3,
    frames: Annotated[
        FramesFormat | None,
        typer.Option("--frames", help="Also write each video's restored frames as png or tiff files into <output stem>_frames/."),
    ] = None,
    warping_error: Annotated[
        bool,
        typer.Option(
            "--warping-error/--no-warping-error",
            help="Measure each video's warping error against its reference (optical flow: about 2 s a frame at 1080p on one CPU).",
        ),
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit without running anything.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No plan, progress or table: only the totals line and errors.")] = False,
    shard: Annotated[
        str | None, typer.Option(help="i/N: only rows i, i+N, i+2N, ... (from 0), with their own ledger file results.shard-i-of-N.jsonl.")
    ] = None,
    no_ray: Annotated[
        bool, typer.Option("--no-ray", help="Run the units in this process, one at a time, without Ray (job arrays, no daemons).")
    ] = False,
    stop_grace: Annotated[
        float, typer.Option(min=0, help="After SIGUSR1 (stop), seconds running units get to finish before they are abandoned.")
    ] = 60.0,
    tile: Annotated[
        str,
        typer.Option(
            help="Tile side in input pixels for images too large for one fit, or 'auto': the whole image when it fits a worker's memory, else the largest tiles that do."
        ),
    ] = "auto",
    tile_overlap: Annotated[
        int, typer.Option(min=0, help="Input pixels neighbouring tiles share (blended smoothly, so no seam shows).")
    ] = 32,
    tile_batch: Annotated[
        int | None,
        typer.Option(min=1, help="At most this many tiles per unit (fitted together); default: as many as a worker's memory holds."),
    ] = None,
    memory_per_worker: Annotated[
        str | None,
        typer.Option(
            help="Memory one worker may use, e.g. 8G. Default: on GPUs the GPU's memory; on CPUs the memory this job may use (SLURM, cgroup or machine) shared among the workers, with headroom."
        ),
    ] = None,
    allow_short_video: Annotated[
        bool,
        typer.Option(
            "--allow-short-video",
            help="Restore a video file that decodes fewer frames than its header's duration × rate (truncated) instead of failing its row.",
        ),
    ] = False,
    video_codec: Annotated[
        VideoCodecName,
        typer.Option(
            "--video-codec",
            help="Encoder of the restored videos: x264 (H.264 8-bit, plays everywhere), x265 (HEVC 10-bit, smaller), prores (ProRes 422 HQ in .mov/.mkv, for editing), ffv1 (lossless in .mkv, bit-exact, for archives).",
        ),
    ] = VideoCodecName.x264,
    video_pixel_format: Annotated[
        str | None,
        typer.Option(
            "--video-pixel-format",
            help="An ffmpeg pix_fmt for the restored videos, e.g. yuv422p10le. Default by codec: x264 yuv420p, x265 yuv420p10le, prores yuv422p10le, ffv1 bgr0 (8-bit) or gbrp16le (deeper sources); 4:4:4 for odd sizes.",
        ),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Run the valid rows of a manifest with invalid ones, and record each invalid row as failed in the ledger with its row number and reasons (exit 1). Default: refuse the manifest (exit 2).",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show Ray's own log lines on the terminal too (otherwise they go to OUT/logs/ray-driver.log)."
        ),
    ] = False,
) -> None:
    """Restore every row of MANIFEST into --out. Rerunning skips what is already done (resume).

    SIGUSR1 stops the run cleanly (and requeues the job under SLURM); see `pipeline slurm`.
    """
    check_out_folder(out)
    video = VideoOutput(video_codec.value, video_pixel_format)
    rows, invalid = _read_rows(manifest, out, force=force, skip_invalid=skip_invalid, video=video)
    try:
        part = Shard.parse(shard) if shard is not None else None
    except ValueError as error:
        raise fail(str(error)) from None
    if no_ray and address is not None:
        raise fail("--no-ray runs everything in this process: leave out --address (or --no-ray)")
    tile_side, budget = tile_options(tile, tile_overlap, memory_per_worker)

    import ray  # imported here: `validate` and `manifest` should not pay for Ray

    from pipeline.cli.display import RunDisplay, summary_table
    from pipeline.io.write_errors import OutputWriteError
    from pipeline.ledger import RESULTS_CSV, Ledger
    from pipeline.records import invalid_row_record
    from pipeline.report.values import seconds_text
    from pipeline.run.execute import execute
    from pipeline.run.options import RunOptions
    from pipeline.run.plan import PlanError, local_resources, plan_run
    from pipeline.run.ray_log import RayOutput, ray_log_path
    from pipeline.run.ray_session import connect
    from pipeline.run.run_file import run_info, write_run_file
    from pipeline.slurm.preempt import StopSignals

    options = RunOptions(
        out_dir=out,
        address=address,
        workers=workers,
        retries=retries,
        force=force,
        segment_frames=segment_frames,
        overlap=overlap,
        frames_format=frames,
        warping_error=warping_error,
        shard=part,
        in_process=no_ray,
        stop_grace=stop_grace,
        tile=tile_side,
        tile_overlap=tile_overlap,
        tile_batch=tile_batch,
        memory_per_worker=budget,
        allow_short_video=allow_short_video,
        video_codec=video.codec,
        video_pixel_format=video.pixel_format,
    )
    if not dry_run:  # before Ray starts and before any fit: a folder that refuses writes would lose them all
        try:
            Ledger(out, shard=part.name if part is not None else None).check_writable()
        except OutputWriteError as error:
            raise fail(f"the output folder cannot be written: {error}; make it writable (or free space), or give another --out") from None
        if part is None or part.index == 0:  # a job array's shard 0 records them, once
            for row in invalid:
                Ledger(out, shard=part.name if part is not None else None).append(invalid_row_record(row))
    started_ray = not no_ray and not ray.is_initialized()
    where = address or os.environ.get("RAY_ADDRESS")
    watchdog = None  # of the local Ray this run starts: none of its processes outlives the run
    signals = StopSignals()
    stopped: RunSummary | None = None
    # Ray's own lines (its logging, warnings, what its processes print) go to a file, not among the run's.
    ray_output = RayOutput(None if dry_run else ray_log_path(out, part.name if part is not None else None), keep=verbose)
    try:
        if not no_ray:
            ray_output.start()
            try:
                watchdog = connect(address)
            except Exception as error:  # noqa: BLE001 - Ray raises many kinds; all mean "no cluster there"
                target = f"the Ray cluster at {where}" if where else "a local Ray"
                log = f"Ray's own messages are in {ray_output.kept_path}" if ray_output.kept_path else "-v shows Ray's own messages"
                raise fail(f"cannot start or reach {target}: {error} ({log})") from None
            ray_output.note_session_logs()
        try:
            plan = plan_run(rows, options, cluster=local_resources() if no_ray else ray.cluster_resources())
        except PlanError as error:
            err = console(stderr=True)
            for problem in error.problems:
                err.print(escape(problem), soft_wrap=True)
            raise fail(f"{plural(len(error.problems), 'row')} cannot be planned: nothing was run") from None
        out_console = console()
        if dry_run:
            _print_plan(out_console, manifest, out, plan, options)
            if invalid:
                out_console.print(f"  {plural(len(invalid), 'invalid row')} would be recorded as failed (--skip-invalid)")
            out_console.print("dry run: nothing was run and nothing was written")
            return
        info = run_info(manifest, plan, options, manifest_rows=len(rows) + len(invalid), invalid_rows=len(invalid))
        write_run_file(out, info, shard=part.name if part is not None else None)  # for `pipeline status`
        if not plan.units:
            if not quiet:
                out_console.print(
                    f"nothing to do: all {len(plan.skipped)} units are already done in {escape(str(out))} (--force redoes them)"
                )
            Ledger(out).write_csv()
            write_report_after_run(out, None if quiet else out_console)
            _report_invalid(invalid, out)
            return
        if not quiet:
            _print_plan(out_console, manifest, out, plan, options)
        display = RunDisplay(out_console, plan.unit_count, quiet=quiet)
        ledger_path = Ledger(out, shard=part.name if part is not None else None).path
        try:
            with display, signals:
                summary = execute(plan, replace(options, stop_requested=signals.requested), on_progress=display)
        except KeyboardInterrupt:
            console(stderr=True).print(
                f"[yellow]interrupted[/]: finished units are recorded in {escape(str(ledger_path))}; run the same command again to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:  # noqa: BLE001 - a bug, not a unit failure: keep exit code 1 for those
            traceback.print_exc(file=console(stderr=True).file)
            console(stderr=True).print(
                f"[bold red]the run stopped on an unexpected error[/] ({escape(type(error).__name__)}); units finished "
                f"before it are recorded in {escape(str(ledger_path))} and a rerun resumes after them. "
                "This is a bug in the pipeline: please report it with the traceback above.",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None
        state = summary.state
        if summary.stopped:
            stopped = summary
            return
        if summary.write_error is not None:
            _report_write_error(summary, out)
        if not quiet:
            if summary.records:
                out_console.print()
                out_console.print(summary_table(summary.records))
            out_console.print()
        totals = f"{state.done} done, {state.failed} failed"
        if state.skipped:
            totals += f", {state.skipped} skipped (already done)"
        if state.retried:
            totals += f", {plural(state.retried, 'retried attempt')}"
        line = f"{state.total} units: {totals} in {seconds_text(summary.seconds)}; output folder: {out}"
        if summary.succeeded:
            out_console.print(escape(line), soft_wrap=True)
        else:
            console(stderr=True).print(f"[red]{escape(line)}[/]", soft_wrap=True)
        if not quiet:
            ray_log = f"   Ray's log: {escape(str(ray_output.kept_path))}" if ray_output.kept_path and not no_ray else ""
            out_console.print(f"ledger: {escape(str(ledger_path))}   table: {escape(str(out / RESULTS_CSV))}{ray_log}", soft_wrap=True)
        write_report_after_run(out, None if quiet else out_console)  # also after failed units: it lists them
        if not summary.succeeded:
            console(stderr=True).print(
                f"[red]some units failed[/]: their errors are in {escape(str(out / RESULTS_CSV))} (column 'error'); "
                "fix the cause and run the same command again to retry only those",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_FAILED_UNITS)
        _report_invalid(invalid, out)
    finally:
        if started_ray and ray.is_initialized():
            ray.shutdown()
        if watchdog is not None:
            watchdog.stop()
        ray_output.stop()
        if stopped is not None:  # after Ray is down: a requeue ends this job at once
            _finish_stopped(stopped, out)


def _read_rows(
    manifest: Path, out: Path, *, force: bool, skip_invalid: bool, video: VideoOutput | None = None
) -> tuple[list[ManifestRow], list[InvalidRow]]:
    """The rows to run and, with `skip_invalid`, the invalid ones; exit 2 after printing every
    problem when a row is invalid without `skip_invalid`, or the file itself cannot be used. Rows
    the output folder has as finished are not checked again (an input moved away since is fine).
    `video`: the run's video encoding, which every video row must be writable with."""
    from pipeline.run.resume import finished_rows

    reading = read_manifest(manifest, out_dir=out, trusted=finished_rows(out, force=force), video=video)
    err = console(stderr=True)
    if reading.file_problems or (reading.invalid and not skip_invalid):
        print_problems(reading.problems, manifest, err)
        if reading.invalid and not reading.file_problems:
            err.print(
                f"to run the {plural(len(reading.rows), 'valid row')} and record the {plural(len(reading.invalid), 'invalid one')} "
                "as failed in the ledger, add --skip-invalid",
                soft_wrap=True,
            )
        raise typer.Exit(EXIT_USAGE)
    for problem in reading.problems:
        err.print(f"[yellow]skipped[/] {escape(str(problem))}", soft_wrap=True)
    return reading.rows, reading.invalid


def _report_invalid(invalid: list[InvalidRow], out: Path) -> None:
    """After a run with --skip-invalid rows: say where they are recorded and exit 1."""
    if invalid:
        console(stderr=True).print(
            f"[red]{plural(len(invalid), 'invalid row')} of the manifest {'was' if len(invalid) == 1 else 'were'} not run[/] "
            f"and {'is' if len(invalid) == 1 else 'are'} recorded as failed in {escape(str(out / 'results.csv'))} with the "
            "reasons; fix the rows and run the same command again",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_FAILED_UNITS)


def _report_write_error(summary: RunSummary, out: Path) -> None:
    """A run the file system stopped (full, read-only, refused): say what was kept, exit 1."""
    state = summary.state
    console(stderr=True).print(
        f"[bold red]the run stopped taking units: {escape(summary.write_error or '')}[/]\n"
        f"{state.done} units done and recorded, {state.failed} failed, {len(state.abandoned)} not run; nothing finished "
        f"is lost. Free space (or fix the folder's permissions) in {escape(str(out))} and run the same command again "
        "to resume.",
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_FAILED_UNITS)


def _finish_stopped(summary: RunSummary, out: Path) -> None:
    """Report a run stopped by SIGUSR1, requeue its SLURM job, and exit with EXIT_STOPPED."""
    from pipeline.slurm.commands import SlurmCommands, SlurmError
    from pipeline.slurm.environment import SlurmEnvironment
    from pipeline.slurm.preempt import requeue

    err = console(stderr=True)
    state = summary.state
    err.print(
        f"[yellow]stopped on SIGUSR1[/]: {state.done} units done in this run, {len(state.abandoned)} left for the "
        f"next one; the ledger files results*.jsonl in {escape(str(out))} are complete",
        soft_wrap=True,
    )
    try:
        err.print(escape(requeue(SlurmEnvironment.current(), SlurmCommands())), soft_wrap=True)
    except SlurmError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
    raise typer.Exit(EXIT_STOPPED)


def _print_plan(out_console: Console, manifest: Path, out: Path, plan: Plan, options: RunOptions) -> None:
    kinds = Counter(row.task for row in plan.images)
    parts = [f"{count} {task}" for task, count in sorted(kinds.items())]
    if plan.tiled:
        parts += [plural(len(plan.tile_groups), "tile group"), plural(len(plan.tiled), "tiled image assembly", "tiled image assemblies")]
    if plan.videos:
        parts += [plural(len(plan.segments), "video segment"), plural(len(plan.videos), "video assembly", "video assemblies")]
    tasks = ", ".join(parts) or "none"
    device = (
        f"{plan.gpus_per_worker} GPU + {plan.cpus_per_worker} CPUs each"
        if plan.gpus_per_worker
        else f"{plan.cpus_per_worker} CPU{'s' if plan.cpus_per_worker != 1 else ''} each, no GPU"
    )
    skipped = f"{len(plan.skipped)} skipped as already done"
    if plan.skipped and not options.force:
        skipped += " (--force redoes them)"
    lines = [
        f"plan: {manifest} → {out}",
        f"  units to run: {plan.unit_count} ({tasks}); {skipped}",
    ]
    if plan.changed:
        were = "it was" if len(plan.changed) == 1 else "they were"
        lines.append(
            f"  {plural(len(plan.changed), 'row')} changed since {were} done (input, parameters or version): redone ({_first_ids(plan.changed)})"
        )
    if plan.reencoded:
        lines.append(
            f"  {plural(len(plan.reencoded), 'video')} done with another --video-codec or --video-pixel-format: redone ({_first_ids(plan.reencoded)})"
        )
    if plan.videos:
        frames = sum(job.frames for job in plan.videos)
        segments = sum(len(job.segments) for job in plan.videos)
        size = f"{options.segment_frames} frames each" if options.segment_frames else "each video one chain"
        lines.append(
            f"  videos to finish: {plural(len(plan.videos), 'row')}, {plural(frames, 'frame')} in {plural(segments, 'segment')} "
            f"({size}, overlap {options.overlap}); {sum(len(job.done) for job in plan.videos)} of the segments already done"
        )
    if plan.sizings:
        peaks = ", ".join(f"{task} {_size_text(peak)}" for task, peak in sorted(plan.peaks_by_task().items()))
        caps = ", ".join(f"{task} {cap:,}" for task, cap in sorted(plan.caps_by_task().items()))
        lines.append(f"  memory: {_size_text(plan.memory_per_worker)} per worker; estimated peak of one unit: {peaks}")
        lines.append(f"  iterations per fit (the caps; per tile when tiled): {caps}")
    if plan.tiled:
        tiles = sum(job.tiles for job in plan.tiled)
        groups = sum(job.parts for job in plan.tiled)
        sides = "/".join(str(side) for side in sorted({job.sizing.tile for job in plan.tiled if job.sizing.tile is not None}))
        lines.append(
            f"  images tiled: {plural(len(plan.tiled), 'image')} in {plural(tiles, 'tile')} of {sides} px (overlap "
            f"{options.tile_overlap}) in {plural(groups, 'tile group')}"
        )
    needed, free = plan.output_bytes(), free_bytes(out)
    if needed > free:
        lines.append(
            f"  warning: {out} has {_size_text(free)} free, and this run may write up to {_size_text(needed)} "
            "(uncompressed); free space or choose another --out, or the run stops when the disk is full"
        )
    lines += [
        f"  workers: {plan.workers} × ({device})",
        f"  estimated iterations: at most {plan.estimated_iterations:,} (the iteration caps; early stopping usually ends sooner)",
    ]
    for line in lines:
        out_console.print(escape(line), soft_wrap=True)


def tile_options(tile: str, overlap: int, memory_per_worker: str | None) -> tuple[int | None, int | None]:
    """--tile (a side in pixels, or auto: None) and --memory-per-worker (bytes, or None) as numbers; exit 2 when malformed."""
    from pipeline.run.memory_budget import parse_size

    side: int | None = None
    if tile.strip().lower() != "auto":
        if not tile.strip().isdigit() or int(tile) < 16:
            raise fail(f"--tile takes a tile side in pixels (16 or more) or 'auto', got {tile!r}")
        side = int(tile)
        if overlap >= side:
            raise fail(f"--tile-overlap {overlap} must be smaller than --tile {side}")
    try:
        budget = parse_size(memory_per_worker) if memory_per_worker is not None else None
    except ValueError as error:
        raise fail(f"--memory-per-worker: {error}") from None
    return side, budget


def _size_text(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _first_ids(ids: list[str]) -> str:
    """The first five of `ids`, comma-separated, with "..." when there are more."""
    return ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
