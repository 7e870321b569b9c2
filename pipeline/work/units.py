"""Units of work: what a run queues, a worker runs, and the ledger records.

Five kinds, all frozen and small enough to send to a Ray worker:

* an image row: the `ManifestRow` itself (`pipeline.work.image.process_image`);
* a `SegmentUnit`: frames [start, stop) of one video row, restored as one warm-started chain
  (`pipeline.work.segment.process_segment`); its ledger id is ``<row id>#seg<index:04d>``;
* an `AssemblyUnit`: once every segment of a video is done, its frames streamed into the output
  video (`pipeline.work.assembly.assemble_video`); its ledger id is the row id;
* a `TileGroupUnit`: a group of tiles of an image row too large for one fit, restored in one batch
  (`pipeline.work.tile_group.process_tile_group`); its ledger id is ``<row id>#tiles<index:04d>``;
* a `TiledAssemblyUnit`: once every group of such an image is done, its tiles blended into the
  output image (`pipeline.work.tiled_assembly.assemble_tiled_image`); its ledger id is the row id.

The segments' frames live in a hidden work folder of the output folder,
``.segments/<row id>/<segment index:04d>/<frame index:06d>.png``, until the video is assembled;
the groups' tiles likewise in ``.tiles/<row id>/<group index:04d>.npy``.
Every kind has an `id` (its ledger id) and an `output`; `unit_outputs` and `failed_record`
treat the three kinds alike for `pipeline.run.execute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath
from typing import Any

from dip_engine.tiling import Tile, TilingConfig
from pipeline.io import SequenceInfo, VideoOutput
from pipeline.manifest import ManifestRow
from pipeline.records import STATUS_FAILED, ImageRecord, SegmentRecord, TileGroupRecord, VideoRecord
from pipeline.video.segments import Segment

WORK_FOLDER = ".segments"
TILES_FOLDER = ".tiles"


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


def tiles_work_folder(row_id: str) -> PurePosixPath:
    """The folder holding an image's groups of restored tiles, relative to the output folder."""
    return PurePosixPath(TILES_FOLDER, row_id)


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
    tiling: TilingConfig | None = None  # frames too large for one fit: each tile position its own chain
    allow_short_video: bool = False  # restore a video file that decodes short of its header (truncated)

    @property
    def id(self) -> str:
        return segment_id(self.row.id, self.segment.index)

    @property
    def part(self) -> int:
        return self.segment.index

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


class RowAssembly:
    """What an assembly unit is as a unit: its row's ledger id and output (the row's own)."""

    row: ManifestRow

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def output(self) -> PurePosixPath:
        return PurePosixPath(self.row.output.as_posix())


@dataclass(frozen=True)
class AssemblyUnit(RowAssembly):
    """A video row whose segments are all done: write the output video from their frames."""

    row: ManifestRow
    source: SequenceInfo
    fps: float  # of the output: the input file's own, or the row's for frame images
    segments: tuple[Segment, ...]
    segment_records: tuple[dict[str, Any], ...]  # the segments' done records, in order
    frames_format: FramesFormat | None = None  # also write the restored frames as images
    warping_error: bool = True  # measure the warping error against the reference (optical flow)
    video: VideoOutput = VideoOutput()  # the run's --video-codec and --video-pixel-format


@dataclass(frozen=True)
class TileGroupUnit:
    """A group of tiles of an image row, restored together: tiles[k] is tile first_tile + k of the grid."""

    row: ManifestRow
    tiles: tuple[Tile, ...]  # in the input's pixel grid
    index: int  # among the image's groups
    groups: int  # how many groups the image has
    first_tile: int  # index of tiles[0] in the image's grid (row-major); its seed offset
    tile: int  # tile side in input pixels
    overlap: int  # input pixels shared by neighbouring tiles

    @property
    def id(self) -> str:
        return f"{self.row.id}#tiles{self.index:04d}"

    @property
    def part(self) -> int:
        return self.index

    @property
    def output(self) -> PurePosixPath:
        return tiles_work_folder(self.row.id) / f"{self.index:04d}.npy"

    def record_fields(self) -> dict[str, Any]:
        """The fields of its ledger line that say which tiles of which image it holds."""
        return {
            "id": self.id,
            "image": self.row.id,
            "group": self.index,
            "groups": self.groups,
            "first_tile": self.first_tile,
            "tiles": len(self.tiles),
            "tile": self.tile,
            "overlap": self.overlap,
        }


@dataclass(frozen=True)
class TiledAssemblyUnit(RowAssembly):
    """An image row whose groups of tiles are all done: blend them into the output image."""

    row: ManifestRow
    groups: tuple[TileGroupUnit, ...]
    group_records: tuple[dict[str, Any], ...]  # the groups' done records, in order
    size: tuple[int, int]  # (H, W) of the output
    channels: int
    scale: int


Unit = ManifestRow | SegmentUnit | AssemblyUnit | TileGroupUnit | TiledAssemblyUnit
PartUnit = SegmentUnit | TileGroupUnit  # one part of a row restored in parts


def unit_outputs(unit: Unit) -> tuple[PurePosixPath, ...]:
    """What an interrupted attempt at the unit may have left partial files of (relative paths)."""
    if isinstance(unit, AssemblyUnit):
        return (unit.output, frames_folder(unit.output))
    return (PurePosixPath(unit.output.as_posix()),)


def work_folder(unit: Unit) -> PurePosixPath | None:
    """The work folder an assembly unit's row leaves behind once assembled (its parts' outputs)."""
    if isinstance(unit, AssemblyUnit):
        return video_work_folder(unit.row.id)
    if isinstance(unit, TiledAssemblyUnit):
        return tiles_work_folder(unit.row.id)
    return None


def failed_record(unit: Unit, *, error: str, worker: str = "", attempt: int = 1) -> dict[str, Any]:
    """The ledger record of a unit whose last attempt failed with `error`."""
    outcome = {"status": STATUS_FAILED, "error": error, "worker": worker, "attempt": attempt}
    if isinstance(unit, SegmentUnit):
        return SegmentRecord.of(unit.row, unit.output.as_posix(), **unit.record_fields(), **outcome).to_dict()
    if isinstance(unit, TileGroupUnit):
        return TileGroupRecord.of(unit.row, unit.output.as_posix(), **unit.record_fields(), **outcome).to_dict()
    if isinstance(unit, RowAssembly):
        return failed_row_record(unit.row, error=f"assembly failed: {error}", worker=worker, attempt=attempt)
    return failed_row_record(unit, error=error, worker=worker, attempt=attempt)


def failed_row_record(row: ManifestRow, *, error: str, worker: str = "", attempt: int = 1) -> dict[str, Any]:
    """The line of a row that failed: an image, or a row restored in parts whose part failed for good or whose assembly failed."""
    outcome = {"status": STATUS_FAILED, "error": error, "worker": worker, "attempt": attempt}
    if row.is_video:
        return VideoRecord.of(row, row.output.as_posix(), **frame_counts(row.source), **outcome).to_dict()
    return ImageRecord.of(row, row.output.as_posix(), **outcome).to_dict()


def frame_counts(source: SequenceInfo | None) -> dict[str, int | None]:
    """The ledger's frames_expected (a video file's header: duration × rate) and frames_decoded."""
    if source is None:
        return {"frames_expected": None, "frames_decoded": None}
    return {"frames_expected": source.expected_frames, "frames_decoded": source.frames}
