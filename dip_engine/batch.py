"""Fit K independent DIP problems of one shape in one pass: what fills a GPU with small frames and tiles.

The K generators live in one `Generator(problems=K)`: every convolution is grouped (K groups) and
every norm is per channel, so problem k's output depends on its own weights and code alone, and
its gradient is the one it would have alone (the loss is the sum of the K data terms). Adam is
element-wise, so one Adam over the stacked weights is K Adams. Each problem keeps its own input
code, input noise stream, output average, stopping criterion and history (a `Track`, set up and
stepped by a `Training`, as in `fit`); with the same seed, problem k ends where `fit` would have
ended it alone, up to float rounding (tests/engine/test_batch.py).

When a problem stops early it leaves the sum; once at most half of the batch is still running,
the batch is rebuilt with the running problems only (weights and Adam moments carried over), so
finished problems stop costing time. A problem whose loss turns non-finite or spikes is taken out
and fitted again alone by `fit`, whose divergence guard can roll it back and lower its step size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch import Tensor

from dip_engine.config import FitConfig, NetConfig
from dip_engine.fit import (
    Callback,
    Problem,
    Track,
    Training,
    fit,
    image_crop,
    initial_code,
)
from dip_engine.guard import is_bad_loss
from dip_engine.nets import Generator, build_generator, split_state, stack_states
from dip_engine.result import Restoration
from dip_engine.step import CompiledSteps, batch_step_loss


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
            raise ValueError(
                f"problem {k} is {type(problem.operator).__name__}, problem 0 {type(first.operator).__name__}; a batch holds one task"
            )
        if (problem.guide is None) != (first.guide is None):
            raise ValueError(f"problem {k} {'has' if problem.guide is not None else 'lacks'} a guide image; all or none must have one")
        if problem.anchor is not None:
            raise ValueError(f"problem {k} has a temporal term; video chains are sequential, fit them with dip_engine.video")


def _shrink(training: Training, keep: list[int]) -> None:
    """Train only the problems at positions `keep` of the current batch from now on: a smaller
    grouped generator and Adam, with those problems' weights and Adam moments carried over."""
    net, old = training.net, training.optimizer.state_dict()
    problems = net.problems
    states = split_state(net.state_dict(), problems)
    smaller = Generator(net.config, net.in_channels, net.out_channels, len(keep))
    smaller.load_state_dict(stack_states([states[k] for k in keep]))
    training.use(smaller)
    moments = {
        index: {
            "step": entry["step"].clone(),
            **{name: torch.cat([entry[name].chunk(problems)[k] for k in keep]) for name in ("exp_avg", "exp_avg_sq")},
        }
        for index, entry in old["state"].items()
    }
    training.optimizer.load_state_dict({"state": moments, "param_groups": old["param_groups"]})


def _stacked_generator(net_config: NetConfig, in_channels: int, out_channels: int, seeds: Sequence[int]) -> Generator:
    """One grouped generator holding, for each seed, the weights `fit` would start from with it."""
    net = Generator(net_config, in_channels, out_channels, len(seeds))
    net.load_state_dict(stack_states([build_generator(net_config, in_channels, out_channels, seed).state_dict() for seed in seeds]))
    return net


def _alone(
    problem: Problem,
    net_config: NetConfig,
    fit_config: FitConfig,
    seed: int,
    device: torch.device,
    track: Track,
    steps: CompiledSteps | None,
) -> Restoration:
    """A diverged problem fitted again alone by `fit`, whose guard can roll it back."""
    result = fit(problem, net_config, fit_config, seed=seed, device=device, reference=track.reference, steps=steps)
    result.state = None
    return result


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
    tracks = [
        Track(problem, fit_config, initial_code(problem, net_config, seed, device), seed, device, None if ref is None else ref.to(device))
        for problem, seed, ref in zip(problems, seeds, refs)
    ]
    first = problems[0]
    crop = image_crop(first.size, net_config)
    training = Training(_stacked_generator(net_config, tracks[0].code.shape[1], first.channels, seeds), fit_config, device, steps)
    loss_step = training.loss_step(batch_step_loss, first)
    # The guard's test without its rollback, which would move every problem's weights back: a
    # problem with a bad loss leaves the batch. With the guard off, only a non-finite loss is bad.
    spike = fit_config.guard.spike_factor if fit_config.guard.enabled else math.inf
    last_good = [math.inf] * len(problems)
    diverged: set[int] = set()
    members = list(range(len(problems)))  # the tracks in the current batch, in its order
    running = list(members)  # those still fitting
    for iteration in range(1, fit_config.max_iterations + 1):
        if not running:
            break
        if len(running) <= len(members) // 2:  # shrink: finished problems stop costing time
            _shrink(training, [members.index(k) for k in running])
            members = list(running)
            loss_step = training.loss_step(batch_step_loss, first)
        batch = [tracks[k] for k in members]
        net_input = training.laid_out(torch.cat([track.net_input() for track in batch], dim=1))
        with training.autocast:
            outputs, data = loss_step(training.net, net_input, crop, [t.operator for t in batch], [t.observation for t in batch])
        for k, value in zip(members, data.detach().tolist()):
            if k not in running:
                continue
            tracks[k].history.loss.append(value)
            if is_bad_loss(value, last_good[k], spike):
                diverged.add(k)
                running.remove(k)
            else:
                last_good[k] = value
        # The sum of the running problems' terms: finished ones no longer move, and a diverged
        # one's NaN stays in its own group of weights (where() passes it no gradient at all).
        fitting = torch.tensor([k in running for k in members], device=device)
        training.step(torch.where(fitting, data, torch.zeros_like(data)).sum())

        raw = outputs.detach()
        for position, k in enumerate(members):
            if k in running:
                tracks[k].after_step(raw[position : position + 1], iteration)
                if tracks[k].stops():
                    running.remove(k)
        if callback is not None:
            callback(iteration, raw, training.net)

    return [
        _alone(problem, net_config, fit_config, seed, device, track, steps) if k in diverged else track.result(started)
        for k, (problem, seed, track) in enumerate(zip(problems, seeds, tracks))
    ]
