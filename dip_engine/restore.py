"""`restore`: the engine's public entry point. Checks its inputs, builds the problem, fits it."""

from __future__ import annotations

import numbers
from typing import Protocol

import torch
from torch import Tensor

from dip_engine.config import RestoreConfig
from dip_engine.fit import Callback, Problem, fit
from dip_engine.operators import Denoising, FlashNoFlash, Inpainting, Operator, SuperResolution
from dip_engine.result import FitState, Restoration
from dip_engine.step import CompiledSteps
from dip_engine.tasks import Task, get_task


def check_image(name: str, image: object, channels: int | None = None) -> Tensor:
    if not isinstance(image, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape C×H×W, got {type(image).__name__}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor with values in [0, 1], got dtype {image.dtype}")
    if image.dim() != 3 or min(image.shape) < 1:
        raise ValueError(f"{name} must have shape C×H×W, got {tuple(image.shape)}")
    if image.shape[-2] < 4 or image.shape[-1] < 4:
        raise ValueError(f"{name} is {image.shape[-2]}x{image.shape[-1]} pixels; at least 4x4 is needed")
    if channels is not None and image.shape[0] != channels:
        raise ValueError(f"{name} has {image.shape[0]} channels, expected {channels}")
    if not torch.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite pixels")
    if image.min() < 0 or image.max() > 1:
        raise ValueError(f"{name} has values outside [0, 1] (min {image.min():.3g}, max {image.max():.3g})")
    return image


def _check_scale(scale: object, task: Task) -> int:
    if task.scale is not None:
        if scale is not None and scale != task.scale:
            raise ValueError(f"task {task.name!r} is fixed to scale {task.scale}, got scale={scale!r}")
        return task.scale
    if scale is None:
        raise ValueError(f"task {task.name!r} needs a scale: an integer >= 2")
    is_integral = isinstance(scale, numbers.Integral) or (isinstance(scale, float) and scale.is_integer())
    if isinstance(scale, bool) or not is_integral or int(scale) < 2:  # type: ignore[call-overload]
        raise ValueError(f"super-resolution scale must be an integer >= 2, got {scale!r}")
    return int(scale)  # type: ignore[call-overload]


def _check_mask(mask: object, x0: Tensor) -> Tensor:
    if not isinstance(mask, Tensor):
        raise ValueError("inpainting needs a mask: a tensor H×W, 1×H×W or C×H×W with 1 = known pixel")
    mask = mask.float()
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    c, h, w = x0.shape
    if mask.dim() != 3 or mask.shape[-2:] != (h, w) or mask.shape[0] not in (1, c):
        raise ValueError(f"mask has shape {tuple(mask.shape)}; expected {h}x{w} (H×W, 1×H×W or {c}×H×W)")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must be binary: 1 for a known pixel, 0 for a missing one")
    if mask.sum() == 0:
        raise ValueError("mask marks every pixel as missing; at least some must be known (1)")
    return mask


def _operator(task: Task, x0: Tensor, mask: object, scale: object, flash: object) -> tuple[Operator, Tensor | None]:
    unused = {"mask": (mask, "inpaint"), "flash": (flash, "flash")}
    for name, (value, kind) in unused.items():
        if value is not None and task.kind != kind:
            raise ValueError(f"{name}= is only used by {kind} tasks, not by task {task.name!r}")
    if scale is not None and task.kind != "sr":
        raise ValueError(f"scale= is only used by super-resolution tasks, not by task {task.name!r}")
    if task.kind == "denoise":
        return Denoising(), None
    if task.kind == "sr":
        return SuperResolution(_check_scale(scale, task)), None
    if task.kind == "inpaint":
        return Inpainting(_check_mask(mask, x0)), None
    if flash is None:
        raise ValueError("flash/no-flash needs flash=: the flash image, same shape as x0 (the no-flash image)")
    guide = check_image("flash", flash, channels=x0.shape[0])
    if guide.shape != x0.shape:
        raise ValueError(f"flash image has shape {tuple(guide.shape)}, expected {tuple(x0.shape)} like x0")
    return FlashNoFlash(guide), guide


class TiledRestore(Protocol):
    """What `restore(tiling=...)` asks of its tiling: `dip_engine.tiling.TilingConfig`.

    The tiling module builds on this one (it checks inputs with `prepare`), so `restore` reaches
    it through this protocol rather than an import, which keeps the modules' imports one-way."""

    def restore_tiled(
        self,
        x0: Tensor,
        task: Task,
        *,
        mask: Tensor | None,
        scale: int | None,
        flash: Tensor | None,
        config: RestoreConfig | None,
        seed: int,
        device: torch.device | str | None,
        reference: Tensor | None,
        steps: CompiledSteps | None,
    ) -> Restoration | None:
        """The blended restoration of x0's tiles, or None when x0 is to be restored whole."""
        ...


def resolve_device(device: torch.device | str | None) -> torch.device:
    """`device`, or CUDA when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prepare(
    x0: Tensor,
    task: str | Task,
    *,
    mask: Tensor | None = None,
    scale: int | None = None,
    flash: Tensor | None = None,
) -> tuple[Task, Problem]:
    """Check an observation and what its task needs; return the task and the problem to fit.

    Raises ValueError for anything `restore` documents as invalid."""
    spec = get_task(task) if isinstance(task, str) else task
    x0 = check_image("x0", x0)
    operator, guide = _operator(spec, x0, mask, scale, flash)
    problem = Problem(
        operator=operator,
        observation=x0.unsqueeze(0).float(),
        size=operator.output_size((x0.shape[-2], x0.shape[-1])),
        guide=None if guide is None else guide.unsqueeze(0).float(),
    )
    return spec, problem


def restore(
    x0: Tensor,
    task: str | Task,
    *,
    mask: Tensor | None = None,
    scale: int | None = None,
    flash: Tensor | None = None,
    config: RestoreConfig | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    reference: Tensor | None = None,
    initial_state: FitState | None = None,
    callback: Callback | None = None,
    steps: CompiledSteps | None = None,
    tiling: TiledRestore | None = None,
) -> Restoration:
    """Restore one image with Deep Image Prior.

    x0: the corrupted image, float C×H×W in [0, 1]. task: a preset name (`task_names()`) or a
    `Task`. mask (inpainting, 1 = known), scale (super-resolution factor), flash (flash/no-flash)
    as the task needs. config: overrides the preset's network and fit loop (default: the preset's
    configuration for this scale or mask, `Task.config_for`). reference: a clean
    image of the output's shape, only to record a PSNR trace in the history. initial_state:
    continue from an earlier fit (warm start). steps: a worker's cache of compiled
    training steps, reused across calls when the config compiles. tiling: a
    `dip_engine.tiling.TilingConfig` to restore x0 as overlapping tiles blended into one image
    (a large image that does not fit the device's memory); None, or a tiling that resolves to
    one tile, restores it whole exactly as without. A tiled result's image is the blend, its
    iterations the sum over the tiles, its stop_reason their most common, its history holds no
    traces (see `dip_engine.tiling.summarise`; the reference is only checked), `tiles` their
    count and `seconds` the wall time; initial_state and callback cannot be combined with it.
    Returns a `Restoration` whose image is on x0's device.
    """
    if tiling is not None:
        if initial_state is not None or callback is not None:
            raise ValueError("initial_state and callback are not supported with tiling=")
        spec = get_task(task) if isinstance(task, str) else task
        tiled = tiling.restore_tiled(
            x0, spec, mask=mask, scale=scale, flash=flash, config=config, seed=seed, device=device, reference=reference, steps=steps
        )
        if tiled is not None:
            return tiled
    spec, problem = prepare(x0, task, mask=mask, scale=scale, flash=flash)
    if reference is not None:
        reference = check_image("reference", reference, channels=x0.shape[0])
        if reference.shape[-2:] != problem.size:
            raise ValueError(f"reference is {tuple(reference.shape[-2:])}, expected the output size {problem.size}")
    target = resolve_device(device)
    chosen = config if config is not None else spec.config_for(scale=scale, mask=mask)
    result = fit(
        problem,
        chosen.net,
        chosen.fit,
        seed=seed,
        device=target,
        initial_state=initial_state,
        reference=None if reference is None else reference.unsqueeze(0).float().to(target),
        callback=callback,
        steps=steps,
    )
    result.image = result.image.to(x0.device)
    result.task = spec.name
    return result
