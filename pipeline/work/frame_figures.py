"""Per-frame figures of a video for its ledger lines (what the report plots), kept in columns.

A segment line's ``per_frame`` has one entry per kept frame, in order, in the columns
`SEGMENT_COLUMNS`: "frame" (index in the video), "iterations", "cold" (restored from a fresh
network), "stop_reason", and "psnr_in", "psnr_out", "ssim_out" (None without a reference).
The video line's merges its segments' in frame order and adds "flicker" (this frame's
change / the baseline's change, as `dip_engine.temporal.TemporalConsistency` defines them
pair by pair; None for frame 0 and where the baseline does not change) and "output_change"
(mean |out_t − out_{t−1}|; None for frame 0). A video of more than `PER_FRAME_LIMIT` frames
has its columns averaged over buckets of consecutive frames (`bucket_columns`), the bucket's
size in the line's ``per_frame_step``.

Figures are rounded to `FIGURE_DIGITS` significant digits (so the mean of a column still
matches the line's mean to 1e-6); NaN is None, an infinite PSNR (identical frames) stays.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dip_engine.temporal import FrameChange
from dip_engine.video import FrameResult
from pipeline.work.traces import significant

PER_FRAME_LIMIT = 2000  # most entries of a video line's per_frame
FIGURE_DIGITS = 9
QUALITY_COLUMNS = ("psnr_in", "psnr_out", "ssim_out")
SEGMENT_COLUMNS = ("frame", "iterations", "cold", "stop_reason", *QUALITY_COLUMNS)
VIDEO_COLUMNS = (*SEGMENT_COLUMNS, "flicker", "output_change")


def figure(value: float | None) -> float | None:
    """A per-frame figure as stored: `FIGURE_DIGITS` significant digits, NaN as None."""
    return significant(value, FIGURE_DIGITS)


def segment_entry(frame: int, result: FrameResult, quality: Mapping[str, float | None]) -> dict[str, Any]:
    """One kept frame's entry of a segment's per_frame; `quality` its metrics (empty without a reference)."""
    restoration = result.restoration
    entry: dict[str, Any] = {"frame": frame, "iterations": restoration.iterations, "cold": result.cold}
    entry["stop_reason"] = restoration.stop_reason
    entry.update({name: figure(quality.get(name)) for name in QUALITY_COLUMNS})
    return entry


def append_entry(columns: dict[str, list[Any]], entry: Mapping[str, Any]) -> None:
    """Add one frame's `entry` to `columns` (a column per key, created on first use)."""
    for name, value in entry.items():
        columns.setdefault(name, []).append(value)


def _bucket_value(name: str, values: list[Any]) -> Any:
    """One bucket's entry of column `name`: its first frame, any cold, the most common stop
    reason, or the mean of the known numbers (None if none)."""
    if name == "frame":
        return values[0]
    if name == "cold":
        return any(values)
    numbers = [value for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]
    if name == "stop_reason" or len(numbers) < len([value for value in values if value is not None]):
        return Counter(values).most_common(1)[0][0]
    return figure(math.fsum(numbers) / len(numbers)) if numbers else None


def bucket_columns(columns: Mapping[str, list[Any]], limit: int = PER_FRAME_LIMIT) -> tuple[dict[str, list[Any]], int]:
    """`columns` with at most `limit` entries, and the bucket size (the step): unchanged with
    step 1 when they fit, else each entry summarises `step` consecutive frames (the last bucket
    may hold fewer) as `_bucket_value` says."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    count = max((len(values) for values in columns.values()), default=0)
    if count <= limit:
        return {name: list(values) for name, values in columns.items()}, 1
    step = math.ceil(count / limit)
    starts = range(0, count, step)
    return {name: [_bucket_value(name, values[start : start + step]) for start in starts] for name, values in columns.items()}, step


@dataclass
class VideoFrameFigures:
    """A video's per_frame, collected while its assembly streams the frames (`add` each in order)."""

    segments: dict[int, Mapping[str, Any]]  # frame index -> its entry in its segment's per_frame
    columns: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def of_segments(cls, records: Iterable[Mapping[str, Any]]) -> VideoFrameFigures:
        """From the segments' done records; a record without per_frame leaves its frames' segment columns None."""
        entries: dict[int, Mapping[str, Any]] = {}
        for record in records:
            per_frame = record.get("per_frame") or {}
            names = list(per_frame)
            for values in zip(*(per_frame[name] for name in names)):
                entry = dict(zip(names, values))
                entries[int(entry["frame"])] = entry
        return cls(entries)

    def add(self, frame: int, change: FrameChange | None) -> None:
        """The next frame of the video and its change from the previous one (None for the first)."""
        known = self.segments.get(frame, {})
        entry: dict[str, Any] = {name: known.get(name) for name in VIDEO_COLUMNS}
        entry["frame"] = frame
        entry["flicker"] = figure(change.flicker) if change is not None else None
        entry["output_change"] = figure(change.output) if change is not None else None
        append_entry(self.columns, entry)

    def record_fields(self, limit: int = PER_FRAME_LIMIT) -> dict[str, Any]:
        """The video record's per_frame and per_frame_step."""
        per_frame, step = bucket_columns(self.columns, limit)
        return {"per_frame": per_frame, "per_frame_step": step}
