"""Inpainting masks: read fully and checked binary, at validation and again when a unit reads one.

Mask samples at or below MASK_LOW are black, at or above MASK_HIGH white; anything between is
grey and makes the mask non-binary (a soft matte is rejected rather than guessed at). The band
tolerates the few levels JPEG compression moves a black-and-white mask by.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from pipeline.io.image import read_image

MASK_LOW = 0.25
MASK_HIGH = 0.75


class MaskError(ValueError):
    """A mask that is not binary; the message names the file, counts the grey pixels and says what to do."""


def grey_pixels(pixels: Tensor) -> int:
    """How many pixels of a C×H×W mask in [0, 1] have a grey sample in some channel."""
    grey = (pixels > MASK_LOW) & (pixels < MASK_HIGH)
    return int(grey.any(dim=0).sum())


def not_binary(path: Path, grey: int, total: int) -> MaskError:
    return MaskError(
        f"the mask {path} is not binary: {grey} of {total} pixels are grey (between {MASK_LOW:.0%} and "
        f"{MASK_HIGH:.0%} white); threshold it (e.g. at 50%) so that every pixel is white (1) where it is "
        "known and black (0) where it is missing"
    )


def read_mask(path: Path) -> Tensor:
    """A mask image as a 1×H×W float tensor: 1 where the pixel is known, 0 where it is missing.

    Any channel count is accepted. Each sample must be black (<= MASK_LOW) or white
    (>= MASK_HIGH) after the usual scaling to [0, 1]; a pixel is known when every channel is
    white (> 0.5), so for a colour mask only white means known. MaskError (a ValueError) for a
    grey sample; ImageReadError for a file that does not decode.
    """
    pixels = read_image(path).pixels
    grey = grey_pixels(pixels)
    if grey:
        raise not_binary(path, grey, pixels[0].numel())
    return (pixels > 0.5).all(dim=0, keepdim=True).float()
