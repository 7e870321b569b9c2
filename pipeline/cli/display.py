"""Terminal display of a run: a live progress bar, one line per finished unit, the summary table.

On a terminal the bar redraws in place and the per-unit lines scroll above it; elsewhere (a
SLURM log, a pipe) there is no bar, only the per-unit lines, so logs stay readable. Video
segments count as units in the bar and get a line each; the summary table has one line per
image and per video, not per segment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from pipeline.records import KIND_SEGMENT, KIND_TILES, KIND_VIDEO, PART_KINDS, is_done
from pipeline.report.values import seconds_text
from pipeline.run.execute import RunState
from pipeline.run.ray_log import diverted


def _db(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and math.isinf(value):
        return "∞"
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return None


def psnr_text(record: dict[str, Any]) -> str:
    """ "20.37 → 28.66 dB" (input → output against the reference), or "—" without a reference."""
    before, after = _db(record.get("psnr_in")), _db(record.get("psnr_out"))
    if before is None and after is None:
        return "—"
    return f"{before or '?'} → {after or '?'} dB"


def _flicker_text(record: dict[str, Any]) -> str | None:
    """ "flicker 0.97 (reference)", or None when the figure is undefined (a one-frame video)."""
    flicker = record.get("flicker")
    if not isinstance(flicker, (int, float)):
        return None
    return f"flicker {flicker:.2f} ({record.get('flicker_baseline') or '?'})"


def _details(record: dict[str, Any]) -> list[str]:
    """What a done record's line says after its id, by kind: image, video segment or video."""
    kind = record.get("kind")
    details = []
    if kind == KIND_SEGMENT and isinstance(record.get("start"), int) and isinstance(record.get("stop"), int):
        details.append(f"frames {record['start']}-{record['stop'] - 1}")
    if kind == KIND_TILES:
        details.append(f"tiles {record.get('first_tile')}-{int(record.get('first_tile') or 0) + int(record.get('tiles') or 0) - 1}")
    elif record.get("tiles"):
        details.append(f"{record['tiles']} tiles of {record.get('tile')} px")
    if kind == KIND_VIDEO:
        segments = record.get("segments")
        details.append(f"video of {record.get('frames')} frames in {segments} segment{'' if segments == 1 else 's'}")
    if record.get("psnr_out") is not None:
        details.append(psnr_text(record))
    if kind == KIND_VIDEO:
        details.append(_flicker_text(record) or "flicker —")
    elif kind == KIND_SEGMENT and record.get("iterations") is not None:
        details.append(f"{record['iterations']} it. ({record.get('cold_frames')} cold)")
    elif record.get("iterations") is not None:
        details.append(f"{record['iterations']} it. ({record.get('stop_reason') or '?'})")
    details.append(seconds_text(record.get("seconds")))
    return details


def unit_line(record: dict[str, Any], finished: int, total: int) -> str:
    """One plain line for a finished unit, e.g. "[2/4] done  lowres-coffee  23.83 → 24.80 dB, 600 it. (max_iterations), 2m 03s".

    Video segments read "[3/9] done  clip#seg0001  frames 48-95, 2210 it. (1 cold), 1m 02s" and
    videos "[9/9] done  clip  video of 240 frames in 5 segments, 20.40 → 28.10 dB, flicker 0.98 (reference), 6m 10s".
    """
    head = f"[{finished}/{total}] {record.get('status', '?'):<6} {record.get('id', '?')}"
    if is_done(record):
        return f"{head}  " + ", ".join(_details(record))
    attempt = record.get("attempt")
    tries = f" after {attempt} attempt{'s' if attempt != 1 else ''}" if isinstance(attempt, int) else ""
    return f"{head}{tries}: {record.get('error') or 'unknown error'}"


def dropped_stream_lines(record: dict[str, Any]) -> list[str]:
    """One line per stream of a video's input that its output's container could not hold, e.g.
    "  clip: not copied: subtitle 2: mov_text: Matroska (.mkv) cannot hold it (...)"; none for other records."""
    if record.get("kind") != KIND_VIDEO or not is_done(record):
        return []
    return [f"  {record.get('id', '?')}: not copied: {dropped}" for dropped in record.get("streams_dropped") or []]


class RunDisplay:
    """`on_progress` callback for `pipeline.run.execute.execute` that draws the run on `console`.

    Use as a context manager around `execute`. With quiet=True it shows nothing at all.
    """

    def __init__(self, console: Console, units: int, *, quiet: bool = False) -> None:
        self.console = console
        self.units = units  # units this run executes (skipped ones excluded)
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self._retried = 0
        self._printed = 0  # records of state.records already printed
        self._bar: RichProgress | None = None
        self._task: Any = None
        self._started = time.perf_counter()

    def __enter__(self) -> RunDisplay:
        self._started = time.perf_counter()
        if self.live:
            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("[bold]restoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=self.console,
                refresh_per_second=4,
                # While Ray's output goes to its log file, sys.stdout/stderr are that file: keep them so.
                redirect_stdout=not diverted(),
                redirect_stderr=not diverted(),
            )
            self._task = self._bar.add_task("restoring", total=self.units, counts="", rate="", eta="")
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def print(self, text: str, style: str | None = None) -> None:
        if not self.quiet:
            self.console.print(escape(text), style=style, highlight=False, soft_wrap=True)

    def __call__(self, state: RunState) -> None:
        finished = state.done + state.failed
        new = state.records[self._printed :]
        # Usually one new record; two when a failed segment also fails its video.
        for number, record in enumerate(new, start=finished - len(new) + 1):
            style = None if is_done(record) else "red"
            self.print(unit_line(record, number, self.units), style)
            for line in dropped_stream_lines(record):
                self.print(line, "yellow")
        self._printed = len(state.records)
        for line in state.retry_lines[self._retried :]:
            self.print(f"retry: {line}", "yellow")
        self._retried = len(state.retry_lines)
        if self._bar is not None:
            self._bar.update(self._task, completed=finished, **self._fields(state, finished))

    def _fields(self, state: RunState, finished: int) -> dict[str, Any]:
        parts = [f"{state.done} done"]
        if state.failed:
            parts.append(f"[red]{state.failed} failed[/]")
        parts.append(f"{state.running} running")
        if state.retried:
            parts.append(f"[yellow]{state.retried} retried[/]")
        if state.skipped:
            parts.append(f"{state.skipped} skipped")
        elapsed = time.perf_counter() - self._started
        if finished == 0 or elapsed <= 0:
            return {"counts": " · ".join(parts), "rate": "", "eta": "ETA —"}
        per_minute = finished / elapsed * 60
        rate = f"{per_minute:.1f} units/min" if per_minute < 60 else f"{per_minute / 60:.1f} units/s"
        remaining = (self.units - finished) * elapsed / finished
        return {"counts": " · ".join(parts), "rate": rate, "eta": f"ETA {seconds_text(remaining)}"}


def summary_table(records: Iterable[dict[str, Any]]) -> Table:
    """One row per image and per video (segments are left out): id, status, PSNR in → out,
    iterations, stop reason (for a video: its frames and flicker), seconds, error."""
    table = Table(title="results", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", overflow="fold")
    table.add_column("status")
    table.add_column("PSNR in → out", justify="right", no_wrap=True)
    table.add_column("iterations", justify="right")
    table.add_column("stop reason")
    table.add_column("seconds", justify="right")
    table.add_column("error", overflow="fold")
    shown = [record for record in records if record.get("kind") not in PART_KINDS]
    for record in sorted(shown, key=lambda item: (item.get("row") or 0, str(item.get("id")))):
        done = is_done(record)
        seconds = record.get("seconds")
        stop = record.get("stop_reason") or ""
        if record.get("kind") == KIND_VIDEO and done:
            stop = ", ".join(filter(None, [f"video, {record.get('frames')} frames", _flicker_text(record)]))
        table.add_row(
            escape(str(record.get("id", "?"))),
            "[green]done[/]" if done else f"[red]{escape(str(record.get('status', '?')))}[/]",
            psnr_text(record) if done else "",
            str(record["iterations"]) if record.get("iterations") is not None else "",
            escape(str(stop)),
            f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "",
            escape(str(record.get("error") or "")),
        )
    return table
