"""The `pipeline` command: run a manifest on Ray, validate a manifest, write one for a folder.

    pipeline run manifests/demo.csv --out demo-out        # restore every row; resumable
    pipeline run big.csv --out /scratch/out --dry-run       # what would run, on what
    pipeline run films.csv --out out --segment-frames 96    # videos in segments of 96 frames
    pipeline validate big.csv                               # every problem, one per line
    pipeline manifest scans/ --task denoise > scans.csv     # a manifest for a folder of images
    pipeline run big.csv --out out --shard 2/8 --no-ray     # shard 2 of 8, in this process (job arrays)
    pipeline slurm submit big.csv --out /scratch/out --nodes 4 --gpus-per-node 4   # see `pipeline slurm`
    pipeline status /scratch/out                            # done / failed / pending, throughput, time to finish
    pipeline report /scratch/out                            # rebuild /scratch/out/report.html from the ledger

The exit codes are listed in `pipeline.cli.run_command`.
"""

from __future__ import annotations

import typer

from pipeline.cli.manifest_command import manifest_command
from pipeline.cli.report_command import report_command
from pipeline.cli.run_command import run_command
from pipeline.cli.slurm_command import slurm_app
from pipeline.cli.status_command import status_command
from pipeline.cli.validate_command import validate_command

app = typer.Typer(
    name="pipeline",
    help="Batch restoration of image archives with Deep Image Prior, on a laptop or a Ray cluster.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("run")(run_command)
app.command("validate")(validate_command)
app.command("manifest")(manifest_command)
app.command("report")(report_command)
app.command("status")(status_command)
app.add_typer(slurm_app, name="slurm")


def main() -> None:
    """Console-script entry point (`pipeline`)."""
    app()
