"""Archival test clips made with the bundled ffmpeg from a real photograph, and ways to look inside them.

Frames are a camera panning over scikit-image's astronaut photograph (sampled bilinearly, so the
samples fall between 8-bit levels), 48×32, a few frames long. `deep_clip` encodes them at 10 bits
(FFV1 4:2:0 10-bit: lossless, so the low bits are really there) with whatever else an archive file
carries: an audio track, a subtitle track, chapters, global tags, a timecode, a rotation and colour tags.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch

from dip_engine.synthetic import camera_clip
from tests.conftest import photo

WIDTH, HEIGHT, FPS = 48, 32, 10
SUBTITLES = "1\n00:00:00,000 --> 00:00:00,300\nReel one\n\n2\n00:00:00,300 --> 00:00:00,600\nThe harbour\n"
CHAPTERS = (
    ";FFMETADATA1\ntitle=Harbour reel\ncomment=scanned 1998\n\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=300\ntitle=Opening\n\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=300\nEND=600\ntitle=Harbour\n"
)


def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    """Run the bundled ffmpeg; its stdout."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args]
    return subprocess.run(command, input=stdin, capture_output=True, check=True, timeout=60).stdout


def ffmpeg_info(path: Path) -> str:
    """What `ffmpeg -i` prints about `path` (streams, tags, chapters, side data)."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    return subprocess.run(command, capture_output=True, check=False, timeout=60).stderr.decode()


def pan(frames: int) -> torch.Tensor:
    """(frames, 3, 32, 48): the camera panning 1.5 pixels a frame over the photograph."""
    return camera_clip(photo("astronaut", 60, 150, 96, 128), frames, (HEIGHT, WIDTH))


def samples16(frames: torch.Tensor) -> np.ndarray:
    """Frames (N×3×H×W in [0, 1]) as N×H×W×3 16-bit samples."""
    return (frames.double() * 65535).round().to(torch.int32).permute(0, 2, 3, 1).numpy().astype(np.uint16)


def decode(path: Path, pix_fmt: str = "rgb48le", stream: str = "0:v:0") -> np.ndarray:
    """The video stream of `path` decoded by ffmpeg itself to `pix_fmt` (rgb48le or rgb24), stored orientation."""
    raw = ffmpeg("-noautorotate", "-i", str(path), "-map", stream, "-f", "rawvideo", "-pix_fmt", pix_fmt, "-")
    dtype = np.dtype("<u2") if pix_fmt == "rgb48le" else np.dtype(np.uint8)
    probe = ffmpeg_info(path)
    return np.frombuffer(raw, dtype=dtype).reshape(-1, *_size(probe), 3)


def _size(info: str) -> tuple[int, int]:
    line = next(line for line in info.splitlines() if "Video:" in line)
    for part in line.replace(",", " ").split():
        width, _, height = part.partition("x")
        if width.isdigit() and height.isdigit():
            return int(height), int(width)
    raise AssertionError(f"no size in {line}")


def packets(path: Path, stream: str) -> list[str]:
    """The packets of `stream` (e.g. "0:a") of `path`, stream-copied: timestamps, size and MD5 of each."""
    text = ffmpeg("-i", str(path), "-map", stream, "-c", "copy", "-f", "framemd5", "-").decode()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def deep_clip(path: Path, frames: torch.Tensor, *, pixel_format: str = "yuv420p10le", extras: bool = True) -> Path:
    """`frames` as FFV1 at `pixel_format` in Matroska; with `extras`, also an AAC tone (longer than the
    picture), subrip subtitles, chapters, tags, a timecode, a 90° rotation and BT.709 colour tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = samples16(frames).tobytes()
    video_in = ["-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-"]
    encode = ["-c:v", "ffv1", "-pix_fmt", pixel_format]
    if not extras:
        ffmpeg(*video_in, *encode, str(path), stdin=raw)
        return path
    srt, meta = path.with_name("subtitles.srt"), path.with_name("chapters.txt")
    srt.write_text(SUBTITLES)
    meta.write_text(CHAPTERS)
    plain = path.with_name(f"plain{path.suffix}")
    ffmpeg(
        *video_in,
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=1"),
        *("-i", str(srt), "-i", str(meta)),
        *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-map_metadata", "3", "-map_chapters", "3"),
        *encode,
        *("-vf", "setparams=color_primaries=bt709:color_trc=bt709", "-colorspace", "bt709", "-color_range", "tv"),
        *("-c:a", "aac", "-c:s", "srt", "-timecode", "01:00:00:00", str(plain)),
        stdin=raw,
    )
    ffmpeg("-display_rotation:v:0", "90", "-i", str(plain), "-map", "0", "-c", "copy", str(path))  # the rotation tag, not turned pixels
    return path
