"""A restored video stream joined with everything else of its source file, copied unchanged.

`copy_streams` muxes the encoded video (one file) with the source's audio, subtitle, data and
attachment streams, its global tags and chapters, and its first video stream's tags (timecode,
language), rotation and colour tags, into the target file: stream copy (``-c copy``), nothing is
re-encoded. Audio that runs longer than the picture is copied whole. A stream the target's
container cannot hold (mov_text subtitles in Matroska, subrip in MP4) is left out, and the
result says which and why, instead of failing the video.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.io._ffmpeg import ffmpeg_url, run_ffmpeg
from pipeline.io.pixel_formats import is_rgb
from pipeline.io.video_codecs import CONTAINERS
from pipeline.io.video_streams import ColourTags, Stream, StreamsInfo

COPIED_KINDS: tuple[str, ...] = ("audio", "subtitle", "data", "attachment")


@dataclass(frozen=True)
class StreamCopy:
    """What `copy_streams` copied from the source, and what it left out with the reason."""

    copied: tuple[str, ...] = ()  # labels: "audio 1: aac"
    dropped: tuple[str, ...] = ()  # "subtitle 2: mov_text: Matroska (.mkv) cannot hold it (...)"
    audio: bool = False  # at least one audio stream was copied


@dataclass(frozen=True)
class CopyRequest:
    """What to copy from `source` next to the encoded video: which kinds of stream, and whether
    its tags, chapters, rotation and colour tags go too (`everything`) or only the streams."""

    source: Path
    info: StreamsInfo
    kinds: tuple[str, ...] = COPIED_KINDS
    everything: bool = True
    video_start: float = 0.0  # seconds from the source's start to its first frame

    def candidates(self) -> tuple[Stream, ...]:
        return tuple(stream for stream in self.info.others() if stream.kind in self.kinds)

    def left_behind(self) -> tuple[str, ...]:
        """Streams of the source that are never copied: further video streams (cover art, angles)."""
        if not self.everything:
            return ()
        return tuple(
            f"{stream.label}: only the restored video stream is written" for stream in self.info.others() if stream.kind == "video"
        )


def carried_colour(info: StreamsInfo, pixel_format: str) -> ColourTags:
    """The colour tags of the source (`info`) that hold for a restored stream in `pixel_format`:
    primaries and transfer always; the Y'CbCr matrix and range only when both are Y'CbCr (an RGB
    stream has neither, and a Y'CbCr one made from an RGB source takes the encoder's defaults)."""
    colour = info.colour
    rgb_source = colour.space == "gbr" or is_rgb(info.pixel_format or "")
    if is_rgb(pixel_format) or rgb_source:
        return ColourTags(colour.primaries, colour.transfer)
    return colour


def colour_options(colour: ColourTags) -> list[str]:
    """Output options that tag the first video stream with `colour` (those it has)."""
    names = [
        ("-color_primaries:v:0", colour.primaries),
        ("-color_trc:v:0", colour.transfer),
        ("-colorspace:v:0", colour.space),
        ("-color_range:v:0", colour.range),
    ]
    return [item for name, value in names if value is not None for item in (name, value)]


def _arguments(video: Path, request: CopyRequest, streams: Sequence[Stream], target: Path, pixel_format: str) -> list[str]:
    video_input: list[str] = []
    if request.everything and request.info.rotation:
        video_input += ["-display_rotation:v:0", f"{request.info.rotation:g}"]
    if request.video_start:
        video_input += ["-itsoffset", f"{request.video_start:.6f}"]
    args = [*video_input, "-i", ffmpeg_url(video), "-i", ffmpeg_url(request.source), "-map", "0:v:0"]
    for stream in streams:
        args += ["-map", f"1:{stream.index}"]
    args += ["-c", "copy"]
    if request.everything:
        args += ["-map_metadata", "1", "-map_chapters", "1", "-map_metadata:s:v:0", "1:s:v:0", "-metadata:s:v:0", "encoder="]
        args += colour_options(carried_colour(request.info, pixel_format))
    else:
        args += ["-map_chapters", "-1"]
    return [*args, "-y", ffmpeg_url(target)]


def _refusal(source: Path, stream: Stream, suffix: str) -> str | None:
    """Why a `suffix` container refuses `stream` of `source` (ffmpeg's words), or None if it takes it."""
    with tempfile.TemporaryDirectory(prefix="dip-stream-") as folder:
        trial = Path(folder) / f"trial{suffix}"
        try:
            run_ffmpeg(["-i", ffmpeg_url(source), "-map", f"0:{stream.index}", "-c", "copy", "-frames", "1", ffmpeg_url(trial)])
        except RuntimeError as error:
            return _first_reason(str(error))
    return None


def _first_reason(message: str) -> str:
    """The first line of ffmpeg's complaint, without its "[matroska @ 0x...]" prefix."""
    body = message.split(": ", 1)[-1]
    for line in body.splitlines():
        text = line.split("] ", 1)[-1].strip() if line.lstrip().startswith("[") else line.strip()
        if text:
            return re.sub(r" in stream #\d+", "", text)  # the trial's stream number, not the source's
    return "ffmpeg refused it"


def copy_streams(video: Path, request: CopyRequest, target: Path, pixel_format: str) -> StreamCopy:
    """Mux `video` (the encoded restored stream) with what `request` copies from its source into `target`.

    A stream the container of `target` refuses is left out and listed in `dropped`; `pixel_format`
    (the encoded stream's) decides which colour tags apply. Raises OSError naming the files when
    ffmpeg cannot write `target` even so.
    """
    candidates, dropped = list(request.candidates()), list(request.left_behind())
    try:
        run_ffmpeg(_arguments(video, request, candidates, target, pixel_format))
    except RuntimeError:
        container = CONTAINERS.get(target.suffix.lower(), target.suffix)
        kept = []
        for stream in candidates:
            reason = _refusal(request.source, stream, target.suffix.lower())
            if reason is None:
                kept.append(stream)
            else:
                dropped.append(f"{stream.label}: {container} cannot hold it ({reason})")
        candidates = kept
        try:
            run_ffmpeg(_arguments(video, request, candidates, target, pixel_format))
        except RuntimeError as error:
            raise OSError(f"cannot copy the streams of {request.source} into {target}: {error}") from error
    copied = tuple(stream.label for stream in candidates)
    return StreamCopy(copied, tuple(dropped), any(stream.kind == "audio" for stream in candidates))
