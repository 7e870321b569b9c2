"""Tiling large images: quality against the whole-image fit, memory as images grow, throughput. Prints tables.

    python benchmarks/tiling.py                                  # every part with the defaults below
    python benchmarks/tiling.py --parts quality --size 512 --iterations 300
    python benchmarks/tiling.py --parts memory --memory-sizes 1024 2048 4096x3072
    python benchmarks/tiling.py --parts throughput --workers-image 2048

(a) quality: crops of three photographs (astronaut, hubble_deep_field, retina), each degraded with a
    fixed seed for denoising (σ = 25), ×2 super-resolution (Lanczos decimation) and block inpainting,
    restored whole and in tiles (`restore(..., tiling=TilingConfig(tile, overlap))`) with the same
    preset configuration and iteration cap. Columns: PSNR of the input, whole, tiled, tiled − whole,
    and the seam check: PSNR of the tiled output over the pixels within 4 px of an interior tile border
    minus its PSNR over the rest (the same difference for the whole output, as the control).
(b) memory: a noisy photograph scaled to each size (the last one written as a 16-bit TIFF) denoised by
    `pipeline run --no-ray` with the default memory budget and a small iteration cap, in a fresh
    process each: its peak resident memory, whether and how it was tiled, and the wall time.
(c) throughput: the tiles of one image restored K at a time through `fit_batch` and one at a time,
    as seconds per megapixel-iteration; and one large image through `pipeline run` on 1 and on 2
    workers (one CPU thread each, a local Ray), as wall time.

Both sides run the pipeline's speed settings for this device (`performance_for`). Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from skimage import data

from dip_engine import Denoising, Inpainting, SuperResolution, block_mask, get_task, performance_for, psnr, restore
from dip_engine.tasks import with_max_iterations, with_performance
from dip_engine.tiling import TilingConfig, restore_tiles, tile_grid

PHOTOS = ("astronaut", "hubble_deep_field", "retina")
TASKS = ("denoise", "sr2", "inpaint")
REPO = Path(__file__).resolve().parents[1]


def photo(name: str, size: int) -> torch.Tensor:
    """A centred size×size crop of a bundled photograph (scaled up first when it is smaller), float C×H×W."""
    pixels = torch.from_numpy(getattr(data, name)()[..., :3].astype(np.float32) / 255).permute(2, 0, 1)
    short = min(pixels.shape[-2:])
    if short < size:
        pixels = F.interpolate(pixels[None], scale_factor=size / short, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    top, left = (pixels.shape[-2] - size) // 2, (pixels.shape[-1] - size) // 2
    return pixels[:, top : top + size, left : left + size].contiguous()


def observe(task: str, clean: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(observation, mask for inpainting, baseline image in the output grid) of `clean` for `task`."""
    rng = torch.Generator().manual_seed(seed)
    if task == "denoise":
        noisy = Denoising().degrade(clean, rng)
        return noisy, None, noisy
    if task == "sr2":
        low = SuperResolution(2).degrade(clean, rng)
        bicubic = F.interpolate(low[None], scale_factor=2, mode="bicubic", align_corners=False)[0].clamp(0, 1)
        return low, None, bicubic
    mask = block_mask(clean.shape[-2], clean.shape[-1], rng, holes=12, size=0.06)
    holed = Inpainting(mask).degrade(clean, rng)
    return holed, mask, holed


def border_mask(size: int, tile: int, overlap: int, scale: int, width: int = 4) -> torch.Tensor:
    """The output pixels within `width` of an interior tile border of the grid."""
    near = torch.zeros(size * scale, size * scale, dtype=torch.bool)
    for placed in tile_grid(size, size, tile, overlap):
        for edge in (placed.top, placed.top + placed.height):
            if 0 < edge < size:
                near[max(edge * scale - width, 0) : edge * scale + width, :] = True
        for edge in (placed.left, placed.left + placed.width):
            if 0 < edge < size:
                near[:, max(edge * scale - width, 0) : edge * scale + width] = True
    return near


def seam_db(image: torch.Tensor, clean: torch.Tensor, near: torch.Tensor) -> float:
    """PSNR over the pixels by the borders minus PSNR over the rest (negative: worse by the borders)."""
    error = (image - clean).square().mean(0)
    return float(10 * np.log10(error[~near].mean().item() / error[near].mean().item()))


def quality(size: int, tile: int, overlap: int, iterations: int, device: str) -> None:
    print(f"\n## (a) whole vs tiled: {size}² crops, tiles of {tile} px with overlap {overlap}, cap {iterations} iterations\n")
    print("| task | photograph | input dB | whole dB | tiled dB | tiled − whole | seam tiled dB | seam whole dB | whole s | tiled s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task in TASKS:
        for seed, name in enumerate(PHOTOS):
            clean = photo(name, size)
            observation, mask, baseline = observe(task, clean, seed)
            spec = get_task(task)
            config = with_max_iterations(with_performance(spec.config_for(mask=mask), performance_for(device)), iterations)
            started = time.perf_counter()
            whole = restore(observation, task, mask=mask, config=config, device=device).image
            whole_seconds = time.perf_counter() - started
            lr_tile = tile // 2 if task == "sr2" else tile
            lr_overlap = overlap // 2 if task == "sr2" else overlap
            started = time.perf_counter()
            tiling = TilingConfig(tile=lr_tile, overlap=lr_overlap)
            tiled = restore(observation, task, mask=mask, config=config, device=device, tiling=tiling).image
            tiled_seconds = time.perf_counter() - started
            near = border_mask(observation.shape[-1], lr_tile, lr_overlap, 2 if task == "sr2" else 1)
            whole_db, tiled_db = psnr(whole, clean), psnr(tiled, clean)
            print(
                f"| {task} | {name} | {psnr(baseline, clean):.2f} | {whole_db:.2f} | {tiled_db:.2f} | {tiled_db - whole_db:+.2f} | "
                f"{seam_db(tiled, clean, near):+.2f} | {seam_db(whole, clean, near):+.2f} | {whole_seconds:.0f} | {tiled_seconds:.0f} |",
                flush=True,
            )


def write_scan(path: Path, height: int, width: int) -> None:
    """A noisy (σ = 25) copy of the retina photograph at height×width: 16-bit TIFF or 8-bit PNG by suffix."""
    pixels = torch.from_numpy(data.retina().astype(np.float32) / 255).permute(2, 0, 1)
    scaled = F.interpolate(pixels[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    noisy = (scaled + 25 / 255 * torch.randn(scaled.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    samples = noisy.permute(1, 2, 0).numpy()
    if path.suffix == ".tif":
        tifffile.imwrite(path, np.round(samples * 65535).astype(np.uint16), photometric="rgb")
    else:
        import imageio.v3 as iio

        iio.imwrite(path, np.round(samples * 255).astype(np.uint8))


def peak_of_run(manifest: Path, out: Path, *options: str) -> tuple[float, float]:
    """(peak resident GiB, wall seconds) of `pipeline run` in a fresh process."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "pipeline.cli", "run", str(manifest), "--out", str(out), "-q", *options]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pipeline run failed:\n{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB → GiB; the largest child so far
    return peak, time.perf_counter() - started


def memory(sizes: list[str], iterations: int) -> None:
    print(f"\n## (b) peak memory, denoising with `pipeline run --no-ray` and the default budget, cap {iterations} iterations\n")
    print("| image | file | tiled | tile px | tiles | groups | peak RSS GiB | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for text in sizes:
        width, height = (int(side) for side in text.split("x")) if "x" in text else (int(text), int(text))
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            scan = folder / ("scan.tif" if text == sizes[-1] else "scan.png")
            write_scan(scan, height, width)
            manifest = folder / "manifest.csv"
            manifest.write_text(f"id,task,input,max_iterations\nscan,denoise,{scan},{iterations}\n")
            # Each size in its own wrapper process, so that RUSAGE_CHILDREN holds that run's peak alone.
            probe = subprocess.run(
                [sys.executable, __file__, "--peak-of", str(manifest), str(folder / "out")],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            peak, seconds = (float(value) for value in probe.stdout.split())
            line = json.loads((folder / "out" / "results.jsonl").read_text().splitlines()[-1])
            kind = "16-bit TIFF" if scan.suffix == ".tif" else "8-bit PNG"
            print(
                f"| {width}×{height} | {kind} | {'yes' if line.get('tiles') else 'no'} | {line.get('tile') or '—'} | {line.get('tiles') or 1} | "
                f"{line.get('tile_groups') or 1} | {peak:.2f} | {seconds:.0f} |",
                flush=True,
            )


def throughput(
    size: int, tile: int, overlap: int, iterations: int, batch: int, device: str, image_side: int, image_iterations: int
) -> None:
    print(f"\n## (c) throughput: the {tile}-px tiles of a {size}² denoising input, {iterations} iterations each\n")
    print("| tiles at once | tiles | seconds | s per megapixel-iteration |")
    print("|---|---|---|---|")
    clean = photo("astronaut", size)
    noisy = Denoising().degrade(clean, torch.Generator().manual_seed(0))
    config = with_max_iterations(with_performance(get_task("denoise").config, performance_for(device)), iterations)
    tiles = tile_grid(size, size, tile, overlap)
    megapixels = len(tiles) * tile * tile / 1e6
    for k in (1, batch):
        started = time.perf_counter()
        for first in range(0, len(tiles), k):
            restore_tiles(noisy, "denoise", tiles[first : first + k], config=config, device=device, batch=k)
        seconds = time.perf_counter() - started
        print(f"| {k} | {len(tiles)} | {seconds:.1f} | {seconds / (megapixels * iterations):.2f} |", flush=True)
    print(f"\none {image_side}² image through `pipeline run` (tiles of {tile} px, cap {image_iterations}), Ray workers of 1 CPU thread:\n")
    print("| workers | wall s | vs 1 worker |")
    print("|---|---|---|")
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        scan = folder / "scan.png"
        write_scan(scan, image_side, image_side)
        manifest = folder / "manifest.csv"
        manifest.write_text(f"id,task,input,max_iterations\nscan,denoise,{scan},{image_iterations}\n")
        for workers in (1, 2):
            # A fresh process each, its local Ray given exactly `workers` CPUs: one thread per worker either way.
            command = [
                sys.executable,
                __file__,
                "--workers-run",
                str(workers),
                str(manifest),
                str(folder / f"out{workers}"),
                "--tile",
                str(tile),
            ]
            walls[workers] = float(subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout.split()[-1])
            print(f"| {workers} | {walls[workers]:.0f} | {walls[workers] / walls[1]:.2f}× |", flush=True)


def timed_run(workers: int, manifest: Path, out: Path, tile: int) -> float:
    """Wall seconds of `run` on a local Ray of `workers` CPUs with that many workers."""
    import ray

    from pipeline.manifest import parse_manifest
    from pipeline.run.execute import run
    from pipeline.run.options import RunOptions

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    summary = run(parse_manifest(manifest), RunOptions(out_dir=out, workers=workers, tile=tile))
    wall = time.perf_counter() - started
    assert summary.succeeded, summary.records
    ray.shutdown()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["quality", "memory", "throughput"], choices=["quality", "memory", "throughput"])
    parser.add_argument("--size", type=int, default=512, help="side of the quality crops (output pixels)")
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=300, help="iteration cap of every fit in (a) and (c)")
    parser.add_argument(
        "--memory-sizes", nargs="+", default=["1024", "2048", "4096x3072"], help="WIDTHxHEIGHT or SIDE; the last as a 16-bit TIFF"
    )
    parser.add_argument("--memory-iterations", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4, help="tiles at once in (c)")
    parser.add_argument("--workers-image", type=int, default=2048)
    parser.add_argument("--workers-iterations", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-of", nargs=2, metavar=("MANIFEST", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--workers-run", nargs=3, metavar=("WORKERS", "MANIFEST", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers_run:
        print(timed_run(int(args.workers_run[0]), Path(args.workers_run[1]), Path(args.workers_run[2]), args.tile))
        return
    if args.peak_of:
        peak, seconds = peak_of_run(Path(args.peak_of[0]), Path(args.peak_of[1]), "--no-ray")
        print(peak, seconds)
        return
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device}")
    if "quality" in args.parts:
        quality(args.size, args.tile, args.overlap, args.iterations, args.device)
    if "memory" in args.parts:
        memory(args.memory_sizes, args.memory_iterations)
    if "throughput" in args.parts:
        throughput(
            args.size, args.tile, args.overlap, args.iterations, args.batch, args.device, args.workers_image, args.workers_iterations
        )


if __name__ == "__main__":
    main()
