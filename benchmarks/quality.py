"""Restoration quality of each task preset on scikit-image photographs.

    python benchmarks/quality.py                       # every task, 128² and 256², three photographs
    python benchmarks/quality.py --sizes 128 --images astronaut --tasks denoise sr4

Prints one row per (task, image, size): input PSNR (the observation against the clean image; for
super-resolution the bicubic upsampling), output PSNR, the best PSNR seen along the run, the
iteration the run stopped at and the one whose image was kept, and the seconds it took.
`--fixed N` also runs the published fixed-iteration recipe to N iterations, for the over-fitting
comparison. Degradations are synthetic and seeded: σ = 25 noise, Lanczos decimation, block holes,
a synthetic flash/no-flash pair.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from dip_engine import (
    Denoising,
    Inpainting,
    Performance,
    Restoration,
    StoppingConfig,
    SuperResolution,
    block_mask,
    get_task,
    psnr,
    restore,
    synthesize_flash_pair,
)
from dip_engine.tasks import with_performance

CROPS = {"astronaut": (0.05, 0.35), "coffee": (0.25, 0.1), "chelsea": (0.1, 0.3)}  # top, left fractions


@dataclass
class Row:
    task: str
    image: str
    size: int
    input_psnr: float
    output_psnr: float
    best_psnr: float
    stop: int
    kept: int
    reason: str
    seconds: float


def crop(name: str, size: int) -> torch.Tensor:
    pixels = getattr(data, name)()
    top = int(CROPS[name][0] * (pixels.shape[0] - size))
    left = int(CROPS[name][1] * (pixels.shape[1] - size))
    patch = pixels[top : top + size, left : left + size, :3].astype(np.float32) / 255.0
    return torch.from_numpy(patch).permute(2, 0, 1).contiguous()


def run_one(task_name: str, clean: torch.Tensor, fixed: int | None,
            performance: Performance) -> tuple[float, Restoration, torch.Tensor]:
    """Degrade `clean` for the task, restore it; return (input PSNR, result, reference)."""
    task = get_task(task_name)
    config = with_performance(task.config, performance)
    if fixed is not None:
        config = replace(config, fit=replace(config.fit, max_iterations=fixed, stopping=StoppingConfig(kind="fixed")))
    rng = torch.Generator().manual_seed(0)
    if task.kind == "denoise":
        noisy = Denoising().degrade(clean, rng)
        return psnr(noisy, clean), restore(noisy, task, config=config, reference=clean), clean
    if task.kind == "sr":
        factor = task.scale or 4
        small = SuperResolution(factor).degrade(clean, rng)
        bicubic = F.interpolate(small[None], scale_factor=factor, mode="bicubic")[0].clamp(0, 1)
        scale = None if task.scale else factor
        return psnr(bicubic, clean), restore(small, task, scale=scale, config=config, reference=clean), clean
    if task.kind == "inpaint":
        mask = block_mask(clean.shape[1], clean.shape[2], rng, holes=8, size=0.1)
        holed = Inpainting(mask).degrade(clean, rng)
        return psnr(holed, clean), restore(holed, task, mask=mask, config=config, reference=clean), clean
    pair = synthesize_flash_pair(clean, rng)
    result = restore(pair.no_flash, task, flash=pair.flash, config=config, reference=pair.ambient)
    return psnr(pair.no_flash, pair.ambient), result, pair.ambient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["denoise", "sr4", "inpaint", "flash"])
    parser.add_argument("--images", nargs="+", default=list(CROPS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--fixed", type=int, default=None, help="also run the fixed-iteration recipe to N")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast + channels_last (default: fp32)")
    args = parser.parse_args()
    performance = Performance(amp=args.amp, channels_last=args.amp)
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"# {where}, torch {torch.__version__},"
          f" {'bf16 autocast' if args.amp else 'fp32'}")
    print("| task | image | size | input dB | output dB | best along run dB | stop it. | kept it. | reason | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for image in args.images:
            clean = crop(image, size)
            for task in args.tasks:
                budgets: list[int | None] = [None] + ([args.fixed] if args.fixed else [])
                for fixed in budgets:
                    started = time.perf_counter()
                    input_psnr, result, reference = run_one(task, clean, fixed, performance)
                    label = task if fixed is None else f"{task} fixed {fixed}"
                    row = Row(label, image, size, input_psnr, psnr(result.image, reference),
                              result.history.best_psnr, result.iterations, result.kept_iteration,
                              result.stop_reason, time.perf_counter() - started)
                    print(f"| {row.task} | {row.image} | {row.size} | {row.input_psnr:.2f} | {row.output_psnr:.2f} |"
                          f" {row.best_psnr:.2f} | {row.stop} | {row.kept} | {row.reason} | {row.seconds:.0f} |",
                          flush=True)


if __name__ == "__main__":
    main()
