"""Video restoration: cold starts per frame vs a warm-started chain vs a chain split over workers.

    python benchmarks/video.py                              # denoise, 24 frames of 96×96
    python benchmarks/video.py --tasks denoise sr2 --frames 32 --size 128
    python benchmarks/video.py --device cuda --tasks denoise sr2   # 2 workers sharing one GPU
    python benchmarks/video.py --chain-options --frames 12 --size 64   # the chain's options, each as (b)

The clip is a slow camera pan and zoom over scikit-image's astronaut photograph
(`dip_engine.synthetic.camera_clip`), degraded with seeded σ = 25 noise (denoise) or Lanczos
decimation by 2 (sr2). On the same clip, in one run:

(a) every frame restored from a fresh network with the task's early-stopped budget
    (`dip_engine.restore`), frames spread over the workers;
(b) one warm-started chain over all frames (`dip_engine.video.restore_video`) on one worker;
(c) the chain split into 2 segments with the pipeline's segmentation (`pipeline.video.segments`:
    each segment's chain starts with a short cold fit and `--overlap` warm-up frames, the
    second's just before it, the first's its own next frames in reverse), one per worker, in
    parallel;
(d) denoising only: CBM3D frame by frame given the true σ (benchmarks/classical.py), the
    classical method a user would pick instead, on the driver.

Every variant uses the pipeline's speed settings for the device (`performance_for`: bf16
autocast and channels_last on CPUs with bf16) and the task's chain settings
(`ChainConfig.for_task`).

Each worker is a Ray actor with one CPU thread (or half of one GPU with --device cuda), standing
for one GPU of a cluster, so (b) uses one worker and (c) two. Reported per variant: total
iterations, wall seconds (the work only, actors already started), worker-seconds (the sum of the
fits' own seconds; both count the warm-up frames that (c) restores and discards), mean PSNR
against the clean frames, and the temporal figures of `dip_engine.temporal` against the clean
clip: flicker (change of the output between frames / change of the clean clip; 1 is ideal),
change error (mean |Δ output − Δ clean| between consecutive frames) and warping error (mean
|out_t − out_{t−1} warped by the clean clip's optical flow| where the flow is consistent).
Prints a markdown table; not a timed test.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ray
import torch
from classical import cbm3d
from clips import SIGMA, degrade, make_clip

from dip_engine import RestoreConfig, get_task, psnr, restore
from dip_engine.step import performance_for
from dip_engine.tasks import with_performance
from dip_engine.temporal import TemporalConsistency
from dip_engine.video import ChainConfig, restore_video
from pipeline.video.segments import segment_ranges


@dataclass
class FrameOutcome:
    index: int
    image: torch.Tensor
    iterations: int
    seconds: float
    cold: bool
    kept: bool = True  # False for a segment's warm-up frames


class BenchWorker:
    def __init__(self, device: str) -> None:
        torch.set_num_threads(1)
        self.device = device

    def _config(self, task: str) -> RestoreConfig:
        """The task's preset with the pipeline's speed settings for this device."""
        return with_performance(get_task(task).config, performance_for(self.device))

    def cold(self, task: str, frames: list[tuple[int, torch.Tensor]], seed: int) -> list[FrameOutcome]:
        outcomes = []
        for index, frame in frames:
            result = restore(frame, task, config=self._config(task), seed=seed, device=self.device)
            outcomes.append(FrameOutcome(index, result.image, result.iterations, result.seconds, True))
        return outcomes

    def chain(
        self, task: str, frames: torch.Tensor, indices: list[int], seed: int, chain: ChainConfig | None = None, warmup: int = 0
    ) -> list[FrameOutcome]:
        """Restore `frames` (frame numbers `indices`) as one chain whose first `warmup` frames
        only warm it up; those come back with `kept` False."""
        outcomes = []
        results = restore_video(iter(frames), task, config=self._config(task), chain=chain, seed=seed, device=self.device, warmup=warmup)
        for frame in results:
            r = frame.restoration
            outcome = FrameOutcome(indices[frame.index], r.image, r.iterations, r.seconds, frame.cold, frame.index >= warmup)
            outcomes.append(outcome)
        return outcomes


def summarise(
    name: str,
    outcomes: list[FrameOutcome],
    clean: torch.Tensor,
    wall: float,
    workers: int,
    warmup: Sequence[FrameOutcome] = (),
    first: int = 0,
) -> dict[str, object]:
    """One table row; `warmup` frames (a segment's overlap, restored and discarded) count as cost only."""
    outcomes = sorted(outcomes, key=lambda o: o.index)
    assert [o.index for o in outcomes] == list(range(len(clean))), f"{name}: frames missing or repeated"
    consistency = TemporalConsistency()
    for outcome in outcomes:
        consistency.add(outcome.image, clean[outcome.index])
    return {
        "variant": name,
        "first": first,  # the clip's frame that outcome 0 is
        "frames": len(outcomes),
        "workers": workers,
        "iterations": sum(o.iterations for o in [*outcomes, *warmup]),
        "cold frames": sum(o.cold for o in [*outcomes, *warmup]),
        "wall s": wall,
        "worker-s": sum(o.seconds for o in [*outcomes, *warmup]),
        "mean PSNR": statistics.fmean(psnr(o.image, clean[o.index]) for o in outcomes),
        "flicker": consistency.flicker,
        "change error": consistency.change_error,
        "warping error": consistency.warping_error,
    }


def run_task(
    task: str,
    clean: torch.Tensor,
    observed: torch.Tensor,
    workers: list,
    overlap: int,
    seed: int,
    variants: str,
    cold_frames: int,
    cold_from: int = 0,
) -> Iterator[dict]:
    """Rows (b), (c), then (a) (those named in `variants`), each as soon as it is measured.

    (a) restores frames cold_from .. cold_from + cold_frames − 1 (all by default). On part of
    the clip, a row of (b) on those same frames follows for the comparison of PSNR and flicker;
    cold starts are independent and seeded, so (a) measured in parts adds up to (a) on all."""
    count = len(clean)
    chain: list[FrameOutcome] = []
    if "b" in variants:  # one warm-started chain on one worker
        started = time.perf_counter()
        chain = ray.get(workers[0].chain.remote(task, observed, list(range(count)), seed))
        yield summarise("(b) warm-started chain", chain, clean, time.perf_counter() - started, 1)
    if "c" in variants:  # the chain in 2 segments, one per worker
        segments = segment_ranges(count, -(-count // 2), overlap)
        started = time.perf_counter()
        refs = [
            w.chain.remote(task, observed[list(s.chain_indices)], list(s.chain_indices), seed, None, s.warmup)
            for w, s in zip(workers, segments)
        ]
        parts = ray.get(refs)
        wall = time.perf_counter() - started
        kept = [o for part in parts for o in part if o.kept]
        warmup = [o for part in parts for o in part if not o.kept]
        row = summarise(f"(c) chain in {len(segments)} segments", kept, clean, wall, len(segments), warmup)
        row["note"] = "(c) per segment: " + ", ".join(
            f"{sum(o.iterations for o in part)} iterations in {sum(o.seconds for o in part):.0f} s" for part in parts
        )
        yield row
    if "d" in variants and get_task(task).kind == "denoise":
        started = time.perf_counter()
        frames = []
        for index in range(count):
            estimate, seconds = cbm3d(observed[index], SIGMA)
            frames.append(FrameOutcome(index, estimate, 0, seconds, True))
        yield summarise("(d) CBM3D per frame, true σ", frames, clean, time.perf_counter() - started, 1)
    if "a" not in variants:
        return
    # (a) cold starts, frames dealt round-robin over the workers
    first, stop = cold_from, min(count, cold_from + cold_frames)
    started = time.perf_counter()
    shares = [[(i, observed[i]) for i in range(first + k, stop, len(workers))] for k in range(len(workers))]
    parts = ray.get([w.cold.remote(task, share, seed) for w, share in zip(workers, shares)])
    wall = time.perf_counter() - started
    outcomes = [replace(o, index=o.index - first) for part in parts for o in part]  # numbered within the part
    whole = (first, stop) == (0, count)
    name = "(a) cold start per frame" if whole else f"(a) cold start per frame, frames {first}-{stop - 1} only"
    yield summarise(name, outcomes, clean[first:stop], wall, len(workers), first=first)
    if not whole and chain:
        same = [replace(o, index=o.index - first) for o in chain[first:stop]]
        yield summarise(f"(b) the same chain, frames {first}-{stop - 1} only", same, clean[first:stop], math.nan, 1, first=first)


CHAIN_OPTIONS = {  # the chain options of ChainConfig measured against its defaults (`--chain-options`)
    "defaults": ChainConfig(),
    "carry_average": ChainConfig(carry_average=True),
    "temporal_weight 0.3": ChainConfig(temporal_weight=0.3),
    "temporal_weight 1.0": ChainConfig(temporal_weight=1.0),
    "warm_average 0.99 (the cold one)": ChainConfig(warm_average=0.99),
    "temporal_weight 3.0": ChainConfig(temporal_weight=3.0),
    "temporal_weight 1.0, warm_average 0.99": ChainConfig(temporal_weight=1.0, warm_average=0.99),
}


def compare_chain_options(task: str, clean: torch.Tensor, observed: torch.Tensor, workers: list, seed: int) -> Iterator[dict]:
    """(b) once per entry of CHAIN_OPTIONS, two at a time on the two workers."""
    names = list(CHAIN_OPTIONS)
    for first in range(0, len(names), len(workers)):
        batch = names[first : first + len(workers)]
        started = time.perf_counter()
        refs = [w.chain.remote(task, observed, list(range(len(observed))), seed, CHAIN_OPTIONS[name]) for w, name in zip(workers, batch)]
        parts = ray.get(refs)
        wall = time.perf_counter() - started
        for name, outcomes in zip(batch, parts):
            yield summarise(f"(b) {name}", outcomes, clean, wall, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["denoise"])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=3, help="warm-up frames of each segment (the pipeline's --overlap)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu: one thread per worker; cuda: two workers share GPU 0")
    parser.add_argument("--variants", default="abcd", help="which of (a), (b), (c), (d) to run, e.g. bc")
    parser.add_argument("--cold-frames", type=int, default=10**9, help="(a) on N frames only")
    parser.add_argument("--cold-from", type=int, default=0, help="(a) from this frame on")
    parser.add_argument("--chain-options", action="store_true", help="instead: (b) with each option of CHAIN_OPTIONS")
    args = parser.parse_args()

    cuda = args.device.startswith("cuda")
    ray.init(num_cpus=2, num_gpus=1 if cuda else 0, include_dashboard=False, log_to_driver=False)
    actor = ray.remote(num_cpus=1, num_gpus=0.5 if cuda else 0)(BenchWorker)
    workers: list[Any] = [actor.remote(args.device) for _ in range(2)]  # actor handles, untyped as in pipeline/run/pools.py
    ray.get([w.__ray_ready__.remote() for w in workers])
    clean = make_clip(args.frames, args.size)
    where = torch.cuda.get_device_name(0) + ", 2 workers on one GPU" if cuda else f"{platform.machine()}, 2 workers × 1 thread"
    print(
        f"# {where}, torch {torch.__version__}; clip: {args.frames} frames of "
        f"{args.size}×{args.size}, pan (0.4, 1.2) px and zoom 0.996 per frame over astronaut; {performance_for(args.device)}"
    )
    print(
        "| task | variant | workers | iterations | cold frames | wall s | worker-s | mean PSNR dB | input PSNR dB | flicker | change error | warping error |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes: list[str] = []
    for task in args.tasks:
        observed = degrade(task, clean, args.seed)
        size = clean.shape[-2:]
        baseline = torch.nn.functional.interpolate(observed, size=tuple(size), mode="bicubic", align_corners=False).clamp(0, 1)
        input_psnrs = [psnr(b, c) for b, c in zip(baseline, clean)]
        if args.chain_options:
            rows = compare_chain_options(task, clean, observed, workers, args.seed)
        else:
            rows = run_task(task, clean, observed, workers, args.overlap, args.seed, args.variants, args.cold_frames, args.cold_from)
        for row in rows:
            print(
                f"| {task} | {row['variant']} | {row['workers']} | {row['iterations']} | {row['cold frames']} | "
                f"{row['wall s']:.0f} | {row['worker-s']:.0f} | {row['mean PSNR']:.2f} | {statistics.fmean(input_psnrs[row['first'] : row['first'] + row['frames']]):.2f} | "
                f"{row['flicker']:.3f} | {row['change error']:.4f} | {row['warping error']:.4f} |",
                flush=True,
            )
            if "note" in row:
                notes.append(f"{task} {row['note']}")
    for note in notes:
        print(note)
    ray.shutdown()


if __name__ == "__main__":
    main()
