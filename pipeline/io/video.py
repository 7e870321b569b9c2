"""Video files, streamed frame by frame through the ffmpeg bundled with imageio-ffmpeg.

Nothing here holds a whole video in memory: `iter_video_frames` decodes lazily and
`VideoWriter` encodes each frame as it is written. Frames are float32 3×H×W tensors in [0, 1],
decoded at the source's depth: as 8-bit RGB from 8-bit sources, as 16-bit RGB (ffmpeg's rgb48le)
from sources of more than 8 bits a sample (10-, 12-, 16-bit, float), so that nothing is lost
before the engine. Frames are the stored orientation: a rotation tag is not applied (ffmpeg's
-noautorotate) but copied to a restored video (`VideoWriter(streams_from=...)`). Supported
containers: .mp4 .avi .mov .mkv.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any

import imageio_ffmpeg
import numpy as np
import torch

from pipeline.io._ffmpeg import ffmpeg_url, run_ffmpeg
from pipeline.io._pixels import check_pixels, hwc_to_tensor, quantise, to_unit_float
from pipeline.io.atomic import atomic_path, temp_path_for
from pipeline.io.frame_timing import FrameTiming, probe_frame_timing
from pipeline.io.pixel_formats import bits_of, needs_even, pixel_format_bits
from pipeline.io.stream_copy import COPIED_KINDS, CopyRequest, StreamCopy, carried_colour, copy_streams
from pipeline.io.video_streams import probe_streams

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv")


class VideoReadError(ValueError):
    """A video file is missing, unreadable or not a video; the message says which file and what to do."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` finds out about a video file."""

    fps: float  # frames per second as ffmpeg reports it (0.0 if the file does not say)
    width: int  # of the decoded frames: as stored (a rotation tag is not applied, see the module docstring)
    height: int
    frames: int | None  # counted by decoding the stream; None if that failed or was skipped
    has_audio: bool
    expected_frames: int | None = None  # what the container's header promises: duration × rate (None if it does not say)
    pixel_format: str | None = None  # of the video stream, e.g. yuv420p10le (None if ffmpeg does not say)
    bits: int = 8  # per sample of that pixel format: more than 8 decodes as 16-bit RGB
    timing: FrameTiming | None = None  # the frames' durations (variable frame rate?); None if skipped or unknown


def is_video_path(path: PurePath | str) -> bool:
    """Whether `path` has a supported video extension (.mp4 .avi .mov .mkv, any case)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _check_video_file(path: Path | str) -> Path:
    path = Path(path)
    if not is_video_path(path):
        raise VideoReadError(
            f"cannot read {path}: unsupported extension {path.suffix or '(none)'!r}; "
            f"supported video extensions are {', '.join(VIDEO_SUFFIXES)}",
            path,
        )
    if not path.exists():
        raise VideoReadError(f"cannot read {path}: no such file; check the path and that the file was copied", path)
    if not path.is_file():
        raise VideoReadError(f"cannot read {path}: it is a folder or special file, not a video file", path)
    return path


def _short(error: BaseException) -> str:
    """An exception's message without ffmpeg's banner: its first line and the last three of the log."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.startswith("===")]
    if len(lines) > 4:
        lines = lines[:1] + lines[-3:]
    return " | ".join(lines)[-600:]


def _cannot_decode(path: Path, error: BaseException) -> VideoReadError:
    return VideoReadError(
        f"cannot decode {path} as a video: {type(error).__name__}: {_short(error)}; "
        "check the file is a complete, playable video (it may be truncated or damaged)",
        path,
    )


def _first_meta(path: Path, reader: Generator[Any, None, None]) -> dict[str, Any]:
    """The metadata dict that imageio_ffmpeg.read_frames yields first."""
    try:
        meta = next(reader)
    except Exception as err:  # IOError from ffmpeg, IndexError/AttributeError from parsing its log
        raise _cannot_decode(path, err) from err
    if not isinstance(meta, dict) or "size" not in meta:
        raise VideoReadError(f"cannot decode {path} as a video: ffmpeg found no video stream in it", path)
    return meta


def _count_frames(path: Path) -> int | None:
    try:
        frames, _seconds = imageio_ffmpeg.count_frames_and_secs(ffmpeg_url(path))
    except Exception:  # RuntimeError when ffmpeg cannot tell; the count is optional
        return None
    return int(frames) if frames is not None else None


def _timing(path: Path) -> FrameTiming | None:
    try:
        return probe_frame_timing(path)
    except RuntimeError:  # ffmpeg cannot list the packets; the timing is optional
        return None


def probe_video(path: Path | str, *, count_frames: bool = True) -> VideoInfo:
    """Frame rate, frame size, frame count, pixel format, frame timing and whether there is an audio track.

    The frame count comes from decoding the whole video stream (exact, but it takes a while for
    long videos) and the timing from listing its packets; pass `count_frames=False` to skip both
    (frames and timing are then None). `expected_frames` is what the container's header promises
    instead, its duration times its rate (rounded; the duration is the container's, to 1/100 s): a
    truncated file decodes fewer frames than that. It is None when the header does not say, and
    when an audio track longer than the picture is what fills the container's duration.
    Raises VideoReadError for a missing, unsupported or undecodable file.
    """
    path = _check_video_file(path)
    reader = imageio_ffmpeg.read_frames(ffmpeg_url(path), input_params=["-noautorotate"])
    try:
        meta = _first_meta(path, reader)
    finally:
        reader.close()  # stops ffmpeg
    width, height = meta["size"]
    fps, duration = float(meta.get("fps") or 0.0), float(meta.get("duration") or 0.0)
    pixel_format = str(meta.get("pix_fmt") or "").split("(", 1)[0].strip() or None
    timing = _timing(path) if count_frames else None
    return VideoInfo(
        fps=fps,
        width=int(width),
        height=int(height),
        frames=_count_frames(path) if count_frames else None,
        has_audio="audio_codec" in meta,
        expected_frames=_expected_frames(duration, fps, timing),
        pixel_format=pixel_format,
        bits=_sample_bits(pixel_format),
        timing=timing,
    )


def _expected_frames(duration: float, fps: float, timing: FrameTiming | None) -> int | None:
    """The container's duration × rate; None when the audio, not the picture, fills that duration
    (the audio's packets reach it, the video's stop earlier): a longer soundtrack, not a truncated file."""
    if duration <= 0 or fps <= 0:
        return None
    audio_end = timing.audio_end_s if timing is not None else None
    if timing is not None and audio_end is not None and timing.video_end_s < audio_end and duration - audio_end < 1.5 / fps:
        return None
    return round(duration * fps)


def _sample_bits(pixel_format: str | None) -> int:
    """Bits a sample of a source's `pixel_format` holds; 8 when ffmpeg does not say or know it."""
    return pixel_format_bits().get(pixel_format or "", 8)


def _source_is_deep(path: Path) -> bool:
    """Whether the video stream of `path` has more than 8 bits a sample (decoded as 16-bit RGB)."""
    try:
        pixel_format = probe_streams(path).pixel_format
    except ValueError as err:
        raise _cannot_decode(path, err) from err
    return _sample_bits(pixel_format) > 8


def _frame_tensor(raw: bytes, height: int, width: int, deep: bool) -> torch.Tensor:
    samples = np.frombuffer(raw, dtype="<u2" if deep else np.uint8).reshape(height, width, 3)
    return hwc_to_tensor(to_unit_float(samples.astype(np.uint16) if deep else samples))


def _decode_frames(path: Path, start: int, stop: int | None) -> Generator[torch.Tensor, None, None]:
    if stop is not None and stop <= start:
        return  # an empty range: no need to start ffmpeg
    deep = _source_is_deep(path)
    output_params = ["-an", "-sn", "-dn"]
    if start > 0:  # ffmpeg drops the frames before start itself: they are decoded, but never converted or piped
        output_params += ["-vf", f"select=gte(n\\,{start})", "-fps_mode", "passthrough"]
    if stop is not None:
        output_params += ["-frames:v", str(stop - start)]
    reader = imageio_ffmpeg.read_frames(
        ffmpeg_url(path),
        pix_fmt="rgb48le" if deep else "rgb24",
        bits_per_pixel=48 if deep else 24,
        input_params=["-noautorotate"],
        output_params=output_params,
    )
    try:
        width, height = _first_meta(path, reader)["size"]
        index = start
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                return
            except Exception as err:
                raise VideoReadError(
                    f"cannot decode frame {index} of {path}: {_short(err)}; the video may be truncated or damaged",
                    path,
                ) from err
            yield _frame_tensor(raw, height, width, deep)
            index += 1
    finally:
        reader.close()  # stops ffmpeg, also when the caller closes this generator early


def iter_video_frames(path: Path | str, start: int = 0, stop: int | None = None) -> Generator[torch.Tensor, None, None]:
    """Yield frames `start` to `stop - 1` (all to the end if stop is None) as float32 3×H×W in [0, 1].

    A source of more than 8 bits a sample is decoded as 16-bit RGB (its low bits kept), an 8-bit
    one as 8-bit RGB; frames are the stored orientation (no rotation applied).

    Frames are decoded lazily, one at a time. ffmpeg starts at the first `next()` and is stopped
    when the generator finishes, is closed (`.close()`, or leaving a `with contextlib.closing(...)`
    block) or is garbage-collected. Frames before `start` are decoded and dropped inside ffmpeg
    (its select filter: exact frame indices, no seeking by timestamp), so starting late in a long
    video still costs decoding time, though not the conversion and transfer of those frames.
    The file is checked now (VideoReadError if missing or unsupported); decoding errors raise
    VideoReadError from the iteration.
    """
    path = _check_video_file(path)
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start!r}")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or stop < start):
        raise ValueError(f"stop must be None or an integer >= start ({start}), got {stop!r}")
    return _decode_frames(path, start, stop)


def _check_even(pix_fmt: str, width: int, height: int) -> None:
    """Chroma-subsampled formats need even sizes; this module raises instead of padding or scaling."""
    even_width, even_height = needs_even(pix_fmt)
    if (even_width and width % 2) or (even_height and height % 2):
        raise ValueError(
            f"{pix_fmt} video needs an even width and height, got {width}×{height}; crop or pad the frames "
            f"to {width + width % 2}×{height + height % 2}, or use pix_fmt='yuv444p' or lossless=True"
        )


class VideoWriter:
    """Encode frames into a video file, atomically: the file appears only after a clean exit.

    ::

        with VideoWriter(Path("out/clip.mp4"), fps=25, width=640, height=480) as writer:
            for frame in frames:
                writer.write(frame)  # 3×H×W (or 1×H×W) float in [0, 1]

    Frames go to a hidden temporary file beside the target that keeps the extension (ffmpeg picks
    the container from it), e.g. ``.clip.mp4.4711-3f9a2c.tmp.mp4``. On a clean exit ffmpeg is
    finished, the result is checked to be a readable video and renamed onto `path`; if the block
    raises, or no frame was written, the temporary file is removed and `path` is untouched.

    Encoding: `codec` (an ffmpeg encoder, default libx264) at constant quality `crf` (x264 scale,
    0 to 51, lower is better; None leaves the codec's default, and codecs without one need None),
    with the encoder's own `options` (e.g. ``("-profile:v", "3")``), in `pix_fmt` (default yuv420p,
    which plays everywhere but needs even width and height: an odd size raises ValueError rather
    than being padded). Frames reach ffmpeg as 8-bit RGB, or as 16-bit RGB (rgb48le) when
    `pix_fmt` has more than 8 bits a sample, so a 10-, 12- or 16-bit output gets the frames' low
    bits too. `lossless=True` overrides codec and pixel format with lossless RGB H.264 (libx264rgb,
    qp 0): 8-bit frames read back bit-exact (for 16 bits, FFV1 in .mkv with pix_fmt gbrp16le).

    `streams_from` (the source video) copies, unchanged (`pipeline.io.stream_copy`), its audio,
    subtitle, data and attachment streams, its tags and chapters, and its video stream's tags,
    rotation and colour tags (the frames are converted to Y'CbCr with its colour matrix and range);
    a stream the container cannot hold is left out, and `streams` (after the block) says what was
    copied and dropped. `audio_from` copies only the audio streams of another file (unchanged,
    whole; a file without audio is ignored). `root`: the output folder the video must resolve
    inside (see `atomic_path`).
    """

    def __init__(
        self,
        path: Path | str,
        fps: float,
        width: int,
        height: int,
        *,
        codec: str = "libx264",
        crf: int | None = 18,
        pix_fmt: str = "yuv420p",
        lossless: bool = False,
        preset: str | None = None,
        options: Sequence[str] = (),
        streams_from: Path | str | None = None,
        audio_from: Path | str | None = None,
        root: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.root = root
        if not is_video_path(self.path):
            raise ValueError(f"cannot write {self.path}: use a video extension, one of {', '.join(VIDEO_SUFFIXES)}")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        if not all(isinstance(n, int) and n >= 1 for n in (width, height)):
            raise ValueError(f"width and height must be integers >= 1, got {width!r}×{height!r}")
        if streams_from is not None and audio_from is not None:
            raise ValueError("give streams_from (every stream and the tags of the source) or audio_from (its audio only), not both")
        self.fps, self.width, self.height = float(fps), width, height
        self.codec, self.pix_fmt = ("libx264rgb", "rgb24") if lossless else (codec, pix_fmt)
        _check_even(self.pix_fmt, width, height)
        self.samples = "uint16" if bits_of(self.pix_fmt) > 8 else "uint8"  # what ffmpeg is fed: rgb48le or rgb24
        self.lossless, self.crf, self.preset, self.options = lossless, crf, preset, tuple(options)
        self.streams_from = Path(streams_from) if streams_from is not None else None
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.frames_written = 0
        self.streams: StreamCopy | None = None  # what was copied from streams_from / audio_from, once written
        self._copy: CopyRequest | None = None
        self._encoder: Generator[None, Any, None] | None = None
        self._stack: ExitStack | None = None
        self._tmp: Path | None = None
        self._encoded: Path | None = None

    def _copy_request(self) -> CopyRequest | None:
        """What to copy from the source (probed now), or None when there is nothing to copy."""
        source = self.streams_from or self.audio_from
        if source is None:
            return None
        try:
            info = probe_streams(source)
        except ValueError as err:
            raise VideoReadError(f"cannot copy the streams of {source}: {err}", source) from err
        if self.streams_from is None:
            request = CopyRequest(source, info, ("audio",), everything=False)
            return request if request.candidates() else None
        try:
            timing = probe_frame_timing(source, packets=16)
        except RuntimeError:
            timing = None
        return CopyRequest(source, info, COPIED_KINDS, everything=True, video_start=timing.start_s if timing is not None else 0.0)

    def _output_params(self) -> list[str]:
        params = ["-qp", "0"] if self.lossless else ([] if self.crf is None else ["-crf", str(self.crf)])
        if self.preset is not None:
            params += ["-preset", self.preset]
        source = self._copy.info if self._copy is not None and self._copy.everything else None
        colour = carried_colour(source, self.pix_fmt) if source is not None else None
        if colour is not None:  # converted to Y'CbCr with the source's matrix and range, as the stream is tagged
            params += ["-colorspace", colour.space] if colour.space is not None else []
            params += ["-color_range", colour.range] if colour.range is not None else []
        if source is not None and source.sample_aspect is not None:  # non-square pixels (DV, anamorphic) stay so
            params += ["-vf", "setsar={}/{}".format(*source.sample_aspect)]
        return [*params, *self.options]

    def _start_encoder(self, target: Path) -> Generator[None, Any, None]:
        encoder = imageio_ffmpeg.write_frames(
            ffmpeg_url(target),
            (self.width, self.height),
            pix_fmt_in="rgb48le" if self.samples == "uint16" else "rgb24",
            pix_fmt_out=self.pix_fmt,
            fps=self.fps,
            quality=None,
            codec=self.codec,
            macro_block_size=1,  # never let imageio-ffmpeg rescale frames
            ffmpeg_log_level="error",
            output_params=self._output_params(),
        )
        encoder.send(None)  # starts ffmpeg
        return encoder

    def __enter__(self) -> VideoWriter:
        if self._stack is not None:
            raise RuntimeError(f"VideoWriter for {self.path} is already open")
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path, keep_suffix=True, root=self.root))
            self._tmp = tmp
            self._copy = self._copy_request()
            encoded = tmp
            if self._copy is not None:  # the encoder's own file, muxed with the source's streams into tmp at the end
                encoded = temp_path_for(self.path, keep_suffix=True)
                stack.callback(encoded.unlink, missing_ok=True)
            self._encoded = encoded
            encoder = self._start_encoder(encoded)
            stack.callback(encoder.close)  # runs before atomic_path's exit (last in, first out)
            self._encoder = encoder
            self._stack = stack.pop_all()
        return self

    def write(self, frame: torch.Tensor) -> None:
        """Encode one frame: a float 3×H×W (or 1×H×W grey) tensor in [0, 1] of the writer's size."""
        if self._encoder is None:
            raise RuntimeError("VideoWriter is not open; use it as `with VideoWriter(...) as writer:`")
        pixels = check_pixels(frame, "frame", (1, 3))
        if tuple(pixels.shape[1:]) != (self.height, self.width):
            raise ValueError(f"frame is {pixels.shape[1]}×{pixels.shape[2]} (H×W) but the video {self.path} is {self.height}×{self.width}")
        samples = quantise(pixels.expand(3, -1, -1), self.samples)
        try:
            self._encoder.send(samples.astype("<u2").tobytes() if self.samples == "uint16" else samples.tobytes())
        except OSError as err:
            where = f"frame {self.frames_written} of {self.path}"
            raise OSError(f"ffmpeg stopped while writing {where}: {_short(err)}") from err
        self.frames_written += 1

    def _finish(self) -> None:
        """Flush ffmpeg, copy the source's streams in, and check the temporary file is a readable video (before it is renamed)."""
        assert self._encoder is not None and self._tmp is not None and self._encoded is not None
        if self.frames_written == 0:
            raise ValueError(f"no frames were written to {self.path}; it was not created")
        self._encoder.close()  # waits for ffmpeg to finish the file
        if not self._encoded.is_file() or self._encoded.stat().st_size == 0:
            raise OSError(f"ffmpeg produced no output for {self.path}; see its messages above")
        if self._copy is not None:
            self.streams = copy_streams(self._encoded, self._copy, self._tmp, self.pix_fmt)
        try:  # decode the first picture and stop: a reader closed early would leave ffmpeg to be killed after a timeout
            run_ffmpeg(["-noautorotate", "-i", ffmpeg_url(self._tmp), "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-"])
        except RuntimeError as err:
            raise OSError(f"ffmpeg wrote an unreadable video for {self.path}, so it was not kept: {_short(err)}") from err

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        try:
            if exc_type is None:
                with stack:  # an error in _finish unwinds the stack: ffmpeg stopped, temporary files removed
                    self._finish()
                return False
            return bool(stack.__exit__(exc_type, exc, tb))
        finally:
            self._encoder = None
