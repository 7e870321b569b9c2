"""`pipeline report`: rebuild ``OUT/report.html`` from the ledger, at any time.

Also while a run or a SLURM job still appends to the ledger: a half-written last line is
skipped, and the page is replaced atomically. `write_report_after_run` is what `pipeline run`
calls when it ends: a report that cannot be written costs a warning, never the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.cli.common import console, fail, plural
from pipeline.io.write_errors import OutputWriteError
from pipeline.report import NoLedgerError, Report, make_report


def _counts(report: Report) -> str:
    summary = report.summary
    units = f"{plural(summary.units, 'unit')} ({plural(summary.images, 'image')}, {plural(summary.videos, 'video')})"
    outcome = f"{summary.done} done, {summary.failed} failed" + (f", {summary.running} running" if summary.running else "")
    cards = f"{plural(report.image_cards, 'image card')}, {plural(report.video_cards, 'video card')}"
    return f"{units}: {outcome}; {cards}"


def report_command(
    out: Annotated[Path, typer.Argument(help="The output folder of a run (it holds the ledger, results.jsonl).")],
) -> None:
    """Rebuild OUT/report.html from the ledger in OUT: the run's summary, a table of every unit,
    and cards for a sample of the images and videos plus the worst ones. One self-contained file
    to open in a browser. Safe while a run (or a SLURM job) is still writing to OUT.

    Exit 2 when OUT is not the output folder of a run (no ledger) or the report cannot be written.
    """
    if not out.is_dir():
        raise fail(f"{out} is not a folder; give the output folder of a run (the --out of `pipeline run`)")
    try:
        report = make_report(out)
    except NoLedgerError as error:
        raise fail(str(error)) from None
    except OutputWriteError as error:
        raise fail(
            f"the report cannot be written: {error}; make the folder writable (or free space) and run `pipeline report` again"
        ) from None
    console().print(f"report: {escape(str(report.path))}", soft_wrap=True)
    console().print(f"{escape(_counts(report))}; {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s", soft_wrap=True)


def write_report_after_run(out: Path, lines_to: Console | None) -> None:
    """Write OUT/report.html at the end of a run; print its path on `lines_to` (None: quiet).
    Any failure is one warning line on stderr: the run's own outcome stands."""
    try:
        report = make_report(out)
    except Exception as error:  # noqa: BLE001 - the report is a view of the ledger; it must not fail the run
        console(stderr=True).print(
            f"[yellow]warning[/]: the report could not be written ({escape(type(error).__name__)}: {escape(str(error))}); "
            f"`pipeline report {escape(str(out))}` retries it",
            soft_wrap=True,
        )
        return
    if lines_to is not None:
        lines_to.print(f"report: {escape(str(report.path))}", soft_wrap=True)
