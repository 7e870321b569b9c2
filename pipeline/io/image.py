"""Still images: read PNG, JPEG and TIFF into float tensors, probe their size, write them atomically.

Reading picks the decoder from the file's content (its first bytes), not its extension, so a
mis-named file still reads; the extension only has to be a supported one. PNG and JPEG decode
through imageio (Pillow), TIFF through tifffile. 16-bit colour PNGs, which Pillow would silently
reduce to 8 bits, decode (and encode) through the ffmpeg binary bundled with imageio-ffmpeg.

Conversion rules (shared by `read_image` and `probe_image`):

* samples: uint8 / 255, uint16 / 65535, 1-bit as 0 or 1, floating point (16/32/64-bit) is
  assumed to be in [0, 1] already: kept as float32, NaN set to 0, values outside [0, 1] clipped.
  Other sample types (signed or 32-bit integers, complex) are rejected.
* channels: 1 (grey) and 3 (RGB) are kept; grey + alpha and RGBA lose the alpha channel;
  palette images become RGB; CMYK JPEGs are converted to RGB by Pillow.
* JPEG: the EXIF orientation is applied (the image comes out the way viewers show it). PNG and
  TIFF pixels are taken as stored.
* TIFF: the first page only; planar ("channels-first", S×H×W) pages are handled; min-is-white
  grey is inverted to min-is-black; palette TIFFs are expanded through their colour map; CMYK,
  CIELab and other photometric interpretations are rejected. LZW-, PackBits- and JPEG-compressed
  TIFFs need the optional `imagecodecs` package (deflate and uncompressed do not).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TypeVar

import imageio.v3 as iio
import numpy as np
import tifffile
import torch

from pipeline.io._ffmpeg import ffmpeg_url, run_ffmpeg
from pipeline.io._pixels import BIT_DEPTHS, bit_depth_of, check_pixels, hwc_to_tensor, quantise, to_unit_float
from pipeline.io.atomic import atomic_path

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_T = TypeVar("_T")
_ADVICE = "check the file is a PNG, JPEG or TIFF image (it may be truncated or damaged)"


class ImageReadError(ValueError):
    """An image file is missing, unreadable, or holds something this pipeline cannot use.

    The message names the file, what is wrong, and what to do; `path` holds the file.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image. (eq=False: tensors have no single truth value, so identity equality.)"""

    pixels: torch.Tensor  # float32 C×H×W in [0, 1], C = 1 (grey) or 3 (RGB)
    bit_depth: str  # how the samples were stored: "uint8" | "uint16" | "float32"
    format: str  # what the content was: "png" | "jpeg" | "tiff"


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape for a message: (3, 480, 640) as "3x480x640"."""
    return "x".join(str(side) for side in shape)


def is_image_path(path: PurePath | str) -> bool:
    """Whether `path` has a supported image extension (.png .jpg .jpeg .tif .tiff, any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _format_of_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}[suffix]


def _cannot_decode(path: Path, reason: str) -> ImageReadError:
    advice = _ADVICE
    if "imagecodecs" in reason:
        advice = "install the optional imagecodecs package (pip install imagecodecs) to read this TIFF compression"
    return ImageReadError(f"cannot decode {path} as an image: {reason}; {advice}", path)


def _check_readable(path: Path | str) -> Path:
    """The path, after checking it names an existing file with a supported extension."""
    path = Path(path)
    if not is_image_path(path):
        supported = ", ".join(IMAGE_SUFFIXES)
        raise ImageReadError(
            f"cannot read {path}: unsupported extension {path.suffix or '(none)'!r}; supported image extensions are {supported}",
            path,
        )
    if not path.exists():
        raise ImageReadError(f"cannot read {path}: no such file; check the path and that the file was copied", path)
    if not path.is_file():
        raise ImageReadError(f"cannot read {path}: it is a folder or special file, not an image file", path)
    return path


def _sniff(path: Path) -> str:
    """The image format of the file's content: "png", "jpeg" or "tiff"."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise ImageReadError(f"cannot read {path}: {err.strerror or err}; check the file's permissions", path) from err
    if not head:
        raise _cannot_decode(path, "the file is empty (0 bytes)")
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in _TIFF_SIGNATURES:
        return "tiff"
    raise _cannot_decode(path, f"its content is not PNG, JPEG or TIFF data (it starts with 0x{head.hex()})")


# ----- channels ------------------------------------------------------------------------------


def _kept_channels(path: Path, channels: int) -> int:
    """How many channels an image stored with `channels` samples per pixel has after conversion."""
    if channels in (1, 2):
        return 1
    if channels in (3, 4):
        return 3
    raise ImageReadError(
        f"cannot use {path}: it has {channels} samples per pixel; supported are 1 (grey), "
        "2 (grey + alpha), 3 (RGB) and 4 (RGBA); convert it to RGB or greyscale first",
        path,
    )


def _check_samples(path: Path, dtype: np.dtype, height: int, width: int) -> str:
    """The bit depth for `dtype`; raises for an unsupported dtype or an empty image."""
    depth = bit_depth_of(dtype)
    if depth is None:
        raise ImageReadError(
            f"cannot use {path}: its samples are of type {dtype}; supported are 8- and 16-bit "
            "unsigned integers and floating point in [0, 1]; convert it (e.g. to 16-bit) first",
            path,
        )
    if height == 0 or width == 0:
        raise _empty_image(path, height, width)
    return depth


def _empty_image(path: Path, height: int, width: int) -> ImageReadError:
    return ImageReadError(f"cannot use {path}: the image is empty ({height}×{width} pixels)", path)


# ----- PNG (header, and the ffmpeg route for 16-bit colour) ----------------------------------


@dataclass(frozen=True)
class _PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int  # 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA

    @property
    def needs_ffmpeg(self) -> bool:
        """Pillow reduces 16-bit colour (and grey + alpha) PNGs to 8 bits; ffmpeg does not."""
        return self.bit_depth == 16 and self.colour_type in (2, 4, 6)


def _png_header(path: Path) -> _PngHeader:
    with open(path, "rb") as handle:
        head = handle.read(33)
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise _cannot_decode(path, "the PNG header (IHDR) is missing or truncated")
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    return _PngHeader(width, height, depth, colour)


def _read_png16(path: Path) -> np.ndarray:
    header = _png_header(path)
    channels = 3 if header.colour_type in (2, 6) else 1
    pix_fmt = "rgb48le" if channels == 3 else "gray16le"
    raw = run_ffmpeg(["-f", "png_pipe", "-i", ffmpeg_url(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"])
    expected = header.height * header.width * channels * 2
    if len(raw) != expected:
        raise RuntimeError(f"ffmpeg decoded {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype="<u2").reshape(header.height, header.width, channels).copy()


def _encode_png16_rgb(samples: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (H×W×3 uint16) as bytes, encoded by ffmpeg (Pillow cannot write 48-bit PNG)."""
    height, width, _ = samples.shape
    args = ["-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{width}x{height}", "-i", "pipe:0"]
    args += ["-frames:v", "1", "-c:v", "png", "-pix_fmt", "rgb48be", "-f", "image2pipe", "pipe:1"]
    return run_ffmpeg(args, stdin=np.ascontiguousarray(samples, dtype="<u2").tobytes())


# ----- Pillow (PNG, JPEG) --------------------------------------------------------------------


def _pillow_mode_for(stored_mode: str) -> str | None:
    """The Pillow mode to convert to while reading (None: keep; imageio expands palettes)."""
    return {"1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}.get(stored_mode)


def _read_pillow(path: Path, fmt: str) -> np.ndarray:
    with iio.imopen(path, "r", plugin="pillow") as image:
        stored_mode = image.metadata(index=0, exclude_applied=False)["mode"]
        return image.read(index=0, mode=_pillow_mode_for(stored_mode), rotate=fmt == "jpeg")  # type: ignore[call-arg]  # the pillow plugin's own options


def _probe_pillow(path: Path, fmt: str) -> tuple[int, int, int, np.dtype]:
    """(samples per pixel, height, width, dtype) without decoding the pixels."""
    with iio.imopen(path, "r", plugin="pillow") as image:
        meta = image.metadata(index=0, exclude_applied=False)
        props = image.properties(index=0)
    height, width = props.shape[:2]
    samples = 1 if len(props.shape) == 2 else props.shape[2]
    if _pillow_mode_for(meta["mode"]) is not None:
        samples = 1 if meta["mode"] == "1" else 3
    if fmt == "jpeg" and meta.get("Orientation") in (5, 6, 7, 8):  # rotated by 90°
        height, width = width, height
    dtype = np.dtype(props.dtype)
    if meta["mode"] == "1":
        dtype = np.dtype(np.uint8)
    elif meta["mode"] == "I" and fmt == "png":  # 16-bit grey opened as int32; imageio reads it as uint16
        dtype = np.dtype(np.uint16)
    return samples, height, width, dtype


# ----- TIFF ----------------------------------------------------------------------------------

_TIFF_PHOTOMETRICS = ("MINISWHITE", "MINISBLACK", "RGB", "PALETTE")


def _tiff_to_yxs(samples: np.ndarray, axes: str) -> np.ndarray:
    """A page's array (axes as tifffile names them, e.g. YX, YXS, SYX) as H×W×S; any other axis
    (a depth, say) is reduced to its first index."""
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"unsupported TIFF page layout {axes!r}")
    kept = "".join(axis for axis in axes if axis in "YXS")
    samples = samples[tuple(slice(None) if axis in "YXS" else 0 for axis in axes)]
    samples = samples.transpose([kept.index(axis) for axis in "YXS" if axis in kept])
    return samples if samples.ndim == 3 else samples[:, :, None]


def _check_tiff_page(path: Path, page: tifffile.TiffPage) -> None:
    if page.imagelength == 0 or page.imagewidth == 0:
        raise _empty_image(path, page.imagelength, page.imagewidth)
    photometric = tifffile.PHOTOMETRIC(page.photometric)
    jpeg_ycbcr = photometric == tifffile.PHOTOMETRIC.YCBCR and page.compression == tifffile.COMPRESSION.JPEG
    if photometric.name not in _TIFF_PHOTOMETRICS and not jpeg_ycbcr:
        raise ImageReadError(
            f"cannot use {path}: its colour space is {photometric.name}; supported are greyscale, "
            "RGB and palette TIFFs; convert it to RGB first",
            path,
        )
    if page.compression != tifffile.COMPRESSION.NONE and page.compression not in tifffile.TIFF.DECOMPRESSORS:
        name = tifffile.COMPRESSION(page.compression).name
        raise ImageReadError(
            f"cannot decode {path}: its {name} compression needs the optional imagecodecs package; "
            "install it (pip install imagecodecs) or re-save the TIFF uncompressed or deflate-compressed",
            path,
        )


def _read_tiff(path: Path) -> np.ndarray:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        _check_tiff_page(path, page)
        samples = _tiff_to_yxs(page.asarray(), page.axes)
        photometric = tifffile.PHOTOMETRIC(page.photometric)
        if photometric == tifffile.PHOTOMETRIC.PALETTE:
            colormap = page.colormap
            rgb = colormap.T[samples[:, :, 0]]
            return (rgb // 257).astype(np.uint8) if np.all(colormap % 257 == 0) else rgb.astype(np.uint16)
        if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            return _invert(samples)
        return samples


def _invert(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.bool_:
        return ~samples
    if np.issubdtype(samples.dtype, np.unsignedinteger):
        return np.iinfo(samples.dtype).max - samples
    if np.issubdtype(samples.dtype, np.floating):
        return 1 - samples
    return samples  # an unsupported dtype, rejected later


def _probe_tiff(path: Path) -> tuple[int, int, int, np.dtype]:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        _check_tiff_page(path, page)
        layout = _tiff_to_yxs(np.broadcast_to(np.empty((), dtype=bool), page.shape), page.axes).shape
        if tifffile.PHOTOMETRIC(page.photometric) == tifffile.PHOTOMETRIC.PALETTE:
            return 3, layout[0], layout[1], np.dtype(np.uint16)
        return layout[2], layout[0], layout[1], np.dtype(page.dtype)


# ----- public reading API --------------------------------------------------------------------


def _decode(path: Path, fmt: str) -> np.ndarray:
    if fmt == "tiff":
        return _read_tiff(path)
    if fmt == "png" and _png_header(path).needs_ffmpeg:
        return _read_png16(path)
    return _read_pillow(path, fmt)


def _guarded(path: Path, action: Callable[[], _T]) -> _T:
    """Run a decoding step, turning any decoder failure into an ImageReadError naming `path`."""
    try:
        return action()
    except (ImageReadError, MemoryError):
        raise
    except Exception as err:  # decoders raise all sorts: OSError, ValueError, KeyError, struct.error...
        raise _cannot_decode(path, f"{type(err).__name__}: {err}") from err


def read_image(path: Path | str) -> LoadedImage:
    """Decode a PNG, JPEG or TIFF file into a float32 C×H×W tensor in [0, 1] (C = 1 or 3).

    See the module docstring for the conversion rules. Raises ImageReadError for a missing file,
    an unsupported extension, undecodable or corrupt content, an unsupported sample type or
    channel count, or an empty image.
    """
    path = _check_readable(path)
    fmt = _sniff(path)
    samples = _guarded(path, lambda: _decode(path, fmt))
    if samples.ndim == 2:
        samples = samples[:, :, None]
    if samples.ndim != 3:
        raise _cannot_decode(path, f"the decoder returned an array of shape {samples.shape}")
    depth = _check_samples(path, samples.dtype, samples.shape[0], samples.shape[1])
    samples = samples[:, :, : _kept_channels(path, samples.shape[2])]
    return LoadedImage(pixels=hwc_to_tensor(to_unit_float(samples)), bit_depth=depth, format=fmt)


def _probe(path: Path, fmt: str) -> tuple[int, int, int, np.dtype]:
    if fmt == "tiff":
        return _probe_tiff(path)
    if fmt == "png":
        header = _png_header(path)
        if header.needs_ffmpeg:
            return (3 if header.colour_type in (2, 6) else 1), header.height, header.width, np.dtype(np.uint16)
    return _probe_pillow(path, fmt)


def probe_image(path: Path | str) -> tuple[int, int, int]:
    """(channels, height, width) of the tensor `read_image` would return, without decoding pixels.

    Only the headers are read, so a file whose pixel data is damaged may probe fine and still
    fail in `read_image`. Raises ImageReadError in the same cases as `read_image` otherwise.
    """
    channels, height, width, _ = _header(path)
    return channels, height, width


def probe_bit_depth(path: Path | str) -> str:
    """How the samples are stored, as `read_image` would report them ("uint8", "uint16" or
    "float32"), from the headers alone; raises as `probe_image` does."""
    return _header(path)[3]


def _header(path: Path | str) -> tuple[int, int, int, str]:
    """(channels, height, width, bit depth) of `read_image`'s result, from the headers."""
    path = _check_readable(path)
    fmt = _sniff(path)
    samples, height, width, dtype = _guarded(path, lambda: _probe(path, fmt))
    depth = _check_samples(path, dtype, height, width)
    return _kept_channels(path, samples), height, width, depth


# ----- writing -------------------------------------------------------------------------------


def _check_write_target(path: Path, bit_depth: str) -> str:
    """The format to write `path` in; ValueError for an unsupported extension or bit depth."""
    if not is_image_path(path):
        raise ValueError(f"cannot write {path}: unsupported extension {path.suffix or '(none)'!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be one of {', '.join(BIT_DEPTHS)}, got {bit_depth!r}")
    fmt = _format_of_suffix(path)
    if fmt == "png" and bit_depth == "float32":
        raise ValueError(f"cannot write {path}: PNG stores 8- or 16-bit integers, not float32; use a .tif file")
    if fmt == "jpeg" and bit_depth != "uint8":
        raise ValueError(f"cannot write {path}: JPEG stores only 8-bit samples, not {bit_depth}; use .png or .tif")
    return fmt


def _encode(tmp: Path, fmt: str, samples: np.ndarray, jpeg_quality: int) -> None:
    """Write H×W (grey) or H×W×3 samples to `tmp` in `fmt`."""
    if fmt == "tiff":
        photometric = "rgb" if samples.ndim == 3 else "minisblack"
        tifffile.imwrite(tmp, samples, photometric=photometric, compression="zlib")
    elif fmt == "png" and samples.dtype == np.uint16 and samples.ndim == 3:
        tmp.write_bytes(_encode_png16_rgb(samples))
    elif fmt == "png":
        iio.imwrite(tmp, samples, plugin="pillow", extension=".png")
    else:
        iio.imwrite(tmp, samples, plugin="pillow", extension=".jpeg", quality=jpeg_quality, subsampling=0)


def write_image(
    path: Path | str, pixels: torch.Tensor, bit_depth: str = "uint8", *, jpeg_quality: int = 95, root: Path | None = None
) -> None:
    """Write a float C×H×W tensor in [0, 1] (C = 1 or 3) as an image file, atomically.

    The format follows the extension: .png (uint8, uint16), .jpg/.jpeg (uint8 only; written
    with 4:4:4 chroma at `jpeg_quality`), .tif/.tiff (uint8, uint16, float32; deflate-compressed).
    C = 1 is written as a 2-D greyscale image. Integer samples are rounded to nearest; finite
    values outside [0, 1] are clamped. Parent folders are created; the file appears complete
    or not at all (see `atomic_path`; with `root`, the output folder, it must resolve inside it).
    Raises ValueError for an unsupported extension, bit depth or tensor, and
    `pipeline.io.confine.OutsideOutputError` (a ValueError) for a target outside `root`.
    """
    path = Path(path)
    fmt = _check_write_target(path, bit_depth)
    samples = quantise(check_pixels(pixels, "pixels", (1, 3)), bit_depth)
    if samples.shape[2] == 1:
        samples = samples[:, :, 0]
    with atomic_path(path, root=root) as tmp:
        _encode(tmp, fmt, samples, jpeg_quality)
