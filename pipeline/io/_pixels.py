"""Conversions between stored sample arrays (H×W×C, integer or float) and C×H×W float tensors."""

from __future__ import annotations

import numpy as np
import torch

BIT_DEPTHS: tuple[str, ...] = ("uint8", "uint16", "float32")


def bit_depth_of(dtype: np.dtype) -> str | None:
    """The bit depth a stored sample type maps to, or None if it is not supported.

    bool (1-bit images) counts as uint8; every floating type (16, 32, 64 bit) as float32.
    """
    if dtype == np.bool_ or dtype == np.uint8:
        return "uint8"
    if dtype == np.uint16:
        return "uint16"
    if np.issubdtype(dtype, np.floating):
        return "float32"
    return None


def to_unit_float(samples: np.ndarray) -> np.ndarray:
    """Samples (any supported dtype) as float32 in [0, 1].

    uint8 is divided by 255, uint16 by 65535, bool maps to 0/1. Floats are assumed to be in
    [0, 1] already: they are converted to float32, NaN becomes 0 and values outside are clipped.
    """
    if samples.dtype == np.bool_:
        return samples.astype(np.float32)
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / np.float32(255)
    if samples.dtype == np.uint16:
        return samples.astype(np.float32) / np.float32(65535)
    unit = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(unit, 0.0, 1.0)


def hwc_to_tensor(samples: np.ndarray) -> torch.Tensor:
    """An H×W×C float32 array as a contiguous C×H×W tensor."""
    return torch.from_numpy(np.ascontiguousarray(samples.transpose(2, 0, 1)))


def check_pixels(pixels: torch.Tensor, what: str, channels: tuple[int, ...]) -> torch.Tensor:
    """Validate a C×H×W float tensor for writing; return it detached on the CPU, clamped to [0, 1].

    Raises ValueError for a wrong type, shape or channel count, or NaN/infinite values. Finite
    values slightly outside [0, 1] (a network's overshoot) are clamped, not rejected.
    """
    if not isinstance(pixels, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of shape C×H×W, got {type(pixels).__name__}")
    if not pixels.is_floating_point():
        raise ValueError(f"{what} must be a float tensor with values in [0, 1], got dtype {pixels.dtype}")
    if pixels.dim() != 3 or pixels.shape[0] not in channels or min(pixels.shape) < 1:
        allowed = " or ".join(str(c) for c in channels)
        raise ValueError(f"{what} must have shape C×H×W with C = {allowed}, got {tuple(pixels.shape)}")
    pixels = pixels.detach().to("cpu", torch.float32)
    if not torch.isfinite(pixels).all():
        raise ValueError(f"{what} contains NaN or infinite values; nothing was written")
    return pixels.clamp(0.0, 1.0)


def quantise(pixels: torch.Tensor, bit_depth: str) -> np.ndarray:
    """A checked C×H×W tensor in [0, 1] as H×W×C samples of `bit_depth` (rounded to nearest)."""
    if bit_depth == "uint8":
        samples = (pixels * 255).round().to(torch.uint8)
    elif bit_depth == "uint16":
        samples = (pixels.double() * 65535).round().to(torch.int32)
    elif bit_depth == "float32":
        samples = pixels
    else:
        raise ValueError(f"bit_depth must be one of {', '.join(BIT_DEPTHS)}, got {bit_depth!r}")
    array = samples.permute(1, 2, 0).contiguous().numpy()
    return array.astype(np.uint16) if bit_depth == "uint16" else array
