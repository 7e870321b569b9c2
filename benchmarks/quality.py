"""Restoration quality of each task preset against the published recipe, on scikit-image photographs.

    python benchmarks/quality.py                                   # every case, 128² and 256², three photographs
    python benchmarks/quality.py --sizes 64 --images astronaut --cases inpaint-text sr4

For every (case, photograph, size) the published recipe (benchmarks/published.py, independent of
the engine) runs to its published fixed count on the same seeded observation as the engine's
preset (`dip_engine.restore` with the task's configuration for that input). Columns: input PSNR
(the observation; bicubic for super-resolution), the recipe's PSNR at its fixed count and its
best along the run (where), the engine's PSNR, iterations and stop reason, the engine minus the
recipe at its count, the engine's raw output at the same iteration (instead of the output
average), and for inpainting the network's own image before the given pixels are put back.
Denoising rows also run CBM3D (benchmarks/classical.py) given the true σ.

Cases: denoise (σ = 25), sr4 and sr8 (Lanczos decimation), inpaint-text (text rendered into
the mask), inpaint-blocks (8 square holes of a tenth of the side), flash (the synthetic pair).
Both sides run bf16 autocast + channels_last on a CPU with bf16 (the pipeline's CPU setting),
fp32 elsewhere (`--fp32` forces it). Prints a markdown table; not a timed test.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from classical import cbm3d  # benchmarks/ is run as a folder of scripts
from published import RECIPES, run_recipe
from skimage import data

from dip_engine import Denoising, Inpainting, Performance, SuperResolution, block_mask, get_task, psnr, restore, synthesize_flash_pair
from dip_engine.masks import hole_radius
from dip_engine.step import autocast_dtype
from dip_engine.synthetic import text_mask
from dip_engine.tasks import THIN_HOLE_RADIUS, with_performance

CROPS = {"astronaut": (0.05, 0.35), "coffee": (0.25, 0.1), "chelsea": (0.1, 0.3)}  # top, left fractions
CASES = ("denoise", "sr4", "sr8", "inpaint-text", "inpaint-blocks", "flash")
SIGMA = 25.0 / 255.0


def crop(name: str, size: int) -> torch.Tensor:
    pixels = getattr(data, name)()
    top = int(CROPS[name][0] * (pixels.shape[0] - size))
    left = int(CROPS[name][1] * (pixels.shape[1] - size))
    patch = pixels[top : top + size, left : left + size, :3].astype(np.float32) / 255.0
    return torch.from_numpy(patch).permute(2, 0, 1).contiguous()


@dataclass
class Case:
    """One seeded observation and everything both sides need to restore it."""

    task: str
    observation: torch.Tensor
    reference: torch.Tensor
    input_psnr: float
    recipe: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    inputs: dict = field(default_factory=dict)  # mask= / scale= / flash= for restore


def make_case(case: str, clean: torch.Tensor) -> Case:
    rng = torch.Generator().manual_seed(0)
    if case == "denoise":
        noisy = Denoising(SIGMA).degrade(clean, rng)
        return Case("denoise", noisy, clean, psnr(noisy, clean), "denoise", lambda x: x)
    if case in ("sr4", "sr8"):
        operator = SuperResolution(int(case[2:]))
        small = operator.degrade(clean, rng)
        bicubic = F.interpolate(small[None], scale_factor=operator.factor, mode="bicubic")[0].clamp(0, 1)
        return Case(case, small, clean, psnr(bicubic, clean), case, operator.A)
    if case.startswith("inpaint"):
        size = clean.shape[-1]
        mask = text_mask(size, size, rng) if case == "inpaint-text" else block_mask(size, size, rng, holes=8, size=0.1)
        inpainting = Inpainting(mask)
        holed = inpainting.degrade(clean, rng)
        recipe = "inpaint-text" if hole_radius(mask) <= THIN_HOLE_RADIUS else "inpaint-region"
        return Case("inpaint", holed, clean, psnr(holed, clean), recipe, inpainting.A, {"mask": mask})
    pair = synthesize_flash_pair(clean, rng)
    return Case("flash", pair.no_flash, pair.ambient, psnr(pair.no_flash, pair.ambient), "flash", lambda x: x, {"flash": pair.flash})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--images", nargs="+", default=list(CROPS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--fp32", action="store_true", help="plain fp32 on both sides")
    args = parser.parse_args()
    fast = not args.fp32 and autocast_dtype(torch.device("cpu"), Performance(amp=True)) is not None
    performance = Performance(amp=fast, channels_last=fast)
    where = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(f"# {where}, torch {torch.__version__}, {'bf16 autocast + channels_last' if fast else 'fp32'}")
    print(
        "| case | image | size | input dB | recipe dB (fixed it.) | recipe best dB (it.) | engine dB | engine it. | stop |"
        " engine − recipe dB | engine raw output dB | before known pixels kept dB | CBM3D dB (s) | recipe s | engine s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for image in args.images:
            clean = crop(image, size)
            for name in args.cases:
                case = make_case(name, clean)
                recipe = RECIPES[case.recipe]
                reference_run = run_recipe(
                    recipe, case.forward, case.observation, case.reference, guide=case.inputs.get("flash"), autocast=fast
                )
                task = get_task(case.task)
                config = with_performance(task.config_for(**{k: v for k, v in case.inputs.items() if k == "mask"}), performance)
                started = time.perf_counter()
                result = restore(case.observation, task, config=config, reference=case.reference, **case.inputs)
                engine_seconds = time.perf_counter() - started
                output = psnr(result.image, case.reference)
                history = result.history
                raw = history.raw_psnr[result.kept_iteration - 1]
                network = f"{history.network_psnr[result.kept_iteration - 1]:.2f}" if history.network_psnr else "–"
                classical = "–"
                if case.task == "denoise":
                    estimate, seconds = cbm3d(case.observation, SIGMA)
                    classical = f"{psnr(estimate, case.reference):.2f} ({seconds:.1f})"
                best, best_at = reference_run.best
                print(
                    f"| {name} | {image} | {size} | {case.input_psnr:.2f} | {reference_run.final:.2f} ({recipe.iterations}) |"
                    f" {best:.2f} ({best_at}) | {output:.2f} | {result.iterations} | {result.stop_reason} |"
                    f" {output - reference_run.final:+.2f} | {raw:.2f} | {network} | {classical} |"
                    f" {reference_run.seconds:.0f} | {engine_seconds:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
