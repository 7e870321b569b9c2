"""Batched fits (dip_engine.fit_batch): K problems in one grouped generator, each as if alone.

Measured on real crops with a small generator (3 levels, 16 channels): in float32, after one
iteration the batched images differ from the separate fits by ~1.5e-6, after 100 iterations by
up to 2e-2 — as much as a single fit run in channels_last differs from itself in NCHW: Adam
amplifies rounding differences in near-zero gradients (conv biases before batch norm). In
float64 the same 100 iterations end bit-identical to the separate fits. The tests pin that, the
first float32 step, and the float32 end's PSNR; and, for warm starts (a video frame's tiles, each
continuing its own chain), that a warm batch ends, with or without a temporal term, where warm
`fit`s from the same states end, handing back the states each problem stopped at.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch

from dip_engine import (
    Denoising,
    FitConfig,
    FitState,
    GuardConfig,
    NetConfig,
    Performance,
    Problem,
    Restoration,
    StoppingConfig,
    fit,
    fit_batch,
    get_task,
    psnr,
)
from dip_engine.nets import Generator, build_generator, split_state, stack_states
from dip_engine.restore import prepare
from dip_engine.video import static_weight
from tests.conftest import photo

SMALL_NET = NetConfig(channels_down=(16, 16, 16), channels_up=(16, 16, 16), channels_skip=(4, 4, 4), input_depth=8)
SEEDS = (0, 5, 9)
CPU = torch.device("cpu")
Crops = tuple[list[torch.Tensor], list[torch.Tensor]]  # (clean, noisy)


@pytest.fixture(scope="module")
def crops() -> Crops:
    """Three clean 40×40 crops of the astronaut photograph and their σ = 25 noisy versions."""
    clean = [photo("astronaut", 100 + 20 * k, 150, 40, 40) for k in range(3)]
    noise = Denoising(sigma=25 / 255)
    return clean, [noise.degrade(c, torch.Generator().manual_seed(k)) for k, c in enumerate(clean)]


def _fixed(iterations: int, performance: Performance | None = None) -> FitConfig:
    return replace(
        get_task("denoise").config.fit,
        max_iterations=iterations,
        stopping=StoppingConfig(kind="fixed"),
        performance=performance or Performance(),
    )


def test_stacked_states_round_trip_and_give_each_problem_its_own_network() -> None:
    singles = [build_generator(SMALL_NET, 8, 3, seed) for seed in SEEDS]
    batched = Generator(SMALL_NET, 8, 3, problems=3)
    batched.load_state_dict(stack_states([n.state_dict() for n in singles]))
    for single, back in zip(singles, split_state(batched.state_dict(), 3)):
        for name, value in single.state_dict().items():
            assert torch.equal(value, back[name]), name
    codes = [torch.rand(1, 8, 32, 32, generator=torch.Generator().manual_seed(s)) for s in SEEDS]
    together = batched(torch.cat(codes, dim=1)).view(3, 3, 32, 32)
    for k, (single, code) in enumerate(zip(singles, codes)):
        torch.testing.assert_close(together[k : k + 1], single(code), atol=1e-5, rtol=0)


def _alone_and_batched(noisy: list[torch.Tensor], iterations: int) -> list[tuple[Restoration, Restoration]]:
    """(separate fit, batched fit) of each noisy crop after `iterations` fixed iterations."""
    problems = [prepare(n, "denoise")[1] for n in noisy]
    alone = [fit(p, SMALL_NET, _fixed(iterations), seed=s, device=CPU) for p, s in zip(problems, SEEDS)]
    return list(zip(alone, fit_batch(problems, SMALL_NET, _fixed(iterations), seeds=SEEDS, device=CPU)))


def test_the_first_step_equals_fitting_each_problem_alone(crops: Crops) -> None:
    for a, b in _alone_and_batched(crops[1], 1):
        assert b.history.loss == pytest.approx(a.history.loss, rel=1e-6)
        assert (a.image - b.image).abs().max().item() < 1e-5


@pytest.fixture
def float64() -> Iterator[None]:
    """Weights, codes and activations in float64 (the data term stays float32, as in `fit`)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def test_in_float64_a_batched_fit_is_the_separate_fits(crops: Crops, float64: None) -> None:
    """With rounding taken out of the way, 100 batched iterations end exactly where 100 separate ones do."""
    for a, b in _alone_and_batched(crops[1], 100):
        assert b.history.loss == pytest.approx(a.history.loss, rel=1e-9)
        assert (a.image - b.image).abs().max().item() < 1e-6


def test_in_float32_a_batched_fit_restores_as_well_as_the_separate_fits(crops: Crops) -> None:
    clean, noisy = crops
    for c, n, (a, b) in zip(clean, noisy, _alone_and_batched(noisy, 100)):
        assert psnr(b.image, c) == pytest.approx(psnr(a.image, c), abs=0.1)
        assert psnr(b.image, c) > psnr(n, c) + 0.5  # and it is denoising (measured +0.9 dB at 100 iterations)


def test_problems_do_not_mix(crops: Crops) -> None:
    """Problem 0's result does not depend on what the other problems hold (batch norm per problem)."""
    _, noisy = crops
    problems = [prepare(n, "denoise")[1] for n in noisy]
    other = [problems[0], prepare(torch.rand(noisy[1].shape, generator=torch.Generator().manual_seed(7)), "denoise")[1], problems[2]]
    first = fit_batch(problems, SMALL_NET, _fixed(20), seeds=SEEDS, device=CPU)
    second = fit_batch(other, SMALL_NET, _fixed(20), seeds=SEEDS, device=CPU)
    assert torch.allclose(first[0].image, second[0].image, atol=1e-6)
    assert not torch.allclose(first[1].image, second[1].image, atol=1e-2)


def test_early_stopped_problems_leave_the_batch_and_the_rest_go_on(crops: Crops, float64: None) -> None:
    """Each problem stops on its own criterion; the batch shrinks to the running ones (4 → 2 → 1
    here: the camera crop stops at 285, two astronaut crops at 350 and 353, the last runs to the
    cap of 400), and every result is still the one its separate fit gives."""
    clean, noisy = crops
    camera = photo("camera", 0, 0, 40, 40, grey=True).expand(3, 40, 40).contiguous()
    noisy = [*noisy, Denoising(sigma=25 / 255).degrade(camera, torch.Generator().manual_seed(3))]
    problems = [prepare(n, "denoise")[1] for n in noisy]
    seeds = (*SEEDS, 3)
    early = replace(get_task("denoise").config.fit, max_iterations=400, stopping=StoppingConfig(window=20, patience=30))
    sizes: list[int] = []
    results = fit_batch(problems, SMALL_NET, early, seeds=seeds, device=CPU, callback=lambda i, out, net: sizes.append(out.shape[0]))
    alone = [fit(p, SMALL_NET, early, seed=s, device=CPU) for p, s in zip(problems, seeds)]
    assert sizes[0] == 4 and sizes[-1] == 1  # it shrank
    assert len(sizes) == max(r.iterations for r in results)
    assert len({r.iterations for r in results}) > 1  # the problems did stop at different iterations
    for a, b in zip(alone, results):
        assert (b.stop_reason, b.iterations, b.kept_iteration) == (a.stop_reason, a.iterations, a.kept_iteration)
        assert (a.image - b.image).abs().max().item() < 1e-6


@pytest.mark.parametrize("guard", [GuardConfig(), GuardConfig(enabled=False)], ids=["guard", "no-guard"])
def test_a_diverging_problem_leaves_the_batch_and_is_fitted_again_alone(crops: Crops, guard: GuardConfig) -> None:
    """Problem 1's head turns NaN after step 5: it leaves the batch (with the guard off too: a
    batch cannot carry a NaN problem) and `fit` restores it alone; the others go on undisturbed."""
    problems = [prepare(n, "denoise")[1] for n in crops[1]]
    config = replace(_fixed(10), guard=guard)

    def poison(iteration: int, outputs: torch.Tensor, net: torch.nn.Module) -> None:
        if iteration == 5:
            with torch.no_grad():
                net.head.bias[3:6].fill_(math.nan)  # type: ignore[index,union-attr]  # problem 1's output channels

    poisoned = fit_batch(problems, SMALL_NET, config, seeds=SEEDS, device=CPU, callback=poison)
    healthy = fit_batch(problems, SMALL_NET, config, seeds=SEEDS, device=CPU)
    alone = fit(problems[1], SMALL_NET, config, seed=SEEDS[1], device=CPU)
    assert poisoned[1].history.loss == alone.history.loss and torch.equal(poisoned[1].image, alone.image)
    assert poisoned[1].state is None and all(math.isfinite(v) for v in poisoned[1].history.loss)
    for k in (0, 2):
        assert poisoned[k].history.loss == pytest.approx(healthy[k].history.loss, rel=1e-6)
        assert (poisoned[k].image - healthy[k].image).abs().max().item() < 1e-5


def test_a_batch_holds_one_shape_and_one_task(crops: Crops) -> None:
    _, noisy = crops
    small = prepare(noisy[0][:, :32, :32], "denoise")[1]
    with pytest.raises(ValueError, match="one shape"):
        fit_batch([prepare(noisy[0], "denoise")[1], small], SMALL_NET, _fixed(1), seeds=(0, 1), device=CPU)
    with pytest.raises(ValueError, match="one seed per problem"):
        fit_batch([small, small], SMALL_NET, _fixed(1), seeds=(0,), device=CPU)


def _warm_fit(iterations: int, stopping: StoppingConfig | None = None) -> FitConfig:
    """A video chain's warm frame: a short output average and few iterations (fixed, unless `stopping`)."""
    return replace(_fixed(iterations), average=0.9, stopping=stopping or StoppingConfig(kind="fixed"))


def _warm_problems(crops: Crops, temporal: bool) -> tuple[list[FitState], list[Problem]]:
    """Two chains after their cold frame (40 fixed iterations each: equal Adam step counts), and
    their next frames (the same crops, new noise), tied to the cold restorations where `temporal`."""
    clean, noisy = crops
    cold = [prepare(n, "denoise")[1] for n in noisy[:2]]
    firsts = [fit(p, SMALL_NET, _fixed(40), seed=s, device=CPU) for p, s in zip(cold, SEEDS)]
    noise = Denoising(sigma=25 / 255)
    following = [prepare(noise.degrade(c, torch.Generator().manual_seed(10 + k)), "denoise")[1] for k, c in enumerate(clean[:2])]
    if temporal:
        following = [
            replace(p, anchor=r.image.unsqueeze(0), anchor_weight=2.0 * static_weight(c.observation, p.observation, p.size, 0.05))
            for p, c, r in zip(following, cold, firsts)
        ]
    states = [r.state for r in firsts]
    assert all(s is not None for s in states)
    return [s for s in states if s is not None], following


def _same_state(a: FitState | None, b: FitState | None) -> None:
    """Two final states hold the same weights, Adam moments and step counts, code and average."""
    assert a is not None and b is not None
    assert a.weights.keys() == b.weights.keys()
    for name, value in a.weights.items():
        torch.testing.assert_close(b.weights[name], value, atol=1e-8, rtol=0, msg=name)
    assert a.optimizer["state"].keys() == b.optimizer["state"].keys()
    for index, entry in a.optimizer["state"].items():
        assert float(b.optimizer["state"][index]["step"]) == float(entry["step"])
        for name in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(b.optimizer["state"][index][name], entry[name], atol=1e-10, rtol=0)
    assert torch.equal(a.code, b.code)
    assert a.average is not None and b.average is not None
    torch.testing.assert_close(b.average, a.average, atol=1e-8, rtol=0)


@pytest.mark.parametrize("temporal", [False, True], ids=["plain", "temporal"])
def test_a_warm_batch_continues_each_state_as_a_warm_fit_alone(crops: Crops, float64: None, temporal: bool) -> None:
    """Two chains' next frames fitted in one batch from their states end where two warm `fit`s
    from the same states and seeds end, with the temporal term too (its loss history is the data
    term, as `fit`'s), and hand back the same final states."""
    states, problems = _warm_problems(crops, temporal)
    seeds = [s + 1 for s in SEEDS[:2]]
    batched = fit_batch(problems, SMALL_NET, _warm_fit(30), seeds=seeds, device=CPU, initial_states=states, keep_states=True)
    # `fit` continues Adam's moments in place: each warm fit alone gets its own copy of the state.
    alone = [
        fit(p, SMALL_NET, _warm_fit(30), seed=s, device=CPU, initial_state=copy.deepcopy(st)) for p, s, st in zip(problems, seeds, states)
    ]
    for a, b in zip(alone, batched):
        assert b.history.loss == pytest.approx(a.history.loss, rel=1e-9)
        assert (a.image - b.image).abs().max().item() < 1e-5
        _same_state(a.state, b.state)
        assert float(next(iter(b.state.optimizer["state"].values()))["step"]) == 40 + 30  # type: ignore[union-attr]
    if temporal:  # the term did act: the same frames without it end elsewhere
        untied = fit_batch(
            [replace(p, anchor=None, anchor_weight=None) for p in problems],
            SMALL_NET,
            _warm_fit(30),
            seeds=seeds,
            device=CPU,
            initial_states=states,
        )
        assert all((u.image - b.image).abs().max().item() > 1e-3 for u, b in zip(untied, batched))


def test_each_problem_hands_back_its_state_at_its_own_stop(crops: Crops, float64: None) -> None:
    """Warm frames stopped early by the chain's criterion: problem 1 stops at iteration 38 and
    leaves the batch, problem 0 runs on to 75; each returned state is the one its warm fit alone
    ends with (not one moved on by Adam's momentum while the other problem kept the batch going)."""
    states, problems = _warm_problems(crops, temporal=False)
    seeds = [s + 1 for s in SEEDS[:2]]
    config = _warm_fit(75, StoppingConfig(window=10, patience=20, min_iterations=20, lag=10))
    batched = fit_batch(problems, SMALL_NET, config, seeds=seeds, device=CPU, initial_states=states, keep_states=True)
    alone = [fit(p, SMALL_NET, config, seed=s, device=CPU, initial_state=copy.deepcopy(st)) for p, s, st in zip(problems, seeds, states)]
    assert len({r.iterations for r in batched}) > 1 and min(r.iterations for r in batched) < config.max_iterations
    for a, b in zip(alone, batched):
        assert (b.stop_reason, b.iterations, b.kept_iteration) == (a.stop_reason, a.iterations, a.kept_iteration)
        assert (a.image - b.image).abs().max().item() < 1e-5
        _same_state(a.state, b.state)


def test_fresh_batches_keep_states_only_when_asked(crops: Crops) -> None:
    """A fresh batch returns no states unless asked; asked, a poisoned problem refitted alone
    keeps the state its `fit` ends with."""
    problems = [prepare(n, "denoise")[1] for n in crops[1]]
    config = _fixed(10)
    assert all(r.state is None for r in fit_batch(problems[:2], SMALL_NET, config, seeds=SEEDS[:2], device=CPU))

    def poison(iteration: int, outputs: torch.Tensor, net: torch.nn.Module) -> None:
        if iteration == 5:
            with torch.no_grad():
                net.head.bias[3:6].fill_(math.nan)  # type: ignore[index,union-attr]  # problem 1's output channels

    kept = fit_batch(problems, SMALL_NET, config, seeds=SEEDS, device=CPU, callback=poison, keep_states=True)
    alone = fit(problems[1], SMALL_NET, config, seed=SEEDS[1], device=CPU)
    assert all(r.state is not None for r in kept)
    assert kept[1].state is not None and alone.state is not None
    assert all(torch.equal(kept[1].state.weights[name], value) for name, value in alone.state.weights.items())


def test_a_batch_starts_all_problems_warm_or_none_and_ties_all_or_none_in_time(crops: Crops) -> None:
    states, problems = _warm_problems((crops[0][:2], crops[1][:2]), temporal=True)
    with pytest.raises(ValueError, match="all problems warm or none"):
        fit_batch(problems, SMALL_NET, _fixed(1), seeds=(0, 1), device=CPU, initial_states=[states[0], None])
    with pytest.raises(ValueError, match="one per problem"):
        fit_batch(problems, SMALL_NET, _fixed(1), seeds=(0, 1), device=CPU, initial_states=states[:1])
    with pytest.raises(ValueError, match="temporal term; all or none"):
        fit_batch([problems[0], replace(problems[1], anchor=None, anchor_weight=None)], SMALL_NET, _fixed(1), seeds=(0, 1), device=CPU)
