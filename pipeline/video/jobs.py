"""Planning video rows into segments: a `VideoJob` per video row to finish.

`plan_video` probes a video row's input, cuts it into segments (`pipeline.video.segments`) and finds
the segments a previous run already finished: a segment is done when its latest ledger line is
"done", covers the same frames (the same --segment-frames and --overlap) and its folder holds
every one of its frames. The run's `pipeline.run.book.Book` then follows the job: as segments
finish it hands out the video's `AssemblyUnit` once all are done, or the video's failed line when
one fails for good.

A video file whose frames decode short of what its header promises (duration × rate, by more
than `SHORT_TOLERANCE` frames: a truncated file) is refused unless the run allows it
(`pipeline run --allow-short-video`): only its first segment is queued, and it fails at once
with `short_video_problem`'s message, failing the video. Allowed, the frames that decode are
restored, and the video's ledger line keeps both counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dip_engine.tiling import TilingConfig
from pipeline.io import SequenceError, SequenceInfo, VideoOutput, probe_sequence
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.video.segments import Segment, segment_ranges
from pipeline.work.units import AssemblyUnit, FramesFormat, SegmentUnit, frame_name, segment_folder, segment_id

SHORT_TOLERANCE = 1  # frames a video may decode short of its header's duration × rate (rounding of the duration)


class VideoPlanError(ValueError):
    """A video row that cannot be planned (its input changed or vanished since validation)."""


def short_video_problem(source: SequenceInfo) -> str | None:
    """Why a video file decoding short of its header's promise cannot be restored as it is; None
    for a complete one (within `SHORT_TOLERANCE`) and for frame images."""
    if source.kind != "video" or source.missing_frames <= SHORT_TOLERANCE:
        return None
    return (
        f"decoded {source.frames} of {source.expected_frames} frames: file truncated? (its header gives "
        f"{source.expected_frames} frames at {source.fps or 0:g} fps); replace it with a complete copy, or run with "
        f"--allow-short-video to restore the {source.frames} frames that decode"
    )


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
    allow_short_video: bool = False  # the run's --allow-short-video: restore a truncated file's frames
    video: VideoOutput = VideoOutput()  # the run's --video-codec and --video-pixel-format, for the assembly

    @property
    def parts(self) -> int:
        return len(self.segments)

    @property
    def pending(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.index not in self.done]

    @property
    def frames(self) -> int:
        return self.source.frames

    @property
    def refused(self) -> bool:
        """A truncated video file the run does not allow: its segments fail without restoring anything."""
        return not self.allow_short_video and short_video_problem(self.source) is not None

    def pending_units(self) -> list[SegmentUnit]:
        """The segments to run; of a refused video only the first, whose failure fails the video."""
        pending = self.pending[:1] if self.refused else self.pending
        return [SegmentUnit(self.row, self.source, segment, len(self.segments), self.tiling, self.allow_short_video) for segment in pending]

    def assembly(self, records: tuple[dict[str, Any], ...]) -> AssemblyUnit:
        """The video's assembly from its segments' done records (in segment order)."""
        return AssemblyUnit(self.row, self.source, self.fps, self.segments, records, self.frames_format, self.warping_error, self.video)

    def part_failed(self, unit: SegmentUnit, record: dict[str, Any]) -> str:
        """Why the video fails when `unit` failed for good with `record`."""
        if self.refused:  # not a fault of the segment: the file is short
            return str(record.get("error"))
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
    allow_short_video: bool = False,
    video: VideoOutput | None = None,
) -> VideoJob:
    """The row's segments and which are already done (none with `force`); see the module docstring.

    The input is probed unless the row carries what validation found (`ManifestRow.source`),
    which counts the frames that decode and reads what the header promises (a shortfall refuses
    the video unless `allow_short_video`: see the module docstring). `video`: how its assembly
    encodes it (default: `VideoOutput()`, H.264).
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
    return VideoJob(
        row, source, float(fps), segments, frames_format, warping_error, tiling, done, allow_short_video, video or VideoOutput()
    )


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
