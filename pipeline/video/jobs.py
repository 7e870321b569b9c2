"""Planning video rows into segments: a `VideoJob` per video row to finish.

`plan_video` probes a video row's input, cuts it into segments (`pipeline.video.segments`) and finds
the segments a previous run already finished: a segment is done when its latest ledger line is
"done", covers the same frames (the same --segment-frames and --overlap) and its folder holds
every one of its frames. The run's `pipeline.run.book.Book` then follows the job: as segments
finish it hands out the video's `AssemblyUnit` once all are done, or the video's failed line when
one fails for good.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dip_engine.tiling import TilingConfig
from pipeline.io import SequenceError, SequenceInfo, probe_sequence
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.video.segments import Segment, segment_ranges
from pipeline.work.units import AssemblyUnit, FramesFormat, SegmentUnit, frame_name, segment_folder, segment_id


class VideoPlanError(ValueError):
    """A video row that cannot be planned (its input changed or vanished since validation)."""


@dataclass(frozen=True)
class VideoJob:
    """A video row to finish in this run: its segments, and those already done (by index)."""

    row: ManifestRow
    source: SequenceInfo
    fps: float
    segments: tuple[Segment, ...]
    frames_format: FramesFormat | None  # the run's --frames, for the assembly
    warping_error: bool  # the run's --warping-error, for the assembly
    tiling: TilingConfig | None = None  # how the segments tile frames too large for one fit
    done: Mapping[int, dict[str, Any]] = field(default_factory=dict)  # segment index -> done record

    @property
    def parts(self) -> int:
        return len(self.segments)

    @property
    def pending(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.index not in self.done]

    @property
    def frames(self) -> int:
        return self.source.frames

    def pending_units(self) -> list[SegmentUnit]:
        return [SegmentUnit(self.row, self.source, segment, len(self.segments), self.tiling) for segment in self.pending]

    def assembly(self, records: tuple[dict[str, Any], ...]) -> AssemblyUnit:
        """The video's assembly from its segments' done records (in segment order)."""
        return AssemblyUnit(self.row, self.source, self.fps, self.segments, records, self.frames_format, self.warping_error)

    def part_failed(self, unit: SegmentUnit, record: dict[str, Any]) -> str:
        """Why the video fails when `unit` failed for good with `record`."""
        segment = unit.segment
        return f"segment {segment.index} (frames {segment.start}-{segment.stop - 1}) failed: {record.get('error')}"


def plan_video(
    row: ManifestRow,
    *,
    segment_frames: int,
    overlap: int,
    ledger: Ledger,
    records: Mapping[str, dict[str, Any]],
    force: bool,
    frames_format: FramesFormat | None,
    warping_error: bool,
    tiling: TilingConfig | None = None,
) -> VideoJob:
    """The row's segments and which are already done (none with `force`); see the module docstring.

    The input is probed unless the row carries what validation found (`ManifestRow.source`).
    Raises VideoPlanError naming the row when its input cannot be probed or has no frame rate.
    """
    try:
        source = row.source or probe_sequence(row.input)
    except SequenceError as error:
        raise VideoPlanError(f"row {row.row_number} (id {row.id}): {error}") from error
    fps = source.fps if source.kind == "video" else row.fps
    if not fps:
        raise VideoPlanError(f"row {row.row_number} (id {row.id}): cannot tell the frame rate of {row.input}")
    segments = tuple(segment_ranges(source.frames, segment_frames, overlap))
    done: dict[int, dict[str, Any]] = {}
    if not force:
        for segment in segments:
            record = records.get(segment_id(row.id, segment.index))
            if record is not None and _finished(record, segment, ledger.out_dir, row.id) and ledger.is_done(record):
                done[segment.index] = record
    return VideoJob(row, source, float(fps), segments, frames_format, warping_error, tiling, done)


def _finished(record: Mapping[str, Any], segment: Segment, out_dir: Path, row_id: str) -> bool:
    """The record covers exactly this segment's frames and its folder holds all of them."""
    covered = (record.get("start"), record.get("stop"), record.get("warmup_start"), record.get("lead_in") or 0)
    same = covered == (segment.start, segment.stop, segment.warmup_start, segment.lead_in)
    if not same:
        return False
    folder = out_dir / segment_folder(row_id, segment.index)
    try:
        present = set(os.listdir(folder))
    except OSError:
        return False
    return all(frame_name(index) in present for index in range(segment.start, segment.stop))
