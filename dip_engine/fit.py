"""The DIP optimisation loop: θ* = argmin_θ ‖A(f_θ(z)) − x0‖², stopped early.

Adam on the generator's weights, fresh noise added to z at every iteration, an exponential
average of the outputs, a divergence guard, and an early-stopping criterion that keeps the image
at its detected optimum. It can start from a given `FitState` and returns its final one.

The loop's parts are shared with `dip_engine.batch.fit_batch`: `Training` sets up a generator,
its Adam and the precision switches and takes the step; `Track` is one problem's side of the
loop (code, noise stream, output average, criterion, history, kept image). `fit` runs one track
with the divergence guard; `fit_batch` runs K tracks through one grouped generator.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dip_engine.config import FitConfig, NetConfig, Performance
from dip_engine.functional import psnr
from dip_engine.guard import DivergenceGuard
from dip_engine.nets import Generator, build_generator, input_code, padded_size
from dip_engine.operators import Operator
from dip_engine.result import FitState, History, Restoration
from dip_engine.step import (
    CompiledSteps,
    Crop,
    StepKey,
    autocast_dtype,
    set_cuda_switches,
    step_loss,
)
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


def trace_psnr(
    history: History, reference: Tensor, raw: Tensor, network: Tensor, image: Tensor, rule: Rule, operator: Operator, observation: Tensor
) -> None:
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


def image_crop(size: tuple[int, int], net_config: NetConfig) -> Crop:
    """Where an image of `size` lies in the network's padded output: (top, left, height, width)."""
    height, width = size
    _, _, top, left = padded_layout(size, net_config)
    return top, left, height, width


class Training:
    """A generator on its device with its Adam, the precision switches and the step: the set-up
    `fit` and `fit_batch` share, so both train a network the same way.

    Compiled steps use Adam's fused kernel (see `dip_engine.step`); eager ones keep the default.
    `steps` is a worker's cache of compiled steps; with `performance.compile` and no cache, the
    steps are compiled through one of this training alone.
    """

    def __init__(self, net: Generator, fit_config: FitConfig, device: torch.device, steps: CompiledSteps | None) -> None:
        self.device = device
        self.performance = fit_config.performance
        self.learning_rate = fit_config.learning_rate
        self.use(net)
        set_cuda_switches(device, self.performance)
        self.autocast, use_scaler = autocast_context(device, self.performance)
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        self._steps = (steps or CompiledSteps()) if self.performance.compile else None

    def use(self, net: Generator) -> None:
        """Train `net` from now on: on the device, in training mode and the configured memory
        format, with a fresh Adam (a batch that shrinks loads the kept moments into it)."""
        net.to(self.device).train()
        if self.performance.channels_last:
            net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to's stub omits memory_format
        self.net = net
        self.optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate, fused=self.performance.compile or None)

    def resume(self, optimizer_state: dict[str, Any]) -> None:
        """Continue an earlier fit's Adam (its moments and step counts) at this fit's learning rate."""
        self.optimizer.load_state_dict(optimizer_state)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    def laid_out(self, net_input: Tensor) -> Tensor:
        """`net_input` in the memory format the generator runs in."""
        return net_input.contiguous(memory_format=torch.channels_last) if self.performance.channels_last else net_input

    def loss_step(self, function: Callable[..., Any], problem: Problem) -> Callable[..., Any]:
        """`function` (a loss step of `dip_engine.step`) for the current generator and problems
        shaped like `problem`: compiled once per `StepKey` when the performance asks for it."""
        if self._steps is None:
            return function
        config = self.net.config
        padded_h, padded_w, _, _ = padded_layout(problem.size, config)
        key = StepKey(
            config,
            self.net.problems,
            self.net.in_channels,
            self.net.out_channels,
            (padded_h, padded_w),
            image_crop(problem.size, config),
            type(problem.operator).__name__,
            str(self.device),
            self.performance,
            problem.anchor is not None,
        )
        return self._steps.get(function, key)

    def step(self, loss: Tensor) -> None:
        """One Adam step on `loss` (scaled when float16 autocast needs it)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


class Track:
    """One problem's own side of a fit: its input code and noise stream, output average,
    stopping rule and criterion, history, and the image it keeps.

    `fit` runs one track, `fit_batch` K of them through one grouped generator; either way a
    problem's iterations are recorded and judged by the same code. The noise stream is seeded
    by `seed` + 1 (the code and the generator's weights are drawn from `seed` itself).
    `reference` only feeds the PSNR traces; `average` starts the output average (a warm start's).
    """

    def __init__(
        self,
        problem: Problem,
        fit_config: FitConfig,
        code: Tensor,
        seed: int,
        device: torch.device,
        reference: Tensor | None = None,
        average: Tensor | None = None,
    ) -> None:
        self.fit_config = fit_config
        self.device = device
        self.channels, self.size = problem.channels, problem.size
        self.operator = problem.operator.to(device)
        self.observation = problem.observation.to(device)
        self.code = code
        self.noise = torch.Generator(device=device).manual_seed(seed + 1)
        self.reference = reference
        self.rule = rule_for(problem, fit_config)
        self.criterion = self.rule.criterion(fit_config, self.operator.known)
        self.history = History(rule=self.rule.kind, noise_sigma=self.rule.noise_sigma, keep_known=self.rule.keep_known)
        self.average = OutputAverage(fit_config.average, average)
        self.image: Tensor | None = None  # the latest image
        self.kept: Tensor | None = None
        self.kept_iteration = 0
        self.iterations = 0
        self.stop_reason = "max_iterations"

    def net_input(self) -> Tensor:
        """This iteration's input: the code plus fresh noise from the track's own stream."""
        std = self.fit_config.reg_noise_std
        if std <= 0:
            return self.code
        return self.code + std * torch.randn(self.code.shape, generator=self.noise, device=self.device, dtype=self.code.dtype)

    def after_step(self, raw: Tensor, iteration: int) -> Tensor:
        """Take in the raw output (1, C, H, W) of the iteration whose step was just taken: average
        it, form the image, feed the criterion and the traces, and keep the image when the
        criterion asks for it. Returns the image."""
        self.iterations = iteration
        self.average.add(raw)
        network = network_image(raw, self.average, self.fit_config)
        self.image = image = put_back_known(network, self.rule, self.operator, self.observation)
        self.history.criterion.append(self.criterion.observe(raw, image))
        if self.criterion.keep_now:
            self.kept, self.kept_iteration = image.clone(), iteration
        if self.reference is not None:
            trace_psnr(self.history, self.reference, raw, network, image, self.rule, self.operator, self.observation)
        return image

    def stops(self) -> bool:
        """Whether the criterion ends the problem after the latest step; records why."""
        if not self.criterion.should_stop():
            return False
        self.stop_reason = self.rule.stop_reason
        return True

    def skip(self, iteration: int) -> None:
        """Record an iteration whose step was not taken (its loss was bad): NaN in the traces."""
        self.iterations = iteration
        self.history.criterion.append(math.nan)
        if self.reference is not None:
            self.history.psnr.append(math.nan)
            self.history.raw_psnr.append(math.nan)
            if self.rule.keep_known:
                self.history.network_psnr.append(math.nan)

    def result(self, started: float, state: FitState | None = None) -> Restoration:
        """The restoration: the kept image, or the latest one where the criterion kept none or its
        image was still to come; `seconds` counts from `started` (a `time.perf_counter()`)."""
        if self.kept is None or self.criterion.keep_pending:
            self.kept, self.kept_iteration = self.image, self.iterations
        if self.kept is None:  # diverged before a single good step: a grey image, stop_reason says why
            self.kept = torch.full((1, self.channels, *self.size), 0.5, device=self.device)
        return Restoration(
            image=self.kept[0].clamp(0, 1),
            iterations=self.iterations,
            stop_reason=self.stop_reason,
            history=self.history,
            seconds=time.perf_counter() - started,
            kept_iteration=self.kept_iteration,
            state=state,
        )


def _final_state(training: Training, track: Track) -> FitState:
    """What a later fit needs to continue this one."""
    return FitState(
        weights={k: v.detach().clone() for k, v in training.net.state_dict().items()},
        optimizer=training.optimizer.state_dict(),
        code=track.code,
        average=track.average.value() if track.fit_config.average > 0 else None,
    )


def _diverged(guard: DivergenceGuard, track: Track, iteration: int, loss: float) -> bool:
    """After a bad loss: roll back to the guard's last good state and go on, or end the fit as
    diverged once the guard is exhausted (returns True then). Either is an event in the history."""
    track.skip(iteration)
    if guard.exhausted:
        track.stop_reason = "diverged"
        track.history.events.append({"event": "diverged", "iteration": iteration, "loss": loss})
        return True
    event = guard.roll_back()
    track.history.events.append({"event": "rollback", "iteration": iteration, "loss": loss, **event})
    return False


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
    code = initial_state.code.to(device) if initial_state is not None else initial_code(problem, net_config, seed, device)
    net = build_generator(net_config, code.shape[1], problem.channels, seed)
    if initial_state is not None:
        net.load_state_dict(initial_state.weights)
    training = Training(net, fit_config, device, steps)
    if initial_state is not None:
        training.resume(initial_state.optimizer)
    carried = None if initial_state is None or initial_state.average is None else initial_state.average.to(device)
    track = Track(problem, fit_config, training.laid_out(code), seed, device, reference, carried)
    loss_step = training.loss_step(step_loss, problem)
    crop = image_crop(problem.size, net_config)
    anchor = None if problem.anchor is None else problem.anchor.to(device)
    anchor_weight = None if problem.anchor_weight is None else problem.anchor_weight.to(device)
    guard = DivergenceGuard(fit_config.guard, training.net, training.optimizer)

    for iteration in range(1, fit_config.max_iterations + 1):
        net_input = track.net_input()
        with training.autocast:
            output, data, loss = loss_step(training.net, net_input, crop, track.operator, track.observation, anchor, anchor_weight)
        loss_value = loss.item()
        track.history.loss.append(data.item() if anchor is not None else loss_value)
        if guard.is_bad(loss_value):
            if _diverged(guard, track, iteration, loss_value):
                break
            continue
        guard.accept(loss_value, iteration)
        training.step(loss)
        image = track.after_step(output.detach(), iteration)
        if callback is not None:
            callback(iteration, image, training.net)
        if track.stops():
            break

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return track.result(started, _final_state(training, track))
