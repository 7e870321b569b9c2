"""The `pipeline` command: run a manifest on Ray, validate a manifest, write one for a folder.

    pipeline run manifests/demo.csv --out demo-out        # restore every row; resumable
    pipeline run big.csv --out /scratch/out --dry-run       # what would run, on what
    pipeline run films.csv --out out --segment-frames 96    # videos in segments of 96 frames
    pipeline validate big.csv                               # every problem, one per line
    pipeline manifest scans/ --task denoise > scans.csv     # a manifest for a folder of images
    pipeline run big.csv --out out --shard 2/8 --no-ray     # shard 2 of 8, in this process (job arrays)
    pipeline slurm submit big.csv --out /scratch/out --nodes 4 --gpus-per-node 4   # see `pipeline slurm`

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
import sys
import traceback
from collections import Counter
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.manifest import (
    ManifestError,
    ManifestProblem,
    ManifestRow,
    parse_manifest,
    validate_manifest,
    write_manifest_for_folder,
)

from pipeline.shard import Shard
from pipeline.slurm.cli import slurm_app

if TYPE_CHECKING:
    from pipeline.runner import Plan, RunOptions, RunSummary

app = typer.Typer(
    name="pipeline",
    help="Batch restoration of image archives with Deep Image Prior, on a laptop or a Ray cluster.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(slurm_app, name="slurm")

class FramesFormat(str, Enum):
    """`pipeline run --frames`: also write each video's restored frames as images."""

    png = "png"
    tiff = "tiff"


EXIT_FAILED_UNITS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_STOPPED = 75  # EX_TEMPFAIL: stopped on request; run again (or the requeued job) to resume
EXIT_INTERRUPTED = 130


def _console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); outside a terminal, wide enough that log lines don't wrap."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else 160
    return Console(stderr=stderr, width=width, highlight=False)


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _print_problems(problems: list[ManifestProblem], manifest: Path, err: Console) -> None:
    for problem in problems:
        err.print(escape(str(problem)), soft_wrap=True)
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    err.print(f"[bold red]manifest {escape(str(manifest))} cannot be used: {count}[/] (fix them and run again)")


def _load(manifest: Path) -> list[ManifestRow]:
    try:
        return parse_manifest(manifest)
    except ManifestError as error:
        _print_problems(error.problems, manifest, _console(stderr=True))
        raise typer.Exit(EXIT_USAGE) from None


@app.command("run")
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
        int, typer.Option(min=0, help="Video frames per segment, each restored as its own chain on a worker; 0 = a whole video as one chain.")
    ] = 48,
    overlap: Annotated[
        int, typer.Option(min=0, help="Frames each video segment's chain restores first and drops, so that seams do not show (the first segment of several takes its own next frames, in reverse).")
    ] = 3,
    frames: Annotated[
        FramesFormat | None, typer.Option("--frames", help="Also write each video's restored frames as png or tiff files into <output stem>_frames/.")
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
) -> None:
    """Restore every row of MANIFEST into --out. Rerunning skips what is already done (resume).

    SIGUSR1 stops the run cleanly (and requeues the job under SLURM); see `pipeline slurm`.
    """
    rows = _load(manifest)
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} exists and is not a folder; give a folder for the restored files")
    try:
        part = Shard.parse(shard) if shard is not None else None
    except ValueError as error:
        raise _fail(str(error)) from None
    if no_ray and address is not None:
        raise _fail("--no-ray runs everything in this process: leave out --address (or --no-ray)")

    import ray  # imported here: `validate` and `manifest` should not pay for Ray

    from pipeline.ledger import RESULTS_CSV, Ledger
    from pipeline.progress import RunDisplay, format_seconds, summary_table
    from pipeline.runner import RunOptions, connect, execute, plan_run
    from pipeline.slurm.preempt import StopSignals
    from pipeline.video_plan import VideoPlanError

    options = RunOptions(
        out_dir=out,
        address=address,
        workers=workers,
        retries=retries,
        force=force,
        segment_frames=segment_frames,
        overlap=overlap,
        frames_format=frames.value if frames is not None else None,
        warping_error=warping_error,
        shard=part,
        in_process=no_ray,
        stop_grace=stop_grace,
    )
    started_ray = not no_ray and not ray.is_initialized()
    where = address or os.environ.get("RAY_ADDRESS")
    if not no_ray:
        try:
            connect(address)
        except Exception as error:  # noqa: BLE001 - Ray raises many kinds; all mean "no cluster there"
            target = f"the Ray cluster at {where}" if where else "a local Ray"
            raise _fail(f"cannot start or reach {target}: {error}") from None
    signals = StopSignals()
    stopped: RunSummary | None = None
    try:
        try:
            plan = plan_run(rows, options, cluster=_local_resources() if no_ray else ray.cluster_resources())
        except VideoPlanError as error:
            raise _fail(str(error)) from None
        console = _console()
        if dry_run:
            _print_plan(console, manifest, out, plan, options)
            console.print("dry run: nothing was run and nothing was written")
            return
        if not plan.units:
            if not quiet:
                console.print(f"nothing to do: all {len(plan.skipped)} units are already done in {escape(str(out))} "
                              "(--force redoes them)")
            Ledger(out).write_csv()
            return
        if not quiet:
            _print_plan(console, manifest, out, plan, options)
        display = RunDisplay(console, plan.unit_count, quiet=quiet)
        ledger_path = Ledger(out, shard=part.name if part is not None else None).path
        try:
            with display, signals:
                summary = execute(plan, replace(options, stop_requested=signals.requested), on_progress=display)
        except KeyboardInterrupt:
            _console(stderr=True).print(
                f"[yellow]interrupted[/]: finished units are recorded in {escape(str(ledger_path))}; "
                "run the same command again to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:  # noqa: BLE001 - a bug, not a unit failure: keep exit code 1 for those
            traceback.print_exc(file=sys.stderr)
            _console(stderr=True).print(
                f"[bold red]the run stopped on an unexpected error[/] ({escape(type(error).__name__)}); units finished "
                f"before it are recorded in {escape(str(ledger_path))} and a rerun resumes after them. "
                "This is a bug in the pipeline: please report it with the traceback above.",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None
        progress = summary.progress
        if summary.stopped:
            stopped = summary
            return
        if not quiet:
            if summary.records:
                console.print()
                console.print(summary_table(summary.records))
            console.print()
        totals = f"{progress.done} done, {progress.failed} failed"
        if progress.skipped:
            totals += f", {progress.skipped} skipped (already done)"
        if progress.retried:
            totals += f", {progress.retried} retried attempt{'s' if progress.retried != 1 else ''}"
        line = f"{progress.total} units: {totals} in {format_seconds(summary.seconds)}; output folder: {out}"
        if summary.succeeded:
            console.print(escape(line), soft_wrap=True)
        else:
            _console(stderr=True).print(f"[red]{escape(line)}[/]", soft_wrap=True)
        if not quiet:
            console.print(f"ledger: {escape(str(ledger_path))}   table: {escape(str(out / RESULTS_CSV))}",
                          soft_wrap=True)
        if not summary.succeeded:
            _console(stderr=True).print(
                f"[red]some units failed[/]: their errors are in {escape(str(out / RESULTS_CSV))} (column 'error'); "
                "fix the cause and run the same command again to retry only those",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_FAILED_UNITS)
    finally:
        if started_ray and ray.is_initialized():
            ray.shutdown()
        if stopped is not None:  # after Ray is down: a requeue ends this job at once
            _finish_stopped(stopped, out)


def _local_resources() -> dict[str, float]:
    """What this process may use without Ray: the CPUs of its SLURM task or its CPU affinity, and the GPUs torch sees."""
    import torch

    from pipeline.slurm.environment import SlurmEnvironment

    cpus = SlurmEnvironment.current().cpus_per_task or len(os.sched_getaffinity(0))
    return {"CPU": float(cpus), "GPU": float(torch.cuda.device_count())}


def _finish_stopped(summary: RunSummary, out: Path) -> None:
    """Report a run stopped by SIGUSR1, requeue its SLURM job, and exit with EXIT_STOPPED."""
    from pipeline.slurm.commands import SlurmCommands, SlurmError
    from pipeline.slurm.environment import SlurmEnvironment
    from pipeline.slurm.preempt import requeue

    err = _console(stderr=True)
    progress = summary.progress
    err.print(
        f"[yellow]stopped on SIGUSR1[/]: {progress.done} units done in this run, {len(progress.abandoned)} left for the "
        f"next one; the ledger files results*.jsonl in {escape(str(out))} are complete",
        soft_wrap=True,
    )
    try:
        err.print(escape(requeue(SlurmEnvironment.current(), SlurmCommands())), soft_wrap=True)
    except SlurmError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
    raise typer.Exit(EXIT_STOPPED)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _print_plan(console: Console, manifest: Path, out: Path, plan: Plan, options: RunOptions) -> None:
    kinds = Counter(row.task for row in plan.images)
    parts = [f"{count} {task}" for task, count in sorted(kinds.items())]
    if plan.videos:
        parts += [_plural(len(plan.segments), "video segment"), _plural(len(plan.videos), "video assembly", "video assemblies")]
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
    if plan.videos:
        frames = sum(job.frames for job in plan.videos)
        segments = sum(len(job.segments) for job in plan.videos)
        size = f"{options.segment_frames} frames each" if options.segment_frames else "each video one chain"
        lines.append(
            f"  videos to finish: {_plural(len(plan.videos), 'row')}, {_plural(frames, 'frame')} in {_plural(segments, 'segment')} "
            f"({size}, overlap {options.overlap}); {plan.segments_done} of the segments already done"
        )
    lines += [
        f"  workers: {plan.workers} × ({device})",
        f"  estimated iterations: at most {plan.estimated_iterations:,} (the iteration caps; early stopping usually ends sooner)",
    ]
    for line in lines:
        console.print(escape(line), soft_wrap=True)


@app.command("validate")
def validate_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest CSV to check.")],
) -> None:
    """Check MANIFEST and its files; print every problem, one per line (exit 2 if there is any)."""
    problems = validate_manifest(manifest)
    console = _console()
    if problems:
        for problem in problems:
            console.print(escape(str(problem)), soft_wrap=True)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        _console(stderr=True).print(f"[bold red]manifest {escape(str(manifest))} cannot be used: {count}[/]")
        raise typer.Exit(EXIT_USAGE)
    rows = parse_manifest(manifest, check_files=False)  # already checked
    videos = sum(row.is_video for row in rows)
    console.print(
        f"manifest OK: {len(rows)} row{'s' if len(rows) != 1 else ''} "
        f"({len(rows) - videos} image{'s' if len(rows) - videos != 1 else ''}, "
        f"{videos} video{'s' if videos != 1 else ''})"
    )


@app.command("manifest")
def manifest_command(
    folder: Annotated[Path, typer.Argument(help="Folder of images (and videos) to list, not recursive.")],
    task: Annotated[str, typer.Option(help="Task for every row: denoise, sr, sr2, sr4, sr8, inpaint, watermark, flash.")],
    scale: Annotated[int | None, typer.Option(help="Super-resolution factor (task sr).")] = None,
) -> None:
    """Print a manifest for every image and video file of FOLDER (paths relative to the current folder).

    Save it where you run the command: `pipeline manifest scans/ --task denoise > scans.csv`.
    Inpainting takes each image's mask from <stem>_mask.png, flash its flash image from <stem>_flash.png.
    """
    try:
        text = write_manifest_for_folder(folder, task, scale=scale, manifest_dir=Path.cwd())
    except ValueError as error:
        raise _fail(str(error)) from None
    typer.echo(text, nl=False)


def main() -> None:
    """Console-script entry point (`pipeline`)."""
    app()


if __name__ == "__main__":
    main()
