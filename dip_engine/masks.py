"""What an inpainting mask looks like: how wide its holes are, which decides the network."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def hole_radius(mask: Tensor) -> int:
    """How many 3×3 erosions the mask's missing region (0 = missing) survives: about half the
    width of its widest hole, in pixels. 0 for a mask with no hole wider than 2 pixels (text
    strokes, scratches), 7 for a 16-pixel square hole. The image border counts as missing."""
    missing = (mask.detach().float().reshape(-1, *mask.shape[-2:]) < 0.5).any(dim=0).float()[None, None]
    radius = 0
    while True:
        missing = -F.max_pool2d(-missing, 3, stride=1, padding=1)  # erosion
        if not missing.any():
            return radius
        radius += 1
