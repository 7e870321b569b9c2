"""The memory model of a fit: its count is the network's, it scales as a fit does, and it holds the measured peak.

The measured peak is the growth of a fresh process's peak resident memory over a short fit, as
benchmarks/memory_model.py measures it for its whole table (sizes 64² to 512², one to four problems).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dip_engine import NetConfig, Performance, StoppingConfig, get_task, performance_for
from dip_engine.fit import autocast_context, padded_layout
from dip_engine.memory import estimate_fit_bytes, parameter_count, precision_of, saved_activation_bytes
from dip_engine.nets import Generator, build_generator
from dip_engine.tasks import region_inpainting_config, text_inpainting_config

REPO = Path(__file__).resolve().parents[2]
DENOISE = get_task("denoise").config.net
NETS = {
    "denoise": DENOISE,
    "text inpainting": text_inpainting_config().net,
    "region inpainting": region_inpainting_config().net,
    "odd": NetConfig(
        channels_down=(8, 16, 16),
        channels_up=(8, 12, 16),
        channels_skip=(2, 0, 3),
        kernel_skip=3,
        norm="instance",
        padding="zero",
        conv_1x1_up=False,
    ),
}
# A fit of the denoising preset in a fresh process: resident memory before, its peak after.
MEASURE = """
import json, sys
from dataclasses import replace
from pathlib import Path
import torch
from dip_engine import Denoising, GuardConfig, Problem, fit, get_task, performance_for
size, iterations = json.loads(sys.argv[1])
config = get_task("denoise").config
loop = replace(config.fit, max_iterations=iterations, guard=GuardConfig(snapshot_every=1), performance=performance_for("cpu"))
problem = Problem(Denoising(), torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)), (size, size))
def status(field):
    return next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")
fit(problem, config.net, loop, device=torch.device("cpu"))
print(status("VmHWM") - before)
"""


def measured_peak(size: int, iterations: int) -> int:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps([size, iterations])], cwd=REPO, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", NETS)
def test_the_parameters_counted_are_the_generators(name: str) -> None:
    config = NETS[name]
    net = Generator(config, config.input_depth, 3)
    conv = sum(p.numel() for m in net.modules() if isinstance(m, torch.nn.Conv2d) for p in m.parameters())
    assert parameter_count(config, config.input_depth, 3) == (sum(p.numel() for p in net.parameters()), conv)


@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("name", ["denoise", "text inpainting", "region inpainting"])
def test_the_saved_activations_counted_are_what_autograd_saves(name: str, amp: bool) -> None:
    config, size = NETS[name], (72, 80)  # padded to 96 × 96: the count follows the padding
    performance = Performance(amp=amp, channels_last=amp)
    net = build_generator(config, config.input_depth, 3, seed=0).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    code = torch.rand(1, config.input_depth, *padded_layout(size, config)[:2]).contiguous(memory_format=torch.channels_last)
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.dim() == 4 and tensor.shape[0] == 1:  # activations, not weights
            storage = tensor.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    autocast, _ = autocast_context(torch.device("cpu"), performance)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor), autocast:
        net(code)
    precision = precision_of(performance, "cpu")
    assert saved_activation_bytes(config, size, config.input_depth, 3, precision) == sum(saved.values())


def test_the_estimate_grows_with_size_problems_and_channels() -> None:
    performance = performance_for("cpu")

    def estimate(side: int, problems: int = 1, in_channels: int = 32, out_channels: int = 3) -> int:
        return estimate_fit_bytes(DENOISE, (side, side), in_channels, out_channels, problems=problems, performance=performance)

    sides = [16, 64, 128, 200, 256, 384, 512, 1024, 2048]
    precision = precision_of(performance, "cpu")
    # below the smallest input (64 × 64 for five levels) only the images kept grow
    assert saved_activation_bytes(DENOISE, (16, 16), 32, 3, precision) == saved_activation_bytes(DENOISE, (64, 64), 32, 3, precision)
    assert all(a < b for a, b in zip(map(estimate, sides), map(estimate, sides[1:])))
    assert all(estimate(256, k) < estimate(256, k + 1) for k in range(1, 8))
    assert estimate(256, out_channels=1) < estimate(256) and estimate(256, in_channels=3) < estimate(256)
    # roughly linear in pixels once they dominate: four times the pixels, four times the growth
    assert 3.6 < (estimate(2048) - estimate(1024)) / (estimate(1024) - estimate(512)) < 4.4
    # a batch of K has K networks' activations and weights but no guard snapshot: close to K × one
    assert 3.5 < estimate(1024, 4) / estimate(1024) < 4.1


def test_half_precision_halves_the_activations_on_cuda() -> None:
    fp32 = estimate_fit_bytes(DENOISE, (1024, 1024), 32, 3, device_type="cuda")
    bf16 = estimate_fit_bytes(DENOISE, (1024, 1024), 32, 3, device_type="cuda", performance=Performance(amp=True))
    assert 0.45 < bf16 / fp32 < 0.6


def test_a_window_is_held_only_by_the_rules_that_use_it() -> None:
    def estimate(stopping: StoppingConfig) -> int:
        return estimate_fit_bytes(DENOISE, (512, 512), 32, 3, stopping=stopping)

    assert estimate(StoppingConfig(kind="converged")) < estimate(StoppingConfig(kind="auto")) == estimate(StoppingConfig())
    assert estimate(StoppingConfig(window=50)) < estimate(StoppingConfig())


@pytest.mark.parametrize(("problems", "device_type"), [(0, "cpu"), (1, "mps")])
def test_what_it_cannot_estimate_is_refused(problems: int, device_type: str) -> None:
    with pytest.raises(ValueError, match="must be"):
        estimate_fit_bytes(DENOISE, (64, 64), 32, 3, problems=problems, device_type=device_type)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc to reset and read the peak")
@pytest.mark.parametrize("side", [128, 256, 384])
def test_the_estimate_holds_the_measured_peak(side: int) -> None:
    measured = measured_peak(side, iterations=3)
    estimated = estimate_fit_bytes(DENOISE, (side, side), 32, 3, performance=performance_for("cpu"))
    assert abs(estimated - measured) <= 0.25 * measured, (
        f"{side}²: estimated {estimated / 2**20:.0f} MiB, measured {measured / 2**20:.0f} MiB"
    )
