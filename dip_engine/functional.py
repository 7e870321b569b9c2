"""Pure tensor kernels behind the operators: no state, no configuration."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def lanczos_kernel_1d(factor: int, support: int = 2) -> Tensor:
    """The separable Lanczos-`support` antialiasing kernel for decimation by `factor`, summing to 1.

    For even factors: 2·support·factor taps centred between pixels, the `lanczos2` kernel of the
    published DIP super-resolution code (phase 0.5), written separably. For odd factors one more
    tap, so that the kernel centres on the middle pixel of each factor×factor cell.
    """
    taps = 2 * support * factor + factor % 2
    positions = torch.arange(1, taps + 1, dtype=torch.float64)
    distance = (positions - (taps + 1) / 2.0).abs() / factor
    values = torch.ones_like(distance)
    nonzero = distance != 0
    d = distance[nonzero]
    values[nonzero] = support * torch.sin(math.pi * d) * torch.sin(math.pi * d / support) / (math.pi**2 * d * d)
    return (values / values.sum()).to(torch.float32)


def lanczos_downsample(x: Tensor, factor: int, kernel_1d: Tensor) -> Tensor:
    """Decimate a batch (N, C, H, W) by `factor` after Lanczos filtering; H, W divisible by it.

    Edges are replicated so the output is exactly (N, C, H / factor, W / factor).
    """
    n, c, h, w = x.shape
    taps = kernel_1d.numel()
    total_pad = taps - factor
    before, after = total_pad // 2, total_pad - total_pad // 2
    x = F.pad(x, (before, after, before, after), mode="replicate")
    kernel = kernel_1d.to(device=x.device, dtype=x.dtype)
    flat = x.reshape(n * c, 1, x.shape[-2], x.shape[-1])
    flat = F.conv2d(flat, kernel.view(1, 1, 1, taps), stride=(1, factor))
    flat = F.conv2d(flat, kernel.view(1, 1, taps, 1), stride=(factor, 1))
    return flat.reshape(n, c, h // factor, w // factor)


def psnr(estimate: Tensor, reference: Tensor, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two images of the same shape."""
    mse = torch.mean((estimate.detach().float() - reference.detach().float()) ** 2).item()
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_window(size: int, sigma: float, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(estimate: Tensor, reference: Tensor, *, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), mean over C×H×W.

    Images smaller than the window use a window of their smaller side (made odd).
    """
    x = estimate.detach().float().reshape(-1, 1, *estimate.shape[-2:])
    y = reference.detach().float().reshape(-1, 1, *reference.shape[-2:])
    size = min(11, min(x.shape[-2:]))
    size -= 1 - size % 2
    g = _gaussian_window(size, 1.5, x.device)
    window = (g.view(-1, 1) * g.view(1, -1)).view(1, 1, size, size)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return score.mean().item()
