"""`pipeline slurm submit`: one command from a manifest to a queued SLURM job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import check_out_folder, fail, load_manifest
from pipeline.io import VideoCodecName, VideoOutput

slurm_app = typer.Typer(
    help="Run a manifest on a SLURM cluster: a Ray job over N nodes, or a job array of shards.",
    no_args_is_help=True,
)


@slurm_app.command("submit")
def submit_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest CSV (checked before anything is queued).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder, on a file system every node sees.")],
    nodes: Annotated[int, typer.Option(min=1, help="Nodes of the Ray job (one Ray worker per node).")] = 1,
    gpus_per_node: Annotated[int, typer.Option(min=0, help="GPUs per node (per array task); one pipeline worker per GPU.")] = 0,
    cpus_per_node: Annotated[int, typer.Option(min=1, help="CPU cores per node (per array task).")] = 8,
    mem: Annotated[str | None, typer.Option(help="Memory per node (per array task), e.g. 64G. Default: the cluster's.")] = None,
    time: Annotated[str, typer.Option(help="Time limit of the job (of each array task): 04:00:00, 1-00:00:00, ...")] = "04:00:00",
    partition: Annotated[str | None, typer.Option(help="Partition. Default: the cluster's default partition.")] = None,
    array: Annotated[
        int | None, typer.Option(min=1, help="Instead of Ray: a job array of N one-node tasks, task i running shard i/N.")
    ] = None,
    signal_seconds: Annotated[
        int, typer.Option(min=1, help="SIGUSR1 this many seconds before the time limit: stop, write the ledger, requeue.")
    ] = 300,
    job_name: Annotated[str, typer.Option(help="The job's name in squeue and in its log file names.")] = "dip-restore",
    retries: Annotated[int, typer.Option(min=0, help="`pipeline run --retries` in the job.")] = 2,
    video_codec: Annotated[
        VideoCodecName, typer.Option("--video-codec", help="`pipeline run --video-codec` in the job.")
    ] = VideoCodecName.x264,
    video_pixel_format: Annotated[
        str | None, typer.Option("--video-pixel-format", help="`pipeline run --video-pixel-format` in the job.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the sbatch script; write and submit nothing.")] = False,
) -> None:
    """Render the sbatch script for MANIFEST, write it into OUT/slurm/, submit it, print the job id.

    Without --array: slurm/ray-cluster.sbatch (a Ray head on the first node, a worker on every
    other node, `pipeline run --address` on the head). With --array N: slurm/array.sbatch (N tasks,
    task i runs `pipeline run --shard i/N --no-ray`). Both are requeued when pre-empted and resume
    from the ledger; logs go to OUT/slurm/.
    """
    from pipeline.slurm.commands import SlurmCommands, SlurmError
    from pipeline.slurm.render import JobRequest
    from pipeline.slurm.submit import script_text, submit_job

    video = VideoOutput(video_codec.value, video_pixel_format)
    load_manifest(manifest, out=out, video=video)  # every problem of the manifest now, not in the queue hours later
    check_out_folder(out)
    try:
        request = JobRequest(
            manifest=manifest.resolve(),
            out=out.resolve(),
            python=sys.executable,
            nodes=nodes,
            gpus_per_node=gpus_per_node,
            cpus_per_node=cpus_per_node,
            time=time,
            partition=partition,
            array=array,
            signal_seconds=signal_seconds,
            job_name=job_name,
            mem=mem,
            run_options=_run_options(retries, video),
        )
        if dry_run:
            typer.echo(script_text(request), nl=False)
            return
        submission = submit_job(request, SlurmCommands())
    except (ValueError, FileNotFoundError, SlurmError) as error:
        raise fail(str(error)) from None
    typer.echo(f"submitted job {submission.job_id}: script {submission.script}; logs in {submission.script.parent}", err=True)
    typer.echo(submission.job_id)


def _run_options(retries: int, video: VideoOutput) -> tuple[str, ...]:
    """The `pipeline run` options the job passes on: --retries, and the video encoding where it is not the default."""
    options = ["--retries", str(retries)]
    if video.codec != VideoOutput().codec:
        options += ["--video-codec", video.codec]
    if video.pixel_format is not None:
        options += ["--video-pixel-format", video.pixel_format]
    return tuple(options)
