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
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from published import RECIPES, run_recipe  # benchmarks/ is run as a folder of scripts
from skimage import data

from dip_engine import Denoising, Inpainting, Performance, SuperResolution, block_mask, get_task, performance_for, psnr, restore
from dip_engine.masks import hole_radius
from dip_engine.step import autocast_dtype
from dip_engine.tasks import THIN_HOLE_RADIUS, with_max_iterations, with_performance
from dip_engine.tiling import TilingConfig, restore_tiles, tile_grid

PHOTOS = ("astronaut", "hubble_deep_field", "retina")
BUDGET = (
    3 * 2**30
)  # bytes a batch of tiles may take: the pipeline's default per CPU worker (all 441 tiles of a 1024² image at once took 24 GiB)
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


def published_psnr(
    task: str, observation: torch.Tensor, mask: torch.Tensor | None, clean: torch.Tensor, cap: int
) -> tuple[float, int, float]:
    """(PSNR, iterations, seconds) of the published recipe for `task` fitted to the whole observation,
    to its published count (or `cap` when smaller and not 0): denoising; the super-resolution recipe
    (its ×4 settings) with a ×2 Lanczos forward map; the text or the large-region inpainting recipe,
    chosen by the mask's holes as `benchmarks/quality.py` does."""
    if task == "denoise":
        recipe, forward = RECIPES["denoise"], lambda x: x
    elif task == "sr2":
        recipe, forward = RECIPES["sr4"], SuperResolution(2).A
    else:
        assert mask is not None
        recipe = RECIPES["inpaint-text" if hole_radius(mask) <= THIN_HOLE_RADIUS else "inpaint-region"]
        forward = Inpainting(mask).A
    if cap and cap < recipe.iterations:
        recipe = replace(recipe, iterations=cap)
    fast = autocast_dtype(torch.device("cpu"), Performance(amp=True)) is not None
    run = run_recipe(recipe, forward, observation, clean, autocast=fast)
    return run.final, recipe.iterations, run.seconds


def compare(
    task: str, name: str, clean: torch.Tensor, seed: int, tile: int, overlap: int, iterations: int, device: str, published: bool
) -> str:
    """One table row: the preset whole, the preset in tiles, and (with `published`) the published recipe."""
    observation, mask, baseline = observe(task, clean, seed)
    spec = get_task(task)
    config = with_performance(spec.config_for(mask=mask), performance_for(device))
    if iterations:
        config = with_max_iterations(config, iterations)
    started = time.perf_counter()
    whole = restore(observation, task, mask=mask, config=config, device=device)
    whole_seconds = time.perf_counter() - started
    lr_tile = tile // 2 if task == "sr2" else tile
    lr_overlap = overlap // 2 if task == "sr2" else overlap
    started = time.perf_counter()
    tiled = restore(
        observation,
        task,
        mask=mask,
        config=config,
        device=device,
        tiling=TilingConfig(tile=lr_tile, overlap=lr_overlap, memory_budget=BUDGET),
    )
    tiled_seconds = time.perf_counter() - started
    near = border_mask(observation.shape[-1], lr_tile, lr_overlap, 2 if task == "sr2" else 1)
    whole_db, tiled_db = psnr(whole.image, clean), psnr(tiled.image, clean)
    recipe = "–", "–", "–"
    if published:
        recipe_db, recipe_iterations, recipe_seconds = published_psnr(task, observation, mask, clean, iterations)
        recipe = f"{recipe_db:.2f} ({recipe_iterations})", f"{tiled_db - recipe_db:+.2f}", f"{recipe_seconds:.0f}"
    per_tile = tiled.iterations / max(tiled.tiles, 1)
    return (
        f"| {task} | {name} {clean.shape[-1]}² | {psnr(baseline, clean):.2f} | {recipe[0]} | {whole_db:.2f} ({whole.iterations}) | "
        f"{tiled_db:.2f} ({per_tile:.0f}) | {tiled_db - whole_db:+.2f} | {recipe[1]} | "
        f"{seam_db(tiled.image, clean, near):+.2f} | {seam_db(whole.image, clean, near):+.2f} | "
        f"{recipe[2]} | {whole_seconds:.0f} | {tiled_seconds:.0f} |"
    )


def quality(
    size: int,
    tile: int,
    overlap: int,
    iterations: int,
    device: str,
    photos: list[str],
    tasks: list[str],
    published: bool,
    archive: list[int],
) -> None:
    cap = f"cap {iterations} iterations" if iterations else "each preset to its own stop, the recipe to its published count"
    print(f"\n## (a) whole vs tiled: {size}² crops, tiles of {tile} px with overlap {overlap}, {cap}\n")
    print(
        "| task | photograph | input dB | published recipe dB (it.) | whole dB (it.) | tiled dB (it. per tile) | tiled − whole |"
        " tiled − recipe | seam tiled dB | seam whole dB | recipe s | whole s | tiled s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed, name in enumerate(photos):
        for task in tasks:
            print(compare(task, name, photo(name, size), seed, tile, overlap, iterations, device, published), flush=True)
    if archive:
        side, cap_archive = archive
        print(f"\narchive size: denoising a {side}² crop of retina, every side capped at {cap_archive} iterations\n")
        print(compare("denoise", "retina", photo("retina", side), 0, tile, overlap, cap_archive, device, published), flush=True)


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
    parser.add_argument("--iterations", type=int, default=300, help="iteration cap of every fit in (a) and (c); 0 in (a): no cap")
    parser.add_argument("--photos", nargs="*", default=list(PHOTOS), choices=PHOTOS, help="none: only the --archive row")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--no-published", action="store_true", help="(a) without the published recipe's column")
    parser.add_argument(
        "--archive", nargs=2, type=int, default=[], metavar=("SIDE", "CAP"), help="(a): add a denoising row at SIDE², capped"
    )
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
        quality(
            args.size, args.tile, args.overlap, args.iterations, args.device, args.photos, args.tasks, not args.no_published, args.archive
        )
    if "memory" in args.parts:
        memory(args.memory_sizes, args.memory_iterations)
    if "throughput" in args.parts:
        throughput(
            args.size, args.tile, args.overlap, args.iterations, args.batch, args.device, args.workers_image, args.workers_iterations
        )


if __name__ == "__main__":
    main()
