"""`pipeline validate`: check a manifest and every file it names, without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pipeline.cli.common import EXIT_USAGE, console, plural, print_problems
from pipeline.io import VideoCodecName, VideoOutput
from pipeline.manifest import parse_manifest, validate_manifest


def validate_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest CSV to check.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="The output folder `pipeline run` will write to: no output may resolve outside it (symbolic links)."
        ),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Decode every image whole (inputs, flash images, references, frames), not only its header: finds damaged pixel data.",
        ),
    ] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="As for `pipeline run`: the workers the memory is shared among.")] = None,
    memory_per_worker: Annotated[str | None, typer.Option(help="As for `pipeline run`: the memory one worker may use, e.g. 8G.")] = None,
    tile: Annotated[str, typer.Option(help="As for `pipeline run`: a tile side in input pixels, or 'auto'.")] = "auto",
    tile_overlap: Annotated[int, typer.Option(min=0, help="As for `pipeline run`.")] = 32,
    video_codec: Annotated[
        VideoCodecName, typer.Option("--video-codec", help="As for `pipeline run`: every video row must be writable with it.")
    ] = VideoCodecName.x264,
    video_pixel_format: Annotated[str | None, typer.Option("--video-pixel-format", help="As for `pipeline run`.")] = None,
) -> None:
    """Check MANIFEST and its files, and that every image fits a worker's memory (in tiles if need
    be) with the given options as `pipeline run` would use them here; print every problem, one per
    line (exit 2 if there is any).

    Always: files exist, headers decode, sizes agree, masks are read whole and binary, video
    files decode whole (their frames are counted). With --deep: every image is decoded whole too.
    With --out: no output resolves outside that folder. Video rows: a constant frame rate, and an
    output the --video-codec and --video-pixel-format can write.
    """
    problems = validate_manifest(manifest, deep=deep, out_dir=out, video=VideoOutput(video_codec.value, video_pixel_format))
    out_console = console()
    if problems:
        print_problems(problems, manifest, out_console)
        raise typer.Exit(EXIT_USAGE)
    rows = parse_manifest(manifest, check_files=False)  # already checked
    from pipeline.cli.run_command import tile_options
    from pipeline.run.options import RunOptions
    from pipeline.run.plan import sizing_problems

    tile_side, budget = tile_options(tile, tile_overlap, memory_per_worker)
    options = RunOptions(out_dir=Path("."), workers=workers, tile=tile_side, tile_overlap=tile_overlap, memory_per_worker=budget)
    too_large = sizing_problems(rows, options)
    if too_large:
        for line in too_large:
            out_console.print(escape(line), soft_wrap=True)
        console(stderr=True).print(
            f"[bold red]manifest {escape(str(manifest))} cannot be used: {plural(len(too_large), 'row')} too large for a worker[/]"
        )
        raise typer.Exit(EXIT_USAGE)
    videos = sum(row.is_video for row in rows)
    checked = "every image decoded whole" if deep else "image headers read, masks decoded whole (--deep decodes every image)"
    out_console.print(
        f"manifest OK: {plural(len(rows), 'row')} ({plural(len(rows) - videos, 'image')}, {plural(videos, 'video')}); {checked}"
    )
