"""Named task presets: which operator, which network and which schedule.

Each preset follows a published configuration of the DIP reference code (Ulyanov et al.,
"Deep Image Prior", CVPR 2018, github.com/DmitryUlyanov/deep-image-prior), with early stopping
added on top of its fixed iteration counts, which become caps:

- `denoise`: the denoising notebook: 5-level `skip` net, 128 channels, 4 skip channels, bilinear
  upsampling, reflection padding, 32-channel noise input ×0.1, Adam 0.01, input noise 1/30,
  output average 0.99, 3000 iterations.
- `sr`, `sr2`, `sr4`, `sr8`: the super-resolution notebook: the same `skip` net, Adam 0.01,
  Lanczos-2 downsampler; input noise 0.03 and 2000 iterations up to ×4, 0.05 and 4000 from ×8.
  `sr` with scale t gets exactly the configuration of `srT`.
- `inpaint`, `watermark`: the inpainting notebook, chosen from the mask (`inpainting_config`):
  thin holes (text, scratches, a watermark's strokes) get its text configuration, the `skip` net
  with 128 skip channels at every level, nearest upsampling, 32-channel noise input, Adam 0.01,
  input noise 0.03, 6000 iterations; wide holes its large-region one, the hourglass without
  skips fed a 2-channel meshgrid, 5000 iterations. The given pixels come back unchanged.
- `flash`: the flash/no-flash notebook: the `skip` net fed the flash image as its input code,
  fitted to the no-flash image; no input noise; Adam 0.1 as published is unstable with early
  stopping on this engine's measurements, so 0.01 is used (see benchmarks/RESULTS.md).

Denoising stops at the variance minimum (`StoppingConfig` kind "variance"); the other tasks use
kind "auto": the convergence rule for a clean input, the variance rule for a noisy one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from types import MappingProxyType
from typing import Literal

from torch import Tensor

from dip_engine.config import FitConfig, NetConfig, Performance, RestoreConfig, StoppingConfig
from dip_engine.masks import hole_radius

TaskKind = Literal["denoise", "sr", "inpaint", "flash"]


@dataclass(frozen=True)
class Task:
    name: str
    kind: TaskKind
    summary: str
    config: RestoreConfig = field(default_factory=RestoreConfig)
    scale: int | None = None  # fixed super-resolution factor of the preset; None = given per call

    def config_for(self, *, scale: int | None = None, mask: Tensor | None = None) -> RestoreConfig:
        """The configuration for one input: `sr`'s for its scale, inpainting's for its mask's
        holes; the preset's own otherwise (and when the scale or mask is not given)."""
        if self.kind == "sr" and self.scale is None and scale is not None:
            return sr_config(scale)
        if self.kind == "inpaint" and mask is not None:
            return inpainting_config(mask)
        return self.config


# Stopping for the tasks that have no noise to over-fit when their input is clean: converged once
# the image changes by less than the tolerance (RMS per 100 iterations) three times in a row, or
# at the variance minimum for a noisy input. Measured in benchmarks/RESULTS.md: super-resolution
# keeps gaining to its cap, so its tolerance is tight; inpainting's filled holes stop improving
# long before its cap (and its change is measured over the holes alone), so it is looser.
CONVERGENCE = StoppingConfig(kind="auto", converge_tolerance=1e-3)
INPAINT_CONVERGENCE = replace(CONVERGENCE, converge_tolerance=4e-3)
# The widest hole (see `hole_radius`) the text configuration fills; wider holes get the large-region one.
THIN_HOLE_RADIUS = 16


def sr_config(scale: int) -> RestoreConfig:
    """The super-resolution notebook's configuration for factor `scale`."""
    large = scale >= 8
    fit = FitConfig(reg_noise_std=0.05 if large else 0.03, max_iterations=4000 if large else 2000, stopping=CONVERGENCE)
    return RestoreConfig(fit=fit)


def text_inpainting_config() -> RestoreConfig:
    """The inpainting notebook's text configuration (its kate.png and peppers.png)."""
    net = NetConfig(channels_skip=(128,) * 5, upsample="nearest")
    fit = FitConfig(reg_noise_std=0.03, max_iterations=6000, stopping=INPAINT_CONVERGENCE, keep_known=True)
    return RestoreConfig(net=net, fit=fit)


def region_inpainting_config() -> RestoreConfig:
    """The inpainting notebook's large-region configuration (its vase.png)."""
    net = NetConfig(channels_skip=(0,) * 5, upsample="nearest", input_kind="meshgrid", input_depth=2)
    fit = FitConfig(reg_noise_std=0.03, max_iterations=5000, stopping=INPAINT_CONVERGENCE, keep_known=True)
    return RestoreConfig(net=net, fit=fit)


def inpainting_config(mask: Tensor) -> RestoreConfig:
    """The text configuration for a mask of thin holes, the large-region one for wide holes."""
    if hole_radius(mask) <= THIN_HOLE_RADIUS:
        return text_inpainting_config()
    return region_inpainting_config()


def _sr(name: str, scale: int | None) -> Task:
    label = f"×{scale}" if scale else "×t (scale given per image)"
    return Task(name, "sr", f"super-resolution {label}, Lanczos-2 data term", sr_config(scale or 4), scale)


def _inpaint(name: str, summary: str) -> Task:
    return Task(name, "inpaint", summary, text_inpainting_config())


@cache
def _presets() -> Mapping[str, Task]:
    """The presets by name, built once (a manifest of 100,000 rows looks them up per row)."""
    tasks = [
        Task("denoise", "denoise", "blind denoising, E = ‖x − x0‖²"),
        _sr("sr", None),
        _sr("sr2", 2),
        _sr("sr4", 4),
        _sr("sr8", 8),
        _inpaint("inpaint", "inpainting of the pixels where the mask is 0"),
        _inpaint("watermark", "watermark removal: the mask is 0 on the watermark"),
        Task(
            "flash",
            "flash",
            "flash/no-flash: the flash image drives the network, the no-flash image is fitted",
            RestoreConfig(fit=FitConfig(reg_noise_std=0.0, max_iterations=2000, stopping=CONVERGENCE)),
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
