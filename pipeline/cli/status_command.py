"""`pipeline status OUT`: how far the run writing OUT is, from its ledger, run files and manifest.

Reads only: the ledger (a line being written is skipped), the run files ``run*.json`` and the
manifest (its rows, not the files they name: a moved input does not matter here). Works while a
run or a SLURM job (every shard of a job array) is still writing. Exit 0, or 2 when OUT holds
neither a ledger nor a run file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.cli.common import console, fail, plural
from pipeline.ledger import Ledger
from pipeline.manifest import read_manifest
from pipeline.run.run_file import read_run_files
from pipeline.run.status import DONE, FAILED, PENDING, FolderStatus, RowStatus, folder_status


def status_command(
    out: Annotated[Path, typer.Argument(help="The output folder of a run (its --out).")],
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", "-m", help="The manifest to count against. Default: the one the run recorded in OUT/run.json."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object (for scripts).")] = False,
    show: Annotated[int, typer.Option(min=0, help="How many pending and failed rows to list (the others are counted).")] = 5,
) -> None:
    """Show how far the run writing OUT is: rows done, failed and pending (against the manifest),
    the throughput, the estimated time to finish, the slowest units, and when the last result came.

    Safe to run at any time, also while the run (or every task of a SLURM job array) still writes.
    """
    ledger = Ledger(out)
    runs = read_run_files(out) if out.is_dir() else {}
    if not out.is_dir() or (not ledger.files() and not runs):
        raise fail(
            f"{out} has no ledger (results.jsonl) and no run.json: it is not the output folder of a pipeline run, or no run has started there yet"
        )
    records = ledger.load()
    path = manifest or _recorded_manifest(runs)
    ids, videos, problem = _manifest_ids(path)
    planned: dict[str, Any] = {}
    for info in runs.values():
        planned.update(info.get("parts") or {})
    status = folder_status(records, ids, now=datetime.now(timezone.utc), planned_parts=planned, done=ledger.is_done, videos=videos)
    skipped = len(ledger.skipped_lines)
    if as_json:
        typer.echo(json.dumps(_as_json(out, path, problem, status, runs, skipped), indent=2, sort_keys=True, default=str))
        return
    _print(console(), out, path, problem, status, runs, skipped, show)


def _recorded_manifest(runs: dict[str, dict[str, Any]]) -> Path | None:
    """The manifest of the newest run file that names one."""
    named = [info for info in runs.values() if isinstance(info.get("manifest"), str)]
    if not named:
        return None
    newest = max(named, key=lambda info: str(info.get("started_at") or ""))
    return Path(newest["manifest"])


def _manifest_ids(path: Path | None) -> tuple[list[tuple[str, int | None]] | None, set[str], str | None]:
    """(id, line) of every row of the manifest at `path` (its files unchecked) and the ids of its
    video rows; or None, and why not."""
    if path is None:
        return None, set(), "no manifest was given (--manifest) and no run.json names one"
    reading = read_manifest(path, check_files=False)
    if reading.file_problems or not (reading.rows or reading.invalid):
        return None, set(), "; ".join(problem.message for problem in reading.file_problems or reading.problems) or "it has no rows"
    ids: list[tuple[str, int | None]] = [(row.id, row.row_number) for row in reading.rows]
    ids += [(row.id or f"(row {row.row_number})", row.row_number) for row in reading.invalid]
    return sorted(ids, key=lambda item: item[1] or 0), {row.id for row in reading.rows if row.is_video}, None


def _print(
    terminal: Console,
    out: Path,
    manifest: Path | None,
    problem: str | None,
    status: FolderStatus,
    runs: dict[str, dict[str, Any]],
    skipped: int,
    show: int,
) -> None:
    lines = [f"status of {out}"]
    if problem is None:
        lines.append(f"  manifest: {manifest} ({plural(len(status.rows), 'row')})")
    else:
        lines.append(f"  the manifest could not be read ({problem}): the rows below are those the ledger has seen")
    lines += [f"  {line}" for line in _run_lines(runs)]
    pending, failed = status.of_state(PENDING), status.of_state(FAILED)
    pending.sort(key=lambda row: row.parts_done == 0)  # rows under way first
    lines.append(f"rows: {status.count(DONE)} done, {len(failed)} failed, {len(pending)} pending, of {len(status.rows)}")
    left = "" if not pending else f"; about {math.ceil(status.pending_units)} to go"
    lines.append(f"units: {status.units_done} done, {status.units_failed} failed{left} (images, video segments, tile groups, assemblies)")
    speed = status.throughput
    if speed is not None:
        lines.append(
            f"throughput: {speed.units_per_hour:.1f} units/h, {speed.rows_per_hour:.1f} rows/h "
            f"({plural(speed.units, 'unit')} in the last {duration(speed.seconds)})"
        )
    lines.append(f"time to finish: {_eta_text(status)}")
    lines.append(f"last result: {_last_text(status)}")
    for line in lines:
        terminal.print(escape(line), soft_wrap=True)
    if status.stalled:
        terminal.print(
            f"[yellow]no new result for {escape(duration(status.last_result_age or 0))} while rows are pending: the run may have "
            "stopped or hung (check that its job still runs: squeue, its log, and the Ray log in the folder's logs/)[/]",
            soft_wrap=True,
        )
    if status.slowest:
        terminal.print("slowest units:")
        width = max(len(unit.id) for unit in status.slowest)
        for unit in status.slowest:
            failed_text = "  (failed)" if unit.status == FAILED else ""
            worker = f"  on {unit.worker}" if unit.worker else ""
            terminal.print(escape(f"  {unit.id:<{width}}  {duration(unit.seconds):>8}{worker}{failed_text}"), soft_wrap=True)
    _print_rows(terminal, "pending rows", pending, show, _pending_text)
    _print_rows(terminal, "failed rows", failed, show, _failed_text, style="red")
    if status.not_in_manifest:
        shown = ", ".join(status.not_in_manifest[:show]) + (", ..." if len(status.not_in_manifest) > show else "")
        terminal.print(escape(f"{plural(len(status.not_in_manifest), 'row')} of the ledger not in the manifest: {shown}"), soft_wrap=True)
    if skipped:
        terminal.print(
            escape(f"{plural(skipped, 'ledger line')} skipped: not complete (a run may be writing it) or not a record"), soft_wrap=True
        )


def _print_rows(terminal: Console, title: str, rows: list[RowStatus], show: int, text: Any, style: str | None = None) -> None:
    if not rows or show == 0:
        return
    terminal.print(f"{title} ({len(rows)}):" if len(rows) <= show else f"{title} (first {show} of {len(rows)}):")
    for row in rows[:show]:
        terminal.print(escape(f"  {text(row)}"), style=style, soft_wrap=True)
    if len(rows) > show:
        terminal.print(f"  and {len(rows) - show} more")


def _pending_text(row: RowStatus) -> str:
    details = [text for text in (row.parts_text(), row.note) if text]
    return f"{row.id}{_line(row)}" + (f": {', '.join(details)}" if details else "")


def _failed_text(row: RowStatus) -> str:
    return f"{row.id}{_line(row)}: {row.error}"


def _line(row: RowStatus) -> str:
    return f" (row {row.row})" if row.row is not None else ""


def _run_lines(runs: dict[str, dict[str, Any]]) -> list[str]:
    """What the run files say: when the run (each shard) started, where, and what it planned."""
    if not runs:
        return ["run: no run.json (a run older than run files, or none started yet)"]
    infos = sorted(runs.values(), key=lambda info: str(info.get("started_at") or ""))
    units = sum(int((info.get("units") or {}).get("total") or 0) for info in infos)
    newest = infos[-1]
    where = f" on {newest['host']}" if newest.get("host") else ""
    if len(infos) == 1:
        return [f"run: started {_when(newest.get('started_at'))}{where}, {plural(units, 'unit')} planned"]
    shard = (newest.get("options") or {}).get("shard")
    count = str(shard).split("/")[-1] if shard else "?"
    return [
        f"runs: {len(infos)} run files (shards of {count}); first started {_when(infos[0].get('started_at'))}, "
        f"last {_when(newest.get('started_at'))}{where}; {plural(units, 'unit')} planned in all"
    ]


def _when(text: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return "at an unknown time"
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    age = (datetime.now(timezone.utc) - moment).total_seconds()
    return f"{moment.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')} UTC ({duration(age)} ago)"


def _eta_text(status: FolderStatus) -> str:
    if not status.of_state(PENDING):
        return "nothing pending" + (" (failed rows wait for a rerun)" if status.count(FAILED) else "")
    if status.eta_seconds is None:
        return "unknown (no unit has finished yet)"
    return f"about {duration(status.eta_seconds)} at the recent rate"


def _last_text(status: FolderStatus) -> str:
    if status.last_result_at is None or status.last_result_age is None:
        return "none yet"
    return f"{duration(status.last_result_age)} ago ({_utc(status.last_result_at)})"


def _utc(text: str) -> str:
    moment = datetime.fromisoformat(text)
    return f"{moment.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S')} UTC"


def duration(seconds: float) -> str:
    """A duration in words for a person: "12 s", "4 min", "2 h 05 min", "3 days 4 h"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h"


def _as_json(
    out: Path, manifest: Path | None, problem: str | None, status: FolderStatus, runs: dict[str, dict[str, Any]], skipped: int
) -> dict[str, Any]:
    rows = {state: [asdict(row) for row in status.of_state(state)] for state in (PENDING, FAILED)}
    return {
        "out": str(out),
        "manifest": str(manifest) if manifest is not None else None,
        "manifest_read": status.manifest_read,
        "manifest_problem": problem,
        "rows": {"total": len(status.rows), DONE: status.count(DONE), FAILED: status.count(FAILED), PENDING: status.count(PENDING)},
        "units": {"done": status.units_done, "failed": status.units_failed, "pending_estimate": status.pending_units},
        "throughput": asdict(status.throughput) if status.throughput is not None else None,
        "eta_seconds": status.eta_seconds,
        "last_result_at": status.last_result_at,
        "last_result_age_seconds": status.last_result_age,
        "stalled": status.stalled,
        "slowest": [asdict(unit) for unit in status.slowest],
        "pending_rows": rows[PENDING],
        "failed_rows": rows[FAILED],
        "not_in_manifest": status.not_in_manifest,
        "runs": runs,
        "skipped_ledger_lines": skipped,
    }
