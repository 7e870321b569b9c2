"""Synthetic test video: a camera moving over a still photograph.

Used by the tests and benchmarks to make clips with known clean frames from real images, with
no video files to download.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def camera_clip(
    image: Tensor,
    frames: int,
    size: int | tuple[int, int],
    *,
    pan: tuple[float, float] = (0.0, 1.5),
    zoom: float = 1.0,
    start: tuple[float, float] | None = None,
) -> Tensor:
    """(frames, C, h, w): a window of `size` moving over `image` (C×H×W in [0, 1]).

    Each frame the window's centre moves by `pan` (dy, dx) pixels of the photograph and its side
    is multiplied by `zoom` (< 1 zooms in). `start` is the first frame's centre (default: chosen
    so the whole path stays inside the photograph). Pixels are sampled bilinearly, so sub-pixel
    motion is smooth. ValueError if the path leaves the photograph.
    """
    h, w = (size, size) if isinstance(size, int) else size
    _, height, width = image.shape
    steps = torch.arange(frames, dtype=torch.float64)
    scales = zoom**steps
    dy, dx = pan
    if start is None:
        half_h, half_w = h * max(1.0, scales.max().item()) / 2, w * max(1.0, scales.max().item()) / 2
        cy = half_h + max(0.0, -dy * (frames - 1))
        cx = half_w + max(0.0, -dx * (frames - 1))
    else:
        cy, cx = start
    centres_y, centres_x = cy + dy * steps, cx + dx * steps
    for k in range(frames):
        top, bottom = centres_y[k] - h * scales[k] / 2, centres_y[k] + h * scales[k] / 2
        left, right = centres_x[k] - w * scales[k] / 2, centres_x[k] + w * scales[k] / 2
        if top < 0 or left < 0 or bottom > height or right > width:
            raise ValueError(f"frame {k} of the camera path leaves the {height}x{width} photograph")
    # Pixel centres of each frame in the photograph's normalised coordinates (align_corners=False).
    unit_y = (torch.arange(h, dtype=torch.float64) + 0.5 - h / 2)
    unit_x = (torch.arange(w, dtype=torch.float64) + 0.5 - w / 2)
    ys = centres_y[:, None] + scales[:, None] * unit_y[None, :]
    xs = centres_x[:, None] + scales[:, None] * unit_x[None, :]
    grid_y = (2 * ys / height - 1)[:, :, None].expand(frames, h, w)
    grid_x = (2 * xs / width - 1)[:, None, :].expand(frames, h, w)
    grid = torch.stack((grid_x, grid_y), dim=-1).to(image.dtype)
    source = image.unsqueeze(0).expand(frames, -1, -1, -1)
    clip = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return clip.clamp(0, 1)
