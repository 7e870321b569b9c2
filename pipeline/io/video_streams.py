"""What a video file holds besides its pictures: its streams, its rotation and its colour tags.

Read from what `ffmpeg -i FILE` prints (the bundled ffmpeg has no ffprobe): one line per stream
(``Stream #0:2: Subtitle: subrip (srt)``), the first video stream's pixel format and colour
description (``yuv420p10le(tv, bt709/bt709/bt709, progressive)``: range, then
space/primaries/transfer, or one name for all three), and its display matrix
(``Display Matrix: rotation of 90.00 degrees``). Mirroring in a display matrix is not printed
by ffmpeg and so not carried.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from pipeline.io._ffmpeg import ffmpeg_url

STREAM_KINDS: tuple[str, ...] = ("video", "audio", "subtitle", "data", "attachment")
_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_ROTATION = re.compile(r"display ?matrix: rotation of (-?[0-9.]+) degrees", re.IGNORECASE)
_FOURCC = re.compile(r"\((\w{4}) / 0x[0-9A-Fa-f]+\)")
_FILENAME = re.compile(r"^\s*filename\s*:\s*(.+)$")
_SAR = re.compile(r"\bSAR (\d+):(\d+)")
_RANGES = ("tv", "pc")


@dataclass(frozen=True)
class Stream:
    """One stream of a file: its index in the file, its kind (`STREAM_KINDS`) and its codec."""

    index: int
    kind: str
    codec: str

    @property
    def label(self) -> str:
        """How the ledger names it: "audio 1: aac", "subtitle 2: subrip"."""
        return f"{self.kind} {self.index}: {self.codec}"


@dataclass(frozen=True)
class ColourTags:
    """The colour description of a video stream, in ffmpeg's names; None where the file does not say."""

    primaries: str | None = None  # e.g. bt709, bt2020
    transfer: str | None = None  # e.g. bt709, smpte2084, arib-std-b67
    space: str | None = None  # the Y'CbCr matrix, e.g. bt709, bt470bg, bt2020nc
    range: str | None = None  # "tv" (limited) or "pc" (full)


@dataclass(frozen=True)
class StreamsInfo:
    """What `probe_streams` finds: every stream, and the first video stream's format, colour and rotation."""

    streams: tuple[Stream, ...]
    pixel_format: str | None  # of the first video stream, e.g. yuv420p10le
    colour: ColourTags
    rotation: float  # degrees counter-clockwise the first video stream is turned for display (0.0: none)
    sample_aspect: tuple[int, int] | None = None  # its pixels' shape (width:height) when not square, e.g. (10, 11)

    @property
    def video(self) -> Stream:
        """The first video stream: the one the pipeline restores."""
        return next(stream for stream in self.streams if stream.kind == "video")

    def others(self) -> tuple[Stream, ...]:
        """Every stream but the restored one: what a restored video copies from its source."""
        first = self.video
        return tuple(stream for stream in self.streams if stream is not first)


def _top_level_split(text: str) -> list[str]:
    """`text` split at commas that are not inside parentheses, each part stripped."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def _codec(kind: str, description: str, lines: list[str]) -> str:
    """The codec of a stream line's description; the fourcc for "none" (a tmcd track), the file
    name for an attachment of no known type."""
    name = description.split(",", 1)[0].split(" ", 1)[0].strip() or "unknown"
    if name != "none":
        return name
    fourcc = _FOURCC.search(description)
    if fourcc is not None:
        return fourcc.group(1)
    if kind == "attachment":
        for line in lines:
            found = _FILENAME.match(line)
            if found:
                return found.group(1).strip()
    return name


def _known(value: str) -> str | None:
    return None if value in ("unknown", "reserved", "") else value


def parse_colour(description: str) -> tuple[str | None, ColourTags]:
    """The pixel format and colour tags of a video stream line's description (after "Video: ")."""
    for part in _top_level_split(description)[1:]:
        match = re.fullmatch(r"([a-z0-9_]+)(?:\((.*)\))?", part)
        if match is None:
            continue
        pixel_format, details = match.group(1), match.group(2) or ""
        tags: dict[str, str | None] = {}
        for item in _top_level_split(details):
            if item in _RANGES:
                tags["range"] = item
            elif "/" in item and item.count("/") == 2:
                space, primaries, transfer = item.split("/")
                tags.update(space=_known(space), primaries=_known(primaries), transfer=_known(transfer))
            elif item and item != "progressive" and "first" not in item and " " not in item:
                tags.update(space=_known(item), primaries=_known(item), transfer=_known(item))
        return pixel_format, ColourTags(**tags)
    return None, ColourTags()


def _aspect(description: str) -> tuple[int, int] | None:
    """The sample aspect ratio of a video stream line's description, when its pixels are not square."""
    sar = _SAR.search(description)
    if sar is None:
        return None
    width, height = int(sar.group(1)), int(sar.group(2))
    return (width, height) if width != height and width > 0 and height > 0 else None


def _rotation(block: list[str]) -> float:
    """The display matrix's rotation printed under a stream (0.0 when none, or a negligible one)."""
    turned = [hit for hit in map(_ROTATION.search, block) if hit is not None]
    rotation = float(turned[0].group(1)) if turned else 0.0
    return 0.0 if abs(rotation) < 0.005 else rotation


def parse_streams(text: str) -> StreamsInfo | None:
    """The streams `ffmpeg -i` printed in `text`; None when it printed no video stream."""
    lines = text.splitlines()
    found: list[tuple[int, re.Match[str]]] = [(n, m) for n, line in enumerate(lines) if (m := _STREAM.match(line))]
    streams: list[Stream] = []
    first: tuple[str, list[str]] | None = None  # ffmpeg's 0:v:0, the video stream of the lowest index: its description and block
    for position, (number, match) in enumerate(found):
        end = found[position + 1][0] if position + 1 < len(found) else len(lines)
        block = lines[number + 1 : end]
        stream = Stream(int(match.group(1)), match.group(2).lower(), "")
        streams.append(Stream(stream.index, stream.kind, _codec(stream.kind, match.group(3), block)))
        if stream.kind == "video" and min(s.index for s in streams if s.kind == "video") == stream.index:
            first = (match.group(3), block)
    if first is None:
        return None
    description, block = first
    pixel_format, colour = parse_colour(description)
    ordered = tuple(sorted(streams, key=lambda stream: stream.index))
    return StreamsInfo(ordered, pixel_format, colour, _rotation(block), _aspect(description))


def probe_streams(path: Path) -> StreamsInfo:
    """The streams of the video file `path` (see the module docstring).

    Raises ValueError naming the file when ffmpeg cannot open it or finds no video stream in it.
    """
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_url(path)]
    result = subprocess.run(command, capture_output=True, check=False)  # exits 1: no output was asked for
    text = result.stderr.decode(errors="replace")
    info = parse_streams(text)
    if info is None:
        last = [line.strip() for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        raise ValueError(f"ffmpeg finds no video stream in {path} ({last[0]}); check the file is a complete, playable video")
    return info
