"""Where an output folder stands: rows done, failed and pending, throughput, time to finish.

`folder_status` is pure: it takes the ledger's latest record of each unit (`Ledger.load`), the
manifest's row ids (None when the manifest cannot be read: then the rows are those the ledger
has seen), the run files (`pipeline.run.run_file`) and the time now, and computes what
`pipeline status` shows:

* each row's state: done (its record is done, and its output exists), failed (its record
  failed, and no part of it has finished since), or pending (no record yet, or parts only), with
  its parts done of planned for a row restored in parts ("3 of 5 segments");
* the throughput in units (images, segments, tile groups, assemblies) and rows per hour over the
  recent window: the units that finished in the `window` before the last one did, over the time
  from the earliest start among them (or the window's start, if later) to that last finish;
* the time to finish: the pending units (a pending row's parts left and its assembly; a row whose
  parts are not known yet counts as many as the average of those known) at that rate;
* the slowest units (an assembly by its own time, not its parts'), and how long ago the last
  line was written, flagged as stalled when that is long for the units seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pipeline.records import KIND_SEGMENT, KIND_TILES, PART_KINDS, STATUS_FAILED, is_done, parse_time, row_id_of

WINDOW = timedelta(hours=1)  # the recent window throughput is measured over
STALL_AFTER = timedelta(minutes=10)  # no line for this long (or 3 × the slowest recent unit) looks stalled
SLOWEST = 5

DONE = "done"
FAILED = "failed"
PENDING = "pending"


@dataclass(frozen=True)
class RowStatus:
    """One row: its state, and for a row restored in parts, how far its parts are."""

    id: str
    state: str  # DONE | FAILED | PENDING
    row: int | None = None  # the manifest line, when known
    parts_kind: str | None = None  # KIND_SEGMENT | KIND_TILES, for a row restored in parts
    parts_done: int = 0
    parts_planned: int | None = None  # None: not known yet (no part finished, no run file says)
    error: str | None = None  # why it failed
    note: str | None = None  # why a pending row is pending when that is not plain (an output gone)

    def parts_text(self) -> str | None:
        """ "3 of 5 segments", "1 of ? tile groups", or None for a row not restored in parts."""
        if self.parts_kind is None:
            return None
        noun = "segments" if self.parts_kind == KIND_SEGMENT else "tile groups"
        planned = "?" if self.parts_planned is None else str(self.parts_planned)
        return f"{self.parts_done} of {planned} {noun}"


@dataclass(frozen=True)
class UnitTime:
    """One finished unit's own time."""

    id: str
    kind: str
    status: str
    seconds: float
    worker: str
    finished_at: str


@dataclass(frozen=True)
class Throughput:
    units_per_hour: float
    rows_per_hour: float
    units: int  # units finished in the window
    rows: int  # rows finished in the window
    seconds: float  # the time they were measured over


@dataclass(frozen=True)
class FolderStatus:
    rows: list[RowStatus]
    manifest_read: bool  # False: `rows` are those the ledger has seen
    units_done: int  # lines with status done (outputs not checked)
    units_failed: int
    pending_units: float  # estimated units left (see the module docstring)
    throughput: Throughput | None  # None until a unit with a duration has finished
    eta_seconds: float | None  # None: unknown (nothing finished yet); 0 when nothing is pending
    slowest: list[UnitTime]
    last_result_at: str | None  # finished_at of the newest line
    last_result_age: float | None  # seconds before `now`
    stalled: bool  # rows are pending and no line came for long
    not_in_manifest: list[str] = field(default_factory=list)  # ledger rows the manifest no longer has

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows if row.state == state)

    def of_state(self, state: str) -> list[RowStatus]:
        return [row for row in self.rows if row.state == state]


def folder_status(
    records: Mapping[str, dict[str, Any]],
    manifest_ids: Iterable[tuple[str, int | None]] | None,
    *,
    now: datetime,
    planned_parts: Mapping[str, Mapping[str, Any]] | None = None,
    done: Callable[[dict[str, Any]], bool] = is_done,
    videos: Collection[str] = (),
    window: timedelta = WINDOW,
) -> FolderStatus:
    """The status of an output folder (see the module docstring).

    `records`: the latest record of each unit id. `manifest_ids`: (row id, manifest line) of every
    row of the manifest, or None when it cannot be read. `planned_parts`: the run files' ``parts``
    (row id -> {"kind", "parts"}). `done`: whether a record counts as done (`Ledger.is_done` also
    wants its output to exist). `videos`: the ids of the manifest's video rows (restored in
    segments, however many). `now`: an aware datetime.
    """
    parts_of = _parts_by_row(records)
    known = _ledger_rows(records, parts_of) if manifest_ids is None else list(manifest_ids)
    listed = {row_id for row_id, _ in known}
    plans = {row_id: {"kind": KIND_SEGMENT} for row_id in videos} | dict(planned_parts or {})
    rows = [_row_status(row_id, line, records, parts_of.get(row_id, []), plans, done) for row_id, line in known]
    times = _unit_times(records, parts_of)
    throughput = _throughput(times, records, window)
    pending = _pending_units(rows)
    last = max((moment for record in records.values() if (moment := _time(record)) is not None), default=None)
    age = (now - last).total_seconds() if last is not None else None
    eta = 0.0 if pending == 0 else pending / throughput.units_per_hour * 3600 if throughput and throughput.units_per_hour > 0 else None
    return FolderStatus(
        rows=rows,
        manifest_read=manifest_ids is not None,
        units_done=sum(1 for record in records.values() if is_done(record)),  # parts of a finished row too (their folders go)
        units_failed=sum(1 for record in records.values() if record.get("status") == STATUS_FAILED),
        pending_units=pending,
        throughput=throughput,
        eta_seconds=eta,
        slowest=sorted(times, key=lambda unit: -unit.seconds)[:SLOWEST],
        last_result_at=last.isoformat(timespec="seconds") if last is not None else None,
        last_result_age=age,
        stalled=_stalled(age, pending, times, last, window),
        not_in_manifest=sorted(set(_row_ids(records, parts_of)) - listed) if manifest_ids is not None else [],
    )


def _parts_by_row(records: Mapping[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    parts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for unit_id, record in records.items():
        if "#" in unit_id or record.get("kind") in PART_KINDS:
            parts[row_id_of(unit_id)].append(record)
    return parts


def _row_ids(records: Mapping[str, dict[str, Any]], parts_of: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    rows = {unit_id for unit_id in records if "#" not in unit_id} | set(parts_of)
    return sorted(rows)


def _ledger_rows(records: Mapping[str, dict[str, Any]], parts_of: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, int | None]]:
    """The rows the ledger has seen, in manifest order where their lines say it."""
    found = []
    for row_id in _row_ids(records, parts_of):
        record = records.get(row_id) or next(iter(parts_of.get(row_id, [])), {})
        line = record.get("row")
        found.append((row_id, line if isinstance(line, int) else None))
    return sorted(found, key=lambda item: (item[1] is None, item[1] or 0, item[0]))


def _row_status(
    row_id: str,
    line: int | None,
    records: Mapping[str, dict[str, Any]],
    parts: list[dict[str, Any]],
    planned_parts: Mapping[str, Mapping[str, Any]],
    done: Callable[[dict[str, Any]], bool],
) -> RowStatus:
    record = records.get(row_id)
    plan = planned_parts.get(row_id) or {}
    kind = next((str(part.get("kind")) for part in parts if part.get("kind") in PART_KINDS), None) or plan.get("kind")
    planned = _planned(parts, plan)
    parts_done = sum(1 for part in parts if done(part))
    pending = RowStatus(row_id, PENDING, line, kind if isinstance(kind, str) else None, parts_done, planned)
    if record is not None and done(record):
        return replace(pending, state=DONE, parts_done=planned or parts_done)
    if record is not None and record.get("status") == STATUS_FAILED:
        failed_at = _time(record)
        retried = any(failed_at is not None and (_time(part) or failed_at) > failed_at for part in parts)
        if not retried:
            return replace(pending, state=FAILED, error=str(record.get("error") or "unknown error"))
    if record is not None and is_done(record):
        return replace(pending, note="its output is missing: the next run redoes it")
    return pending


def _planned(parts: list[dict[str, Any]], plan: Mapping[str, Any]) -> int | None:
    """How many parts the row has: its parts' lines say (``segments`` / ``groups``), else the run file."""
    for part in parts:
        count = part.get("segments") if part.get("kind") == KIND_SEGMENT else part.get("groups") if part.get("kind") == KIND_TILES else None
        if isinstance(count, int) and count > 0:
            return count
    count = plan.get("parts")
    return count if isinstance(count, int) and count > 0 else None


def _pending_units(rows: list[RowStatus]) -> float:
    """Units left: 1 per pending row, plus the parts left of one restored in parts; a row whose
    number of parts is not known counts the average of the known rows of its kind."""
    known: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.parts_kind is not None and row.parts_planned is not None:
            known[row.parts_kind].append(row.parts_planned)
    total = 0.0
    for row in rows:
        if row.state != PENDING:
            continue
        if row.parts_kind is None:
            total += 1
        elif row.parts_planned is not None:
            total += max(0, row.parts_planned - row.parts_done) + 1
        else:
            sizes = known.get(row.parts_kind)
            total += (sum(sizes) / len(sizes) if sizes else 1) - row.parts_done + 1
    return max(total, 0.0)


def _unit_times(records: Mapping[str, dict[str, Any]], parts_of: Mapping[str, list[dict[str, Any]]]) -> list[UnitTime]:
    """Each finished unit's own time: an assembly's (``assembly_seconds``, or its row's seconds
    less its parts'), every other unit's ``seconds``. Lines without a time are left out."""
    times = []
    for unit_id, record in records.items():
        seconds = record.get("seconds")
        if not isinstance(seconds, (int, float)) or _time(record) is None:
            continue
        own = float(seconds)
        if isinstance(record.get("assembly_seconds"), (int, float)):
            own = float(record["assembly_seconds"])
        elif "#" not in unit_id and parts_of.get(unit_id):
            own = max(0.0, own - sum(float(part.get("seconds") or 0.0) for part in parts_of[unit_id]))
        times.append(
            UnitTime(
                unit_id,
                str(record.get("kind") or ""),
                str(record.get("status")),
                own,
                str(record.get("worker") or ""),
                str(record["finished_at"]),
            )
        )
    return times


def _throughput(times: list[UnitTime], records: Mapping[str, dict[str, Any]], window: timedelta) -> Throughput | None:
    finished = [(unit, _time(records[unit.id])) for unit in times]
    moments = [moment for _, moment in finished if moment is not None]
    if not moments:
        return None
    end = max(moments)
    recent = [(unit, moment) for unit, moment in finished if moment is not None and moment >= end - window]
    earliest = min(moment - timedelta(seconds=unit.seconds) for unit, moment in recent)
    span = max((end - max(earliest, end - window)).total_seconds(), 1.0)
    rows = sum(1 for unit, _ in recent if "#" not in unit.id and unit.kind not in PART_KINDS)
    return Throughput(len(recent) / span * 3600, rows / span * 3600, len(recent), rows, span)


def _stalled(age: float | None, pending: float, times: list[UnitTime], last: datetime | None, window: timedelta) -> bool:
    if age is None or pending <= 0 or last is None:
        return False
    recent = [unit.seconds for unit in times if (moment := parse_time(unit.finished_at)) is not None and moment >= last - window]
    return age > max(STALL_AFTER.total_seconds(), 3 * max(recent, default=0.0))


def _time(record: dict[str, Any]) -> datetime | None:
    return parse_time(record.get("finished_at"))
