"""Seconds per DIP iteration: the published recipe's plain step against the engine's speed modes.

    python benchmarks/speed.py                          # CPU (or CUDA when present), 128 and 256
    python benchmarks/speed.py --sizes 128 256 512 --device cuda --iterations 50

Every figure is measured in one run on one machine, so the ratios hold there:

* "published recipe": a faithful re-implementation, written here and independent of the engine, of
  the denoising notebook's training step: the 5-level skip generator (128 channels down and up,
  4 skip channels, reflection padding, bilinear upsampling, batch norm, LeakyReLU, 1×1 convs after
  each up level, a sigmoid), a 32-channel input code of uniform noise × 0.1, fresh input noise of
  std 1/30 each step, Adam at 0.01, the MSE to the noisy image, and the 0.99 output average. Eager
  fp32, nothing else: the baseline.
* the engine (`dip_engine.fit`) on the same problem with the denoising preset, early stopping off,
  in each mode of `Performance`: eager fp32, channels_last, AMP, compiled, compiled + AMP (bf16
  where the device has it), and on CUDA also without TF32, with cuDNN's benchmark mode and with
  CUDA graphs (compile mode "reduce-overhead"). Its loop also runs the divergence guard and the
  stopping criterion.
* batched: `dip_engine.fit_batch` on K problems of the size at once (one grouped generator);
  its figure is the batch's seconds per iteration divided by K, so "over the engine's eager
  fp32" is its throughput against K separate eager runs.

Seconds per iteration are the median over `--iterations` timed iterations after `--warmup`
(compilation happens in the warm-up). GFLOP per iteration are counted once per size with
`torch.utils.flop_counter` on the published step (forward and backward); GFLOP/s = that / seconds.
Prints one markdown table per device; not a timed test.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch
from published import published_skip  # benchmarks/ is run as a folder of scripts
from torch.utils.flop_counter import FlopCounterMode

from dip_engine import Performance, StoppingConfig, fit, fit_batch, get_task
from dip_engine.restore import prepare

# ----- the published recipe's step (its generator is in benchmarks/published.py) -------------


class PublishedStep:
    """The notebook's closure: perturb the code, forward, MSE, backward, Adam, output average."""

    def __init__(self, noisy: torch.Tensor, device: torch.device) -> None:
        """noisy: the observation, 3×H×W."""
        generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.net = published_skip().to(device)
        size = noisy.shape[-2:]
        self.code = (torch.rand(1, 32, *size, generator=generator) * 0.1).to(device)
        self.noisy = noisy.unsqueeze(0).to(device)  # (1, 3, H, W)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=0.01)
        self.average: torch.Tensor | None = None

    def __call__(self) -> float:
        self.optimizer.zero_grad()
        net_input = self.code + torch.randn_like(self.code) / 30
        out = self.net(net_input)
        loss = torch.nn.functional.mse_loss(out, self.noisy)
        loss.backward()
        self.optimizer.step()
        detached = out.detach()
        self.average = detached if self.average is None else self.average * 0.99 + detached * 0.01
        return loss.item()  # the notebook prints the loss every iteration, which synchronises


def step_flops(size: int, device: torch.device) -> float:
    """FLOPs of one published forward + backward at size×size."""
    noisy = torch.rand(3, size, size)
    step = PublishedStep(noisy, device)
    with FlopCounterMode(display=False) as counter:
        out = step.net(step.code)
        torch.nn.functional.mse_loss(out, step.noisy).backward()
    return float(counter.get_total_flops())


# ----- timing ---------------------------------------------------------------------------------


def time_published(noisy: torch.Tensor, device: torch.device, warmup: int, iterations: int) -> float:
    step = PublishedStep(noisy, device)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _timed_config(performance: Performance, warmup: int, iterations: int):
    preset = get_task("denoise").config
    return preset.net, replace(
        preset.fit,
        max_iterations=warmup + iterations + 1,
        stopping=StoppingConfig(kind="fixed"),
        performance=performance,
    )


def _median_interval(stamps: list[float], warmup: int) -> float:
    return statistics.median([b - a for a, b in zip(stamps, stamps[1:])][warmup:])


def time_engine(noisy: torch.Tensor, device: torch.device, mode: Mode, warmup: int, iterations: int) -> float:
    """Median seconds per problem-iteration of the engine: the interval between consecutive
    iterations of `fit` (its loop reads the loss every iteration, so on CUDA each interval ends
    synchronised), or of `fit_batch` on K problems divided by K."""
    net_config, fit_config = _timed_config(mode.performance, warmup, iterations)
    stamps: list[float] = []
    stamp = lambda *_: stamps.append(time.perf_counter())  # noqa: E731
    if mode.problems == 1:
        _, problem = prepare(noisy, "denoise")
        fit(problem, net_config, fit_config, seed=0, device=device, callback=stamp)
        return _median_interval(stamps, warmup)
    generator = torch.Generator().manual_seed(1)
    images = [noisy] + [torch.rand(noisy.shape, generator=generator) for _ in range(mode.problems - 1)]
    problems = [prepare(image, "denoise")[1] for image in images]
    fit_batch(problems, net_config, fit_config, seeds=range(mode.problems), device=device, callback=stamp)
    return _median_interval(stamps, warmup) / mode.problems


@dataclass(frozen=True)
class Mode:
    performance: Performance
    problems: int = 1  # K problems fitted in one batch (dip_engine.fit_batch)


MODES: dict[str, Mode] = {
    "eager fp32": Mode(Performance()),
    "channels_last": Mode(Performance(channels_last=True)),
    "AMP + channels_last": Mode(Performance(amp=True, channels_last=True)),
    "compiled": Mode(Performance(compile=True)),
    "compiled + AMP": Mode(Performance(compile=True, amp=True)),
    "compiled + AMP + channels_last": Mode(Performance(compile=True, amp=True, channels_last=True)),
    "batched K=4": Mode(Performance(), 4),
    "batched K=8": Mode(Performance(), 8),
    "batched K=4, AMP + channels_last": Mode(Performance(amp=True, channels_last=True), 4),
}
CUDA_MODES: dict[str, Mode] = {  # only on CUDA devices
    "eager fp32, no TF32": Mode(Performance(tf32=False)),
    "channels_last + cudnn benchmark": Mode(Performance(channels_last=True, cudnn_benchmark=True)),
    "compiled + AMP + CUDA graphs": Mode(Performance(compile=True, amp=True, compile_mode="reduce-overhead")),
    "batched K=8, compiled + AMP + CUDA graphs": Mode(Performance(compile=True, amp=True, compile_mode="reduce-overhead"), 8),
}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--modes", nargs="+", default=None, choices=[*MODES, *CUDA_MODES], help="default: all for the device")
    args = parser.parse_args()
    device = torch.device(args.device)
    modes = {**MODES, **CUDA_MODES} if device.type == "cuda" else MODES
    chosen = args.modes or list(modes)
    if "eager fp32" in chosen:  # first, so that every later row has its ratio to it
        chosen.remove("eager fp32")
        chosen.insert(0, "eager fp32")

    print(f"# {device_name(device)}; torch {torch.__version__}; median of {args.iterations} iterations after {args.warmup}")
    print(
        "| size | mode | s / problem-iteration | GFLOP / iteration | GFLOP/s | speed-up over the published step | over the engine's eager fp32 |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        generator = torch.Generator().manual_seed(size)
        noisy = torch.rand(3, size, size, generator=generator)
        flops = step_flops(size, device)
        runs: list[tuple[str, Callable[[], float]]] = [
            ("published recipe (eager fp32)", partial(time_published, noisy, device, args.warmup, args.iterations))
        ]
        for name in chosen:
            runs.append((f"engine, {name}", partial(time_engine, noisy, device, modes[name], args.warmup, args.iterations)))
        baseline = engine_eager = None
        for name, measure in runs:
            seconds = measure()
            baseline = baseline or seconds
            if name == "engine, eager fp32":
                engine_eager = seconds
            versus_engine = f"{engine_eager / seconds:.2f}×" if engine_eager else "–"
            print(
                f"| {size} | {name} | {seconds:.4f} | {flops / 1e9:.1f} | {flops / 1e9 / seconds:.0f} | {baseline / seconds:.2f}× | {versus_engine} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
