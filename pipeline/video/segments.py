"""Cutting a video into segments: runs of consecutive frames restored as independent chains.

A segment keeps frames [start, stop). Its chain does not start on `start`: it starts with a
short cold fit on a warm-up frame and runs over `overlap` warm-up frames first, which are
restored and thrown away, so that the first kept frame comes from a warm chain like its
neighbours and the seam between two segments does not show. The warm-up frames are the ones
just before `start` (from `warmup_start`); the first segment has none before it, so its chain
takes its warm-up frames from just after `start`, in reverse order (`lead_in`): frames
start+lead_in, ..., start+1, then start, start+1, .... Every segment then begins the same way and
costs about the same, which is what lets two segments on two workers take half the time of one
chain; a video of one segment is one plain chain with a full cold start on frame 0. Segments are
independent units of work: they run in parallel on different workers and are redone one by one
after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Segment:
    """Frames [start, stop) of a video, restored by a chain over `chain_indices`."""

    index: int  # position among the video's segments, from 0
    start: int  # first kept frame (0-based frame index in the video)
    stop: int  # one past the last kept frame
    warmup_start: int  # first frame of the chain's forward run: max(0, start - overlap)
    lead_in: int = 0  # warm-up frames taken from after `start`, in reverse (first segment only)

    @property
    def frames(self) -> int:
        """Frames kept (written to the output)."""
        return self.stop - self.start

    @property
    def warmup(self) -> int:
        """Frames restored only to warm the chain up, then dropped."""
        return self.lead_in + self.start - self.warmup_start

    @property
    def chain_frames(self) -> int:
        """Frames the chain restores: the warm-up ones and the kept ones."""
        return self.warmup + self.frames

    @property
    def chain_indices(self) -> tuple[int, ...]:
        """The frame index of each frame of the chain, in the order the chain restores them."""
        lead = range(self.start + self.lead_in, self.start, -1)
        return (*lead, *range(self.warmup_start, self.stop))


def segment_ranges(total_frames: int, segment_frames: int, overlap: int) -> list[Segment]:
    """Split `total_frames` frames into segments of `segment_frames` kept frames.

    Segment k keeps frames [k·segment_frames, min((k+1)·segment_frames, total_frames)), so the
    last one may be shorter; its chain warms up on the `overlap` frames before it, or, for the
    first segment of several, on up to `overlap` of its own frames after its start (see the
    module docstring). segment_frames = 0 makes the whole video one segment (one chain, no
    seams, no warm-up). The segments tile [0, total_frames) exactly, in order. ValueError for
    total_frames < 1 or a negative segment_frames or overlap.
    """
    for name, value, low in (("total_frames", total_frames, 1), ("segment_frames", segment_frames, 0), ("overlap", overlap, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    length = segment_frames or total_frames
    segments = [
        Segment(index=index, start=start, stop=min(start + length, total_frames), warmup_start=max(0, start - overlap))
        for index, start in enumerate(range(0, total_frames, length))
    ]
    if len(segments) > 1:
        segments[0] = replace(segments[0], lead_in=min(overlap, segments[0].frames - 1))
    return segments
