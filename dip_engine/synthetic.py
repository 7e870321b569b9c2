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
    unit_y = torch.arange(h, dtype=torch.float64) + 0.5 - h / 2
    unit_x = torch.arange(w, dtype=torch.float64) + 0.5 - w / 2
    ys = centres_y[:, None] + scales[:, None] * unit_y[None, :]
    xs = centres_x[:, None] + scales[:, None] * unit_x[None, :]
    grid_y = (2 * ys / height - 1)[:, :, None].expand(frames, h, w)
    grid_x = (2 * xs / width - 1)[:, None, :].expand(frames, h, w)
    grid = torch.stack((grid_x, grid_y), dim=-1).to(image.dtype)
    source = image.unsqueeze(0).expand(frames, -1, -1, -1)
    clip = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return clip.clamp(0, 1)


def text_mask(height: int, width: int, rng: torch.Generator, *, lines: int | None = None, size: int | None = None) -> Tensor:
    """A binary (H, W) mask (1 = known) with text written over it: the inpainting notebook's
    "text over a photograph" case. Words are drawn from a fixed list with `rng`, in Pillow's
    built-in font of `size` pixels (default: about an eighth of the height), `lines` lines of
    them (default: as many as fit with a line's gap between them)."""
    from PIL import Image, ImageDraw, ImageFont

    words = ("archive", "sample", "1987", "copy", "DRAFT", "no. 42", "restored", "film", "scan", "tape")
    size = size or max(8, height // 8)
    lines = lines or max(1, height // (2 * size))
    font = ImageFont.load_default(size=size)
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    for line in range(lines):
        picks = torch.randint(0, len(words), (6,), generator=rng).tolist()
        text = " ".join(words[k] for k in picks)
        top = round((line + 0.5) * height / lines - size / 2)
        left = -int(torch.randint(0, max(1, width // 4), (1,), generator=rng))
        draw.text((left, top), text, fill=0, font=font)
    pixels = torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).view(height, width)
    return (pixels > 127).float()
