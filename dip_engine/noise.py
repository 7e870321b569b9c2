"""How noisy an observation is: the estimate that chooses a stopping rule per input.

A fit of a noisy input turns from the image to the noise at some point and must stop there (the
variance rule); a clean input has nothing to over-fit and should run until its image stops
changing (the convergence rule). `estimate_noise_sigma` tells the two apart before the fit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Immerkær's 3×3 operator: the difference of two Laplacians. It cancels constants, ramps and
# most of an image's smooth structure; on white noise of std σ its response has std 6σ.
_LAPLACE_DIFFERENCE = ((1.0, -2.0, 1.0), (-2.0, 4.0, -2.0), (1.0, -2.0, 1.0))


def estimate_noise_sigma(observation: Tensor, known: Tensor | None = None) -> float:
    """The standard deviation of additive white noise in `observation` (…, C, H, W), in its units.

    J. Immerkær, "Fast noise variance estimation", CVIU 1996, made robust to edges and texture by
    taking the median absolute response instead of the mean (σ = median|r| / 0.6745 / 6). Only
    positions whose whole 3×3 neighbourhood is known count (`known`: 1 = known pixel, broadcast
    over the observation). An observation too small to measure gives 0.
    """
    planes = observation.detach().float().reshape(-1, 1, *observation.shape[-2:])
    if planes.shape[-1] < 3 or planes.shape[-2] < 3:
        return 0.0
    kernel = torch.tensor(_LAPLACE_DIFFERENCE, device=planes.device).view(1, 1, 3, 3)
    response = F.conv2d(planes, kernel).abs()
    if known is not None:
        holes = 1.0 - known.detach().float().to(planes.device).expand(observation.shape).reshape(planes.shape)
        complete = F.max_pool2d(holes, 3, stride=1) == 0  # no missing pixel in the 3×3 window
        response = response[complete]
    if response.numel() == 0:
        return 0.0
    return float(response.median().item()) / 0.6745 / 6.0
