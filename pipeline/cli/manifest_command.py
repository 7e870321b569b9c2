"""`pipeline manifest`: write a manifest for a folder of images and videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import fail
from pipeline.manifest import write_manifest_for_folder


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
        raise fail(str(error)) from None
    typer.echo(text, nl=False)
