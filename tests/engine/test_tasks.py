"""Super-resolution, inpainting and flash/no-flash on crops of real photographs.

These use each preset's operator and schedule with a narrower 4-level network and a capped
budget, so the suite stays fast on two CPU cores; the full presets are measured by
benchmarks/quality.py. Thresholds were set from measured values, quoted in each test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from dip_engine import (
    Inpainting,
    RestoreConfig,
    SuperResolution,
    block_mask,
    get_task,
    psnr,
    restore,
    synthesize_flash_pair,
)
from tests.conftest import photo


def narrow(task: str, max_iterations: int, *, skip: int = 4) -> RestoreConfig:
    preset = get_task(task).config
    net = replace(preset.net, channels_down=(48,) * 4, channels_up=(48,) * 4, channels_skip=(skip,) * 4)
    return RestoreConfig(net=net, fit=replace(preset.fit, max_iterations=max_iterations))


@pytest.mark.parametrize("factor", [2, 4])
def test_super_resolution(factor: int) -> None:
    clean = photo("astronaut", 30, 200, 48, 48)
    small = SuperResolution(factor).degrade(clean, torch.Generator().manual_seed(0))
    result = restore(small, "sr", scale=factor, config=narrow("sr", 400), reference=clean)
    assert result.image.shape == (3, 48, 48)
    # Data consistency: the restored image, downsampled, reproduces the observation.
    residual = (SuperResolution(factor).A(result.image) - small).pow(2).mean().sqrt().item()
    assert residual < 0.02
    nearest = F.interpolate(small[None], scale_factor=factor, mode="nearest")[0]
    assert psnr(result.image, clean) > psnr(nearest, clean) + 0.6


def test_super_resolution_of_a_grey_odd_sized_image() -> None:
    clean = photo("camera", 100, 150, 3 * 13, 3 * 15, grey=True)  # 39×45, factor 3
    small = SuperResolution(3).degrade(clean, torch.Generator().manual_seed(0))
    result = restore(small, "sr", scale=3, config=narrow("sr", 150))
    assert result.image.shape == (1, 39, 45)
    nearest = F.interpolate(small[None], scale_factor=3, mode="nearest")[0]
    assert psnr(result.image, clean) > psnr(nearest, clean)


def test_inpainting_fills_holes_better_than_the_mean_and_keeps_known_pixels() -> None:
    clean = photo("coffee", 120, 200, 48, 56)
    mask = block_mask(48, 56, torch.Generator().manual_seed(3), holes=4, size=0.15)
    holed = Inpainting(mask).degrade(clean, torch.Generator())
    holed[:, mask == 0] = 1.0  # a white watermark, ignored by the data term
    result = restore(holed, "inpaint", mask=mask, config=narrow("inpaint", 600, skip=0))
    hole, known = mask == 0, mask == 1
    mean_fill = clean[:, known].mean(dim=1, keepdim=True)
    hole_error = (result.image[:, hole] - clean[:, hole]).pow(2).mean().item()
    mean_error = (mean_fill - clean[:, hole]).pow(2).mean().item()
    assert hole_error < 0.5 * mean_error
    # A clean input: the given pixels come back exactly as they were (FitConfig.keep_known).
    assert torch.equal(result.image[:, known], clean[:, known])


def test_flash_no_flash_restores_the_ambient_image() -> None:
    scene = photo("chelsea", 60, 120, 48, 48)
    pair = synthesize_flash_pair(scene, torch.Generator().manual_seed(0))
    result = restore(pair.no_flash, "flash", flash=pair.flash, config=narrow("flash", 400), reference=pair.ambient)
    assert result.image.shape == pair.ambient.shape
    # The restoration keeps the ambient lighting (the flash image itself is far off) and removes noise.
    assert psnr(pair.flash, pair.ambient) < 15
    assert psnr(result.image, pair.ambient) > psnr(pair.no_flash, pair.ambient) + 4.0
