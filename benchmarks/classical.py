"""The classical method a user would pick instead of DIP for denoising: CBM3D, given the true σ.

Needs the `bm3d` package (`pip install -e ".[bench]"`); benchmark-only, never imported by the project.
"""

from __future__ import annotations

import time

import numpy as np
import torch


def cbm3d(noisy: torch.Tensor, sigma: float) -> tuple[torch.Tensor, float]:
    """(the CBM3D estimate of the C×H×W image `noisy` in [0, 1], seconds); grey images run BM3D."""
    import bm3d

    started = time.perf_counter()
    pixels = noisy.permute(1, 2, 0).double().numpy()
    estimate = bm3d.bm3d_rgb(pixels, sigma) if pixels.shape[-1] == 3 else bm3d.bm3d(pixels[..., 0], sigma)[..., None]
    seconds = time.perf_counter() - started
    return torch.from_numpy(np.clip(estimate, 0, 1)).permute(2, 0, 1).float(), seconds
