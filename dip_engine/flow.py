"""Dense optical flow between two frames, for measuring temporal consistency.

`estimate_flow(target, source)` is coarse-to-fine Lucas–Kanade: on an image pyramid of the
frames' luminance, from the coarsest level down, the source is warped by the current flow and a
per-pixel 2×2 least-squares step (over a square window, with a small ridge term so flat regions
keep the coarser level's estimate; at most a pixel per step) refines it, and a 3×3 median
removes stray vectors. It handles the small, smooth motions of a camera pan or zoom well, to a
small fraction of a pixel (tests/engine/test_flow.py pins the accuracy); it is not a learned flow
and will be wrong on large or non-rigid motion, where the forward-backward check (`consistent`)
masks the pixels out instead.

Frames larger than `FlowConfig.max_side` are estimated on an area-downscaled copy and the flow
scaled back up, which makes HD frames several times cheaper for a small loss of accuracy
(benchmarks/RESULTS.md, "Calibrations behind the engine's defaults").

Conventions: frames are C×H×W (or H×W) tensors in [0, 1]; a flow is 2×H×W (dx, dy) in pixels
and maps target pixels into the source: ``warp(source, flow)(p) = source(p + flow(p))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class FlowConfig:
    levels: int = 4  # pyramid levels (each halves the size; stops before a side falls below 8 px)
    iterations: int = 4  # Lucas–Kanade steps per level
    window: int = 7  # side of the square least-squares window (odd)
    ridge: float = 1e-5  # added to the diagonal of the window-mean structure tensor (intensities in [0, 1]): damps flat windows
    max_side: int = 512  # larger frames are estimated on an area-downscaled copy (the flow scaled back up)

    def __post_init__(self) -> None:
        if self.levels < 1 or self.iterations < 1 or self.window < 1 or self.window % 2 == 0 or self.ridge <= 0 or self.max_side < 16:
            raise ValueError("FlowConfig needs levels, iterations >= 1, an odd window >= 1, ridge > 0 and max_side >= 16")


def _luminance(frame: Tensor) -> Tensor:
    """1×1×H×W float32 luminance of a C×H×W (C = 1 or 3) or H×W frame."""
    frame = frame.detach().to(torch.float32)
    if frame.dim() == 2:
        frame = frame.unsqueeze(0)
    if frame.dim() != 3 or frame.shape[0] not in (1, 3):
        raise ValueError(f"a frame must be H×W, 1×H×W or 3×H×W, got {tuple(frame.shape)}")
    if frame.shape[0] == 3:
        weights = torch.tensor(_LUMA, dtype=frame.dtype, device=frame.device).view(3, 1, 1)
        frame = (frame * weights).sum(0, keepdim=True)
    return frame.unsqueeze(0)


def _pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Finest first; each level a 2×2 average of the one above."""
    pyramid = [image]
    while len(pyramid) < levels and min(pyramid[-1].shape[-2:]) >= 16:
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid


def _gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences (one-sided at the border) along x and y."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return gx, gy


def _median3(flow: Tensor) -> Tensor:
    """3×3 median of each flow component (removes isolated wrong vectors)."""
    _, channels, height, width = flow.shape
    patches = F.unfold(F.pad(flow, (1, 1, 1, 1), mode="replicate"), 3)
    return patches.view(1, channels, 9, height, width).median(dim=2).values


def _window_mean(values: Tensor, window: int) -> Tensor:
    return F.avg_pool2d(values, window, stride=1, padding=window // 2, count_include_pad=False)


def _sample_points(flow: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel coordinates (x, y), each N×H×W, of p + flow(p) for an N×2×H×W flow."""
    _, _, height, width = flow.shape
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(1, height, 1)
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, 1, width)
    return xs + flow[:, 0], ys + flow[:, 1]


def _sample(image: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """`image` (N×C×H×W) bilinearly sampled at pixel coordinates x, y (border values outside)."""
    height, width = image.shape[-2:]
    grid = torch.stack((x * (2 / max(width - 1, 1)) - 1, y * (2 / max(height - 1, 1)) - 1), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _warp4(image: Tensor, flow: Tensor) -> Tensor:
    return _sample(image, *_sample_points(flow.to(image.dtype)))


def warp(frame: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    """(frame sampled at p + flow(p), H×W mask of the pixels whose sample lies inside the frame).

    `frame` is C×H×W or H×W, `flow` 2×H×W; the warped frame has the frame's shape and dtype."""
    image = frame.unsqueeze(0) if frame.dim() == 3 else frame.view(1, 1, *frame.shape)
    x, y = _sample_points(flow.unsqueeze(0).to(torch.float32))
    warped = _sample(image.to(torch.float32), x, y).to(frame.dtype).view(frame.shape)
    height, width = flow.shape[-2:]
    inside = (x[0] >= 0) & (x[0] <= width - 1) & (y[0] >= 0) & (y[0] <= height - 1)
    return warped, inside


def estimate_flow(target: Tensor, source: Tensor, config: FlowConfig = FlowConfig()) -> Tensor:
    """The flow (2×H×W, float32, pixels) with source(p + flow(p)) ≈ target(p)."""
    if target.shape[-2:] != source.shape[-2:]:
        raise ValueError(f"frames differ in size: {tuple(target.shape)} and {tuple(source.shape)}")
    full_size = target.shape[-2:]
    shrink = max(full_size) / config.max_side
    target_image, source_image = _luminance(target), _luminance(source)
    if shrink > 1:
        size = (max(1, round(full_size[0] / shrink)), max(1, round(full_size[1] / shrink)))
        target_image = F.interpolate(target_image, size=size, mode="area")
        source_image = F.interpolate(source_image, size=size, mode="area")
    flow = _estimate(target_image, source_image, config)
    if flow.shape[-2:] != full_size:
        flow = _resized(flow, (full_size[0], full_size[1]), (full_size[1] / flow.shape[-1], full_size[0] / flow.shape[-2]))
    return flow[0]


def _resized(flow: Tensor, size: tuple[int, int], scale: tuple[float, float]) -> Tensor:
    """A 1×2×h×w flow resampled to `size`, its (dx, dy) multiplied by `scale`."""
    resized = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    return torch.cat((resized[:, :1] * scale[0], resized[:, 1:] * scale[1]), dim=1)


def _estimate(target_image: Tensor, source_image: Tensor, config: FlowConfig) -> Tensor:
    """Coarse-to-fine Lucas–Kanade on 1×1×H×W images; the flow as 1×2×H×W."""
    targets = _pyramid(target_image, config.levels)
    sources = _pyramid(source_image, config.levels)
    flow: Tensor | None = None
    for target_level, source_level in zip(reversed(targets), reversed(sources)):
        size = target_level.shape[-2:]
        if flow is None:
            flow = target_level.new_zeros(1, 2, *size)
        else:
            flow = _resized(flow, (size[0], size[1]), (2.0, 2.0))  # a pyramid step halves coordinates (odd sides lose a pixel)
        for _ in range(config.iterations):
            warped = _warp4(source_level, flow)
            gx, gy = _gradients((warped + target_level) / 2)
            difference = warped - target_level
            sxx = _window_mean(gx * gx, config.window) + config.ridge
            syy = _window_mean(gy * gy, config.window) + config.ridge
            sxy = _window_mean(gx * gy, config.window)
            sxt = _window_mean(gx * difference, config.window)
            syt = _window_mean(gy * difference, config.window)
            determinant = sxx * syy - sxy * sxy
            step = torch.cat((-(syy * sxt - sxy * syt), -(sxx * syt - sxy * sxt)), dim=1) / determinant
            step = step / step.norm(dim=1, keepdim=True).clamp(min=1.0)  # linearisation holds for ~1 px
            flow = _median3(flow + step)
    assert flow is not None
    return flow


def consistent(forward: Tensor, backward: Tensor, *, relative: float = 0.01, absolute: float = 0.5) -> Tensor:
    """H×W mask of the pixels whose flow `backward` (target → source) is undone by `forward`
    (source → target) where it lands: |b(p) + f(p + b(p))|² < relative·(|b|² + |f|²) + absolute
    (the forward-backward check of Sundaram et al., 2010). Occluded and mis-tracked pixels fail."""
    landed, inside = warp(forward, backward)
    round_trip = (backward + landed).pow(2).sum(0)
    size = backward.pow(2).sum(0) + landed.pow(2).sum(0)
    return inside & (round_trip < relative * size + absolute)
