"""Shared fixtures: real photographs from scikit-image, seeded generators, devices."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest
import torch
from skimage import data


def photo(name: str, top: int, left: int, height: int, width: int, *, grey: bool = False) -> torch.Tensor:
    """A crop of one of scikit-image's bundled photographs as a float C×H×W tensor in [0, 1]."""
    pixels = getattr(data, name)()
    if grey and pixels.ndim == 3:
        pixels = (pixels[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    crop = pixels[top : top + height, left : left + width].astype(np.float32) / 255.0
    if crop.ndim == 2:
        crop = crop[..., None]
    assert crop.shape[:2] == (height, width), f"crop {crop.shape} out of the {name} photograph"
    return torch.from_numpy(crop).permute(2, 0, 1).contiguous()


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def _devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


@pytest.fixture(params=_devices())
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[ModuleType]:
    """One small local Ray cluster for the whole test session (2 CPUs, no dashboard)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
