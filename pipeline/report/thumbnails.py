"""Pixels for the page: downscaled views as data: URIs, and an aligned zoomed crop of input and output.

Pixels are float C×H×W tensors in [0, 1] (what `pipeline.io.read_image` gives); C is 1 or 3.
An input smaller than its output (super-resolution) is shown on the output's grid: resized to
the output's display size for the side-by-side view, and for the crop upsampled bicubically
(as the ledger's psnr_in is measured) from just the input pixels the crop needs, so the two
crops show the same region of the scene pixel for pixel.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

DISPLAY_SIDE = 360  # long side of the side-by-side views, in pixels
CROP_SIDE = 64  # side of the zoomed crop, in output pixels
BICUBIC_MARGIN = 2  # input pixels either side that bicubic upsampling reads


@dataclass(frozen=True)
class Region:
    """A square of the output image, in output pixels."""

    top: int
    left: int
    side: int


def display_size(height: int, width: int, longest: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(height, width) scaled so the long side is at most `longest` (never enlarged)."""
    factor = min(1.0, longest / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def shown_size(height: int, width: int, longest: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(height, width) scaled so the long side is `longest`: the size a view takes on the page
    (the browser enlarges a small image's pixels; `display_size` is what is embedded)."""
    factor = longest / max(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


def resized(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """`pixels` resized to height × width: antialiased when shrinking, bicubic when enlarging."""
    if tuple(pixels.shape[1:]) == (height, width):
        return pixels
    return F.interpolate(pixels[None].float(), size=(height, width), mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)


def data_uri(pixels: torch.Tensor, *, fmt: str = "jpeg") -> str:
    """An 8-bit PNG or JPEG (quality 88) of `pixels` as a data: URI."""
    samples = (pixels.detach().cpu().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    samples = np.ascontiguousarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    if fmt == "png":
        encoded = iio.imwrite("<bytes>", samples, extension=".png")
        mime = "image/png"
    else:
        encoded = iio.imwrite("<bytes>", samples, extension=".jpg", quality=88)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(encoded).decode('ascii')}"


def integer_scale(source: torch.Tensor, target: torch.Tensor) -> int | None:
    """s when `target` is exactly s times `source` in both sides (1: same size), else None."""
    (_, height, width), (_, out_height, out_width) = source.shape, target.shape
    if out_height % height or out_width % width or out_height // height != out_width // width:
        return None
    return out_height // height


def _grey(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.float().mean(dim=0, keepdim=True)


def differing_region(source: torch.Tensor, output: torch.Tensor, side: int = CROP_SIDE) -> Region:
    """The `side`-square of the output where it differs most from the input (mean absolute
    difference, on the input's grid), aligned to the upsampling factor; the centre when the two
    cannot be compared."""
    _, out_height, out_width = output.shape
    side = min(side, out_height, out_width)
    scale = integer_scale(source, output)
    centre = Region((out_height - side) // 2, (out_width - side) // 2, side)
    if scale is None:
        return centre
    shrunk = _grey(output) if scale == 1 else F.interpolate(_grey(output)[None], scale_factor=1 / scale, mode="area")[0]
    difference = (shrunk - _grey(source)).abs()
    block = max(1, side // scale)
    if difference.shape[1] < block or difference.shape[2] < block:
        return centre
    means = F.avg_pool2d(difference[None], block, stride=max(1, block // 2))[0, 0]
    row, column = divmod(int(torch.argmax(means)), means.shape[1])
    stride = max(1, block // 2)
    top = min(row * stride * scale, out_height - side)
    left = min(column * stride * scale, out_width - side)
    return Region(top - top % scale, left - left % scale, side)


def aligned_crops(source: torch.Tensor, output: torch.Tensor, region: Region) -> tuple[torch.Tensor, torch.Tensor]:
    """The input's and the output's pixels of `region` (output pixels), the input on the output's
    grid: for an integer factor s, bicubic upsampling of only the input pixels the region needs
    (the same pixels as upsampling the whole input; `region` aligned to s); otherwise of the whole input."""
    top, left, side = region.top, region.left, region.side
    output_crop = output[:, top : top + side, left : left + side]
    scale = integer_scale(source, output)
    if scale == 1:
        return source[:, top : top + side, left : left + side], output_crop
    if scale is None or top % scale or left % scale:
        whole = F.interpolate(source[None].float(), size=tuple(output.shape[1:]), mode="bicubic", align_corners=False)[0]
        return whole[:, top : top + side, left : left + side].clamp(0, 1), output_crop
    first_row, first_column = max(0, top // scale - BICUBIC_MARGIN), max(0, left // scale - BICUBIC_MARGIN)
    last_row = min(source.shape[1], math.ceil((top + side) / scale) + BICUBIC_MARGIN)
    last_column = min(source.shape[2], math.ceil((left + side) / scale) + BICUBIC_MARGIN)
    piece = source[None, :, first_row:last_row, first_column:last_column].float()
    upsampled = F.interpolate(piece, scale_factor=scale, mode="bicubic", align_corners=False)[0]
    down, across = top - first_row * scale, left - first_column * scale
    return upsampled[:, down : down + side, across : across + side].clamp(0, 1), output_crop
