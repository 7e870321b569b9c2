"""What the commands share: the consoles, the exit codes, failing with a message, loading a manifest."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.io import VideoOutput
from pipeline.manifest import ManifestError, ManifestProblem, ManifestRow, parse_manifest
from pipeline.run.ray_log import terminal_stream

EXIT_FAILED_UNITS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_STOPPED = 75  # EX_TEMPFAIL: stopped on request; run again (or the requeued job) to resume
EXIT_INTERRUPTED = 130


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); outside a terminal, wide enough that log lines don't wrap.

    While a run sends Ray's output to its log file, the console writes to the terminal all the same
    (`pipeline.run.ray_log.terminal_stream`)."""
    file = terminal_stream(stderr)
    probe = Console(file=file, stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else 160
    return Console(file=file, stderr=stderr, width=width, highlight=False)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `message` as an error on stderr; the exit to raise."""
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural_word or word + 's'}"


def print_problems(problems: list[ManifestProblem], manifest: Path, lines_to: Console) -> None:
    """Every problem of a manifest, one per line on `lines_to`, then on stderr the line that says it cannot be used."""
    for problem in problems:
        lines_to.print(escape(str(problem)), soft_wrap=True)
    console(stderr=True).print(
        f"[bold red]manifest {escape(str(manifest))} cannot be used: {plural(len(problems), 'problem')}[/] (fix them and run again)"
    )


def load_manifest(manifest: Path, *, out: Path | None = None, video: VideoOutput | None = None) -> list[ManifestRow]:
    """The rows of `manifest` (with `out`, the output folder: no output may resolve outside it;
    with `video`, every video row must be writable with that encoding), or exit 2 after printing
    every problem it has."""
    try:
        return parse_manifest(manifest, out_dir=out, video=video)
    except ManifestError as error:
        print_problems(error.problems, manifest, console(stderr=True))
        raise typer.Exit(EXIT_USAGE) from None


def check_out_folder(out: Path) -> None:
    """Exit 2 when `out` exists and is not a folder."""
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} exists and is not a folder; give a folder for the restored files")
