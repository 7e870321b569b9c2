"""Properties every forward operator must have, checked over all of them on odd-sized images."""

from __future__ import annotations

import pytest
import torch

from dip_engine import Denoising, FlashNoFlash, Inpainting, Operator, SuperResolution, block_mask, psnr
from dip_engine.functional import lanczos_kernel_1d, ssim
from tests.conftest import photo

C, H, W = 3, 36, 42  # divisible by 2 and 3 for super-resolution, otherwise odd-sized


def _operators() -> dict[str, Operator]:
    rng = torch.Generator().manual_seed(7)
    return {
        "denoise": Denoising(),
        "sr2": SuperResolution(2),
        "sr3": SuperResolution(3),
        "inpaint": Inpainting(block_mask(H, W, rng, holes=3, size=0.2)),
        "flash": FlashNoFlash(torch.rand(C, H, W, generator=rng)),
    }


OPERATORS = _operators()


@pytest.mark.parametrize("name", OPERATORS)
def test_forward_shape_and_output_size(name: str, device: torch.device) -> None:
    op = OPERATORS[name].to(device)
    x = torch.rand(2, C, H, W, device=device)
    y = op.A(x)
    factor = op.factor if isinstance(op, SuperResolution) else 1
    assert y.shape == (2, C, H // factor, W // factor)
    assert op.output_size((H // factor, W // factor)) == (H, W)
    assert op.A(x[0]).shape == y.shape[1:]  # unbatched C×H×W works too


@pytest.mark.parametrize("name", OPERATORS)
def test_forward_map_is_linear(name: str, device: torch.device) -> None:
    op = OPERATORS[name].to(device)
    gen = torch.Generator().manual_seed(3)
    x, z = torch.rand(2, C, H, W, generator=gen).to(device).unbind(0)
    a, b = 0.7, -1.9
    torch.testing.assert_close(op.A(a * x + b * z), a * op.A(x) + b * op.A(z), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", OPERATORS)
def test_degrade_is_seeded_and_in_range(name: str) -> None:
    op = OPERATORS[name]
    clean = photo("astronaut", 100, 150, H, W)
    first = op.degrade(clean, torch.Generator().manual_seed(5))
    again = op.degrade(clean, torch.Generator().manual_seed(5))
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert first.min() >= 0 and first.max() <= 1
    # The clean image explains its own observation far better than a flat grey image does.
    assert op.data_term(clean, first) < 0.25 * op.data_term(torch.full_like(clean, 0.5), first)


def test_denoising_noise_level() -> None:
    clean = torch.full((1, 200, 200), 0.5)
    noisy = Denoising(sigma=25 / 255).degrade(clean, torch.Generator().manual_seed(0))
    assert abs((noisy - clean).std().item() - 25 / 255) < 0.002
    assert 20.0 < psnr(noisy, clean) < 20.3  # 20.17 dB for σ = 25


def test_lanczos_kernel_is_normalised_and_symmetric() -> None:
    for factor in (2, 3, 4, 8):
        kernel = lanczos_kernel_1d(factor)
        assert kernel.numel() == 4 * factor + factor % 2
        assert abs(kernel.sum().item() - 1) < 1e-6
        torch.testing.assert_close(kernel, kernel.flip(0))


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_downsampling_keeps_constants_and_samples_cell_centres(factor: int) -> None:
    op = SuperResolution(factor)
    flat = torch.full((1, 3, 8 * factor, 12 * factor), 0.3)
    torch.testing.assert_close(op.A(flat), torch.full((1, 3, 8, 12), 0.3), atol=1e-6, rtol=0)
    width = 16 * factor
    ramp = torch.linspace(0, 1, width).view(1, 1, 1, width).expand(1, 1, 2 * factor, width)
    small = op.A(ramp)[0, 0, 1]
    # Away from the replicated borders, a linear ramp is sampled at the centres of its cells.
    expected = torch.linspace(0, 1, width).view(16, factor).mean(dim=1)
    torch.testing.assert_close(small[2:-2], expected[2:-2], atol=1e-5, rtol=0)


def test_super_resolution_rejects_bad_factors_and_sizes() -> None:
    for factor in (1, 0, -2, 2.5, True):
        with pytest.raises(ValueError, match="integer >= 2"):
            SuperResolution(factor)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not divisible"):
        SuperResolution(4).A(torch.rand(3, 30, 32))


def test_inpainting_data_term_ignores_missing_pixels() -> None:
    mask = block_mask(H, W, torch.Generator().manual_seed(1), holes=2, size=0.3)
    op = Inpainting(mask)
    clean = photo("coffee", 50, 60, H, W)
    corrupted = clean.clone()
    corrupted[:, mask == 0] = 1.0  # a white watermark where the mask is 0
    assert op.data_term(clean, corrupted).item() == 0.0


def test_ssim_bounds() -> None:
    clean = photo("camera", 100, 100, 40, 40)
    assert ssim(clean, clean) == pytest.approx(1.0, abs=1e-5)
    noisy = Denoising().degrade(clean, torch.Generator().manual_seed(0))
    assert 0.0 < ssim(noisy, clean) < 0.8
