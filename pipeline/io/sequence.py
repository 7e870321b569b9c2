"""Frame sequences: a video file, a folder of frame images, or a printf pattern of frame images.

A manifest's video row names its input (and its reference, and for inpainting its per-frame
masks) in one of three ways:

* a video file (.mp4 .avi .mov .mkv), decoded through ffmpeg (`pipeline.io.video`);
* a folder of frame images (PNG, JPEG, TIFF): every non-hidden image file in it, in natural
  order of the names (``frame2.png`` before ``frame10.png``; names that tie, such as ``1.png``
  and ``001.png``, in character order);
* a printf pattern such as ``frames/%05d.png`` or ``shot_%d.tif``: the files of that folder
  whose names the pattern prints for some number, in the order of the numbers. Gaps in the
  numbering are allowed (the sequence is the files that exist).

Frames come out as float32 C×H×W tensors in [0, 1], one at a time (`iter_sequence`), so a
sequence is never held in memory whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

import torch

from pipeline.io.frame_timing import FrameTiming
from pipeline.io.image import IMAGE_SUFFIXES, ImageReadError, is_image_path, probe_image, read_image, shape_text
from pipeline.io.video import VideoReadError, is_video_path, iter_video_frames, probe_video

SequenceKind = Literal["video", "frames"]
_CONVERSION = re.compile(r"%(0[1-9][0-9]*)?d")
_DIGIT_RUNS = re.compile(r"(\d+)")


class SequenceError(ValueError):
    """A frame sequence that cannot be used; the message names the file or folder and the fix."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class SequenceInfo:
    """What `probe_sequence` finds out about a frame sequence."""

    kind: SequenceKind  # "video" for a video file, "frames" for a folder or a pattern
    frames: int  # number of frames, >= 1
    channels: int  # of the decoded frames: 3 for a video file, 1 or 3 for frame images
    height: int
    width: int
    bit_depth: str  # of the decoded samples: a video file's "uint8", or "uint16" above 8 bits; the first frame's otherwise
    fps: float | None  # a video file's own frame rate (None for frame images, which have none)
    has_audio: bool  # a video file with an audio track
    expected_frames: int | None = None  # a video file's header: duration × rate (None for frame images)
    pixel_format: str | None = None  # a video file's, e.g. yuv420p10le (None for frame images)
    timing: FrameTiming | None = None  # a video file's frame durations (None for frame images, or unknown)

    @property
    def missing_frames(self) -> int:
        """Frames the header promises that did not decode (0 when it promises none, or no more)."""
        return max(0, (self.expected_frames or 0) - self.frames)


def is_frame_pattern(path: PurePath | str) -> bool:
    """Whether `path` is a printf pattern of frame images: one %d or %0Nd in an image file name."""
    path = Path(path)
    return len(_CONVERSION.findall(path.name)) == 1 and "%" not in str(path.parent) and is_image_path(path)


def is_frame_sequence_path(path: PurePath | str) -> bool:
    """Whether `path` names frame images (a pattern, or a folder: no image or video extension)."""
    return is_frame_pattern(path) or not (is_image_path(path) or is_video_path(path))


def _natural_key(name: str) -> tuple[list[str | int], str]:
    """Numbers compared as numbers ("f2" before "f10"); ties ("1", "001") broken by the name."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGIT_RUNS.split(name)], name


def _pattern_files(pattern: Path) -> list[Path]:
    match = _CONVERSION.search(pattern.name)
    assert match is not None  # checked by is_frame_pattern
    head, tail = pattern.name[: match.start()], pattern.name[match.end() :]
    regex = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    width = match.group(1)
    folder = pattern.parent
    if not folder.is_dir():
        raise SequenceError(f"the folder of the frame pattern {pattern} does not exist", pattern)
    numbered: list[tuple[int, Path]] = []
    for entry in os.scandir(folder):
        found = regex.fullmatch(entry.name)
        if found and format(int(found.group(1)), f"{width or ''}d") == found.group(1) and entry.is_file():
            numbered.append((int(found.group(1)), folder / entry.name))
    return [path for _number, path in sorted(numbered)]


def frame_files(path: Path | str) -> list[Path]:
    """The frame images of a folder or a printf pattern, in order (see the module docstring).

    Raises SequenceError for a missing folder, a path that is neither a folder nor a pattern,
    and a folder or pattern with no frame image.
    """
    path = Path(path)
    if is_frame_pattern(path):
        files = _pattern_files(path)
        if not files:
            raise SequenceError(f"no file matches the frame pattern {path} (e.g. {_example(path)})", path)
        return files
    if not path.exists():
        raise SequenceError(f"folder not found: {path}", path)
    if not path.is_dir():
        raise SequenceError(
            f"{path} is neither a folder of frames nor a frame pattern such as frames/%05d.png (nor an image or a video by its extension)",
            path,
        )
    names = [entry.name for entry in os.scandir(path) if not entry.name.startswith(".") and is_image_path(entry.name) and entry.is_file()]
    if not names:
        raise SequenceError(f"no frame images ({' '.join(IMAGE_SUFFIXES)}) in the folder {path}", path)
    return [path / name for name in sorted(names, key=_natural_key)]


def _example(pattern: Path) -> str:
    match = _CONVERSION.search(pattern.name)
    assert match is not None
    return pattern.name[: match.start()] + format(1, f"{match.group(1) or ''}d") + pattern.name[match.end() :]


def _probe_frames(path: Path, files: list[Path], every_frame: bool) -> SequenceInfo:
    try:
        first = read_image(files[0])
    except ImageReadError as error:
        raise SequenceError(f"frame 0 of {path} cannot be read: {error}", path) from error
    shape = tuple(first.pixels.shape)
    for number, file in enumerate(files[1:] if every_frame else [], start=1):
        try:
            other = probe_image(file)
        except ImageReadError as error:
            raise SequenceError(f"frame {number} of {path} cannot be read: {error}", path) from error
        if other != shape:
            raise SequenceError(
                f"frame {number} ({file.name}) is {shape_text(other)} but the first frame ({files[0].name}) is "
                f"{shape_text(shape)} (CxHxW); every frame of {path} must have one size and channel count",
                path,
            )
    channels, height, width = shape
    return SequenceInfo("frames", len(files), channels, height, width, first.bit_depth, None, False)


def probe_sequence(path: Path | str, *, every_frame: bool = False) -> SequenceInfo:
    """Kind, frame count, frame shape, bit depth, frame rate and audio of a frame sequence.

    A video file is decoded once to count its frames (and its header's duration × rate kept as
    `expected_frames`, which a truncated file falls short of) and its packets listed for their
    timing; its bit depth is "uint16" when its pixel format has more than 8 bits a sample. For
    frame images the first frame is decoded; with `every_frame` every other frame's header is
    read too and must give the same C×H×W (the check `pipeline validate` makes). Raises
    SequenceError saying what is wrong.
    """
    path = Path(path)
    if is_video_path(path):
        try:
            info = probe_video(path)
        except VideoReadError as error:
            raise SequenceError(str(error), path) from error
        if not info.frames:
            raise SequenceError(f"ffmpeg found no frames in {path}; check that the file is a complete video", path)
        return SequenceInfo(
            "video",
            info.frames,
            3,
            info.height,
            info.width,
            "uint16" if info.bits > 8 else "uint8",
            info.fps or None,
            info.has_audio,
            info.expected_frames,
            info.pixel_format,
            info.timing,
        )
    return _probe_frames(path, frame_files(path), every_frame)


def iter_sequence(path: Path | str, start: int = 0, stop: int | None = None) -> Generator[torch.Tensor, None, None]:
    """Frames `start` to `stop - 1` (to the end if stop is None) as float32 C×H×W in [0, 1].

    Frames are read one at a time as the generator is consumed (a video's decoder stops when the
    generator is closed). Raises SequenceError (from the iteration) when the sequence has fewer
    frames than `stop`, and the readers' errors for frames that do not decode.
    """
    path = Path(path)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop, got start={start!r}, stop={stop!r}")
    if is_video_path(path):
        return _counted(path, iter_video_frames(path, start, stop), start, stop)
    return _counted(path, (read_image(file).pixels for file in frame_files(path)[start:stop]), start, stop)


def _counted(path: Path, frames: Generator[torch.Tensor, None, None], start: int, stop: int | None) -> Generator[torch.Tensor, None, None]:
    """`frames`, checked to run to `stop`; the inner generator is closed however this one ends."""
    count = 0
    try:
        for frame in frames:
            count += 1
            yield frame
    finally:
        frames.close()
    if stop is not None and count < stop - start:
        raise SequenceError(
            f"{path} has only {start + count} frames, but frames up to {stop - 1} were expected; was it changed since the run was planned?",
            path,
        )
