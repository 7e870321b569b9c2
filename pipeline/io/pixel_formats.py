"""ffmpeg's pixel formats: how many bits a sample of each holds, and which an encoder accepts.

Both are asked of the bundled ffmpeg itself (`ffmpeg -pix_fmts`, `ffmpeg -h encoder=NAME`), so
they are always those of the binary that does the work, never a table that may drift from it.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Mapping
from types import MappingProxyType

import imageio_ffmpeg

RGB_PREFIXES: tuple[str, ...] = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "x2rgb", "x2bgr")


def _ffmpeg_text(*args: str) -> str:
    """What the bundled ffmpeg prints (stdout and stderr) for `args`, whatever its exit code."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    result = subprocess.run(command, capture_output=True, check=False)
    return (result.stdout + result.stderr).decode(errors="replace")


@functools.cache
def pixel_format_bits() -> Mapping[str, int]:
    """Every pixel format ffmpeg knows, with the bits of its deepest component: yuv420p 8,
    yuv420p10le 10, rgb48le 16, gbrpf32le 32 (from the BIT_DEPTHS column of `ffmpeg -pix_fmts`).
    Asked once per process: the binary's table does not change while it runs."""
    bits: dict[str, int] = {}
    for line in _ffmpeg_text("-pix_fmts").splitlines():
        fields = line.split()
        if len(fields) == 5 and re.fullmatch(r"\d+(-\d+)*", fields[4]) and fields[2].isdigit():
            bits[fields[1]] = max(int(depth) for depth in fields[4].split("-"))
    return MappingProxyType(bits)


def bits_of(pixel_format: str) -> int:
    """The bits of the deepest component of `pixel_format`; ValueError for a name ffmpeg does not know."""
    known = pixel_format_bits()
    if pixel_format not in known:
        raise ValueError(
            f"ffmpeg knows no pixel format {pixel_format!r} (`ffmpeg -pix_fmts` lists them), e.g. yuv420p, yuv420p10le, rgb48le"
        )
    return known[pixel_format]


@functools.cache
def encoder_pixel_formats(encoder: str) -> tuple[str, ...]:
    """The pixel formats `encoder` accepts, as `ffmpeg -h encoder=NAME` lists them; () when ffmpeg
    has no such encoder (or does not say). Asked once per process and encoder."""
    for line in _ffmpeg_text("-h", f"encoder={encoder}").splitlines():
        if line.strip().lower().startswith("supported pixel formats:"):
            return tuple(line.split(":", 1)[1].split())
    return ()


def is_rgb(pixel_format: str) -> bool:
    """Whether `pixel_format` holds RGB samples (rgb24, bgr0, gbrp16le, ...) rather than Y'CbCr or grey."""
    return pixel_format.startswith(RGB_PREFIXES)


def needs_even(pixel_format: str) -> tuple[bool, bool]:
    """Whether frames of `pixel_format` need an even (width, height): chroma halved across, or also down."""
    halved_across = any(tag in pixel_format for tag in ("420", "422", "411")) or pixel_format.startswith(("nv12", "nv21", "nv16", "p010"))
    halved_down = "420" in pixel_format or pixel_format.startswith(("nv12", "nv21", "p010"))
    return halved_across, halved_down
