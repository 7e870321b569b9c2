"""How long each frame of a video file lasts (constant or variable frame rate), and where its streams end.

The first video stream's packets, and the audio streams', are listed with their timestamps,
without decoding (``ffmpeg -i FILE -map 0:v:0 -map 0:a? -c copy -f framecrc -``). Sorted into
display order, the gaps between successive video timestamps are the frames' durations. A file
whose durations differ by more than one tick of its time base (timestamps are rounded to ticks: a
29.97 fps stream in Matroska's millisecond ticks alternates 33 and 34 ms) and by more than
`TOLERANCE` of the longest has a variable frame rate: written back at one rate, its restoration
would change its timing.

Where the streams end tells a truncated file from one whose audio simply runs longer than its
picture: both have a container duration longer than the frames that decode, but only in the
second do the audio's packets reach that duration (`pipeline.io.video.probe_video`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from pipeline.io._ffmpeg import ffmpeg_url, run_ffmpeg

TOLERANCE = 0.01  # durations within 1 % of the longest (or one tick) count as one rate
NO_TIMESTAMP = -(2**63)  # how framecrc prints a packet without a presentation time
_TIME_BASE = re.compile(r"^#tb (\d+): (\d+)/(\d+)$")


@dataclass(frozen=True)
class FrameTiming:
    """The frame durations of a video file's first video stream, in milliseconds, and where its streams end."""

    shortest_ms: float  # 0.0 for a single frame
    longest_ms: float
    tick_ms: float  # the time base: timestamps are whole multiples of it
    start_s: float = 0.0  # when the first frame shows, from the file's start (its other streams may start before it)
    video_end_s: float = 0.0  # when the last frame ends, from the file's start
    audio_end_s: float | None = None  # when the last audio packet ends (None: no audio, or only the first packets were listed)

    @property
    def variable(self) -> bool:
        """Whether the durations differ by more than rounding to ticks explains (see the module docstring)."""
        spread = self.longest_ms - self.shortest_ms
        return spread > self.tick_ms * 1.001 and spread > TOLERANCE * self.longest_ms

    def text(self) -> str:
        """ "33.3–66.7 ms", or "33.3 ms" when every frame lasts as long."""
        if round(self.shortest_ms, 1) == round(self.longest_ms, 1):
            return f"{self.shortest_ms:.1f} ms"
        return f"{self.shortest_ms:.1f}–{self.longest_ms:.1f} ms"


@dataclass
class _Packets:
    """One stream's packet timestamps as framecrc lists them, in ticks of `tick` seconds."""

    tick: Fraction = Fraction(0)
    stamps: list[int] = field(default_factory=list)
    end: int | None = None  # the largest pts + duration

    def add(self, pts: int, duration: int) -> None:
        self.stamps.append(pts)
        self.end = pts + duration if self.end is None else max(self.end, pts + duration)


def _packets(text: str) -> dict[int, _Packets]:
    streams: dict[int, _Packets] = {}
    for line in text.splitlines():
        found = _TIME_BASE.match(line.strip())
        if found:
            streams.setdefault(int(found.group(1)), _Packets()).tick = Fraction(int(found.group(2)), int(found.group(3)))
            continue
        fields = [field.strip() for field in line.split(",")]
        if line.startswith("#") or len(fields) < 4 or not fields[0].isdigit():
            continue
        pts = int(fields[2])
        if pts != NO_TIMESTAMP:
            streams.setdefault(int(fields[0]), _Packets()).add(pts, int(fields[3]))
    return streams


def parse_framecrc(text: str, *, whole: bool = True) -> FrameTiming | None:
    """The timing of framecrc's packet list `text` (stream 0 the video, any others audio); None
    when the video's packets carry no timestamp. `whole`: the list covers the whole file (else
    the audio's end is not known)."""
    streams = _packets(text)
    video = streams.get(0)
    if video is None or not video.stamps or video.tick == 0 or video.end is None:
        return None
    stamps = sorted(video.stamps)
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:]) if later > earlier]
    to_ms = float(video.tick) * 1000
    start, end = float(stamps[0] * video.tick), float(video.end * video.tick)
    audio_ends = [float(stream.end * stream.tick) for index, stream in streams.items() if index > 0 and stream.end is not None]
    audio_end = max(audio_ends) if audio_ends and whole else None
    shortest, longest = (min(gaps) * to_ms, max(gaps) * to_ms) if gaps else (0.0, 0.0)
    return FrameTiming(shortest, longest, to_ms, start, end, audio_end)


def probe_frame_timing(path: Path, *, packets: int | None = None) -> FrameTiming | None:
    """The frame timing of the video file `path` (from its first `packets` video packets only, if
    given: enough for `start_s`); None when its packets carry no timestamps. Raises RuntimeError
    when ffmpeg cannot read it."""
    if packets is not None:
        args = ["-i", ffmpeg_url(path), "-map", "0:v:0", "-c", "copy", "-frames:v", str(packets), "-f", "framecrc", "-"]
    else:
        args = ["-i", ffmpeg_url(path), "-map", "0:v:0", "-map", "0:a?", "-c", "copy", "-f", "framecrc", "-"]
    return parse_framecrc(run_ffmpeg(args).decode(errors="replace"), whole=packets is None)
