"""The fit loop's mechanics on a small network: stopping, divergence guard, determinism, warm starts."""

from __future__ import annotations

import math

import pytest
import torch

from dip_engine import FitConfig, NetConfig, Performance, RestoreConfig, StoppingConfig, psnr, restore
from dip_engine.config import GuardConfig
from dip_engine.operators import Denoising
from dip_engine.stopping import WindowedVariance
from tests.conftest import photo

SMALL_NET = NetConfig(channels_down=(32, 32, 32), channels_up=(32, 32, 32), channels_skip=(4, 4, 4))


def small(max_iterations: int, **fit: object) -> RestoreConfig:
    return RestoreConfig(net=SMALL_NET, fit=FitConfig(max_iterations=max_iterations, **fit))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scene() -> tuple[torch.Tensor, torch.Tensor]:
    clean = photo("camera", 200, 230, 37, 45, grey=True)
    return clean, Denoising().degrade(clean, torch.Generator().manual_seed(0))


def test_windowed_variance_matches_a_direct_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    criterion = WindowedVariance(StoppingConfig(window=5, patience=3))
    outputs = [torch.rand(1, 2, 4, 4, generator=gen) * (1 + i % 3) for i in range(12)]
    for i, output in enumerate(outputs):
        value = criterion.observe(output, output)
        if i < 4:
            assert math.isnan(value)
        else:
            direct = torch.stack(outputs[i - 4 : i + 1]).var(dim=0).mean().item()
            assert value == pytest.approx(direct, rel=1e-6)


def test_windowed_variance_stops_after_patience_and_keeps_with_lag() -> None:
    criterion = WindowedVariance(StoppingConfig(window=2, patience=4), lag=2)
    # Successive differences shrink until the 5th output, then grow: the minimum is at iteration 5.
    values = [0.0, 1.0, 1.5, 1.75, 1.8, 2.3, 3.3, 5.3, 9.3, 17.3]
    stops, keeps = [], []
    for value in values:
        criterion.observe(*[torch.full((1, 1, 2, 2), value)] * 2)
        keeps.append(criterion.keep_now)
        stops.append(criterion.should_stop())
    assert criterion.best_iteration == 5
    assert keeps.index(True) == 5 + 2 - 1  # the image two iterations after the minimum
    assert stops.index(True) == 5 + 4 - 1  # patience 4 after the minimum


def test_same_seed_same_result_and_other_seed_differs(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, noisy = scene
    first = restore(noisy, "denoise", config=small(30), seed=3)
    again = restore(noisy, "denoise", config=small(30), seed=3)
    other = restore(noisy, "denoise", config=small(30), seed=4)
    torch.testing.assert_close(first.image, again.image, atol=0, rtol=0)
    assert first.history.loss == again.history.loss
    assert (first.image - other.image).abs().max() > 1e-3


def test_forced_nan_is_rolled_back_and_the_fit_recovers(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, noisy = scene
    guard = GuardConfig(snapshot_every=10)

    def poison(iteration: int, image: torch.Tensor, net: torch.nn.Module) -> None:
        if iteration == 55:
            with torch.no_grad():
                next(net.parameters()).fill_(math.nan)

    result = restore(
        noisy, "denoise", config=small(150, guard=guard, stopping=StoppingConfig(kind="fixed")), callback=poison, reference=clean
    )
    rollbacks = [e for e in result.history.events if e["event"] == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0]["iteration"] == 56 and rollbacks[0]["to_iteration"] == 50
    assert rollbacks[0]["learning_rate"] == pytest.approx(0.005)
    assert math.isnan(result.history.loss[55])
    assert all(math.isfinite(v) for v in result.history.loss[56:])
    assert torch.isfinite(result.image).all()
    assert result.stop_reason == "max_iterations" and result.iterations == 150
    assert psnr(result.image, clean) > psnr(noisy, clean) + 3


def test_repeated_divergence_ends_the_fit(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, noisy = scene

    def poison_always(iteration: int, image: torch.Tensor, net: torch.nn.Module) -> None:
        if iteration >= 20:
            with torch.no_grad():
                next(net.parameters()).fill_(math.nan)

    config = small(200, guard=GuardConfig(max_rollbacks=3, snapshot_every=5))
    result = restore(noisy, "denoise", config=config, callback=poison_always)
    assert result.stop_reason == "diverged"
    assert sum(e["event"] == "rollback" for e in result.history.events) == 3
    assert torch.isfinite(result.image).all()


def test_loss_spike_is_rolled_back(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, noisy = scene

    def kick(iteration: int, image: torch.Tensor, net: torch.nn.Module) -> None:
        if iteration == 40:  # a large perturbation of the head makes the next loss jump
            with torch.no_grad():
                net.head.bias.add_(20.0)  # type: ignore[union-attr,operator]

    result = restore(noisy, "denoise", config=small(60, stopping=StoppingConfig(kind="fixed")), callback=kick)
    events = [e for e in result.history.events if e["event"] == "rollback"]
    assert len(events) == 1 and events[0]["iteration"] == 41
    assert result.history.loss[40] > 4 * result.history.loss[39]
    assert result.history.loss[-1] < 2 * result.history.loss[39]


def test_warm_start_continues_where_the_last_fit_ended(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, noisy = scene
    first = restore(noisy, "denoise", config=small(120, stopping=StoppingConfig(kind="fixed")))
    assert first.state is not None
    cold = restore(noisy, "denoise", config=small(5, stopping=StoppingConfig(kind="fixed")), seed=1)
    warm = restore(noisy, "denoise", config=small(5, stopping=StoppingConfig(kind="fixed")), seed=1, initial_state=first.state)
    assert warm.history.loss[0] < 1.5 * first.history.loss[-1]
    assert warm.history.loss[0] < 0.5 * cold.history.loss[0]
    assert warm.state is not None
    torch.testing.assert_close(warm.state.code, first.state.code)
    # The caller's state is not modified by the warm-started fit.
    assert first.state.average is not None and warm.state.average is not None
    assert not torch.equal(first.state.average, warm.state.average)


def test_variance_stop_on_a_small_network(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, noisy = scene
    config = small(2000, stopping=StoppingConfig(window=50, patience=100))
    result = restore(noisy, "denoise", config=config, reference=clean)
    assert result.stop_reason == "early_stop"
    assert result.iterations < 2000
    assert len(result.history.loss) == len(result.history.criterion) == result.iterations
    best = max(result.history.psnr)
    assert psnr(result.image, clean) > best - 1.0


def test_mixed_precision_and_channels_last_track_fp32(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    clean, noisy = scene
    fixed = StoppingConfig(kind="fixed")
    plain = restore(noisy, "denoise", config=small(120, stopping=fixed), reference=clean)
    fast = restore(
        noisy, "denoise", reference=clean, config=small(120, stopping=fixed, performance=Performance(amp=True, channels_last=True))
    )
    assert fast.image.dtype == torch.float32
    assert abs(psnr(fast.image, clean) - psnr(plain.image, clean)) < 0.5


@pytest.mark.slow
def test_compiled_generator_matches_eager(scene: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, noisy = scene
    fixed = StoppingConfig(kind="fixed")
    eager = restore(noisy, "denoise", config=small(10, stopping=fixed))
    compiled = restore(noisy, "denoise", config=small(10, stopping=fixed, performance=Performance(compile=True)))
    # Same weights and input: the first loss agrees; fused kernels round differently after that.
    assert compiled.history.loss[0] == pytest.approx(eager.history.loss[0], rel=1e-4)
    assert abs(psnr(compiled.image, noisy) - psnr(eager.image, noisy)) < 0.1
