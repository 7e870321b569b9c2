"""The published denoising preset on a real photograph: quality and automatic early stopping.

One fit of the full preset network (2.2 M weights) on a 64×64 crop of the astronaut photograph
with σ = 25 noise is shared by the tests below. Measured on a 2-core CPU (the figures the
thresholds were set from): noisy input 20.29 dB; result 26.76 dB after an early stop at
iteration 454, with the best PSNR seen along the run 26.76 dB; a fixed-budget run of the same
problem peaks at 26.82 dB (iteration 511) and ends at 22.43 dB by iteration 1500.
"""

from __future__ import annotations

import pytest
import torch

from dip_engine import Denoising, Performance, Restoration, get_task, psnr, restore
from dip_engine.step import autocast_dtype
from dip_engine.tasks import with_performance
from tests.conftest import photo


@pytest.fixture(scope="module")
def denoised() -> tuple[torch.Tensor, torch.Tensor, Restoration]:
    clean = photo("astronaut", 30, 200, 64, 64)
    noisy = Denoising(sigma=25 / 255).degrade(clean, torch.Generator().manual_seed(0))
    return clean, noisy, restore(noisy, "denoise", reference=clean, seed=0)


def test_denoising_beats_the_noisy_input(denoised: tuple[torch.Tensor, torch.Tensor, Restoration]) -> None:
    clean, noisy, result = denoised
    assert result.image.shape == clean.shape
    assert psnr(noisy, clean) == pytest.approx(20.3, abs=0.1)
    # Measured gain: +6.5 dB. Pinned at +5.5 dB.
    assert psnr(result.image, clean) > psnr(noisy, clean) + 5.5


def test_early_stop_lands_near_the_best_image_of_the_run(
    denoised: tuple[torch.Tensor, torch.Tensor, Restoration],
) -> None:
    clean, _, result = denoised
    assert result.stop_reason == "early_stop"
    assert result.iterations < 1000  # the preset's cap is 3000
    assert len(result.history.psnr) == result.iterations
    assert psnr(result.image, clean) >= max(result.history.psnr) - 1.0
    # The kept image is the average 200 iterations after the variance minimum.
    assert result.kept_iteration <= result.iterations
    assert result.history.psnr[result.kept_iteration - 1] == pytest.approx(psnr(result.image, clean), abs=1e-3)


def test_mixed_precision_restores_as_well_as_float32(denoised: tuple[torch.Tensor, torch.Tensor, Restoration]) -> None:
    """The same problem with bfloat16 autocast and channels_last ends within 0.3 dB of float32."""
    clean, noisy, full = denoised
    performance = Performance(amp=True, channels_last=True)
    if autocast_dtype(torch.device("cpu"), performance) != torch.bfloat16:
        pytest.skip("this CPU has no native bfloat16, so AMP runs in float32 here")
    preset = get_task("denoise").config
    amp = restore(noisy, "denoise", reference=clean, seed=0, config=with_performance(preset, performance))
    assert amp.stop_reason == "early_stop"
    assert psnr(amp.image, clean) == pytest.approx(psnr(full.image, clean), abs=0.3)
