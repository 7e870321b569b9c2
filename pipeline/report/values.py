"""A ledger record's fields read defensively, and figures written for a reader.

Every field of a record is optional (older ledger lines lack the newer ones) and may hold the
wrong type (a hand-edited line): these accessors return None rather than fail, so one odd line
never stops a report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def number(record: Mapping[str, Any], key: str) -> float | None:
    """`record[key]` as a float (±inf kept, NaN as None), or None when it is not a number."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def integer(record: Mapping[str, Any], key: str) -> int | None:
    """`record[key]` when it is an int (not a bool), else None."""
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text(record: Mapping[str, Any], key: str) -> str | None:
    """`record[key]` when it is a non-empty string, else None."""
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def gain(record: Mapping[str, Any]) -> float | None:
    """psnr_out − psnr_in in dB (+inf when the output is identical to the reference), or None."""
    before, after = number(record, "psnr_in"), number(record, "psnr_out")
    if before is None or after is None or math.isinf(before):
        return None
    return after - before


def decibels(value: float | None) -> str:
    """ "28.66 dB", "∞ dB" or "—"."""
    if value is None:
        return "—"
    return "∞ dB" if math.isinf(value) else f"{value:.2f} dB"


def figure(value: float | None, digits: int = 3) -> str:
    """A figure with `digits` significant digits, or "—"."""
    if value is None:
        return "—"
    return "∞" if math.isinf(value) else f"{value:.{digits}g}"


def seconds_text(seconds: float | None) -> str:
    """A duration as "0.4 s", "12 s", "3m 05s" or "2h 01m" (or "—")."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
