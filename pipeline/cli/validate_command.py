"""`pipeline validate`: check a manifest and every file it names, without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import EXIT_USAGE, console, plural, print_problems
from pipeline.manifest import parse_manifest, validate_manifest


def validate_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest CSV to check.")],
) -> None:
    """Check MANIFEST and its files; print every problem, one per line (exit 2 if there is any)."""
    problems = validate_manifest(manifest)
    out_console = console()
    if problems:
        print_problems(problems, manifest, out_console)
        raise typer.Exit(EXIT_USAGE)
    rows = parse_manifest(manifest, check_files=False)  # already checked
    videos = sum(row.is_video for row in rows)
    out_console.print(f"manifest OK: {plural(len(rows), 'row')} ({plural(len(rows) - videos, 'image')}, {plural(videos, 'video')})")
