"""Every bad input to `restore` is a ValueError that says what was expected."""

from __future__ import annotations

import math

import pytest
import torch

from dip_engine import NetConfig, RestoreConfig, StoppingConfig, restore, task_names
from dip_engine.config import FitConfig, GuardConfig, Performance

GOOD = torch.full((3, 37, 45), 0.5)


@pytest.mark.parametrize(
    ("x0", "message"),
    [
        ([[0.5]], "torch.Tensor"),
        (torch.zeros(3, 37, 45, dtype=torch.uint8), "float tensor"),
        (torch.rand(37, 45), "C×H×W"),
        (torch.rand(1, 3, 37, 45), "C×H×W"),
        (torch.rand(3, 2, 45), "at least 4x4"),
        (torch.full((3, 37, 45), math.nan), "NaN"),
        (torch.full((3, 37, 45), 1.5), "outside \\[0, 1\\]"),
    ],
)
def test_bad_images_are_rejected(x0: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        restore(x0, "denoise")  # type: ignore[arg-type]


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown task 'deblur'") as error:
        restore(GOOD, "deblur")
    for name in task_names():
        assert name in str(error.value)


@pytest.mark.parametrize("scale", [None, 1, 0, -3, 2.5, "4", True])
def test_bad_super_resolution_scales(scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        restore(GOOD, "sr", scale=scale)  # type: ignore[arg-type]


def test_preset_scale_conflict() -> None:
    with pytest.raises(ValueError, match="fixed to scale 4"):
        restore(GOOD, "sr4", scale=2)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (None, "needs a mask"),
        (torch.ones(37, 44), "expected 37x45"),
        (torch.ones(2, 37, 45), "expected 37x45"),
        (torch.full((37, 45), 0.5), "binary"),
        (torch.zeros(37, 45), "every pixel as missing"),
    ],
)
def test_bad_masks(mask: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        restore(GOOD, "inpaint", mask=mask)  # type: ignore[arg-type]


def test_flash_needs_a_matching_flash_image() -> None:
    with pytest.raises(ValueError, match="needs flash="):
        restore(GOOD, "flash")
    with pytest.raises(ValueError, match="channels"):
        restore(GOOD, "flash", flash=torch.rand(1, 37, 45))
    with pytest.raises(ValueError, match="expected \\(3, 37, 45\\)"):
        restore(GOOD, "flash", flash=torch.rand(3, 36, 45))


def test_arguments_for_another_task_are_rejected() -> None:
    with pytest.raises(ValueError, match="only used by inpaint"):
        restore(GOOD, "denoise", mask=torch.ones(37, 45))
    with pytest.raises(ValueError, match="only used by super-resolution"):
        restore(GOOD, "denoise", scale=2)


def test_reference_must_match_the_output_size() -> None:
    with pytest.raises(ValueError, match="output size"):
        restore(torch.rand(3, 16, 16), "sr", scale=2, reference=torch.rand(3, 16, 16))


def test_bad_configurations() -> None:
    with pytest.raises(ValueError, match="equal length"):
        NetConfig(channels_down=(8, 8), channels_up=(8,), channels_skip=(0, 0))
    with pytest.raises(ValueError, match="upsample='bicubic' is not valid; expected one of 'nearest', 'bilinear'"):
        NetConfig(upsample="bicubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="odd"):
        NetConfig(kernel_down=4)
    with pytest.raises(ValueError, match="window"):
        StoppingConfig(window=1)
    with pytest.raises(ValueError, match="average"):
        FitConfig(average=1.0)
    with pytest.raises(ValueError, match="spike_factor"):
        GuardConfig(spike_factor=0.5)
    with pytest.raises(ValueError, match="compile_mode='fast' is not valid; expected one of 'default', 'reduce-overhead'"):
        Performance(compile_mode="fast")


def test_images_smaller_than_the_network_depth_work() -> None:
    """The published 5-level network on a 20×24 image (padded to 64×64, deepest map 2×2)."""
    x0 = torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(0))
    result = restore(x0, "denoise", config=RestoreConfig(fit=FitConfig(max_iterations=2)))
    assert result.image.shape == (3, 20, 24)
