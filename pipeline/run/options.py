"""The options of a run: where it writes, what it runs on, how videos are cut, when it stops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.io import VideoOutput
from pipeline.run.shard import Shard
from pipeline.work.processors import Processors
from pipeline.work.units import FramesFormat


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    address: str | None = None  # a running Ray cluster; None = RAY_ADDRESS or an embedded local Ray
    workers: int | None = None  # CPU workers when there is no GPU; None = one per 2 CPUs
    retries: int = 2  # extra attempts for a failing unit
    force: bool = False  # redo units the ledger has as done
    processors: Processors = field(default_factory=Processors)  # what a worker runs for each kind of unit
    segment_frames: int = 48  # frames kept per video segment; 0 = each video one chain
    overlap: int = 3  # frames that only warm a segment's chain up (see pipeline.video.segments)
    frames_format: FramesFormat | None = None  # also write videos' restored frames as images
    warping_error: bool = True  # measure videos' warping error against their reference (optical flow)
    shard: Shard | None = None  # run only this shard of the rows; its ledger lines go to its own file
    in_process: bool = False  # run the units in this process, one at a time, without Ray
    stop_requested: Callable[[], bool] | None = None  # polled; once true, no new unit starts
    stop_grace: float = 60.0  # seconds running units get to finish after a stop; then they are abandoned
    tile: int | None = None  # tile side for images too large for one fit; None = chosen from the memory budget
    tile_overlap: int = 32  # input pixels shared by neighbouring tiles
    tile_batch: int | None = None  # at most this many tiles per unit; None = as many as a worker's memory holds
    memory_per_worker: int | None = None  # bytes; None = the machine's (or job's) memory shared among workers, or the GPU's
    allow_short_video: bool = False  # restore video files that decode short of their header's duration × rate (truncated)
    video_codec: str = "x264"  # what videos are written with: x264, x265, ffv1 or prores (pipeline.io.video_codecs)
    video_pixel_format: str | None = None  # an ffmpeg pix_fmt for the videos written; None = the codec's default

    @property
    def video(self) -> VideoOutput:
        """The videos' encoding (ValueError for an unknown codec)."""
        return VideoOutput(self.video_codec, self.video_pixel_format)
