"""Fit K independent DIP problems of one shape in one pass: what fills a GPU with small frames and tiles.

The K generators live in one `Generator(problems=K)`: every convolution is grouped (K groups) and
every norm is per channel, so problem k's output depends on its own weights and code alone, and
its gradient is the one it would have alone (the loss is the sum of the K problems' terms: the
data term, plus the temporal term of a video chain's warm frame). Adam is element-wise, so one
Adam over the stacked weights is K Adams. Each problem keeps its own input code, input noise
stream, output average, stopping criterion and history (a `Track`, set up and stepped by a
`Training`, as in `fit`); with the same seed, problem k ends where `fit` would have ended it
alone, up to float rounding (tests/engine/test_batch.py).

A batch can start warm, each problem from its own `FitState` (the tiles of a video frame, each
continuing the same tile of the previous frame), and can return each problem's state as it was
when that problem stopped, for the next warm start. One caveat: Adam keeps one step count per
parameter, so a warm batch continues from the largest of its states' step counts; a problem
whose state counted fewer steps gets slightly different bias corrections than alone.

When a problem stops early it leaves the sum; once at most half of the batch is still running,
the batch is rebuilt with the running problems only (weights and Adam moments carried over), so
finished problems stop costing time. A problem whose loss turns non-finite or spikes is taken out
and fitted again alone by `fit`, whose divergence guard can roll it back and lower its step size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

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
from dip_engine.nets import Generator, build_generator, stack_states
from dip_engine.result import FitState, Restoration
from dip_engine.step import CompiledSteps, batch_step_loss

MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's per-element state, stacked like the weights


def _check(problems: Sequence[Problem], seeds: Sequence[int], initial_states: Sequence[FitState | None] | None) -> None:
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
        if (problem.anchor is None) != (first.anchor is None) or (problem.anchor is None) != (problem.anchor_weight is None):
            raise ValueError(
                f"problem {k} {'has' if problem.anchor is not None else 'lacks'} a temporal term; all or none must have one, "
                "each with both anchor and anchor_weight"
            )
    if initial_states is not None:
        if len(initial_states) != len(problems):
            raise ValueError(f"fit_batch got {len(problems)} problems but {len(initial_states)} initial states; give one per problem")
        if len({state is None for state in initial_states}) > 1:
            raise ValueError("fit_batch starts all problems warm or none: give a FitState for every problem, or None for every one")


def _moments(state: dict[Any, dict[str, Tensor]], problems: int, keep: Sequence[int]) -> dict[Any, dict[str, Tensor]]:
    """Adam's per-parameter state of a K-problem generator, reduced to the problems at positions
    `keep` (new tensors: the moments of those problems concatenated in that order)."""
    return {
        index: {"step": entry["step"].clone(), **{name: torch.cat([entry[name].chunk(problems)[k] for k in keep]) for name in MOMENTS}}
        for index, entry in state.items()
    }


def _stacked_moments(states: Sequence[dict[str, Any]]) -> dict[Any, dict[str, Tensor]]:
    """The inverse of `_moments`: Adam's per-parameter state of a K-problem generator from K
    single-problem optimizer states, their moments concatenated in order. Adam keeps one step
    count per parameter: the largest of the K is taken. A state without an entry for a parameter
    (its fit never stepped) contributes zero moments."""
    entries = [state["state"] for state in states]
    stacked: dict[Any, dict[str, Tensor]] = {}
    for index in {index for entry in entries for index in entry}:
        given = [entry[index] for entry in entries if index in entry]
        template = given[0]
        parts = [
            entry.get(index, {"step": torch.zeros_like(template["step"]), **{n: torch.zeros_like(template[n]) for n in MOMENTS}})
            for entry in entries
        ]
        stacked[index] = {
            "step": max((part["step"] for part in parts), key=float).clone(),
            **{name: torch.cat([part[name] for part in parts]) for name in MOMENTS},
        }
    return stacked


def _shrink(training: Training, keep: list[int]) -> None:
    """Train only the problems at positions `keep` of the current batch from now on: a smaller
    grouped generator and Adam, with those problems' weights and Adam moments carried over."""
    net, old = training.net, training.optimizer.state_dict()
    smaller = Generator(net.config, net.in_channels, net.out_channels, len(keep))
    smaller.load_state_dict(_weights(net.state_dict(), net.problems, keep))
    training.use(smaller)
    training.optimizer.load_state_dict({"state": _moments(old["state"], net.problems, keep), "param_groups": old["param_groups"]})


def _weights(state: dict[str, Tensor], problems: int, keep: Sequence[int]) -> dict[str, Tensor]:
    """The state_dict of the problems at positions `keep` of a K-problem generator's (new tensors;
    `split_state` then `stack_states` without copying the problems left out)."""
    return {name: torch.cat([value.chunk(problems)[k] for k in keep]) if value.dim() else value.clone() for name, value in state.items()}


def _state_of(training: Training, track: Track, position: int) -> FitState:
    """What `fit` would return as its final state had the problem at `position` of the batch been
    fitted alone and stopped now: its weights, Adam moments (with the batch's step count), code and
    output average."""
    problems = training.net.problems
    optimizer = training.optimizer.state_dict()
    return FitState(
        weights=_weights(training.net.state_dict(), problems, [position]),
        optimizer={"state": _moments(optimizer["state"], problems, [position]), "param_groups": optimizer["param_groups"]},
        code=track.code,
        average=track.average.value() if track.fit_config.average > 0 else None,
    )


def _stacked_generator(net_config: NetConfig, in_channels: int, out_channels: int, seeds: Sequence[int]) -> Generator:
    """One grouped generator holding, for each seed, the weights `fit` would start from with it."""
    net = Generator(net_config, in_channels, out_channels, len(seeds))
    net.load_state_dict(stack_states([build_generator(net_config, in_channels, out_channels, seed).state_dict() for seed in seeds]))
    return net


def _training(
    net_config: NetConfig,
    fit_config: FitConfig,
    tracks: Sequence[Track],
    seeds: Sequence[int],
    states: Sequence[FitState] | None,
    device: torch.device,
    steps: CompiledSteps | None,
) -> Training:
    """The batch's generator and Adam: fresh from the seeds, or continuing the states (their
    weights and Adam moments stacked, at this fit's learning rate, as `Training.resume`)."""
    in_channels, out_channels = tracks[0].code.shape[1], tracks[0].channels
    if states is None:
        return Training(_stacked_generator(net_config, in_channels, out_channels, seeds), fit_config, device, steps)
    net = Generator(net_config, in_channels, out_channels, len(states))
    net.load_state_dict(stack_states([state.weights for state in states]))
    training = Training(net, fit_config, device, steps)
    moments = {"state": _stacked_moments([state.optimizer for state in states]), "param_groups": states[0].optimizer["param_groups"]}
    training.resume(moments)
    return training


def _track(
    problem: Problem,
    net_config: NetConfig,
    fit_config: FitConfig,
    seed: int,
    device: torch.device,
    reference: Tensor | None,
    start: FitState | None,
) -> Track:
    """One problem's track: fresh (its code drawn from the seed, or its guide image), or
    continuing `start` (its code and output average)."""
    if start is None:
        return Track(problem, fit_config, initial_code(problem, net_config, seed, device), seed, device, reference)
    average = None if start.average is None else start.average.to(device)
    return Track(problem, fit_config, start.code.to(device), seed, device, reference, average)


def _alone(
    problem: Problem,
    net_config: NetConfig,
    fit_config: FitConfig,
    seed: int,
    device: torch.device,
    track: Track,
    steps: CompiledSteps | None,
    initial_state: FitState | None,
    keep_state: bool,
) -> Restoration:
    """A diverged problem fitted again alone by `fit` (from its initial state), whose guard can roll it back."""
    result = fit(
        problem, net_config, fit_config, seed=seed, device=device, initial_state=initial_state, reference=track.reference, steps=steps
    )
    if not keep_state:
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
    initial_states: Sequence[FitState | None] | None = None,
    keep_states: bool = False,
) -> list[Restoration]:
    """Fit every problem from a fresh generator seeded by its seed, or from its initial state,
    all in one batch; see the module docstring. Problems share a shape and a task, and all or
    none have a temporal term (`Problem.anchor`; the history's loss is then the data term, as in
    `fit`). `references` ((1, C, H, W) or None per problem) only feed the PSNR traces.
    `callback` gets (iteration, the batch's raw outputs (K', C, H, W), the batched generator)
    after every step.

    initial_states: one `FitState` per problem (or None for every problem: fresh): the problem
    continues it as `fit(initial_state=...)` would (its weights, code, output average and Adam
    moments, at this fit's learning rate), except that Adam's step count is the largest of the
    states' (Adam keeps one per parameter), so bias corrections differ slightly from a chain run
    alone where the states counted different numbers of steps. The noise stream is drawn from
    the seed, as in `fit`.

    The results come in the problems' order, `seconds` the whole batch's time. With
    `keep_states`, each result's `state` is that problem's `FitState` at the iteration it
    stopped (what `fit` alone would return, for the next warm start); without, `state` is None
    (copying K states out of the batch costs memory and time that fresh batches do not spend).
    """
    started = time.perf_counter()
    _check(problems, seeds, initial_states)
    starts = list(initial_states) if initial_states is not None else [None] * len(problems)
    states = None if starts[0] is None else [start for start in starts if start is not None]
    refs = list(references) if references is not None else [None] * len(problems)
    tracks = [
        _track(problem, net_config, fit_config, seed, device, None if ref is None else ref.to(device), start)
        for problem, seed, ref, start in zip(problems, seeds, refs, starts)
    ]
    first = problems[0]
    crop = image_crop(first.size, net_config)
    training = _training(net_config, fit_config, tracks, seeds, states, device, steps)
    loss_step = training.loss_step(batch_step_loss, first)
    temporal = first.anchor is not None
    anchors = [None if p.anchor is None else p.anchor.to(device) for p in problems]
    anchor_weights = [None if p.anchor_weight is None else p.anchor_weight.to(device) for p in problems]
    # The guard's test without its rollback, which would move every problem's weights back: a
    # problem with a bad loss leaves the batch. With the guard off, only a non-finite loss is bad.
    spike = fit_config.guard.spike_factor if fit_config.guard.enabled else math.inf
    last_good = [math.inf] * len(problems)
    diverged: set[int] = set()
    final: dict[int, FitState] = {}  # with keep_states: each problem's state when it stopped
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
            outputs, data, losses = loss_step(
                training.net,
                net_input,
                crop,
                [t.operator for t in batch],
                [t.observation for t in batch],
                [anchors[k] for k in members] if temporal else None,
                [anchor_weights[k] for k in members] if temporal else None,
            )
        values = data.detach().tolist()
        totals = losses.detach().tolist() if temporal else values
        for k, value, total in zip(members, values, totals):
            if k not in running:
                continue
            tracks[k].history.loss.append(value)
            if is_bad_loss(total, last_good[k], spike):
                diverged.add(k)
                running.remove(k)
            else:
                last_good[k] = total
        # The sum of the running problems' terms: finished ones no longer move, and a diverged
        # one's NaN stays in its own group of weights (where() passes it no gradient at all).
        fitting = torch.tensor([k in running for k in members], device=device)
        training.step(torch.where(fitting, losses, torch.zeros_like(losses)).sum())

        raw = outputs.detach()
        for position, k in enumerate(members):
            if k in running:
                tracks[k].after_step(raw[position : position + 1], iteration)
                if tracks[k].stops():
                    running.remove(k)
                    if keep_states:  # now: Adam's momentum would move its weights on while it stays in the batch
                        final[k] = _state_of(training, tracks[k], position)
        if callback is not None:
            callback(iteration, raw, training.net)
    if keep_states:
        for position, k in enumerate(members):
            if k not in diverged and k not in final:
                final[k] = _state_of(training, tracks[k], position)

    return [
        _alone(problem, net_config, fit_config, seed, device, track, steps, starts[k], keep_states)
        if k in diverged
        else track.result(started, final.get(k))
        for k, (problem, seed, track) in enumerate(zip(problems, seeds, tracks))
    ]
