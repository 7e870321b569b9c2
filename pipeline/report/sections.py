"""The page's sections around the cards: the run's summary, its failures, the table's frame.

Pure: values in, HTML text out; every text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

from pipeline.report.summary import Summary
from pipeline.report.values import decibels, figure, seconds_text


@dataclass(frozen=True)
class Source:
    """Where the report's figures come from."""

    out_dir: str
    ledger_files: int
    skipped_lines: int  # lines of the ledger that are not records (a half-written last line)
    generated_at: str  # ISO 8601


def _utc(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo is not None else None


def span_text(first: str | None, last: str | None) -> str:
    """When the units finished: "2026-03-01 10:00:02 → 12:00:00 UTC" (the date once when it is
    one day), or the times as written when they do not parse."""
    start, end = _utc(first), _utc(last)
    if start is None or end is None:
        return "—" if first is None else f"{first} → {last}"
    end_format = "%H:%M:%S" if start.date() == end.date() else "%Y-%m-%d %H:%M:%S"
    return f"{start:%Y-%m-%d %H:%M:%S} → {end.strftime(end_format)} UTC"


def _tile(name: str, value: str, detail: str = "") -> str:
    small = f"<small>{escape(detail)}</small>" if detail else ""
    return f'<div class="tile"><span class="name">{escape(name)}</span><span class="value">{escape(value)}</span>{small}</div>'


def summary_section(summary: Summary, source: Source) -> str:
    """The run at a glance: units, outcomes, time, iterations, when, quality."""
    outcome = f"{summary.done} done, {summary.failed} failed" + (f", {summary.running} running" if summary.running else "")
    when = span_text(summary.first_finished, summary.last_finished)
    gain = "no reference" if summary.gain_mean is None else f"{'+' if summary.gain_mean >= 0 else ''}{decibels(summary.gain_mean)}"
    reasons = ", ".join(f"{reason} {count}" for reason, count in summary.stop_reasons) or "—"
    iterations = f"{summary.iterations_total:,}"
    tiles = [
        _tile("units", f"{summary.units:,}", f"{summary.images:,} images, {summary.videos:,} videos"),
        _tile("outcome", outcome),
        _tile("time", seconds_text(summary.seconds_total), f"summed over the units; mean {seconds_text(summary.seconds_mean)} per unit"),
        _tile("iterations", iterations, f"mean {figure(summary.iterations_mean, 4)} per unit"),
        _tile("mean PSNR gain", gain, f"over {summary.gain_count:,} units with a reference" if summary.gain_count else ""),
        _tile("finished", when),
        _tile("stop reasons", reasons),
    ]
    skipped = (
        f'<p class="note">{source.skipped_lines} ledger line(s) could not be read (a line still being written is skipped) and are left out.</p>'
        if source.skipped_lines
        else ""
    )
    return (
        f'<section id="summary"><h2>Summary</h2><div class="tiles">{"".join(tiles)}</div>'
        f'<p class="source">From {source.ledger_files} ledger file(s) in {escape(source.out_dir)}, {escape(source.generated_at)}.</p>{skipped}</section>'
    )


def failures_section(summary: Summary) -> str:
    """The most common errors of the failed units; every failed unit is in the table."""
    if not summary.failed:
        return ""
    items = "".join(
        f'<li><span class="count">{group.count:,}×</span> <code>{escape(group.error)}</code>'
        f'<div class="examples">e.g. {escape(", ".join(group.examples))}</div></li>'
        for group in summary.failures
    )
    more = (
        f'<p class="note">{summary.failure_kinds - len(summary.failures)} other distinct errors are in the table.</p>'
        if summary.failure_kinds > len(summary.failures)
        else ""
    )
    return (
        f'<section id="failures"><h2>Failures ({summary.failed:,})</h2><ol class="failures">{items}</ol>{more}'
        '<p><button type="button" data-filter-status="failed">Show every failed row in the table</button></p></section>'
    )


def table_section(units: int) -> str:
    """The frame of the table the script fills, with its filters and pager."""
    return (
        f'<section id="table"><h2>All units ({units:,})</h2>'
        '<div class="controls"><label>status <select id="status-filter"><option value="">all</option></select></label> '
        '<label>text <input id="text-filter" type="search" placeholder="id, task, stop reason, error"></label></div>'
        '<div class="pager"><button type="button" id="page-first">«</button><button type="button" id="page-previous">‹ previous</button>'
        '<span id="page-text"></span><button type="button" id="page-next">next ›</button><button type="button" id="page-last">»</button></div>'
        '<div class="table-wrap"><table id="units"><thead><tr></tr></thead><tbody></tbody></table></div>'
        "<noscript><p>The table needs JavaScript; results.csv in the same folder has the same rows.</p></noscript></section>"
    )


def cards_section(name: str, anchor: str, cards: Sequence[str], total: int, explanation: str) -> str:
    """A section of cards, saying how many of how many units are shown and how they were chosen."""
    if not cards:
        return ""
    said = f"All {total:,} shown." if len(cards) >= total else f"{len(cards)} of {total:,} shown: {explanation}."
    return f'<section id="{anchor}"><h2>{escape(name)}</h2><p class="note">{escape(said)}</p><div class="cards">{"".join(cards)}</div></section>'
