"""The DIP encoder-decoder generator and its seeded initialisation.

The layout follows the published `skip` network: at each level an optional 1x1 skip branch and a
deeper branch (strided conv, conv, the next level, 2x upsampling) are concatenated, normalised and
fused by a conv (and a 1x1 conv); a final 1x1 conv and a sigmoid give the image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dip_engine.config import NetConfig


def _activation(kind: str) -> nn.Module:
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if kind == "relu":
        return nn.ReLU()
    if kind == "elu":
        return nn.ELU()
    return nn.Identity()


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def _conv(config: NetConfig, c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Module:
    pad = (kernel - 1) // 2
    if config.padding == "reflection" and pad > 0:
        return nn.Sequential(nn.ReflectionPad2d(pad), nn.Conv2d(c_in, c_out, kernel, stride))
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=pad)


def _block(config: NetConfig, c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [_conv(config, c_in, c_out, kernel, stride), _norm(config.norm, c_out), _activation(config.activation)]


class Level(nn.Module):
    """One level of the encoder-decoder; `inner` is the next level down (None at the bottom)."""

    def __init__(self, config: NetConfig, index: int, c_in: int, inner: Level | None) -> None:
        super().__init__()
        down, up, skip = config.channels_down[index], config.channels_up[index], config.channels_skip[index]
        self.skip = nn.Sequential(*_block(config, c_in, skip, config.kernel_skip)) if skip > 0 else None
        self.down = nn.Sequential(
            *_block(config, c_in, down, config.kernel_down, stride=2),
            *_block(config, down, down, config.kernel_down),
        )
        self.inner = inner
        deep = config.channels_up[index + 1] if inner is not None else down
        self.upsample = nn.Upsample(scale_factor=2, mode=config.upsample)
        self.merge_norm = _norm(config.norm, skip + deep)
        fuse = _block(config, skip + deep, up, config.kernel_up)
        if config.conv_1x1_up:
            fuse += _block(config, up, up, 1)
        self.fuse = nn.Sequential(*fuse)

    def forward(self, x: Tensor) -> Tensor:
        deep = self.down(x)
        if self.inner is not None:
            deep = self.inner(deep)
        deep = self.upsample(deep)
        if self.skip is not None:
            deep = torch.cat([self.skip(x), deep], dim=1)
        return self.fuse(self.merge_norm(deep))


class Generator(nn.Module):
    """x = f_theta(z): input code (N, c_in, H, W) -> image (N, c_out, H, W) in [0, 1].

    H and W must be multiples of `config.size_multiple`; `dip_engine.fit` pads and crops for that.
    """

    def __init__(self, config: NetConfig, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.config = config
        inner: Level | None = None
        for index in reversed(range(config.levels)):
            c_in = in_channels if index == 0 else config.channels_down[index - 1]
            inner = Level(config, index, c_in, inner)
        assert inner is not None  # levels >= 1 is checked by NetConfig
        self.body = inner
        self.head = nn.Conv2d(config.channels_up[0], out_channels, 1)

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.body(z)))


def init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default conv init (Kaiming-uniform, a=sqrt(5)), drawn from `generator`.

    Seeding through an explicit generator keeps the global RNG untouched, so two restorations in
    one process (or one Ray actor) never influence each other.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def build_generator(config: NetConfig, in_channels: int, out_channels: int, seed: int) -> Generator:
    """A generator on the CPU with weights determined by `seed` alone."""
    net = Generator(config, in_channels, out_channels)
    init_weights(net, torch.Generator().manual_seed(seed))
    return net


def padded_size(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def input_code(config: NetConfig, height: int, width: int, generator: torch.Generator) -> Tensor:
    """The fixed input z (1, input_depth, height, width): scaled uniform noise or a meshgrid."""
    if config.input_kind == "meshgrid":
        ys = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
        xs = torch.linspace(0, 1, width).view(1, width).expand(height, width)
        return torch.stack([xs, ys]).unsqueeze(0).contiguous()
    return torch.rand(1, config.input_depth, height, width, generator=generator) * config.input_scale


def code_channels(config: NetConfig) -> int:
    return 2 if config.input_kind == "meshgrid" else config.input_depth
