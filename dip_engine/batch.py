"""Fit K independent DIP problems of one shape in one pass: what fills a GPU with small frames and tiles.

The K generators live in one `Generator(problems=K)`: every convolution is grouped (K groups) and
every norm is per channel, so problem k's output depends on its own weights and code alone, and
its gradient is the one it would have alone (the loss is the sum of the K data terms). Adam is
element-wise, so one Adam over the stacked weights is K Adams. Each problem keeps its own input
code, input noise stream, output average, stopping criterion and history; with the same seed,
problem k ends where `fit` would have ended it alone, up to float rounding (tests/test_batch.py).

When a problem stops early it leaves the sum; once at most half of the batch is still running,
the batch is rebuilt with the running problems only (weights and Adam moments carried over), so
finished problems stop costing time. A problem whose loss turns non-finite or spikes is taken out
and fitted again alone by `fit`, whose divergence guard can roll it back and lower its step size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from dip_engine.config import FitConfig, NetConfig
from dip_engine.fit import Callback, OutputAverage, Problem, autocast_context, fit, initial_code, padded_layout, network_image, put_back_known, rule_for, trace_psnr
from dip_engine.nets import Generator, build_generator, split_state, stack_states
from dip_engine.result import History, Restoration
from dip_engine.step import CompiledSteps, StepKey, batch_step_loss, set_cuda_switches
from dip_engine.stopping import Criterion, Rule


@dataclass
class _Track:
    """One problem's own state inside the batch."""

    index: int  # position in the caller's list
    seed: int
    code: Tensor  # (1, c_in, H_padded, W_padded)
    noise: torch.Generator
    average: OutputAverage
    rule: Rule
    criterion: Criterion
    reference: Tensor | None
    history: History = field(default_factory=History)
    last_good_loss: float = math.inf
    kept: Tensor | None = None
    kept_iteration: int = 0
    image: Tensor | None = None
    iterations: int = 0
    stop_reason: str = "max_iterations"
    diverged: bool = False


def _check(problems: Sequence[Problem], seeds: Sequence[int]) -> None:
    if not problems:
        raise ValueError("fit_batch needs at least one problem")
    if len(seeds) != len(problems):
        raise ValueError(f"fit_batch got {len(problems)} problems but {len(seeds)} seeds; give one seed per problem")
    first = problems[0]
    for k, problem in enumerate(problems):
        if problem.size != first.size or problem.observation.shape != first.observation.shape:
            raise ValueError(
                f"problem {k} is {tuple(problem.observation.shape)} → {problem.size}, problem 0 is "
                f"{tuple(first.observation.shape)} → {first.size}; a batch holds problems of one shape"
            )
        if type(problem.operator) is not type(first.operator):
            raise ValueError(f"problem {k} is {type(problem.operator).__name__}, problem 0 {type(first.operator).__name__}; a batch holds one task")
        if (problem.guide is None) != (first.guide is None):
            raise ValueError(f"problem {k} {'has' if problem.guide is not None else 'lacks'} a guide image; all or none must have one")
        if problem.anchor is not None:
            raise ValueError(f"problem {k} has a temporal term; video chains are sequential, fit them with dip_engine.video")


def _rebuild(
    net: Generator, optimizer: torch.optim.Adam, keep: list[int], learning_rate: float, fused: bool | None, channels_last: bool
) -> tuple[Generator, torch.optim.Adam]:
    """A generator and an Adam holding only the problems at positions `keep` of the current batch."""
    problems = net.problems
    states = split_state(net.state_dict(), problems)
    smaller = Generator(net.config, net.in_channels, net.out_channels, len(keep))
    smaller.load_state_dict(stack_states([states[k] for k in keep]))
    device = next(net.parameters()).device
    smaller.to(device).train()
    if channels_last:
        smaller.to(memory_format=torch.channels_last)
    new_optimizer = torch.optim.Adam(smaller.parameters(), lr=learning_rate, fused=fused)
    old = optimizer.state_dict()
    moments: dict[int, dict[str, Tensor]] = {}
    for index, entry in old["state"].items():
        moments[index] = {
            "step": entry["step"].clone(),
            **{name: torch.cat([entry[name].chunk(problems)[k] for k in keep]) for name in ("exp_avg", "exp_avg_sq")},
        }
    new_optimizer.load_state_dict({"state": moments, "param_groups": old["param_groups"]})
    return smaller, new_optimizer


def fit_batch(
    problems: Sequence[Problem],
    net_config: NetConfig,
    fit_config: FitConfig,
    *,
    seeds: Sequence[int],
    device: torch.device,
    references: Sequence[Tensor | None] | None = None,
    steps: CompiledSteps | None = None,
    callback: Callback | None = None,
) -> list[Restoration]:
    """Fit every problem from a fresh generator seeded by its seed, all in one batch; see the
    module docstring. Problems share a shape and a task. `references` ((1, C, H, W) or None per
    problem) only feed the PSNR traces. `callback` gets (iteration, the batch's raw outputs
    (K', C, H, W), the batched generator) after every step. The results come in the problems' order, with `state`
    None (batched fits do not continue into warm starts) and `seconds` the whole batch's time.
    """
    started = time.perf_counter()
    _check(problems, seeds)
    refs = list(references) if references is not None else [None] * len(problems)
    first = problems[0]
    height, width = first.size
    padded_h, padded_w, top, left = padded_layout(first.size, net_config)
    crop = (top, left, height, width)
    performance = fit_config.performance

    operators = [problem.operator.to(device) for problem in problems]
    observations = [problem.observation.to(device) for problem in problems]
    rules = [rule_for(problem, fit_config) for problem in problems]
    tracks = [
        _Track(
            index=k,
            seed=seed,
            code=initial_code(problem, net_config, seed, device),
            noise=torch.Generator(device=device).manual_seed(seed + 1),
            average=OutputAverage(fit_config.average, None),
            rule=rules[k],
            criterion=rules[k].criterion(fit_config, operators[k].known),
            reference=None if refs[k] is None else refs[k].to(device),
            history=History(rule=rules[k].kind, noise_sigma=rules[k].noise_sigma, keep_known=rules[k].keep_known),
        )
        for k, (problem, seed) in enumerate(zip(problems, seeds))
    ]
    in_channels = tracks[0].code.shape[1]
    singles = [build_generator(net_config, in_channels, first.channels, seed).state_dict() for seed in seeds]
    net = Generator(net_config, in_channels, first.channels, len(problems))
    net.load_state_dict(stack_states(singles))
    net.to(device).train()
    if performance.channels_last:
        net.to(memory_format=torch.channels_last)
    fused = performance.compile or None
    optimizer = torch.optim.Adam(net.parameters(), lr=fit_config.learning_rate, fused=fused)
    set_cuda_switches(device, performance)
    autocast, use_scaler = autocast_context(device, performance)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    spike = fit_config.guard.spike_factor if fit_config.guard.enabled else math.inf

    compiled = (steps or CompiledSteps()) if performance.compile else None

    def batch_loss_for(size: int) -> Callable[..., tuple[Tensor, Tensor]]:
        """The batch's loss step for `size` problems: compiled once per size when asked."""
        if compiled is None:
            return batch_step_loss
        key = StepKey(net_config, size, in_channels, first.channels, (padded_h, padded_w), crop,
                      type(first.operator).__name__, str(device), performance, False)
        return compiled.get(batch_step_loss, key)

    members = list(range(len(problems)))  # the tracks in the current batch, in its order
    loss_step = batch_loss_for(len(members))
    running = list(members)  # those still fitting
    iteration = 0
    for iteration in range(1, fit_config.max_iterations + 1):
        if not running:
            break
        if len(running) <= len(members) // 2:  # shrink: finished problems stop costing time
            net, optimizer = _rebuild(
                net, optimizer, [members.index(k) for k in running], fit_config.learning_rate, fused, performance.channels_last
            )
            members = list(running)
            loss_step = batch_loss_for(len(members))
        batch = [tracks[k] for k in members]
        code = torch.cat([t.code for t in batch], dim=1)
        if fit_config.reg_noise_std > 0:
            code = code + fit_config.reg_noise_std * torch.cat(
                [torch.randn(t.code.shape, generator=t.noise, device=device, dtype=t.code.dtype) for t in batch], dim=1
            )
        if performance.channels_last:
            code = code.contiguous(memory_format=torch.channels_last)
        with autocast:
            outputs, data = loss_step(net, code, crop, [operators[k] for k in members], [observations[k] for k in members])
        data_values = data.detach().tolist()
        for position, track in enumerate(batch):
            if track.index not in running:
                continue
            value = data_values[position]
            track.history.loss.append(value)
            if not math.isfinite(value) or value > spike * track.last_good_loss:
                track.diverged = True
                running.remove(track.index)
            else:
                track.last_good_loss = value
        # The sum of the running problems' terms: finished ones no longer move, and a diverged
        # one's NaN stays in its own group of weights (where() passes it no gradient at all).
        fitting = torch.tensor([k in running for k in members], device=device)
        loss = torch.where(fitting, data, torch.zeros_like(data)).sum()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

        raw_all = outputs.detach()
        for position, track in enumerate(batch):
            if track.index not in running:
                continue
            raw = raw_all[position : position + 1]
            track.average.add(raw)
            operator, observation = operators[track.index], observations[track.index]
            network = network_image(raw, track.average, fit_config)
            image = put_back_known(network, track.rule, operator, observation)
            track.image = image
            track.history.criterion.append(track.criterion.observe(raw, image))
            if track.criterion.keep_now:
                track.kept, track.kept_iteration = image.clone(), iteration
            if track.reference is not None:
                trace_psnr(track.history, track.reference, raw, network, image, track.rule, operator, observation)
            track.iterations = iteration
            if track.criterion.should_stop():
                track.stop_reason = track.rule.stop_reason
                running.remove(track.index)
        if callback is not None:
            callback(iteration, raw_all, net)

    results: list[Restoration] = []
    for track, problem in zip(tracks, problems):
        if track.diverged:  # alone, with the divergence guard
            alone = fit(problem, net_config, fit_config, seed=track.seed, device=device, reference=track.reference, steps=steps)
            alone.state = None
            results.append(alone)
            continue
        if track.kept is None or track.criterion.keep_pending:
            track.kept, track.kept_iteration = track.image, track.iterations
        assert track.kept is not None
        results.append(
            Restoration(
                image=track.kept[0].clamp(0, 1),
                iterations=track.iterations,
                stop_reason=track.stop_reason,
                history=track.history,
                seconds=time.perf_counter() - started,
                kept_iteration=track.kept_iteration,
            )
        )
    return results
