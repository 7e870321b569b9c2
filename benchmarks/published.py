"""The published DIP recipes, written out here and independent of the engine.

A faithful re-implementation of the reference notebooks (Ulyanov, Vedaldi and Lempitsky, "Deep
Image Prior", CVPR 2018): their `skip` generator and each task's training loop, with the
notebook's hyperparameters and fixed iteration count. The benchmarks run these beside the
engine's presets on the same inputs. Only the forward map A of the data term (the Lanczos
decimation, the mask) is the engine's operator, so that both fit the same observation.

* denoising: skip 128/128/4, bilinear, noise code 32×0.1, input noise 1/30, Adam 0.01, output
  average 0.99 (reported), 3000 iterations;
* super-resolution: the same net, input noise 0.03 (×4) / 0.05 (×8), Adam 0.01, raw output,
  2000 (×4) / 4000 (×8) iterations;
* inpainting, text: skip 128/128/128, nearest, noise code 32, input noise 0.03, Adam 0.01, raw
  output, 6001 iterations; large region: no skips, a 2-channel meshgrid code, 5001 iterations;
* flash/no-flash: skip 128/128/4 with nearest upsampling on the two outer levels, the flash
  image as the code, no input noise, Adam 0.1, raw output, 601 iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from dip_engine.functional import psnr


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Module:
    """Reflection padding then an unpadded convolution, as the published `conv(..., pad='reflection')`."""
    layers: list[nn.Module] = []
    if kernel > 1:
        layers.append(nn.ReflectionPad2d((kernel - 1) // 2))
    layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride, padding=0))
    return nn.Sequential(*layers)


def _block(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.LeakyReLU(0.2, inplace=True)]


class _Concat(nn.Module):
    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def published_skip(
    in_channels: int = 32,
    out_channels: int = 3,
    down: Sequence[int] = (128,) * 5,
    up: Sequence[int] = (128,) * 5,
    skip: Sequence[int] = (4,) * 5,
    upsample: Sequence[str] = ("bilinear",) * 5,
    kernel_down: int = 3,
    kernel_up: int = 3,
) -> nn.Module:
    """The published `skip(...)` generator, level by level (a level without skip channels has no
    skip branch), with the 1×1 convolutions after each up level and a sigmoid."""
    model = nn.Sequential()
    current = model
    depth = in_channels
    levels = len(down)
    for level in range(levels):
        deeper = nn.Sequential()
        if skip[level]:
            shortcut = nn.Sequential(*_block(_conv(depth, skip[level], 1), skip[level]))
            current.append(_Concat(shortcut, deeper))
        else:
            current.append(deeper)
        below = up[level + 1] if level < levels - 1 else down[level]
        current.append(nn.BatchNorm2d(skip[level] + below))
        deeper.extend(_block(_conv(depth, down[level], kernel_down, stride=2), down[level]))
        deeper.extend(_block(_conv(down[level], down[level], kernel_down), down[level]))
        inner = nn.Sequential()
        if level < levels - 1:
            deeper.append(inner)
        deeper.append(nn.Upsample(scale_factor=2, mode=upsample[level]))
        current.extend(_block(_conv(skip[level] + below, up[level], kernel_up), up[level]))
        current.extend(_block(_conv(up[level], up[level], 1), up[level]))
        depth = down[level]
        current = inner
    model.extend([_conv(up[0], out_channels, 1), nn.Sigmoid()])
    return model


@dataclass(frozen=True)
class Recipe:
    """One notebook's fit: its network, code, schedule and what it reports."""

    name: str
    iterations: int
    learning_rate: float
    reg_noise_std: float
    average: float  # output averaging weight; 0 = the raw output is the result
    code: str  # "noise" (32 channels × 0.1), "meshgrid" (2 channels) or "guide" (the flash image)
    network: Callable[[int], nn.Module] = field(repr=False)  # in_channels → generator


def _denoise_net(in_channels: int) -> nn.Module:
    return published_skip(in_channels)


def _text_net(in_channels: int) -> nn.Module:
    return published_skip(in_channels, skip=(128,) * 5, upsample=("nearest",) * 5)


def _region_net(in_channels: int) -> nn.Module:
    return published_skip(in_channels, skip=(0,) * 5, upsample=("nearest",) * 5)


def _flash_net(in_channels: int) -> nn.Module:
    return published_skip(in_channels, upsample=("nearest", "nearest", "bilinear", "bilinear", "bilinear"))


RECIPES = {
    "denoise": Recipe("denoising", 3000, 0.01, 1 / 30, 0.99, "noise", _denoise_net),
    "sr4": Recipe("super-resolution ×4", 2000, 0.01, 0.03, 0.0, "noise", _denoise_net),
    "sr8": Recipe("super-resolution ×8", 4000, 0.01, 0.05, 0.0, "noise", _denoise_net),
    "inpaint-text": Recipe("inpainting, text", 6001, 0.01, 0.03, 0.0, "noise", _text_net),
    "inpaint-region": Recipe("inpainting, large region", 5001, 0.01, 0.03, 0.0, "meshgrid", _region_net),
    "flash": Recipe("flash/no-flash", 601, 0.1, 0.0, 0.0, "guide", _flash_net),
}


@dataclass
class RecipeRun:
    trace: list[float]  # PSNR of the reported image after each iteration
    seconds: float

    @property
    def final(self) -> float:
        return self.trace[-1]

    @property
    def best(self) -> tuple[float, int]:
        """(best PSNR along the run, its iteration)."""
        index = max(range(len(self.trace)), key=self.trace.__getitem__)
        return self.trace[index], index + 1


def _code(recipe: Recipe, size: tuple[int, int], guide: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    if recipe.code == "guide":
        assert guide is not None, "the flash recipe needs the flash image"
        return guide.unsqueeze(0).clone()
    if recipe.code == "meshgrid":
        ys = torch.linspace(0, 1, size[0]).view(-1, 1).expand(*size)
        xs = torch.linspace(0, 1, size[1]).view(1, -1).expand(*size)
        return torch.stack([xs, ys]).unsqueeze(0)
    return torch.rand(1, 32, *size, generator=generator) * 0.1


def run_recipe(
    recipe: Recipe,
    forward: Callable[[torch.Tensor], torch.Tensor],
    observation: torch.Tensor,
    reference: torch.Tensor,
    *,
    guide: torch.Tensor | None = None,
    seed: int = 0,
    autocast: bool = False,
) -> RecipeRun:
    """Fit `recipe` to `observation` (C×h×w) through `forward` (A, on (1, C, H, W) images), to its
    fixed count; the PSNR against `reference` (C×H×W) of the reported image after every step.
    `autocast`: bf16 autocast and channels_last, the speed settings the engine runs on this CPU."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    height, width = reference.shape[-2:]
    code = _code(recipe, (height, width), guide, generator)
    net = recipe.network(code.shape[1])
    memory = torch.channels_last if autocast else torch.contiguous_format
    net = net.to(memory_format=memory)  # type: ignore[call-overload]  # Module.to takes memory_format; torch's overloads omit it
    code = code.contiguous(memory_format=memory)
    target = observation.unsqueeze(0)
    reference = reference.unsqueeze(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.learning_rate)
    average: torch.Tensor | None = None
    trace: list[float] = []
    for _ in range(recipe.iterations):
        optimizer.zero_grad()
        net_input = code + recipe.reg_noise_std * torch.randn_like(code) if recipe.reg_noise_std else code
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = net(net_input)
        loss = torch.nn.functional.mse_loss(forward(out.float()), target)
        loss.backward()
        optimizer.step()
        detached = out.detach().float()
        if recipe.average:
            average = detached if average is None else average * recipe.average + detached * (1 - recipe.average)
            detached = average
        trace.append(psnr(detached.clamp(0, 1), reference))
    return RecipeRun(trace, time.perf_counter() - started)
