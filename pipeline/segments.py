"""Cutting a video into segments: runs of consecutive frames restored as independent chains.

A segment keeps frames [start, stop) but its chain starts cold at `warmup_start`, up to
`overlap` frames earlier: those frames only warm the network up (they are restored and thrown
away), so that the first kept frame of a segment comes from a warm chain like its neighbours
and the seam between two segments does not show. Segments are independent units of work: they
run in parallel on different workers and are redone one by one after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Frames [start, stop) of a video, restored by a chain that starts at `warmup_start`."""

    index: int  # position among the video's segments, from 0
    start: int  # first kept frame (0-based frame index in the video)
    stop: int  # one past the last kept frame
    warmup_start: int  # first frame of the chain: max(0, start - overlap)

    @property
    def frames(self) -> int:
        """Frames kept (written to the output)."""
        return self.stop - self.start

    @property
    def warmup(self) -> int:
        """Frames restored only to warm the chain up, then dropped."""
        return self.start - self.warmup_start

    @property
    def chain_frames(self) -> int:
        """Frames the chain restores: the warm-up ones and the kept ones."""
        return self.stop - self.warmup_start


def segment_ranges(total_frames: int, segment_frames: int, overlap: int) -> list[Segment]:
    """Split `total_frames` frames into segments of `segment_frames` kept frames.

    Segment k keeps frames [k·segment_frames, min((k+1)·segment_frames, total_frames)), so the
    last one may be shorter; its chain starts `overlap` frames earlier (never before frame 0).
    segment_frames = 0 makes the whole video one segment (one chain, no seams). The segments
    tile [0, total_frames) exactly, in order. ValueError for total_frames < 1 or a negative
    segment_frames or overlap.
    """
    for name, value, low in (("total_frames", total_frames, 1), ("segment_frames", segment_frames, 0), ("overlap", overlap, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    length = segment_frames or total_frames
    return [
        Segment(index=index, start=start, stop=min(start + length, total_frames), warmup_start=max(0, start - overlap))
        for index, start in enumerate(range(0, total_frames, length))
    ]
