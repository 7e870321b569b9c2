"""Where each task's image stops improving: the measurements behind the stopping rules.

    python benchmarks/stopping_rules.py                 # 64² crops, three photographs
    python benchmarks/stopping_rules.py --size 96 --images astronaut --cases inpaint-text

Each case runs the engine's preset past its cap's worth of iterations with the convergence
criterion traced but never stopping (tolerance 0), so one run shows, for every tolerance, where
the convergence rule would have stopped and the PSNR there, against the PSNR at the cap and the
best along the run; the fit is deterministic and the criterion only decides when to stop, so
this equals separate runs. It also prints the returned image (output average, known pixels put
back) against the raw output at the cap, and, for noisy inputs (`--noise`), the variance rule's
own run; both then keep no given pixels, as the `auto` rule decides for a noisy input.
Prints markdown tables; not a timed test.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import torch
from quality import crop  # benchmarks/ is run as a folder of scripts

from dip_engine import Denoising, Inpainting, Performance, SuperResolution, block_mask, get_task, psnr, restore
from dip_engine.synthetic import text_mask
from dip_engine.tasks import region_inpainting_config, text_inpainting_config, with_max_iterations, with_performance

TOLERANCES = (4e-3, 2e-3, 1e-3, 5e-4, 2.5e-4)


def observation(case: str, clean: torch.Tensor, noise: float) -> tuple[str, torch.Tensor, dict]:
    rng = torch.Generator().manual_seed(0)
    size = clean.shape[-1]
    if case.startswith("inpaint"):
        mask = text_mask(size, size, rng) if case == "inpaint-text" else block_mask(size, size, rng, holes=8, size=0.1)
        x0 = Inpainting(mask).degrade(clean, rng)
        if noise:
            x0 = (x0 + noise * torch.randn(x0.shape, generator=rng)).clamp(0, 1) * mask
        return "inpaint", x0, {"mask": mask}
    factor = int(case.removeprefix("sr"))
    x0 = SuperResolution(factor).degrade(clean, rng)
    if noise:
        x0 = Denoising(noise).degrade(x0, rng)
    return f"sr{factor}", x0, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["inpaint-text", "inpaint-blocks", "sr4", "sr8"])
    parser.add_argument("--images", nargs="+", default=["astronaut", "coffee", "chelsea"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--noise", type=float, default=0.0, help="σ of noise added to the observation (0–1 units)")
    parser.add_argument(
        "--network", choices=["mask", "text", "region"], default="mask", help="inpainting: the configuration the mask chooses, or this one"
    )
    parser.add_argument("--cap", type=int, help="run this many iterations instead of the preset's cap")
    args = parser.parse_args()
    performance = Performance(amp=True, channels_last=True)
    print(f"# {args.size}², noise σ {args.noise * 255:.0f}/255, bf16 autocast + channels_last, torch {torch.__version__}")
    head = " | ".join(f"tol {t:g}: it. / dB" for t in TOLERANCES)
    print(f"| case | image | cap | dB at cap (raw output) | best dB (it.) | {head} | variance rule: it. / dB |")
    print("|---|---|---|---|---|" + "---|" * len(TOLERANCES) + "---|")
    for case in args.cases:
        for image in args.images:
            clean = crop(image, args.size)
            task, x0, extra = observation(case, clean, args.noise)
            scale = None
            if args.network != "mask" and task == "inpaint":
                config = text_inpainting_config() if args.network == "text" else region_inpainting_config()
            else:
                config = get_task(task).config_for(**extra)
            config = with_performance(config, performance)
            if args.cap:
                config = with_max_iterations(config, args.cap)
            cap = config.fit.max_iterations
            # A noisy input keeps no given pixels (as the auto rule decides for it) under either rule.
            keep = config.fit.keep_known and not args.noise
            traced = replace(
                config.fit,
                keep_known=keep,
                stopping=replace(config.fit.stopping, kind="converged", converge_tolerance=1e-12, noise_threshold=math.inf),
            )
            result = restore(x0, task, config=replace(config, fit=traced), reference=clean, scale=scale, **extra)
            trace, changes = result.history.psnr, result.history.criterion
            best = max(range(len(trace)), key=trace.__getitem__)
            cells = []
            every, checks = traced.stopping.converge_every, traced.stopping.converge_checks
            for tolerance in TOLERANCES:
                quiet, stop = 0, None
                for iteration in range(every, len(changes) + 1, every):
                    change = changes[iteration - 1]
                    quiet = quiet + 1 if change < tolerance else 0
                    if quiet >= checks:
                        stop = iteration
                        break
                cells.append(f"{stop} / {trace[stop - 1]:.2f}" if stop else "cap")
            variance = "–"
            if args.noise:
                noisy_config = replace(config, fit=replace(traced, stopping=replace(config.fit.stopping, kind="variance")))
                run = restore(x0, task, config=noisy_config, reference=clean, **extra)
                variance = f"{run.iterations} / {psnr(run.image, clean):.2f}"
            print(
                f"| {case} | {image} | {cap} | {trace[-1]:.2f} ({result.history.raw_psnr[-1]:.2f}) | {trace[best]:.2f} ({best + 1}) |"
                f" {' | '.join(cells)} | {variance} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
