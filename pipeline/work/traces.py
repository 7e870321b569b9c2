"""A fit's per-iteration traces, downsampled for its ledger line (what the report plots).

`downsample_trace` keeps at most `points` iterations of a `dip_engine.History`, evenly spaced,
always with the first, the last and the kept one. Evenly spaced rather than a min/max envelope
per bucket: every series then shares one "iteration" column (the report draws loss, criterion
and PSNR over the same x), and a hundred samples of a DIP curve show its shape (the fall,
the criterion's minimum, the late rise of PSNR-vs-iteration) faithfully; what a single sample
may miss is a one-iteration spike, and those (rollbacks, divergence) are what `stop_reason`
reports.

Iterations are numbered from 1, as `Restoration.kept_iteration` and `Restoration.iterations`
count them: History entry i is iteration i + 1, so the last point is ``iterations``.
"""

from __future__ import annotations

import math
from typing import Any

from dip_engine.result import History

TRACE_DIGITS = 4  # significant digits of a trace's values
TRACE_POINTS = 100  # most iterations a trace keeps (with a reference: about 3 kB of JSON; 100,000 rows ~0.3 GB)


def significant(value: float | None, digits: int) -> float | None:
    """`value` rounded to `digits` significant digits; NaN (and None) as None, ±inf unchanged."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return value
    return float(f"{value:.{digits}g}")


def trace_point(value: float | None) -> float | None:
    """One value of a trace: rounded to `TRACE_DIGITS`; NaN and ±inf (an iteration whose step
    was skipped or diverged) as None, a gap in the curve."""
    if value is None or not math.isfinite(value):
        return None
    return significant(value, TRACE_DIGITS)


def kept_indices(count: int, kept: int | None, points: int) -> list[int]:
    """At most `points` indices of `count` entries: all of them, or evenly spaced ones with the
    first, the last and `kept` (an index; ignored when out of range) among them, ascending."""
    if points < 3:
        raise ValueError(f"points must be at least 3 (the first, the last and the kept iteration), got {points}")
    if count <= points:
        return list(range(count))
    spaced = [i * (count - 1) // (points - 2) for i in range(points - 1)]  # distinct: the step is over 1
    if kept is not None and 0 <= kept < count:
        spaced.append(kept)
    return sorted(set(spaced))


def downsample_trace(history: History, kept_iteration: int, points: int = TRACE_POINTS) -> dict[str, list[Any]] | None:
    """The traces of `history` at no more than `points` iterations (see the module docstring):
    "iteration" (1-based), "loss", "criterion", and "psnr" when the fit traced one (a reference
    was given). Values are rounded to 4 significant digits; NaN and ±inf are None. None when
    the history has no traces (a restoration blended from tiles)."""
    count = len(history.loss)
    if count == 0:
        return None
    indices = kept_indices(count, kept_iteration - 1, points)
    series = {"loss": history.loss, "criterion": history.criterion}
    if history.psnr:
        series["psnr"] = history.psnr
    trace: dict[str, list[Any]] = {"iteration": [index + 1 for index in indices]}
    for name, values in series.items():
        trace[name] = [trace_point(values[index]) if index < len(values) else None for index in indices]
    return trace
