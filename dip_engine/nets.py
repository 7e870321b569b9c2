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
    """Per-channel normalisation: with K problems stacked along the channels, none mixes problems."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def _conv(config: NetConfig, c_in: int, c_out: int, kernel: int, stride: int = 1, problems: int = 1) -> nn.Module:
    """A conv of c_in → c_out channels per problem; K problems are K groups of one grouped conv."""
    pad = (kernel - 1) // 2
    reflect = config.padding == "reflection" and pad > 0
    conv = nn.Conv2d(c_in * problems, c_out * problems, kernel, stride, padding=0 if reflect else pad, groups=problems)
    return nn.Sequential(nn.ReflectionPad2d(pad), conv) if reflect else conv


def _block(config: NetConfig, c_in: int, c_out: int, kernel: int, stride: int = 1, problems: int = 1) -> list[nn.Module]:
    return [
        _conv(config, c_in, c_out, kernel, stride, problems),
        _norm(config.norm, c_out * problems),
        _activation(config.activation),
    ]


def concat_problems(a: Tensor, b: Tensor, problems: int) -> Tensor:
    """Concatenate the channels of two stacks of K problems problem by problem:
    (N, K·ca, H, W), (N, K·cb, H, W) → (N, K·(ca + cb), H, W) laid out as [a_1 b_1 … a_K b_K]."""
    if problems == 1:
        return torch.cat([a, b], dim=1)
    n, _, h, w = a.shape
    joined = torch.cat([a.view(n, problems, -1, h, w), b.view(n, problems, -1, h, w)], dim=2)
    return joined.view(n, -1, h, w)


class Level(nn.Module):
    """One level of the encoder-decoder; `inner` is the next level down (None at the bottom)."""

    def __init__(self, config: NetConfig, index: int, c_in: int, inner: Level | None, problems: int = 1) -> None:
        super().__init__()
        down, up, skip = config.channels_down[index], config.channels_up[index], config.channels_skip[index]
        k = problems
        self.problems = problems
        self.skip = nn.Sequential(*_block(config, c_in, skip, config.kernel_skip, problems=k)) if skip > 0 else None
        self.down = nn.Sequential(
            *_block(config, c_in, down, config.kernel_down, stride=2, problems=k),
            *_block(config, down, down, config.kernel_down, problems=k),
        )
        self.inner = inner
        deep = config.channels_up[index + 1] if inner is not None else down
        self.upsample = nn.Upsample(scale_factor=2, mode=config.upsample)
        self.merge_norm = _norm(config.norm, (skip + deep) * k)
        fuse = _block(config, skip + deep, up, config.kernel_up, problems=k)
        if config.conv_1x1_up:
            fuse += _block(config, up, up, 1, problems=k)
        self.fuse = nn.Sequential(*fuse)

    def forward(self, x: Tensor) -> Tensor:
        deep = self.down(x)
        if self.inner is not None:
            deep = self.inner(deep)
        deep = self.upsample(deep)
        if self.skip is not None:
            deep = concat_problems(self.skip(x), deep, self.problems)
        return self.fuse(self.merge_norm(deep))


class Generator(nn.Module):
    """x = f_theta(z): input code (N, c_in, H, W) -> image (N, c_out, H, W) in [0, 1].

    H and W must be multiples of `config.size_multiple`; `dip_engine.fit` pads and crops for that.
    With `problems` = K > 1 it is K independent generators in one module: every conv is grouped
    (K groups), every norm per channel, so codes (N, K·c_in, H, W) map to images (N, K·c_out, H, W)
    and problem k's output depends on problem k's weights and code alone (`dip_engine.batch`).
    """

    def __init__(self, config: NetConfig, in_channels: int, out_channels: int, problems: int = 1) -> None:
        super().__init__()
        if problems < 1:
            raise ValueError(f"problems={problems} must be >= 1")
        self.config = config
        self.in_channels, self.out_channels = in_channels, out_channels  # per problem
        self.problems = problems
        inner: Level | None = None
        for index in reversed(range(config.levels)):
            c_in = in_channels if index == 0 else config.channels_down[index - 1]
            inner = Level(config, index, c_in, inner, problems)
        assert inner is not None  # levels >= 1 is checked by NetConfig
        self.body = inner
        self.head = nn.Conv2d(config.channels_up[0] * problems, out_channels * problems, 1, groups=problems)

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


def stack_states(states: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The state_dict of a K-problem generator from K single-problem state_dicts (same config).

    Grouped conv weights, biases and per-channel norm parameters and statistics are the single
    ones concatenated along their first axis; scalars (batch counts) are taken from the first.
    """
    return {name: torch.cat([s[name] for s in states]) if states[0][name].dim() else states[0][name].clone() for name in states[0]}


def split_state(state: dict[str, Tensor], problems: int) -> list[dict[str, Tensor]]:
    """The inverse of `stack_states`: K single-problem state_dicts of a K-problem generator."""
    return [
        {name: (value.chunk(problems)[k] if value.dim() else value).detach().clone() for name, value in state.items()}
        for k in range(problems)
    ]


def padded_size(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def input_code(config: NetConfig, height: int, width: int, generator: torch.Generator) -> Tensor:
    """The fixed input z (1, input_depth, height, width): scaled uniform noise or a meshgrid."""
    if config.input_kind == "meshgrid":
        ys = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
        xs = torch.linspace(0, 1, width).view(1, width).expand(height, width)
        return torch.stack([xs, ys]).unsqueeze(0).contiguous()
    return torch.rand(1, config.input_depth, height, width, generator=generator) * config.input_scale
