"""Named task presets: which operator, which network and which schedule.

Each preset follows a published configuration of the DIP reference code (Ulyanov et al.,
"Deep Image Prior", CVPR 2018, github.com/DmitryUlyanov/deep-image-prior), with early stopping
added on top of its fixed iteration counts, which become caps:

- `denoise`: the denoising notebook: 5-level `skip` net, 128 channels, 4 skip channels, bilinear
  upsampling, reflection padding, 32-channel noise input ×0.1, Adam 0.01, input noise 1/30,
  output average 0.99, 3000 iterations.
- `sr`, `sr2`, `sr4`, `sr8`: the super-resolution notebook: the same `skip` net, Adam 0.01, input
  noise 0.03, Lanczos-2 downsampler; 2000 iterations for ×4 and below, 4000 for ×8.
- `inpaint`, `watermark`: the text-inpainting configuration of the inpainting notebook: the plain
  hourglass (5 levels, 128 channels, no skip connections), nearest upsampling, Adam 0.01, input
  noise 0.03, 6000 iterations. `watermark` is the same fit; its mask marks the watermark.
- `flash`: the flash/no-flash notebook: the `skip` net fed the flash image as its input code,
  fitted to the no-flash image; no input noise; Adam 0.1 as published is unstable with early
  stopping on this engine's measurements, so 0.01 is used (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from types import MappingProxyType
from collections.abc import Mapping
from typing import Literal

from dip_engine.config import FitConfig, NetConfig, Performance, RestoreConfig

TaskKind = Literal["denoise", "sr", "inpaint", "flash"]


@dataclass(frozen=True)
class Task:
    name: str
    kind: TaskKind
    summary: str
    config: RestoreConfig = field(default_factory=RestoreConfig)
    scale: int | None = None  # fixed super-resolution factor of the preset; None = given per call


def _sr(name: str, scale: int | None, cap: int) -> Task:
    fit = FitConfig(reg_noise_std=0.03, max_iterations=cap)
    label = f"×{scale}" if scale else "×t (scale given per image)"
    return Task(name, "sr", f"super-resolution {label}, Lanczos-2 data term", RestoreConfig(fit=fit), scale)


def _inpaint(name: str, summary: str) -> Task:
    net = NetConfig(channels_skip=(0, 0, 0, 0, 0), upsample="nearest")
    fit = FitConfig(reg_noise_std=0.03, max_iterations=6000)
    return Task(name, "inpaint", summary, RestoreConfig(net=net, fit=fit))


@cache
def _presets() -> Mapping[str, Task]:
    """The presets by name, built once (a manifest of 100,000 rows looks them up per row)."""
    tasks = [
        Task("denoise", "denoise", "blind denoising, E = ‖x − x0‖²"),
        _sr("sr", None, 4000),
        _sr("sr2", 2, 2000),
        _sr("sr4", 4, 2000),
        _sr("sr8", 8, 4000),
        _inpaint("inpaint", "inpainting of the pixels where the mask is 0"),
        _inpaint("watermark", "watermark removal: the mask is 0 on the watermark"),
        Task(
            "flash",
            "flash",
            "flash/no-flash: the flash image drives the network, the no-flash image is fitted",
            RestoreConfig(fit=FitConfig(reg_noise_std=0.0, max_iterations=2000)),
        ),
    ]
    return MappingProxyType({task.name: task for task in tasks})


def task_names() -> tuple[str, ...]:
    return tuple(_presets())


def get_task(name: str) -> Task:
    """The preset called `name`; a ValueError lists the known ones."""
    presets = _presets()
    if name not in presets:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(presets)}")
    return presets[name]


def with_max_iterations(config: RestoreConfig, max_iterations: int) -> RestoreConfig:
    """The same configuration with another iteration cap (a per-row override in manifests)."""
    return replace(config, fit=replace(config.fit, max_iterations=max_iterations))


def with_performance(config: RestoreConfig, performance: Performance) -> RestoreConfig:
    """The same configuration with other speed switches (e.g. `performance_for(device)`)."""
    return replace(config, fit=replace(config.fit, performance=performance))
