"""Compiled training steps: built once per (network, shape, device) in a worker, then reused.

Compiling is slow on a CPU (tens of seconds for even this small network), so these are the
suite's only compiled fits: two shapes of a 2-level, 8-channel generator.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch._dynamo.utils import counters

from dip_engine import CompiledSteps, Denoising, NetConfig, Performance, RestoreConfig, StoppingConfig, get_task, restore
from tests.conftest import photo

TINY_NET = NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2), input_depth=4)


def _config(iterations: int, performance: Performance) -> RestoreConfig:
    fit = replace(get_task("denoise").config.fit, max_iterations=iterations, stopping=StoppingConfig(kind="fixed"), performance=performance)
    return RestoreConfig(net=TINY_NET, fit=fit)


def _noisy(top: int, size: int) -> torch.Tensor:
    return Denoising(sigma=25 / 255).degrade(photo("astronaut", top, 200, size, size), torch.Generator().manual_seed(top))


def test_a_worker_compiles_each_shape_once_and_matches_eager() -> None:
    steps = CompiledSteps()
    compiled = _config(3, Performance(compile=True))
    graphs_before = counters["stats"]["unique_graphs"]
    first = restore(_noisy(30, 24), "denoise", config=compiled, seed=0, steps=steps)
    graphs_after_first = counters["stats"]["unique_graphs"]
    for top, seed in ((60, 1), (90, 2)):  # more images of that shape: no compilation at all
        restore(_noisy(top, 24), "denoise", config=compiled, seed=seed, steps=steps)
    assert steps.compilations == 1
    assert graphs_after_first > graphs_before
    assert counters["stats"]["unique_graphs"] == graphs_after_first

    restore(_noisy(30, 40), "denoise", config=compiled, seed=0, steps=steps)  # a new shape compiles once
    assert steps.compilations == 2

    eager = restore(_noisy(30, 24), "denoise", config=_config(3, Performance()), seed=0)
    assert first.history.loss[0] == pytest.approx(eager.history.loss[0], rel=1e-5)
    assert first.history.loss == pytest.approx(eager.history.loss, rel=1e-3)
    assert (first.image - eager.image).abs().max().item() < 1e-3


def test_a_failed_compilation_warns_once_and_runs_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    """No working C++ compiler for Inductor: one warning, then the fit runs eagerly and restores."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    steps = CompiledSteps()
    clean = photo("astronaut", 30, 200, 32, 32)
    noisy = Denoising(sigma=25 / 255).degrade(clean, torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning, match="torch.compile failed here") as caught:
        result = restore(noisy, "denoise", config=_config(3, Performance(compile=True)), seed=0, steps=steps)
        restore(noisy, "denoise", config=_config(3, Performance(compile=True)), seed=1, steps=steps)
    assert len([w for w in caught if "torch.compile failed" in str(w.message)]) == 1
    assert steps.compilations == 0
    eager = restore(noisy, "denoise", config=_config(3, Performance()), seed=0)
    assert result.history.loss == pytest.approx(eager.history.loss, rel=1e-6)
