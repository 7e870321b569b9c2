"""What each video encoding of the pipeline loses, and how large it is, on a clip of a real photograph.

    python benchmarks/video_codecs.py                                  # 24 frames of 176×144, 12 of 1280×720
    python benchmarks/video_codecs.py --clips 176x144:24 --codecs x265 ffv1
    python benchmarks/video_codecs.py --threads 0                      # ffmpeg's own thread count, as a run encodes

The clip is a slow camera pan (0.4, 1.2 px of the photograph per frame) and zoom-in (0.996 per
frame) through the middle of scikit-image's astronaut photograph (`dip_engine.synthetic.camera_clip`),
bicubically enlarged by the smallest whole factor that holds the frame and its path (3 for
1280×720, which makes that row softer than a camera's own 720p). Its float frames are stored as
the pipeline stores restored frames: quantised to 16 bits (PNG of deep sources) and to 8 bits.

For every codec of `pipeline.io.video_codecs.CODECS` and both stored depths, the frames are
written as `pipeline.work.assembly` assembles a restored video: `VideoOutput(codec).encoding(...)` (the
codec's default pixel format for that depth and size, its crf and options, in its first
container) given to `pipeline.io.VideoWriter`, into a temporary folder; then decoded back with
`pipeline.io.iter_video_frames` (16-bit RGB from sources of more than 8 bits a sample, else 8-bit)
and compared with the stored frames. Reported: PSNR of the decoded clip against the stored
frames (one MSE over all frames and samples; "exact" when every sample is identical), whether it
is bit-exact, the largest error of a sample in 16-bit steps (1/65535; one 8-bit step is 257),
the file's size in KiB and in bits per pixel (file bits / (frames × width × height)), and the
seconds of encoding (writing the frames through VideoWriter, its check of the file included).

Encoders run with `--threads` threads (default 1: `-threads N`, and x265's `pools=N`, which
`-threads` does not reach), so the seconds compare the codecs' single-thread cost; a run's
encodes use ffmpeg's own thread count, which can change x264's and x265's output slightly on
machines with many cores (on 2 cores, --threads 0 gave the same files).
Decoding uses ffmpeg's own thread count (`iter_video_frames` takes none); pin the process to one
core (`taskset -c 0`) to keep it there. Prints a markdown table; not a timed test.
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from dip_engine.synthetic import camera_clip
from pipeline.io import VideoOutput, VideoWriter, iter_video_frames
from pipeline.io.video_codecs import CODECS

PAN = (0.4, 1.2)  # px of the photograph per frame (dy, dx), before it is enlarged
ZOOM = 0.996  # per frame


@dataclass(frozen=True)
class ClipSize:
    """One row group: frames of width × height."""

    width: int
    height: int
    frames: int

    def __str__(self) -> str:
        return f"{self.width}×{self.height}"


def clip_size(text: str) -> ClipSize:
    """`--clips` entry WxH:FRAMES, e.g. 1280x720:12."""
    try:
        size, frames = text.split(":")
        width, height = (int(side) for side in size.lower().split("x"))
        clip = ClipSize(width, height, int(frames))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT:FRAMES such as 1280x720:12, got {text!r}") from None
    if min(clip.width, clip.height, clip.frames) < 1:
        raise argparse.ArgumentTypeError(f"width, height and frames must be >= 1, got {text!r}")
    return clip


def make_clip(size: ClipSize) -> torch.Tensor:
    """(frames, 3, height, width) float in [0, 1]: the camera path through the middle of the astronaut photograph."""
    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    _, photo_h, photo_w = photo.shape
    steps = size.frames - 1
    factor = max(1, math.ceil(max(size.height / (photo_h - PAN[0] * steps), size.width / (photo_w - PAN[1] * steps))))
    if factor > 1:
        photo = F.interpolate(photo.unsqueeze(0), scale_factor=factor, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    dy, dx = PAN[0] * factor, PAN[1] * factor
    start = (photo_h * factor / 2 - dy * steps / 2, photo_w * factor / 2 - dx * steps / 2)  # the path centred on the photograph
    return camera_clip(photo, size.frames, (size.height, size.width), pan=(dy, dx), zoom=ZOOM, start=start)


@dataclass(frozen=True)
class StoredFrames:
    """The clip as the pipeline stores its restored frames: integer samples at `depth` ("uint16" or "uint8")."""

    depth: str
    samples: np.ndarray  # (frames, 3, height, width) of uint16 or uint8

    @classmethod
    def of(cls, clip: torch.Tensor, depth: str) -> StoredFrames:
        top = 65535 if depth == "uint16" else 255
        samples = (clip.double() * top).round().numpy().astype(np.uint16 if depth == "uint16" else np.uint8)
        return cls(depth, samples)

    @property
    def bits(self) -> int:
        return 16 if self.depth == "uint16" else 8

    def frame(self, index: int) -> torch.Tensor:
        """Frame `index` as `pipeline.io.read_image` gives a stored PNG frame: float32 3×H×W in [0, 1]."""
        return torch.from_numpy(self.samples[index].astype(np.float32) / np.float32(65535 if self.depth == "uint16" else 255))

    def steps(self, index: int) -> np.ndarray:
        """Frame `index` in 16-bit steps (an 8-bit sample v is v × 257)."""
        return self.samples[index].astype(np.int64) * (1 if self.depth == "uint16" else 257)


def with_threads(options: Sequence[str], encoder: str, threads: int) -> tuple[str, ...]:
    """The encoder's options limited to `threads` threads (0: unchanged, ffmpeg's own choice)."""
    if threads <= 0:
        return tuple(options)
    limited = list(options)
    if encoder == "libx265":  # libx265 sizes its thread pool itself; -threads does not reach it
        if "-x265-params" in limited:
            at = limited.index("-x265-params") + 1
            limited[at] = f"{limited[at]}:pools={threads}"
        else:
            limited += ["-x265-params", f"pools={threads}"]
    return (*limited, "-threads", str(threads))


@dataclass(frozen=True)
class Row:
    size: ClipSize
    codec: str
    pixel_format: str
    stored_bits: int
    mse: float  # in 16-bit steps squared
    max_error: int  # in 16-bit steps
    bytes: int
    encode_s: float

    def line(self) -> str:
        exact = self.max_error == 0
        psnr = "exact" if exact else f"{10 * math.log10(65535**2 / self.mse):.2f}"
        bpp = self.bytes * 8 / (self.size.frames * self.size.width * self.size.height)
        return (
            f"| {self.size} | {self.codec} | {self.pixel_format} | {self.stored_bits} | {psnr} | {'yes' if exact else 'no'} | "
            f"{self.max_error} | {self.bytes / 1024:.1f} | {bpp:.3f} | {self.encode_s:.2f} |"
        )


def measure(codec: str, stored: StoredFrames, size: ClipSize, folder: Path, fps: float, threads: int) -> Row:
    """Encode `stored` with `codec`'s default encoding for its depth, decode it back, compare."""
    suffix = VideoOutput(codec).spec.suffixes[0]
    encoding = VideoOutput(codec).encoding(stored.depth, size.width, size.height, suffix)
    path = folder / f"{codec}-{stored.bits}bit-{size.width}x{size.height}{suffix}"
    started = time.perf_counter()
    with VideoWriter(
        path,
        fps,
        size.width,
        size.height,
        codec=encoding.encoder,
        crf=encoding.crf,
        pix_fmt=encoding.pixel_format,
        options=with_threads(encoding.options, encoding.encoder, threads),
    ) as writer:
        for index in range(size.frames):
            writer.write(stored.frame(index))
    encode_s = time.perf_counter() - started
    squared, max_error, decoded = 0.0, 0, 0
    with closing(iter_video_frames(path)) as frames:
        for index, frame in enumerate(frames):
            if index >= size.frames or tuple(frame.shape) != (3, size.height, size.width):
                raise RuntimeError(f"{path.name} decodes to more frames than written, or frame {index} is {tuple(frame.shape)}")
            error = np.rint(frame.double().numpy() * 65535).astype(np.int64) - stored.steps(index)
            squared += float(np.square(error, dtype=np.float64).sum())
            max_error = max(max_error, int(np.abs(error).max()))
            decoded += 1
    if decoded != size.frames:
        raise RuntimeError(f"{path.name} decodes to {decoded} frames, {size.frames} were written")
    mse, size_bytes = squared / stored.samples.size, path.stat().st_size
    path.unlink()
    return Row(size, codec, encoding.pixel_format, stored.bits, mse, max_error, size_bytes, encode_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--clips", nargs="+", type=clip_size, default=[ClipSize(176, 144, 24), ClipSize(1280, 720, 12)], help="WIDTHxHEIGHT:FRAMES each"
    )
    parser.add_argument("--codecs", nargs="+", default=[codec.name for codec in CODECS], choices=[codec.name for codec in CODECS])
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--threads", type=int, default=1, help="encoder threads; 0: ffmpeg's own choice, as a run encodes")
    args = parser.parse_args()

    threads = f"{args.threads} encoder thread{'s' if args.threads > 1 else ''}" if args.threads > 0 else "ffmpeg's own encoder threads"
    print(
        f"# {platform.machine()}, ffmpeg {imageio_ffmpeg.get_ffmpeg_version()} (imageio-ffmpeg), {threads}; clip: pan {PAN} px "
        f"and zoom {ZOOM} per frame through the astronaut photograph, at {args.fps:g} fps"
    )
    print(
        "| size | codec | pixel format | stored bits | PSNR vs stored (dB) | bit-exact | max error (1/65535) | KiB | bits/pixel | encode s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="video-codecs-") as temp:
        for size in args.clips:
            clip = make_clip(size)
            stored = [StoredFrames.of(clip, "uint16"), StoredFrames.of(clip, "uint8")]
            del clip
            for codec in args.codecs:
                for frames in stored:
                    print(measure(codec, frames, size, Path(temp), args.fps, args.threads).line(), flush=True)
    print(
        f"\n{', '.join(f'{size}: {size.frames} frames' for size in args.clips)}; KiB and bits/pixel of the whole file (container included)."
    )


if __name__ == "__main__":
    main()
