"""Planning video rows into segments, and the driver's bookkeeping of them during a run.

`plan_video` probes a video row's input, cuts it into segments (`pipeline.video.segments`) and finds
the segments a previous run already finished: a segment is done when its latest ledger line is
"done", covers the same frames (the same --segment-frames and --overlap) and its folder holds
every one of its frames. `VideoBook` then follows the run: as segments finish it hands out the
video's `AssemblyUnit` once all are done, or the video's failed line when one fails for good.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.io import SequenceError, SequenceInfo, probe_sequence
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.records import is_done
from pipeline.video.segments import Segment, segment_ranges
from pipeline.work.units import (
    AssemblyUnit,
    FramesFormat,
    SegmentUnit,
    Unit,
    failed_video_record,
    frame_name,
    segment_folder,
    segment_id,
)


class VideoPlanError(ValueError):
    """A video row that cannot be planned (its input changed or vanished since validation)."""


@dataclass(frozen=True)
class VideoJob:
    """A video row to finish in this run: its segments, and those already done (by index)."""

    row: ManifestRow
    source: SequenceInfo
    fps: float
    segments: tuple[Segment, ...]
    done: Mapping[int, dict[str, Any]] = field(default_factory=dict)  # segment index -> done record

    @property
    def pending(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.index not in self.done]

    @property
    def frames(self) -> int:
        return self.source.frames

    def segment_unit(self, segment: Segment) -> SegmentUnit:
        return SegmentUnit(self.row, self.source, segment, len(self.segments))


def plan_video(
    row: ManifestRow,
    *,
    segment_frames: int,
    overlap: int,
    ledger: Ledger,
    records: Mapping[str, dict[str, Any]],
    force: bool,
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
    return VideoJob(row, source, float(fps), segments, done)


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


class VideoBook:
    """The driver's view of the videos of a run: which segments are done, which videos failed."""

    def __init__(self, jobs: list[VideoJob], *, frames_format: FramesFormat | None, warping_error: bool) -> None:
        self.jobs = {job.row.id: job for job in jobs}
        self.frames_format = frames_format
        self.warping_error = warping_error
        self.records: dict[str, dict[int, dict[str, Any]]] = {job.row.id: dict(job.done) for job in jobs}
        self.failed: set[str] = set()

    def initial_units(self) -> list[Unit]:
        """Every pending segment, and the assembly of each video that has none pending."""
        units: list[Unit] = []
        for job in self.jobs.values():
            pending = job.pending
            units.extend(job.segment_unit(segment) for segment in pending)
            if not pending:
                units.append(self._assembly(job))
        return units

    def segment_finished(self, unit: SegmentUnit, record: dict[str, Any]) -> AssemblyUnit | dict[str, Any] | None:
        """Take a segment's final record; return the video's assembly once all its segments are
        done, the video's failed record when this segment failed (once per video), else None."""
        video = unit.row.id
        if not is_done(record):
            if video in self.failed:
                return None
            self.failed.add(video)
            segment = unit.segment
            reason = f"segment {segment.index} (frames {segment.start}-{segment.stop - 1}) failed: {record.get('error')}"
            return failed_video_record(unit.row, error=reason, attempt=int(record.get("attempt") or 1))
        self.records[video][unit.segment.index] = record
        job = self.jobs[video]
        if video in self.failed or len(self.records[video]) < len(job.segments):
            return None
        return self._assembly(job)

    def _assembly(self, job: VideoJob) -> AssemblyUnit:
        records = self.records[job.row.id]
        return AssemblyUnit(
            row=job.row,
            source=job.source,
            fps=job.fps,
            segments=job.segments,
            segment_records=tuple(records[segment.index] for segment in job.segments),
            frames_format=self.frames_format,
            warping_error=self.warping_error,
        )
