"""The generator: architecture options, shapes, seeded initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dip_engine import NetConfig
from dip_engine.nets import Generator, build_generator, input_code


def test_published_denoising_network_size() -> None:
    net = build_generator(NetConfig(), in_channels=32, out_channels=3, seed=0)
    # The published `skip` net (5 levels, 128 channels, 4 skip channels) has ~2.2 M weights.
    assert sum(p.numel() for p in net.parameters()) == 2_217_831
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in net.modules()) == 5 * 3  # every 3x3 conv


@pytest.mark.parametrize(
    "config",
    [
        NetConfig(channels_down=(8, 16, 16), channels_up=(8, 16, 16), channels_skip=(4, 4, 4)),
        NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(0, 0), upsample="nearest"),
        NetConfig(
            channels_down=(8,) * 3,
            channels_up=(8,) * 3,
            channels_skip=(0, 2, 4),
            norm="none",
            padding="zero",
            activation="elu",
            kernel_down=5,
            conv_1x1_up=False,
        ),
        NetConfig(channels_down=(8,) * 2, channels_up=(6,) * 2, channels_skip=(2,) * 2, norm="instance", input_kind="meshgrid"),
    ],
)
def test_output_shape_and_range(config: NetConfig) -> None:
    z = input_code(config, 24, 40, torch.Generator().manual_seed(0))
    net = build_generator(config, z.shape[1], out_channels=1, seed=3)
    out = net(z)
    assert out.shape == (1, 1, 24, 40)
    assert out.min() >= 0 and out.max() <= 1


def test_plain_hourglass_has_no_skip_branches() -> None:
    config = NetConfig(channels_skip=(0,) * 5)
    net = Generator(config, 32, 3)
    assert all(level.skip is None for level in net.modules() if hasattr(level, "skip"))
    with_skips = Generator(NetConfig(), 32, 3)
    assert all(level.skip is not None for level in with_skips.modules() if hasattr(level, "skip"))


def test_initialisation_depends_on_the_seed_alone() -> None:
    config = NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2))
    torch.manual_seed(999)  # the global RNG must not matter
    a = build_generator(config, 4, 3, seed=11).state_dict()
    torch.manual_seed(5)
    b = build_generator(config, 4, 3, seed=11).state_dict()
    c = build_generator(config, 4, 3, seed=12).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
    assert any(not torch.equal(a[key], c[key]) for key in a if key.endswith("weight"))


def test_input_codes() -> None:
    noise = input_code(NetConfig(), 32, 64, torch.Generator().manual_seed(0))
    assert noise.shape == (1, 32, 32, 64)
    assert 0 <= noise.min() and noise.max() <= 0.1
    grid = input_code(NetConfig(input_kind="meshgrid"), 5, 9, torch.Generator())
    assert grid.shape == (1, 2, 5, 9)
    assert grid[0, 0, 0, 0] == 0 and grid[0, 0, 0, -1] == 1 and grid[0, 1, -1, 0] == 1
