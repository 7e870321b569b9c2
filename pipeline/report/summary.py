"""The run's figures, from the ledger's latest records: the units, the summary, the failures.

Pure: records in, plain values out. A unit is an image or a video row (`units_of`): the lines of
parts (video segments, tile groups; `pipeline.records.PART_KINDS`) are not units, but a row
whose parts are recorded while its own line is not yet (a video still being restored) is shown
as one unit with the status "running".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.records import KIND_IMAGE, KIND_SEGMENT, KIND_VIDEO, PART_KINDS, STATUS_DONE, STATUS_FAILED, parse_time, row_id_of
from pipeline.report.values import gain, integer, number, text

STATUS_RUNNING = "running"
FAILURE_GROUPS = 20  # the most common errors listed on the page (every failed row is in the table)


@dataclass(frozen=True)
class FailureGroup:
    """Failed units that share one error message."""

    error: str
    count: int
    examples: tuple[str, ...]  # the first few ids


@dataclass(frozen=True)
class Summary:
    """What the head of the report says about the run."""

    units: int
    images: int
    videos: int
    done: int
    failed: int
    running: int  # rows with parts recorded but no line of their own yet
    seconds_total: float  # the units' own `seconds`, summed
    seconds_mean: float | None  # per unit that has a time
    iterations_total: int
    iterations_mean: float | None  # per unit that has a count
    first_finished: str | None  # ISO 8601, as in the ledger
    last_finished: str | None
    gain_mean: float | None  # mean PSNR gain (dB) over the units with a reference and finite gain
    gain_count: int
    stop_reasons: tuple[tuple[str, int], ...]  # most common first
    failures: tuple[FailureGroup, ...]  # most common error first, at most FAILURE_GROUPS
    failure_kinds: int  # how many distinct errors there are


def kind_of(record: Mapping[str, Any]) -> str:
    """A record's kind; lines written before records had one are image lines."""
    return text(record, "kind") or KIND_IMAGE


def _order(record: Mapping[str, Any]) -> tuple[bool, int, str]:
    row = integer(record, "row")
    return row is None, row or 0, str(record.get("id"))


def _parent_of(record: Mapping[str, Any]) -> str:
    parent = text(record, "video" if kind_of(record) == KIND_SEGMENT else "image")
    return parent or row_id_of(str(record.get("id", "")))


def _in_progress(parent: str, parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A stand-in line for a row of which only parts are recorded."""
    first = parts[0]
    video = kind_of(first) == KIND_SEGMENT
    total = integer(first, "segments" if video else "groups")
    done = sum(part.get("status") == STATUS_DONE for part in parts)
    noun = "segments" if video else "tile groups"
    iterations = [integer(part, "iterations") for part in parts]
    seconds = [number(part, "seconds") for part in parts]
    return {
        "id": parent,
        "status": STATUS_RUNNING,
        "kind": KIND_VIDEO if video else KIND_IMAGE,
        "task": first.get("task"),
        "input": first.get("input"),
        "row": first.get("row"),
        "iterations": sum(value for value in iterations if value is not None),
        "seconds": sum(value for value in seconds if value is not None),
        "progress": f"{done} of {total if total is not None else '?'} {noun} done",
        "finished_at": max((str(part.get("finished_at", "")) for part in parts), default=None),
    }


def units_of(records: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The units of the ledger's latest `records` in manifest order (row, then id): every record
    that is not a part, and a "running" stand-in for each row that so far has only parts."""
    units: list[Mapping[str, Any]] = [record for record in records.values() if kind_of(record) not in PART_KINDS]
    known = {unit["id"] for unit in units}
    parts: dict[str, list[Mapping[str, Any]]] = {}
    for record in records.values():
        if kind_of(record) in PART_KINDS:
            parts.setdefault(_parent_of(record), []).append(record)
    units += [_in_progress(parent, found) for parent, found in parts.items() if parent not in known]
    return sorted(units, key=_order)


def _mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    known = [value for value in values if value is not None and math.isfinite(value)]
    return (sum(known) / len(known) if known else None), len(known)


def _span(units: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """The first and last finished_at of the units (as written), comparing the times themselves."""
    moments = [(moment, unit["finished_at"]) for unit in units if (moment := parse_time(unit.get("finished_at"))) is not None]
    if not moments:
        return None, None
    return min(moments)[1], max(moments)[1]


def error_text(unit: Mapping[str, Any]) -> str:
    """A failed unit's error (its first line is what groups it), or a placeholder."""
    return text(unit, "error") or "(no error recorded)"


def failure_groups(units: Sequence[Mapping[str, Any]], limit: int = FAILURE_GROUPS) -> tuple[tuple[FailureGroup, ...], int]:
    """The most common errors of the failed units (at most `limit`) and how many distinct ones."""
    ids: dict[str, list[str]] = {}
    for unit in units:
        if unit.get("status") == STATUS_FAILED:
            ids.setdefault(error_text(unit), []).append(str(unit["id"]))
    ranked = sorted(ids.items(), key=lambda item: (-len(item[1]), item[0]))
    groups = tuple(FailureGroup(error, len(found), tuple(found[:5])) for error, found in ranked[:limit])
    return groups, len(ids)


def summarize(units: Sequence[Mapping[str, Any]]) -> Summary:
    """The summary of `units` (from `units_of`)."""
    statuses = Counter(unit.get("status") for unit in units)
    kinds = Counter(kind_of(unit) for unit in units)
    seconds_mean, _ = _mean(number(unit, "seconds") for unit in units if unit.get("status") != STATUS_RUNNING)
    iterations = [value for unit in units if (value := integer(unit, "iterations")) is not None]
    gain_mean, gain_count = _mean(gain(unit) for unit in units if unit.get("status") == STATUS_DONE)
    first, last = _span(units)
    reasons = Counter(reason for unit in units if (reason := text(unit, "stop_reason")) is not None)
    failures, failure_kinds = failure_groups(units)
    return Summary(
        units=len(units),
        images=kinds[KIND_IMAGE],
        videos=kinds[KIND_VIDEO],
        done=statuses[STATUS_DONE],
        failed=statuses[STATUS_FAILED],
        running=statuses[STATUS_RUNNING],
        seconds_total=sum(taken for unit in units if (taken := number(unit, "seconds")) is not None and math.isfinite(taken)),
        seconds_mean=seconds_mean,
        iterations_total=sum(iterations),
        iterations_mean=sum(iterations) / len(iterations) if iterations else None,
        first_finished=first,
        last_finished=last,
        gain_mean=gain_mean,
        gain_count=gain_count,
        stop_reasons=tuple(reasons.most_common()),
        failures=failures,
        failure_kinds=failure_kinds,
    )
