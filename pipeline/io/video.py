"""Video files, streamed frame by frame through the ffmpeg bundled with imageio-ffmpeg.

Nothing here holds a whole video in memory: `iter_video_frames` decodes lazily and
`VideoWriter` encodes each frame as it is written. Frames are float32 3×H×W tensors in [0, 1]
(8-bit RGB in the file). Supported containers: .mp4 .avi .mov .mkv.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any

import imageio_ffmpeg
import numpy as np
import torch

from pipeline.io._ffmpeg import ffmpeg_url
from pipeline.io._pixels import check_pixels, hwc_to_tensor, quantise, to_unit_float
from pipeline.io.atomic import atomic_path

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
    width: int  # of the decoded frames (after any rotation ffmpeg applies)
    height: int
    frames: int | None  # counted by decoding the stream; None if that failed or was skipped
    has_audio: bool
    expected_frames: int | None = None  # what the container's header promises: duration × rate (None if it does not say)


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


def probe_video(path: Path | str, *, count_frames: bool = True) -> VideoInfo:
    """Frame rate, frame size, frame count and whether there is an audio track.

    The frame count comes from decoding the whole video stream (exact, but it takes a while for
    long videos); pass `count_frames=False` to skip it (frames is then None). `expected_frames`
    is what the container's header promises instead, its duration times its rate (rounded; the
    duration is the container's, to 1/100 s): a truncated file decodes fewer frames than that.
    Raises VideoReadError for a missing, unsupported or undecodable file.
    """
    path = _check_video_file(path)
    reader = imageio_ffmpeg.read_frames(ffmpeg_url(path))
    try:
        meta = _first_meta(path, reader)
    finally:
        reader.close()  # stops ffmpeg
    width, height = meta["size"]
    fps, duration = float(meta.get("fps") or 0.0), float(meta.get("duration") or 0.0)
    return VideoInfo(
        fps=fps,
        width=int(width),
        height=int(height),
        frames=_count_frames(path) if count_frames else None,
        has_audio="audio_codec" in meta,
        expected_frames=round(duration * fps) if duration > 0 and fps > 0 else None,
    )


def _frame_tensor(raw: bytes, height: int, width: int) -> torch.Tensor:
    samples = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
    return hwc_to_tensor(to_unit_float(samples))


def _decode_frames(path: Path, start: int, stop: int | None) -> Generator[torch.Tensor, None, None]:
    if stop is not None and stop <= start:
        return  # an empty range: no need to start ffmpeg
    output_params = ["-an", "-sn"]
    if start > 0:  # ffmpeg drops the frames before start itself: they are decoded, but never converted or piped
        output_params += ["-vf", f"select=gte(n\\,{start})", "-fps_mode", "passthrough"]
    if stop is not None:
        output_params += ["-frames:v", str(stop - start)]
    reader = imageio_ffmpeg.read_frames(ffmpeg_url(path), pix_fmt="rgb24", output_params=output_params)
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
            yield _frame_tensor(raw, height, width)
            index += 1
    finally:
        reader.close()  # stops ffmpeg, also when the caller closes this generator early


def iter_video_frames(path: Path | str, start: int = 0, stop: int | None = None) -> Generator[torch.Tensor, None, None]:
    """Yield frames `start` to `stop - 1` (all to the end if stop is None) as float32 3×H×W in [0, 1].

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
    needs_even_width = "420" in pix_fmt or "422" in pix_fmt or pix_fmt in ("nv12", "nv21")
    needs_even_height = "420" in pix_fmt or pix_fmt in ("nv12", "nv21")
    if (needs_even_width and width % 2) or (needs_even_height and height % 2):
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

    Encoding: `codec` (default libx264) at constant quality `crf` (x264 scale, 0 to 51, lower is
    better; None leaves the codec's default) and `pix_fmt` (default yuv420p, which plays
    everywhere but needs even width and height: an odd size raises ValueError rather than being
    padded). `lossless=True` overrides codec and pixel format with lossless RGB H.264
    (libx264rgb, qp 0): frames read back bit-exact. `audio_from` copies (re-encoding to AAC) the
    first audio track of another file, such as the source video, cut (or padded with silence) to
    the video's length; a file without audio is ignored. `root`: the output folder the video must
    resolve inside (see `atomic_path`).
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
        self.fps, self.width, self.height = float(fps), width, height
        self.codec, self.pix_fmt = ("libx264rgb", "rgb24") if lossless else (codec, pix_fmt)
        _check_even(self.pix_fmt, width, height)
        self.lossless, self.crf, self.preset = lossless, crf, preset
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.frames_written = 0
        self._encoder: Generator[None, Any, None] | None = None
        self._stack: ExitStack | None = None
        self._tmp: Path | None = None

    def _output_params(self) -> list[str]:
        params = ["-qp", "0"] if self.lossless else ([] if self.crf is None else ["-crf", str(self.crf)])
        if self.preset is not None:
            params += ["-preset", self.preset]
        return params

    def _start_encoder(self, tmp: Path) -> Generator[None, Any, None]:
        audio: dict[str, Any] = {}
        output_params = self._output_params()
        if self.audio_from is not None and probe_video(self.audio_from, count_frames=False).has_audio:
            audio = {"audio_path": ffmpeg_url(self.audio_from), "audio_codec": "aac"}
            # Silence pads an audio track shorter than the video, so that -shortest cuts the audio
            # to the video's length and never drops the video's last frames.
            output_params += ["-af", "apad", "-shortest"]
        encoder = imageio_ffmpeg.write_frames(
            ffmpeg_url(tmp),
            (self.width, self.height),
            pix_fmt_in="rgb24",
            pix_fmt_out=self.pix_fmt,
            fps=self.fps,
            quality=None,
            codec=self.codec,
            macro_block_size=1,  # never let imageio-ffmpeg rescale frames
            ffmpeg_log_level="error",
            output_params=output_params,
            **audio,
        )
        encoder.send(None)  # starts ffmpeg
        return encoder

    def __enter__(self) -> VideoWriter:
        if self._stack is not None:
            raise RuntimeError(f"VideoWriter for {self.path} is already open")
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path, keep_suffix=True, root=self.root))
            self._tmp = tmp
            encoder = self._start_encoder(tmp)
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
        samples = quantise(pixels.expand(3, -1, -1), "uint8")
        try:
            self._encoder.send(samples.tobytes())
        except OSError as err:
            where = f"frame {self.frames_written} of {self.path}"
            raise OSError(f"ffmpeg stopped while writing {where}: {_short(err)}") from err
        self.frames_written += 1

    def _finish(self) -> None:
        """Flush ffmpeg and check the temporary file is a readable video (before it is renamed)."""
        assert self._encoder is not None and self._tmp is not None
        if self.frames_written == 0:
            raise ValueError(f"no frames were written to {self.path}; it was not created")
        self._encoder.close()  # waits for ffmpeg to finish the file
        if not self._tmp.is_file() or self._tmp.stat().st_size == 0:
            raise OSError(f"ffmpeg produced no output for {self.path}; see its messages above")
        reader = imageio_ffmpeg.read_frames(ffmpeg_url(self._tmp))
        try:
            _first_meta(self._tmp, reader)
        except VideoReadError as err:
            raise OSError(f"ffmpeg wrote an unreadable video for {self.path}, so it was not kept: {err}") from err
        finally:
            reader.close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        try:
            if exc_type is None:
                with stack:  # an error in _finish unwinds the stack: ffmpeg stopped, temp file removed
                    self._finish()
                return False
            return bool(stack.__exit__(exc_type, exc, tb))
        finally:
            self._encoder = None
