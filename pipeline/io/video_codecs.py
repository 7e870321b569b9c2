"""The encoders a restored video can be written with (`pipeline run --video-codec`), and their formats.

* x264 (default): H.264, 8-bit 4:2:0 at constant quality crf 18. Plays everywhere; lossy.
* x265: H.265/HEVC, 10-bit 4:2:0 at crf 20: about half the size of x264 for the same quality,
  and keeps 10 bits; lossy; plays on recent devices.
* prores: Apple ProRes 422 HQ (prores_ks), 10-bit 4:2:2, in .mov or .mkv: nearly lossless,
  large, what editing software takes.
* ffv1: FFV1 version 3, lossless, in Matroska (.mkv): the frames as the pipeline stored them
  (8-bit RGB, or 16-bit RGB for deeper sources) read back bit-exact. For archives.

A pixel format (`--video-pixel-format`, an ffmpeg pix_fmt) overrides the codec's default; it must be
one the encoder accepts (`pipeline.io.pixel_formats.encoder_pixel_formats`). The defaults follow
the depth of the stored frames (see `VideoOutput.encoding`), and a default whose chroma
subsampling needs even sides gives way to 4:4:4 for frames of an odd size.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePath

from pipeline.io.pixel_formats import needs_even

CONTAINERS: dict[str, str] = {".mkv": "Matroska (.mkv)", ".mp4": "MP4 (.mp4)", ".mov": "QuickTime (.mov)", ".avi": "AVI (.avi)"}


class VideoCodecName(str, Enum):
    """`pipeline run --video-codec`."""

    x264 = "x264"
    x265 = "x265"
    ffv1 = "ffv1"
    prores = "prores"


@dataclass(frozen=True)
class VideoCodec:
    """One choice of `--video-codec`: its ffmpeg encoder, the containers that hold it, its defaults."""

    name: str
    encoder: str  # the ffmpeg encoder
    title: str  # for messages
    suffixes: tuple[str, ...]  # the output extensions whose container holds it
    crf: int | None  # constant quality, None for codecs without it
    pixel_format: str  # default for 8-bit stored frames
    deep_pixel_format: str  # default for 16-bit stored frames
    odd_pixel_format: str | None  # the default for frames whose size the default's subsampling does not fit

    def options(self, pixel_format: str, suffix: str) -> tuple[str, ...]:
        """The encoder's own options for `pixel_format` in a container of `suffix`."""
        if self.name == "x265":
            tag = ("-tag:v", "hvc1") if suffix in (".mp4", ".mov") else ()  # what Apple players look for
            return ("-x265-params", "log-level=error", *tag)
        if self.name == "prores":
            return ("-profile:v", "4" if "444" in pixel_format else "3")  # 4444 for 4:4:4, else 422 HQ
        if self.name == "ffv1":
            return ("-level", "3", "-g", "1", "-slicecrc", "1")  # every frame a keyframe, slices checksummed
        return ()


CODECS: tuple[VideoCodec, ...] = (
    VideoCodec("x264", "libx264", "H.264 (libx264)", (".mp4", ".mkv", ".mov", ".avi"), 18, "yuv420p", "yuv420p", "yuv444p"),
    VideoCodec("x265", "libx265", "H.265/HEVC (libx265)", (".mp4", ".mkv", ".mov"), 20, "yuv420p10le", "yuv420p10le", "yuv444p10le"),
    VideoCodec("ffv1", "ffv1", "FFV1 (lossless)", (".mkv",), None, "bgr0", "gbrp16le", None),
    VideoCodec("prores", "prores_ks", "Apple ProRes (prores_ks)", (".mov", ".mkv"), None, "yuv422p10le", "yuv422p10le", "yuv444p10le"),
)


def video_codec(name: str) -> VideoCodec:
    """The codec named `name`; ValueError listing the choices for any other name."""
    for codec in CODECS:
        if codec.name == name:
            return codec
    raise ValueError(f"unknown video codec {name!r}; choose one of {', '.join(codec.name for codec in CODECS)}")


def fits(pixel_format: str, width: int, height: int) -> bool:
    """Whether frames of width × height can be stored in `pixel_format` (its chroma subsampling)."""
    even_width, even_height = needs_even(pixel_format)
    return not ((even_width and width % 2) or (even_height and height % 2))


@dataclass(frozen=True)
class VideoEncoding:
    """How one video is encoded: what `pipeline.io.VideoWriter` is given."""

    encoder: str
    pixel_format: str
    crf: int | None
    options: tuple[str, ...]


@dataclass(frozen=True)
class VideoOutput:
    """A run's choice of video encoding: `--video-codec` and `--video-pixel-format` (None: the codec's default)."""

    codec: str = "x264"
    pixel_format: str | None = None

    def __post_init__(self) -> None:
        video_codec(self.codec)  # an unknown name fails here, listing the choices

    @property
    def spec(self) -> VideoCodec:
        return video_codec(self.codec)

    def default_pixel_format(self, stored_depth: str, width: int, height: int) -> str:
        """The codec's default for frames stored at `stored_depth` ("uint8" or "uint16") of this size."""
        spec = self.spec
        chosen = spec.deep_pixel_format if stored_depth != "uint8" else spec.pixel_format
        if spec.odd_pixel_format is not None and not fits(chosen, width, height):
            return spec.odd_pixel_format
        return chosen

    def encoding(self, stored_depth: str, width: int, height: int, suffix: str) -> VideoEncoding:
        """The encoder, pixel format and options for frames stored at `stored_depth`, written to a `suffix` file."""
        spec = self.spec
        pixel_format = self.pixel_format or self.default_pixel_format(stored_depth, width, height)
        return VideoEncoding(spec.encoder, pixel_format, spec.crf, spec.options(pixel_format, suffix.lower()))

    def problems(self, output: PurePath, size: tuple[int, int] | None, accepted: Collection[str]) -> list[str]:
        """What keeps a video row from being written to `output` this way, one sentence each (none: it can be).

        `size` is the output frames' (width, height) when known; `accepted` the pixel formats the
        codec's encoder takes (`encoder_pixel_formats`).
        """
        spec, suffix = self.spec, output.suffix.lower()
        found = []
        if suffix not in spec.suffixes:
            holders = " or ".join(CONTAINERS.get(name, name) for name in spec.suffixes)
            found.append(
                f"--video-codec {spec.name} writes {spec.title}, which goes in {holders}, but the output {output.as_posix()} "
                f"is {CONTAINERS.get(suffix, suffix or 'without an extension')}; give the row an output ending in "
                f"{spec.suffixes[0]} (column 'output', e.g. {output.with_suffix(spec.suffixes[0]).as_posix()}), or choose another --video-codec"
            )
        if self.pixel_format is not None and self.pixel_format not in accepted:
            found.append(
                f"--video-pixel-format {self.pixel_format} is not one {spec.encoder} accepts ({' '.join(accepted) or 'ffmpeg lists none'}); "
                f"choose one of those, or leave the option out for the codec's default"
            )
        elif self.pixel_format is not None and size is not None and not fits(self.pixel_format, *size):
            found.append(
                f"--video-pixel-format {self.pixel_format} halves the chroma resolution and needs an even width and height, but "
                f"the output frames are {size[0]}x{size[1]} (WxH); choose a 4:4:4 format (e.g. yuv444p or yuv444p10le) or leave "
                "the option out (the default then switches to 4:4:4 itself)"
            )
        return found
