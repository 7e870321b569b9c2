"""Units of work: what the runner queues, a worker runs, and the ledger records.

Three kinds, all frozen and small enough to send to a Ray worker:

* an image row: the `ManifestRow` itself, as before videos existed (`pipeline.unit.process_unit`);
* a `SegmentUnit`: frames [start, stop) of one video row, restored as one warm-started chain
  (`pipeline.segment_unit.process_segment`); its ledger id is ``<row id>#seg<index:04d>``;
* an `AssemblyUnit`: once every segment of a video is done, its frames streamed into the output
  video (`pipeline.assembly.assemble_video`); its ledger id is the row id.

The segments' frames live in a hidden work folder of the output folder,
``.segments/<row id>/<segment index:04d>/<frame index:06d>.png``, until the video is assembled.
Every kind has an `id` (its ledger id) and an `output`; `unit_outputs` and `failed_unit_record`
treat the three kinds alike for the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from pipeline.io import SequenceInfo
from pipeline.manifest import ManifestRow
from pipeline.segments import Segment
from pipeline.unit import failed_record, now
from pipeline.video_records import SegmentRecord, VideoRecord

WORK_FOLDER = ".segments"
FramesFormat = Literal["png", "tiff"]


def segment_id(row_id: str, index: int) -> str:
    """The ledger id of a segment: ``clip#seg0003``."""
    return f"{row_id}#seg{index:04d}"


def video_work_folder(row_id: str) -> PurePosixPath:
    """The folder holding a video's segment folders, relative to the output folder."""
    return PurePosixPath(WORK_FOLDER, row_id)


def segment_folder(row_id: str, index: int) -> PurePosixPath:
    """A segment's folder of restored frames, relative to the output folder."""
    return video_work_folder(row_id) / f"{index:04d}"


def frame_name(index: int) -> str:
    """The file name of frame `index` (0-based, in the whole video) in a segment folder."""
    return f"{index:06d}.png"


def frames_folder(output: PurePosixPath) -> PurePosixPath:
    """Where `pipeline run --frames` writes a video's restored frames: ``<output stem>_frames``."""
    return output.with_name(f"{output.stem}_frames")


@dataclass(frozen=True)
class SegmentUnit:
    """One segment of a video row: restore the frames of `segment.chain_indices`, keep [start, stop)."""

    row: ManifestRow
    source: SequenceInfo  # the input as probed when the run was planned
    segment: Segment
    segments: int  # how many segments the video has

    @property
    def id(self) -> str:
        return segment_id(self.row.id, self.segment.index)

    @property
    def output(self) -> PurePosixPath:
        return segment_folder(self.row.id, self.segment.index)


@dataclass(frozen=True)
class AssemblyUnit:
    """A video row whose segments are all done: write the output video from their frames."""

    row: ManifestRow
    source: SequenceInfo
    fps: float  # of the output: the input file's own, or the row's for frame images
    segments: tuple[Segment, ...]
    segment_records: tuple[dict[str, Any], ...]  # the segments' done records, in order
    frames_format: FramesFormat | None = None  # also write the restored frames as images
    warping_error: bool = True  # measure the warping error against the reference (optical flow)

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def output(self) -> PurePosixPath:
        return PurePosixPath(self.row.output.as_posix())


Unit = ManifestRow | SegmentUnit | AssemblyUnit


def unit_outputs(unit: Unit) -> tuple[PurePosixPath, ...]:
    """What an interrupted attempt at the unit may have left partial files of (relative paths)."""
    if isinstance(unit, AssemblyUnit):
        return (unit.output, frames_folder(unit.output))
    if isinstance(unit, SegmentUnit):
        return (unit.output,)
    return (PurePosixPath(unit.output.as_posix()),)


def failed_unit_record(unit: Unit, *, error: str, worker: str, attempt: int) -> dict[str, Any]:
    """The ledger record of a unit that failed for good (its last attempt's error)."""
    if isinstance(unit, SegmentUnit):
        return failed_segment_record(unit, error=error, worker=worker, attempt=attempt)
    if isinstance(unit, AssemblyUnit):
        return failed_video_record(unit.row, error=f"assembly failed: {error}", worker=worker, attempt=attempt)
    return failed_record(unit, error=error, worker=worker, attempt=attempt)


def failed_segment_record(unit: SegmentUnit, *, error: str, worker: str, attempt: int) -> dict[str, Any]:
    """The line of a segment whose last attempt failed (the frames it covers, and why)."""
    segment = unit.segment
    return SegmentRecord(
        id=unit.id,
        status="failed",
        task=unit.row.task,
        input=str(unit.row.input),
        output=unit.output.as_posix(),
        row=unit.row.row_number,
        video=unit.row.id,
        segment=segment.index,
        segments=unit.segments,
        start=segment.start,
        stop=segment.stop,
        warmup_start=segment.warmup_start,
        lead_in=segment.lead_in,
        worker=worker,
        attempt=attempt,
        finished_at=now(),
        error=error,
    ).to_dict()


def failed_video_record(row: ManifestRow, *, error: str, worker: str = "", attempt: int = 1) -> dict[str, Any]:
    """The line of a video that could not be made: a segment failed for good, or its assembly."""
    return VideoRecord(
        id=row.id,
        status="failed",
        task=row.task,
        input=str(row.input),
        output=row.output.as_posix(),
        row=row.row_number,
        worker=worker,
        attempt=attempt,
        finished_at=now(),
        error=error,
    ).to_dict()
