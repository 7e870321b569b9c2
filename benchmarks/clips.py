"""The benchmarks' test clip: a slow camera pan and zoom over the astronaut photograph, degraded."""

from __future__ import annotations

import torch
from skimage import data

from dip_engine import get_task
from dip_engine.operators import SuperResolution
from dip_engine.synthetic import camera_clip

SIGMA = 25 / 255  # the noise of the denoising clip


def make_clip(frames: int, size: int) -> torch.Tensor:
    """(frames, 3, size, size): a slow pan (0.4, 1.2 px per frame) and zoom-in over the astronaut."""
    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    return camera_clip(photo[:, 10:330, 60:460], frames, size, pan=(0.4, 1.2), zoom=0.996)


def degrade(task: str, clean: torch.Tensor, seed: int) -> torch.Tensor:
    """The clip as `task` sees it: σ = 25 noise, or Lanczos decimation by the preset's factor."""
    generator = torch.Generator().manual_seed(seed)
    if get_task(task).kind == "sr":
        operator = SuperResolution(get_task(task).scale or 2)
        return torch.stack([operator.degrade(frame.unsqueeze(0), generator)[0] for frame in clean]).clamp(0, 1)
    return (clean + SIGMA * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
