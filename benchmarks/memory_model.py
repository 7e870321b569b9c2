"""The peak memory of short fits against `dip_engine.memory.estimate_fit_bytes`: its calibration.

    python benchmarks/memory_model.py                          # the whole table (half an hour on one core)
    python benchmarks/memory_model.py --presets denoise --sizes 128 256 --problems 1 2 --performances cpu

Each case runs in a fresh process (`OMP_NUM_THREADS=1`, so a shared machine stays usable): torch
imported and the problem's inputs built, it reads its resident memory (`VmRSS`), resets the
kernel's peak (`/proc/self/clear_refs` ← 5), runs a few iterations of `fit` (one problem) or
`fit_batch` (K problems) and reads the peak (`VmHWM`); measured = peak − resident before. The
fits run the preset's network and loop with the variance rule (whose window buffer the estimate
counts for "variance" and "auto") and the divergence guard snapshotting every iteration (so the
guard's copies are held as they are from iteration 20 of a long fit on).

Performances: "eager" is `Performance()` (float32), "cpu" is `performance_for("cpu")` (on a CPU
with bfloat16: autocast and channels_last). Prints a markdown table (measured, estimated, error)
and, per performance, the constants `fixed`, `heap_factor` and `mapped_factor` that a least-squares
fit of these measurements gives, to compare with `dip_engine.memory.CALIBRATIONS`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dip_engine import (
    Denoising,
    FitConfig,
    GuardConfig,
    Inpainting,
    Performance,
    Problem,
    RestoreConfig,
    SuperResolution,
    fit_batch,
    get_task,
    performance_for,
)
from dip_engine import fit as fit_one
from dip_engine.memory import (
    CALIBRATIONS,
    FLOAT32,
    HALF,
    estimate_fit_bytes,
    parameter_count,
    precision_of,
    saved_tensors,
    track_bytes,
    training_bytes,
)
from dip_engine.operators import Operator
from dip_engine.tasks import region_inpainting_config

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20
PRESETS: dict[str, Callable[[], RestoreConfig]] = {
    "denoise": lambda: get_task("denoise").config,
    "sr4": lambda: get_task("sr4").config,
    "inpaint": lambda: get_task("inpaint").config,  # the text configuration (`text_inpainting_config`)
    "inpaint-region": region_inpainting_config,
}
PERFORMANCES: dict[str, Callable[[], Performance]] = {"eager": Performance, "cpu": lambda: performance_for("cpu")}
CHANNELS = 3


@dataclass(frozen=True)
class Case:
    preset: str
    performance: str
    size: int
    problems: int
    iterations: int = 3


def fit_config(case: Case) -> tuple[RestoreConfig, FitConfig]:
    """The preset's configuration for a measured fit: variance rule, guard snapshot every step."""
    config = PRESETS[case.preset]()
    stopping = replace(config.fit.stopping, kind="variance")
    fit = replace(
        config.fit,
        max_iterations=case.iterations,
        stopping=stopping,
        guard=GuardConfig(snapshot_every=1),
        performance=PERFORMANCES[case.performance](),
    )
    return config, fit


def problem(case: Case, seed: int) -> Problem:
    generator = torch.Generator().manual_seed(seed)
    size = case.size
    operator: Operator
    if case.preset == "sr4":
        operator, observed = SuperResolution(4), size // 4
    elif case.preset.startswith("inpaint"):
        operator, observed = Inpainting((torch.rand(1, size, size, generator=generator) > 0.3).float()), size
    else:
        operator, observed = Denoising(), size
    return Problem(operator, torch.rand(1, CHANNELS, observed, observed, generator=generator), (size, size))


def status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_here(case: Case) -> int:
    """The child's side: the growth of peak resident memory during the case's fit."""
    config, fit = fit_config(case)
    problems = [problem(case, seed) for seed in range(case.problems)]
    device = torch.device("cpu")
    before = status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    if case.problems == 1:
        fit_one(problems[0], config.net, fit, device=device)
    else:
        fit_batch(problems, config.net, fit, seeds=list(range(case.problems)), device=device)
    return status_bytes("VmHWM") - before


def measure(case: Case) -> int:
    """The case measured in a fresh process."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", json.dumps(case.__dict__)]
    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def estimate(case: Case) -> int:
    config, fit = fit_config(case)
    net = config.net
    return estimate_fit_bytes(
        net, (case.size, case.size), net.input_depth, CHANNELS, problems=case.problems, performance=fit.performance, stopping=fit.stopping
    )


def cases(presets: list[str], sizes: list[int], problems: list[int], performances: list[str]) -> list[Case]:
    """Every preset at every size for one problem; the first preset (denoise) also batched."""
    found = []
    for performance in performances:
        for preset in presets:
            for k in problems if preset == presets[0] else [1]:
                found += [Case(preset, performance, size, k) for size in sizes]
    return found


def least_squares(rows: list[tuple[Case, int]]) -> tuple[float, float, float]:
    """(fixed, heap_factor, mapped_factor) minimising the relative error of the estimate over
    `rows`: measured − weights − track images = fixed + heap_factor × saved tensors below
    `mapped_from` + mapped_factor × the others."""
    design, target = [], []
    for case, measured in rows:
        config, fit = fit_config(case)
        net, k, size = config.net, case.problems, (case.size, case.size)
        precision = precision_of(fit.performance, "cpu")
        mapped_from = CALIBRATIONS[("cpu", precision.activation == HALF)].mapped_from
        saved = [k * b for b in saved_tensors(net, size, net.input_depth, CHANNELS, precision)]
        heap, mapped = sum(b for b in saved if b < mapped_from), sum(b for b in saved if b >= mapped_from)
        rest = training_bytes(net, net.input_depth, CHANNELS, k, precision) + track_bytes(size, CHANNELS, k, fit.stopping)
        design.append([1.0 / measured, heap / measured, mapped / measured])
        target.append((measured - rest) / measured)
    solution = np.linalg.lstsq(np.array(design), np.array(target), rcond=None)[0]
    return float(solution[0]), float(solution[1]), float(solution[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 256, 384, 512])
    parser.add_argument("--problems", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--performances", nargs="+", default=list(PERFORMANCES), choices=list(PERFORMANCES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(measure_here(Case(**json.loads(args.child))))
        return
    _, conv = parameter_count(PRESETS["denoise"]().net, 32, CHANNELS)
    print(f"torch {torch.__version__}, one thread; denoise network: {conv * FLOAT32 / MIB:.1f} MiB of conv weights\n")
    print("| preset | performance | size | K | measured MiB | estimated MiB | error % |")
    print("|---|---|---|---|---|---|---|")
    rows: list[tuple[Case, int]] = []
    for case in cases(args.presets, args.sizes, args.problems, args.performances):
        measured, estimated = measure(case), estimate(case)
        rows.append((case, measured))
        error = 100.0 * (estimated - measured) / measured
        print(
            f"| {case.preset} | {case.performance} | {case.size}² | {case.problems} | {measured / MIB:.0f} | {estimated / MIB:.0f} | {error:+.1f} |",
            flush=True,
        )
    for performance in args.performances:
        chosen = [row for row in rows if row[0].performance == performance]
        if len(chosen) >= 2:
            fixed, heap, mapped = least_squares(chosen)
            print(
                f"\n{performance}: least squares over these cases: fixed = {fixed / MIB:.0f} MiB, heap_factor = {heap:.2f}, mapped_factor = {mapped:.2f}"
            )


if __name__ == "__main__":
    main()
