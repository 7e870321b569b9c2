"""The ledger lines of video rows: one per segment attempt, one per video.

A video row is restored as segments (see `pipeline.segments`), each its own unit of work with
its own ledger line, and then assembled into the output video, which gets the row's line:

* segment line: id ``<row id>#seg<index>`` (index zero-padded to 4 digits, e.g. ``clip#seg0003``;
  '#' never occurs in row ids), kind "segment", output = the segment's folder of frames in the
  output folder (``.segments/<row id>/<index>``). Segment lines are left out of results.csv.
* video line: id = the row id, kind "video", output = the video file. Its metrics summarise the
  whole video: PSNR/SSIM are means over all frames (frame-weighted means of the segments'),
  measured on the restored frames as stored losslessly before video encoding; the temporal
  figures come from `dip_engine.temporal.TemporalConsistency` over the assembled sequence.

Image rows keep `pipeline.ledger.UnitRecord`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.ledger import KIND_SEGMENT

KIND_VIDEO = "video"
_METRICS = ("psnr_in", "psnr_out", "ssim_in", "ssim_out")


@dataclass(frozen=True)
class SegmentRecord:
    """One attempt at one segment of a video row (see the module docstring)."""

    id: str  # "<row id>#seg0003"
    status: str  # "done" | "failed"
    task: str
    input: str
    output: str  # the segment's folder of frames, relative to the output folder
    row: int | None = None
    kind: str = KIND_SEGMENT
    video: str = ""  # the row id
    segment: int = 0  # index among the video's segments
    segments: int = 0  # how many segments the video has
    start: int | None = None  # first kept frame
    stop: int | None = None  # one past the last kept frame
    warmup_start: int | None = None  # first frame of the chain's forward run (the frames before start only warm it up)
    lead_in: int | None = None  # warm-up frames after start, restored first in reverse (first segment of several)
    frames: int | None = None  # frames kept
    iterations: int | None = None  # over the whole chain, warm-up frames included
    cold_frames: int | None = None  # frames restored from a fresh network: the first, keyframes, cuts
    cuts: int | None = None  # scene cuts detected (each a cold restart)
    stop_reasons: dict[str, int] | None = None  # how each frame's fit ended, counted
    psnr_in: float | None = None  # means over the kept frames, against the reference
    psnr_out: float | None = None
    ssim_in: float | None = None
    ssim_out: float | None = None
    bit_depth: str | None = None  # of the stored frames (PNG: uint8 or uint16)
    seconds: float | None = None  # wall time of the segment unit
    engine_seconds: float | None = None  # the fits' own time
    worker: str = ""
    attempt: int = 1
    finished_at: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VideoRecord:
    """The outcome of a video row: its assembly, or why the video failed (see the module docstring)."""

    id: str  # the row id
    status: str
    task: str
    input: str
    output: str  # the video file, relative to the output folder
    row: int | None = None
    kind: str = KIND_VIDEO
    frames: int | None = None
    fps: float | None = None  # of the written video
    segments: int | None = None
    iterations: int | None = None  # summed over the segments, warm-up frames included
    cold_frames: int | None = None
    psnr_in: float | None = None  # means over all frames, against the reference
    psnr_out: float | None = None
    ssim_in: float | None = None
    ssim_out: float | None = None
    flicker: float | None = None  # change(output) / change(baseline); see dip_engine.temporal
    flicker_baseline: str | None = None  # "reference" or "input"
    change_error: float | None = None  # mean |Δoutput − Δreference|; None without a reference
    warping_error: float | None = None  # mean |x_t − x_{t−1} warped by the reference's flow|; see dip_engine.temporal
    output_change: float | None = None  # mean |x_t − x_{t−1}| of the output
    audio: bool | None = None  # an audio track was copied from the input
    frames_folder: str | None = None  # where --frames wrote the restored frames, if it did
    seconds: float | None = None  # the segments' seconds plus the assembly's
    assembly_seconds: float | None = None
    worker: str = ""
    attempt: int = 1
    finished_at: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finite_or_none(value: float | None) -> float | None:
    """NaN (an undefined figure, e.g. flicker of a one-frame video) as None; others unchanged."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def combine_segments(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The video-wide sums and frame-weighted means of its segments' done records."""
    records = list(records)
    frames = sum(int(record.get("frames") or 0) for record in records)
    combined: dict[str, Any] = {
        "frames": frames,
        "segments": len(records),
        "iterations": sum(int(record.get("iterations") or 0) for record in records),
        "cold_frames": sum(int(record.get("cold_frames") or 0) for record in records),
        "segment_seconds": sum(float(record.get("seconds") or 0.0) for record in records),
    }
    for metric in _METRICS:
        values = [(record.get(metric), int(record.get("frames") or 0)) for record in records]
        known = [(float(value), weight) for value, weight in values if isinstance(value, (int, float))]
        weight = sum(weight for _value, weight in known)
        combined[metric] = sum(value * w for value, w in known) / weight if known and len(known) == len(values) and weight else None
    return combined
