"""Measure the video chain's settings frame by frame, many variants at once, without Ray.

    PYTHONPATH=. python benchmarks/chain_tuning.py --device cuda --processes 8
    PYTHONPATH=. python benchmarks/chain_tuning.py --groups sr2 --frames 4 --size 64   # smaller, on a CPU

Each job restores part of the benchmark clip (`clips.make_clip`: a slow pan and zoom over the
astronaut) either cold, frame by frame (`dip_engine.restore`), or as one warm-started chain
(`dip_engine.video.restore_video`) with one `ChainConfig`; jobs run in separate processes. Groups:

- `sr2`: ×2 super-resolution, frames 0..F−1: cold starts against chains whose warm frames stop
  by the criterion (the default) or run a fixed budget, with and without the temporal term.
- `sr2-budget`: the same on the 24-frame clip, chains with the task's output average and no
  temporal term at several warm budgets.
- `denoise-cap`: denoising on the 48-frame clip at several caps of a warm frame's criterion: one
  chain over all frames, and the second of two segments (frames 24..47, 3 warm-up frames).
- `inpaint`: inpainting of a clean clip with a burnt-in caption (a text mask fixed over all
  frames), frames 0..F−1: cold starts against chains with the denoising chain's settings (what
  inpainting chains ran before they had their own) and with the task's (`ChainConfig.for_task`).
- `seam-denoise`, `seam-sr2`: a segment whose chain starts `overlap` frames early from a short,
  fixed cold start (`ChainConfig.warmup_cold_iterations`), against one chain from frame 0, on the
  frames the segment keeps: how many warm-up frames and cold iterations a seam needs.

Prints, per job, the mean PSNR of the frames it keeps, its iterations (warm-up included) and the
per-frame PSNR and iterations; and, with --traces, the PSNR of each frame at chosen iterations.
Every job uses the pipeline's CPU speed settings (bf16 autocast, channels_last).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import TypedDict

import torch
from clips import degrade, make_clip

from dip_engine import get_task, psnr, restore
from dip_engine.config import Performance, StoppingConfig
from dip_engine.synthetic import text_mask
from dip_engine.video import ChainConfig, restore_video

SPEED = Performance(amp=True, channels_last=True)
TRACE_POINTS = (25, 50, 100, 200, 300, 500, 1000, 1500, 2000)


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    clip_frames: int  # the clip is made this long (its camera path depends on it)
    first: int  # the chain (or the cold frames) covers frames first..stop−1
    stop: int
    keep_from: int  # frames before this are not scored
    warmup: int = 0  # the chain's first frames that only warm it up (its short cold start)
    cold: bool = False  # restore each frame from scratch instead of chaining
    chain: ChainConfig = field(default_factory=ChainConfig)


class ChainOptions(TypedDict, total=False):
    """Some of ChainConfig's fields, as keywords shared by several chains."""

    warm_average: float | None
    temporal_weight: float


@dataclass
class FrameRow:
    index: int
    cold: bool
    iterations: int
    psnr: float
    trace: dict[int, float]


def _config(task: str, cold_cap: int | None, mask: torch.Tensor | None):
    preset = get_task(task).config_for(mask=mask)
    fit = replace(preset.fit, performance=SPEED, max_iterations=min(cold_cap or preset.fit.max_iterations, preset.fit.max_iterations))
    return replace(preset, fit=fit)


def run_job(job: Job, size: int, device: str, threads: int, cold_cap: int | None) -> tuple[Job, list[FrameRow], float]:
    torch.set_num_threads(threads)
    clean = make_clip(job.clip_frames, size)
    mask = text_mask(size, size, torch.Generator().manual_seed(0)) if get_task(job.task).kind == "inpaint" else None
    observed = clean * mask if mask is not None else degrade(job.task, clean, seed=0)
    config = _config(job.task, cold_cap, mask)
    started = time.perf_counter()
    rows = []

    def trace_of(history) -> dict[int, float]:
        return {k: history.psnr[k - 1] for k in TRACE_POINTS if k <= len(history.psnr)}

    if job.cold:
        for index in range(job.first, job.stop):
            result = restore(observed[index], job.task, mask=mask, config=config, device=device, reference=clean[index])
            rows.append(FrameRow(index, True, result.iterations, psnr(result.image, clean[index]), trace_of(result.history)))
    else:
        frames = iter(observed[job.first : job.stop])
        references = iter(clean[job.first : job.stop])
        chain = restore_video(
            frames, job.task, config=config, chain=job.chain, device=device, references=references, warmup=job.warmup, masks=mask
        )
        for frame in chain:
            index = job.first + frame.index
            r = frame.restoration
            rows.append(FrameRow(index, frame.cold, r.iterations, psnr(r.image, clean[index]), trace_of(r.history)))
    return job, rows, time.perf_counter() - started


def _fixed(budget: int, **options) -> ChainConfig:
    return ChainConfig(warm_max_iterations=budget, warm_stopping=StoppingConfig(kind="fixed"), **options)


def _cold_jobs(task: str, clip_frames: int, frames: int) -> list[Job]:
    return [Job(f"{task} cold frame {k}", task, clip_frames, k, k + 1, k, cold=True) for k in range(frames)]


def sr2_jobs(frames: int) -> list[Job]:
    """Frames 0..frames−1 of a clip of that length: cold starts, and chains with these settings."""
    chains = {
        "chain default": ChainConfig(),
        "chain temporal 0": ChainConfig(temporal_weight=0),
        "chain fixed 200": _fixed(200),
        "chain fixed 300": _fixed(300),
        "chain fixed 300, temporal 0": _fixed(300, temporal_weight=0),
        "chain fixed 500, temporal 0": _fixed(500, temporal_weight=0),
        "chain fixed 300, average 0.99, temporal 0": _fixed(300, temporal_weight=0, warm_average=None),
        "chain variance cap 400 (window 20, patience 60), temporal 0": ChainConfig(
            warm_max_iterations=400, warm_stopping=StoppingConfig(window=20, patience=60, min_iterations=60, lag=10), temporal_weight=0
        ),
    }
    return _cold_jobs("sr2", frames, frames) + [Job(name, "sr2", frames, 0, frames, 0, chain=chain) for name, chain in chains.items()]


def sr2_budget_jobs(frames: int) -> list[Job]:
    """Frames 0..frames−1 of the 24-frame clip: cold starts, and chains with the task's output
    average (0.99) and no temporal term, at several warm budgets."""
    options: ChainOptions = {"warm_average": None, "temporal_weight": 0}
    chains = {
        "sr2 chain fixed 200": _fixed(200, **options),
        "sr2 chain fixed 250": _fixed(250, **options),
        "sr2 chain fixed 300": _fixed(300, **options),
        "sr2 chain variance cap 300 (window 20, patience 60)": ChainConfig(
            warm_max_iterations=300, warm_stopping=StoppingConfig(window=20, patience=60, min_iterations=60, lag=10), **options
        ),
        "sr2 chain variance cap 400 (window 20, patience 60)": ChainConfig(
            warm_max_iterations=400, warm_stopping=StoppingConfig(window=20, patience=60, min_iterations=60, lag=10), **options
        ),
    }
    return _cold_jobs("sr2", 24, frames) + [Job(name, "sr2", 24, 0, frames, 0, chain=chain) for name, chain in chains.items()]


def inpaint_jobs(frames: int) -> list[Job]:
    """Frames 0..frames−1 of a clip of that length: cold starts, the denoising chain's settings, the task's."""
    task = ChainConfig.for_task(get_task("inpaint"))
    chains = {
        "inpaint chain, denoising settings": ChainConfig(),
        "inpaint chain, task settings": task,
        "inpaint chain, task settings, tolerance 4e-4": replace(task, warm_stopping=replace(task.warm_stopping, converge_tolerance=4e-4)),
    }
    return _cold_jobs("inpaint", frames, frames) + [
        Job(name, "inpaint", frames, 0, frames, 0, chain=chain) for name, chain in chains.items()
    ]


def denoise_cap_jobs(caps: list[int]) -> list[Job]:
    """Per warm cap: one chain over the 48-frame clip and the second of two segments of it."""
    jobs = []
    for cap in caps:
        chain = ChainConfig(warm_max_iterations=cap)
        jobs.append(Job(f"denoise chain 0-47, warm cap {cap}", "denoise", 48, 0, 48, 0, chain=chain))
        jobs.append(Job(f"denoise segment 24-47 (overlap 3), warm cap {cap}", "denoise", 48, 21, 48, 24, 3, chain=chain))
    return jobs


def seam_jobs(task: str, clip_frames: int, seam: int, kept: int, chain: ChainConfig, variants: list[tuple[int, int]]) -> list[Job]:
    """One chain from frame 0, and per (overlap, cold iterations) a segment keeping seam..seam+kept−1."""
    stop = seam + kept
    jobs = [Job(f"{task} chain from 0", task, clip_frames, 0, stop, seam, chain=chain)]
    for overlap, cold in variants:
        name = f"{task} segment, overlap {overlap}, warm-up cold start {cold}"
        jobs.append(Job(name, task, clip_frames, seam - overlap, stop, seam, overlap, chain=replace(chain, warmup_cold_iterations=cold)))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", nargs="+", default=["sr2", "seam-denoise", "seam-sr2"])
    parser.add_argument("--frames", type=int, default=8, help="frames of the sr2 and inpaint groups")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    parser.add_argument("--sr-chain", type=int, default=300, help="fixed warm budget of the seam-sr2 chain")
    parser.add_argument("--caps", type=int, nargs="+", default=[100, 75, 60], help="warm caps of the denoise-cap group")
    parser.add_argument("--traces", action="store_true")
    parser.add_argument("--cold-cap", type=int, help="lower every cold start's iteration cap (quick checks)")
    args = parser.parse_args()

    jobs: list[Job] = []
    if "sr2" in args.groups:
        jobs += sr2_jobs(args.frames)
    if "sr2-budget" in args.groups:
        jobs += sr2_budget_jobs(args.frames)
    if "inpaint" in args.groups:
        jobs += inpaint_jobs(args.frames)
    if "denoise-cap" in args.groups:
        jobs += denoise_cap_jobs(args.caps)
    if "seam-denoise" in args.groups:
        variants = [(2, 300), (2, 150), (3, 200), (4, 150), (4, 300), (2, 600)]
        jobs += seam_jobs("denoise", 48, 24, 8, ChainConfig(), variants)
    if "seam-sr2" in args.groups:
        jobs += seam_jobs("sr2", 24, 12, 6, _fixed(args.sr_chain, temporal_weight=0), [(2, 300), (2, 600), (3, 300)])
    jobs.sort(key=lambda job: -(job.stop - job.first) * (3 if get_task(job.task).kind == "sr" else 1))  # longest first
    print(f"# {len(jobs)} jobs on {args.device} in {args.processes} processes, {args.size}×{args.size} frames", flush=True)

    results = []
    with ProcessPoolExecutor(args.processes, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_job, job, args.size, args.device, args.threads, args.cold_cap) for job in jobs]
        for future in as_completed(futures):
            job, rows, seconds = future.result()
            results.append((job, rows))
            kept = [r for r in rows if r.index >= job.keep_from]
            frames = " ".join(f"{r.index}:{r.psnr:.2f}/{r.iterations}{'c' if r.cold else ''}" for r in rows)
            print(
                f"| {job.name} | {statistics.fmean(r.psnr for r in kept):.2f} | {sum(r.iterations for r in rows)} | {seconds:.0f} s | {frames} |",
                flush=True,
            )
    if args.traces:
        print("\n# PSNR at iterations " + ", ".join(map(str, TRACE_POINTS)))
        for job, rows in results:
            for r in rows:
                print(f"{job.name} | frame {r.index} | " + " ".join(f"{k}:{v:.2f}" for k, v in r.trace.items()))


if __name__ == "__main__":
    main()
