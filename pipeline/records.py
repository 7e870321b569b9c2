"""The records of the ledger: one line per attempt at a unit, of three kinds with one common base.

* image line (kind "image"): an image row; id = the row id, output = the restored file.
* segment line (kind "segment"): frames of a video row restored as one chain; id
  ``<row id>#seg<index>`` (index zero-padded to 4 digits, e.g. ``clip#seg0003``; '#' never occurs
  in row ids), output = the segment's folder of frames in the output folder
  (``.segments/<row id>/<index>``). Segment lines are left out of results.csv.
* tiles line (kind "tiles"): a group of tiles of a large image row restored in one batch; id
  ``<row id>#tiles<index>`` (4 digits), output = the group's restored tiles
  (``.tiles/<row id>/<index>.npy``, float32, until the image is assembled). Left out of results.csv.
* video line (kind "video"): a video row, once its segments are assembled (or why it failed);
  id = the row id, output = the video file. PSNR/SSIM are means over all frames (frame-weighted
  means of the segments'), measured on the restored frames as stored losslessly before video
  encoding; the temporal figures come from `dip_engine.temporal.TemporalConsistency`.

What a report plots is kept in the lines too, so that it needs no recomputation: an image
line's ``trace`` (its fit's loss, criterion and PSNR, downsampled: `pipeline.work.traces`), a
segment's and a video's ``per_frame`` (figures per frame, in columns: `pipeline.work.frame_figures`).
These live in results.jsonl only, never in results.csv.

Every record has the fields of `Record`: which row and unit, its status, where its output is,
who ran it and when, and why it failed. Quality figures are None without a reference; PSNR is
+inf for identical images (written as ``Infinity``, which Python's json reads back). Lines
written before records had a kind are image lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from pipeline.manifest import InvalidRow, ManifestRow
from pipeline.manifest.schema import input_kind

STATUS_DONE = "done"
STATUS_FAILED = "failed"
KIND_IMAGE = "image"
KIND_SEGMENT = "segment"
KIND_VIDEO = "video"
KIND_TILES = "tiles"
PART_KINDS = (KIND_SEGMENT, KIND_TILES)  # the lines of a row's parts, left out of results.csv and the summary

_R = TypeVar("_R", bound="Record")


def now() -> str:
    """The current UTC time for a record's finished_at, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def row_id_of(unit_id: str) -> str:
    """The row a ledger id belongs to: the id itself for a row's line, ``clip`` for a part ``clip#seg0003``."""
    return unit_id.split("#", 1)[0]


def parse_time(text: Any) -> datetime | None:
    """A record's finished_at (ISO 8601 with its zone) as a datetime; None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def is_done(record: dict[str, Any]) -> bool:
    """Whether a stored record says its unit is done."""
    return record.get("status") == STATUS_DONE


@dataclass(frozen=True, kw_only=True)
class Record:
    """The fields of every ledger line (see the module docstring)."""

    id: str
    status: str  # STATUS_DONE | STATUS_FAILED
    kind: str  # KIND_IMAGE | KIND_SEGMENT | KIND_VIDEO
    task: str
    input: str  # the path the manifest resolved
    output: str  # relative to the output folder, with '/' separators
    row: int | None = None  # the manifest line of the row
    psnr_in: float | None = None  # the input against the reference (bicubic-upsampled for sr)
    psnr_out: float | None = None  # the output as written against the reference
    ssim_in: float | None = None
    ssim_out: float | None = None
    iterations: int | None = None
    seconds: float | None = None  # wall time of the whole unit, file I/O included
    worker: str = ""
    attempt: int = 1
    finished_at: str = field(default_factory=now)  # UTC, ISO 8601
    error: str | None = None  # why a failed attempt failed
    fingerprint: dict[str, str | None] | None = None  # the row's as planned, stamped by the driver (pipeline.run.fingerprint)

    @classmethod
    def of(cls: type[_R], row: ManifestRow, output: str, /, **fields: Any) -> _R:
        """A record of `row` with its `output`, finished now: done, with the row's id, task, input
        and line unless `fields` say otherwise, and the kind's own `fields`."""
        common = {"id": row.id, "status": STATUS_DONE, "task": row.task, "input": str(row.input), "row": row.row_number}
        return cls(**{**common, **fields}, output=output)

    def to_dict(self) -> dict[str, Any]:
        """The record as the plain dict the ledger stores."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class ImageRecord(Record):
    """One attempt at an image row."""

    kind: str = KIND_IMAGE
    stop_reason: str | None = None  # "early_stop" | "converged" | "max_iterations" | "diverged"
    kept_iteration: int | None = None
    bit_depth: str | None = None  # of the written output
    engine_seconds: float | None = None  # the engine's own fit time (summed over its tiles when tiled)
    tile: int | None = None  # tile side in input pixels when restored in tiles
    tiles: int | None = None  # how many tiles
    tile_groups: int | None = None  # in how many units
    rule: str | None = None  # the stopping rule the fit ran: "variance" | "converged" | "fixed" (tiled: the tiles', if they agree)
    trace: dict[str, list[Any]] | None = None  # the fit's traces, downsampled (pipeline.work.traces); None when tiled


@dataclass(frozen=True, kw_only=True)
class TileGroupRecord(Record):
    """One attempt at a group of tiles of a large image row; `iterations` summed over its tiles."""

    kind: str = KIND_TILES
    image: str = ""  # the row id
    group: int = 0  # index among the image's groups
    groups: int = 0  # how many groups the image has
    first_tile: int = 0  # index of its first tile in the image's grid (row-major)
    tiles: int = 0  # tiles in this group
    tile: int = 0  # tile side in input pixels
    overlap: int = 0  # input pixels shared by neighbouring tiles
    stop_reasons: dict[str, int] | None = None  # how each tile's fit ended, counted
    rules: dict[str, int] | None = None  # the stopping rule each tile's fit ran, counted
    engine_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class SegmentRecord(Record):
    """One attempt at one segment of a video row; its figures are means over the kept frames."""

    kind: str = KIND_SEGMENT
    video: str = ""  # the row id
    segment: int = 0  # index among the video's segments
    segments: int = 0  # how many segments the video has
    start: int | None = None  # first kept frame
    stop: int | None = None  # one past the last kept frame
    warmup_start: int | None = None  # first frame of the chain's forward run (the frames before start only warm it up)
    lead_in: int | None = None  # warm-up frames after start, restored first in reverse (first segment of several)
    frames: int | None = None  # frames kept
    cold_frames: int | None = None  # frames restored from a fresh network: the first, keyframes, cuts
    cuts: int | None = None  # scene cuts detected (each a cold restart)
    stop_reasons: dict[str, int] | None = None  # how each frame's fit ended, counted
    bit_depth: str | None = None  # of the stored frames (PNG: uint8 or uint16)
    engine_seconds: float | None = None  # the fits' own time
    per_frame: dict[str, list[Any]] | None = None  # one entry per kept frame, in order (see pipeline.work.frame_figures)


@dataclass(frozen=True, kw_only=True)
class VideoRecord(Record):
    """The outcome of a video row: its assembly, or why the video failed."""

    kind: str = KIND_VIDEO
    frames: int | None = None
    frames_expected: int | None = None  # a video file's header: duration × rate (None for frame images)
    frames_decoded: int | None = None  # frames of the input that decode (fewer than expected: truncated)
    fps: float | None = None  # of the written video
    segments: int | None = None
    cold_frames: int | None = None
    flicker: float | None = None  # change(output) / change(baseline); see dip_engine.temporal
    flicker_baseline: str | None = None  # "reference" or "input"
    change_error: float | None = None  # mean |Δoutput − Δreference|; None without a reference
    warping_error: float | None = None  # mean |x_t − x_{t−1} warped by the reference's flow|
    output_change: float | None = None  # mean |x_t − x_{t−1}| of the output
    audio: bool | None = None  # at least one audio stream was copied from the input (unchanged)
    codec: str | None = None  # what the video was written with: x264, x265, ffv1 or prores (--video-codec)
    pixel_format: str | None = None  # the ffmpeg pix_fmt written, e.g. yuv420p, gbrp16le
    streams_copied: list[str] | None = None  # input streams copied unchanged, e.g. ["audio 1: aac"]; None for frame images
    streams_dropped: list[str] | None = None  # input streams the output's container cannot hold, with the reason; None for frames
    frames_folder: str | None = None  # where --frames wrote the restored frames, if it did
    assembly_seconds: float | None = None  # `seconds` is the segments' seconds plus this
    per_frame: dict[str, list[Any]] | None = None  # the segments' merged, with flicker and output_change (pipeline.work.frame_figures)
    per_frame_step: int | None = None  # frames per per_frame entry: 1, or more for a video of over 2000 frames


def invalid_row_record(invalid: InvalidRow) -> dict[str, Any]:
    """The failed line of a manifest row that cannot run (`pipeline run --skip-invalid`): its id
    (``(row N)`` when the id itself is wrong or not unique), its row number and every reason."""
    kind = KIND_VIDEO if invalid.input is not None and input_kind(invalid.input) != "image" else KIND_IMAGE
    return Record(
        id=invalid.id or f"(row {invalid.row_number})",
        status=STATUS_FAILED,
        kind=kind,
        task=invalid.task or "",
        input=str(invalid.input or ""),
        output=invalid.output.as_posix() if invalid.output is not None else "",
        row=invalid.row_number,
        error="invalid row: " + "; ".join(invalid.reasons),
    ).to_dict()
