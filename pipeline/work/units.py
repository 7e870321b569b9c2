"""Units of work: what a run queues, a worker runs, and the ledger records.

Three kinds, all frozen and small enough to send to a Ray worker:

* an image row: the `ManifestRow` itself (`pipeline.work.image.process_image`);
* a `SegmentUnit`: frames [start, stop) of one video row, restored as one warm-started chain
  (`pipeline.work.segment.process_segment`); its ledger id is ``<row id>#seg<index:04d>``;
* an `AssemblyUnit`: once every segment of a video is done, its frames streamed into the output
  video (`pipeline.work.assembly.assemble_video`); its ledger id is the row id.

The segments' frames live in a hidden work folder of the output folder,
``.segments/<row id>/<segment index:04d>/<frame index:06d>.png``, until the video is assembled.
Every kind has an `id` (its ledger id) and an `output`; `unit_outputs` and `failed_record`
treat the three kinds alike for `pipeline.run.execute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath
from typing import Any

from pipeline.io import SequenceInfo
from pipeline.manifest import ManifestRow
from pipeline.records import STATUS_FAILED, ImageRecord, SegmentRecord, VideoRecord
from pipeline.video.segments import Segment

WORK_FOLDER = ".segments"


class FramesFormat(str, Enum):
    """`pipeline run --frames`: also write each video's restored frames as images of this format."""

    png = "png"
    tiff = "tiff"


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

    def record_fields(self) -> dict[str, Any]:
        """The fields of its ledger line that say which segment of which video it is."""
        segment = self.segment
        return {
            "id": self.id,
            "video": self.row.id,
            "segment": segment.index,
            "segments": self.segments,
            "start": segment.start,
            "stop": segment.stop,
            "warmup_start": segment.warmup_start,
            "lead_in": segment.lead_in,
        }


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


def failed_record(unit: Unit, *, error: str, worker: str = "", attempt: int = 1) -> dict[str, Any]:
    """The ledger record of a unit whose last attempt failed with `error`."""
    if isinstance(unit, SegmentUnit):
        return SegmentRecord.of(
            unit.row, unit.output.as_posix(), **unit.record_fields(), status=STATUS_FAILED, error=error, worker=worker, attempt=attempt
        ).to_dict()
    if isinstance(unit, AssemblyUnit):
        return failed_video_record(unit.row, error=f"assembly failed: {error}", worker=worker, attempt=attempt)
    return ImageRecord.of(unit, unit.output.as_posix(), status=STATUS_FAILED, error=error, worker=worker, attempt=attempt).to_dict()


def failed_video_record(row: ManifestRow, *, error: str, worker: str = "", attempt: int = 1) -> dict[str, Any]:
    """The line of a video that could not be made: a segment failed for good, or its assembly."""
    return VideoRecord.of(row, row.output.as_posix(), status=STATUS_FAILED, error=error, worker=worker, attempt=attempt).to_dict()
