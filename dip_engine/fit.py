"""The DIP optimisation loop: θ* = argmin_θ ‖A(f_θ(z)) − x0‖², stopped early.

Adam on the generator's weights, fresh noise added to z at every iteration, an exponential
average of the outputs, a divergence guard, and an early-stopping criterion that keeps the image
at its detected optimum. It can start from a given `FitState` and returns its final one.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dip_engine.config import FitConfig, NetConfig, Performance
from dip_engine.functional import psnr
from dip_engine.guard import DivergenceGuard
from dip_engine.nets import build_generator, input_code, padded_size
from dip_engine.operators import Operator
from dip_engine.result import FitState, History, Restoration
from dip_engine.step import CompiledSteps, StepKey, autocast_dtype, set_cuda_switches, step_loss
from dip_engine.stopping import Rule, choose_rule

# Called after every iteration with (iteration, image, generator); may inspect or poison the weights.
Callback = Callable[[int, Tensor, torch.nn.Module], None]


@dataclass(frozen=True)
class Problem:
    """One restoration problem: an operator, its observation, and what to reconstruct."""

    operator: Operator
    observation: Tensor  # x0, (1, C, h, w)
    size: tuple[int, int]  # (H, W) of the restored image
    guide: Tensor | None = None  # an image (1, Cg, H, W) used as the input code (flash/no-flash)
    # A temporal term (video): + mean(anchor_weight · (x − anchor)²), tying the output to an earlier
    # frame's restoration where the scene is static. anchor (1, C, H, W); anchor_weight (1, 1, H, W).
    anchor: Tensor | None = None
    anchor_weight: Tensor | None = None

    @property
    def channels(self) -> int:
        return self.observation.shape[1]


def _pad_guide(guide: Tensor, height: int, width: int) -> Tensor:
    pad_h, pad_w = height - guide.shape[-2], width - guide.shape[-1]
    pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    fits_reflection = pad_h < guide.shape[-2] and pad_w < guide.shape[-1]
    return F.pad(guide, pads, mode="reflect" if fits_reflection else "replicate")


def padded_layout(size: tuple[int, int], net_config: NetConfig) -> tuple[int, int, int, int]:
    """(padded height, padded width, top, left) of an image of `size` inside the network's input."""
    height, width = size
    multiple = net_config.size_multiple
    # At least two multiples, so the deepest feature map is 2×2: batch norm needs more than one
    # value per channel, and reflection padding needs a side larger than the pad.
    padded_h, padded_w = (max(2 * multiple, padded_size(side, multiple)) for side in (height, width))
    return padded_h, padded_w, (padded_h - height) // 2, (padded_w - width) // 2


def initial_code(problem: Problem, net_config: NetConfig, seed: int, device: torch.device) -> Tensor:
    """A fresh fit's input code z: the padded guide image, or noise drawn from `seed`."""
    padded_h, padded_w, _, _ = padded_layout(problem.size, net_config)
    if problem.guide is not None:
        return _pad_guide(problem.guide.to(device), padded_h, padded_w)
    return input_code(net_config, padded_h, padded_w, torch.Generator().manual_seed(seed)).to(device)


def autocast_context(device: torch.device, performance: Performance) -> tuple[contextlib.AbstractContextManager, bool]:
    """The autocast context for this device, and whether float16 (needing a GradScaler) is used."""
    dtype = autocast_dtype(device, performance)
    if dtype is None:
        return contextlib.nullcontext(), False
    return torch.autocast(device.type, dtype=dtype), dtype == torch.float16


class OutputAverage:
    """Exponential average of the outputs, normalised like Adam's moments.

    The published code starts its average at the first output, which then still weighs
    0.99**150 = 22% after 150 iterations; normalising a zero-started average by 1 − β**t weighs
    every output by β**age alone. An average carried over from an earlier fit starts fully formed.
    """

    def __init__(self, beta: float, start: Tensor | None) -> None:
        self.beta = beta
        self._sum = None if start is None else start.detach().clone()
        self._mass = 0.0 if start is None else 1.0

    def add(self, output: Tensor) -> None:
        if self.beta == 0:
            return
        if self._sum is None:
            self._sum = torch.zeros_like(output)
        self._sum.lerp_(output, 1.0 - self.beta)
        self._mass = self.beta * self._mass + (1.0 - self.beta)

    def value(self) -> Tensor | None:
        return None if self._sum is None else self._sum / self._mass


def put_back_known(image: Tensor, rule: Rule, operator: Operator, observation: Tensor) -> Tensor:
    """`image` with the observation's given pixels put back where the rule keeps them."""
    if not rule.keep_known or operator.known is None:
        return image
    mask = operator.known.to(dtype=image.dtype)
    return observation * mask + image * (1 - mask)


def network_image(raw: Tensor, average: OutputAverage, fit_config: FitConfig) -> Tensor:
    """The network's image at this iteration: the output average, or the raw output."""
    image = average.value() if fit_config.return_average and fit_config.average > 0 else raw
    assert image is not None
    return image


def trace_psnr(history: History, reference: Tensor, raw: Tensor, network: Tensor, image: Tensor, rule: Rule,
               operator: Operator, observation: Tensor) -> None:
    """Append this iteration's PSNR figures to `history`: of the returned `image`, of the raw output
    (given pixels put back alike) and, where pixels are put back, of the `network`'s own image."""
    history.psnr.append(psnr(image, reference))
    history.raw_psnr.append(psnr(put_back_known(raw, rule, operator, observation), reference))
    if rule.keep_known:
        history.network_psnr.append(psnr(network, reference))


def rule_for(problem: Problem, fit_config: FitConfig) -> Rule:
    """The stopping rule of `problem` (see `dip_engine.stopping.choose_rule`)."""
    known = problem.operator.known
    return choose_rule(fit_config, problem.observation, None if known is None else known.to(problem.observation.device))


def fit(
    problem: Problem,
    net_config: NetConfig,
    fit_config: FitConfig,
    *,
    seed: int = 0,
    device: torch.device,
    initial_state: FitState | None = None,
    reference: Tensor | None = None,
    callback: Callback | None = None,
    steps: CompiledSteps | None = None,
) -> Restoration:
    """Fit a generator to `problem`; see the module docstring. `reference` (1, C, H, W) only
    feeds the PSNR trace in the history; it never influences the fit. With
    `performance.compile`, the step is compiled through `steps` (a worker's cache: later fits of
    the same shape reuse it), or through a cache of this fit alone when None."""
    started = time.perf_counter()
    height, width = problem.size
    padded_h, padded_w, top, left = padded_layout(problem.size, net_config)
    code = initial_state.code.to(device) if initial_state is not None else initial_code(problem, net_config, seed, device)

    net = build_generator(net_config, code.shape[1], problem.channels, seed)
    if initial_state is not None:
        net.load_state_dict(initial_state.weights)
    net.to(device).train()
    performance = fit_config.performance
    if performance.channels_last:
        net.to(memory_format=torch.channels_last)
        code = code.contiguous(memory_format=torch.channels_last)
    # Compiled steps use Adam's fused kernel (see dip_engine.step); eager ones keep the default.
    optimizer = torch.optim.Adam(net.parameters(), lr=fit_config.learning_rate, fused=performance.compile or None)
    if initial_state is not None:
        optimizer.load_state_dict(initial_state.optimizer)
        for group in optimizer.param_groups:
            group["lr"] = fit_config.learning_rate
    set_cuda_switches(device, performance)
    crop = (top, left, height, width)
    loss_step = step_loss
    if performance.compile:
        key = StepKey(net_config, 1, code.shape[1], problem.channels, (padded_h, padded_w), crop,
                      type(problem.operator).__name__, str(device), performance, problem.anchor is not None)
        loss_step = (steps or CompiledSteps()).get(step_loss, key)
    autocast, use_scaler = autocast_context(device, performance)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    operator = problem.operator.to(device)
    observation = problem.observation.to(device)
    anchor = None if problem.anchor is None else problem.anchor.to(device)
    anchor_weight = None if problem.anchor_weight is None else problem.anchor_weight.to(device)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    guard = DivergenceGuard(fit_config.guard, net, optimizer)
    rule = rule_for(problem, fit_config)
    criterion = rule.criterion(fit_config, operator.known)
    history = History(rule=rule.kind, noise_sigma=rule.noise_sigma, keep_known=rule.keep_known)
    carried = None if initial_state is None or initial_state.average is None else initial_state.average.to(device)
    average = OutputAverage(fit_config.average, carried)
    kept: Tensor | None = None
    kept_iteration = 0
    image: Tensor | None = None
    stop_reason = "max_iterations"
    iteration = 0

    for iteration in range(1, fit_config.max_iterations + 1):
        net_input = code
        if fit_config.reg_noise_std > 0:
            net_input = code + fit_config.reg_noise_std * torch.randn(
                code.shape, generator=noise, device=device, dtype=code.dtype
            )
        with autocast:
            output, data, loss = loss_step(net, net_input, crop, operator, observation, anchor, anchor_weight)
        loss_value = loss.item()
        history.loss.append(data.item() if anchor is not None else loss_value)
        if guard.is_bad(loss_value):
            history.criterion.append(math.nan)
            if reference is not None:
                history.psnr.append(math.nan)
                history.raw_psnr.append(math.nan)
                if rule.keep_known:
                    history.network_psnr.append(math.nan)
            if guard.exhausted:
                stop_reason = "diverged"
                history.events.append({"event": "diverged", "iteration": iteration, "loss": loss_value})
                break
            event = guard.roll_back()
            history.events.append({"event": "rollback", "iteration": iteration, "loss": loss_value, **event})
            continue
        guard.accept(loss_value, iteration)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

        raw = output.detach()
        average.add(raw)
        network = network_image(raw, average, fit_config)
        image = put_back_known(network, rule, operator, observation)
        history.criterion.append(criterion.observe(raw, image))
        if criterion.keep_now:
            kept, kept_iteration = image.clone(), iteration
        if reference is not None:
            trace_psnr(history, reference, raw, network, image, rule, operator, observation)
        if callback is not None:
            callback(iteration, image, net)
        if criterion.should_stop():
            stop_reason = rule.stop_reason
            break

    if kept is None or criterion.keep_pending:
        kept, kept_iteration = image, iteration
    if kept is None:  # diverged before a single good step: a grey image, stop_reason says why
        kept = torch.full((1, problem.channels, height, width), 0.5, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    state = FitState(
        weights={k: v.detach().clone() for k, v in net.state_dict().items()},
        optimizer=optimizer.state_dict(),
        code=code,
        average=average.value() if fit_config.average > 0 else None,
    )
    return Restoration(
        image=kept[0].clamp(0, 1),
        iterations=iteration,
        stop_reason=stop_reason,
        history=history,
        seconds=time.perf_counter() - started,
        kept_iteration=kept_iteration,
        state=state,
    )
