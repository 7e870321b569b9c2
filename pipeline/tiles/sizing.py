"""How an image row fits a worker's memory: whole, in tiles of some size and batch, or not at all.

The decision is made on the driver from the image's header alone (`probe_image`) and the memory
model of the engine (`dip_engine.memory`), for the device the workers run on and their memory
budget (`pipeline.run.memory_budget`). Inpainting rows also read their mask, whose holes set the
smallest tile that still sees known pixels around them (`dip_engine.tiling.min_tile_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dip_engine
from dip_engine.memory import estimate_fit_bytes
from dip_engine.tiling import choose_tiling, code_channels, min_tile_for, tile_grid
from pipeline.io import probe_image
from pipeline.manifest import ManifestRow
from pipeline.work.common import read_mask

Shape = tuple[int, int, int]  # C×H×W


@dataclass(frozen=True)
class Sizing:
    """What a worker does with an image row: `tile` None = the whole image in one fit."""

    shape: Shape  # of the input (the observation)
    scale: int  # output pixels per input pixel
    tile: int | None  # tile side in input pixels
    batch: int  # tiles fitted at once
    peak_bytes: int  # the memory model's peak for one unit (a whole fit, or one batch of tiles)
    iterations: int  # the cap of one fit (per tile when tiled)

    @property
    def tiled(self) -> bool:
        return self.tile is not None


@dataclass(frozen=True)
class SizingRequest:
    """What the rows are sized for: the workers' device and memory, and the --tile options."""

    device_type: str  # "cuda" or "cpu"
    budget: int  # bytes a worker may use for one unit
    tile: int | None = None  # --tile SIZE; None = automatic
    overlap: int = 32  # --tile-overlap
    batch: int | None = None  # --tile-batch: at most this many tiles in one unit


class TooLarge(ValueError):
    """A row that cannot fit a worker's memory even in the smallest tiles; the message names the row."""


def size_row(row: ManifestRow, request: SizingRequest, shapes: dict[Path, Shape] | None = None) -> Sizing:
    """How `row` (an image row) fits a worker (see the module docstring). `shapes` caches probed
    headers by path across rows. Raises TooLarge naming the row when nothing fits."""
    channels, height, width = shape = _probe(row.input, shapes)
    task = dip_engine.get_task(row.task)
    scale = (row.scale or 1) if task.kind == "sr" else 1
    mask = read_mask(row.mask) if task.kind == "inpaint" and row.mask is not None else None
    config = task.config_for(scale=row.scale, mask=mask)
    performance = dip_engine.performance_for(request.device_type)
    code = code_channels(config.net, task.kind, channels)
    cap = row.max_iterations or config.fit.max_iterations

    def estimate(tile_height: int, tile_width: int, batch: int = 1) -> int:
        return estimate_fit_bytes(
            config.net,
            (tile_height * scale, tile_width * scale),
            code,
            channels,
            problems=batch,
            performance=performance,
            device_type=request.device_type,
            stopping=config.fit.stopping,
        )

    where = f"row {row.row_number} (id {row.id})"
    whole = estimate(height, width)
    if request.tile is None or request.tile >= max(height, width):
        if whole <= request.budget:
            return Sizing(shape, scale, None, 1, whole, cap)
        if request.tile is not None:
            raise TooLarge(
                f"{where}: the whole {height}x{width} image (--tile {request.tile}) needs about {_gib(whole)}, more than "
                f"the {_gib(request.budget)} a worker has; give a smaller --tile or leave it automatic"
            )
    smallest = min_tile_for(task.kind, mask, request.overlap)
    if request.tile is not None:
        if request.tile < smallest:
            raise TooLarge(
                f"{where}: --tile {request.tile} is smaller than the {smallest} px this row needs (a tile must see "
                "known pixels around the mask's holes); give a larger --tile or leave it automatic"
            )
        tile, tiles = request.tile, len(tile_grid(height, width, request.tile, request.overlap))
        batch = max((k for k in range(1, tiles + 1) if estimate(min(tile, height), min(tile, width), k) <= request.budget), default=0)
    else:
        chosen = choose_tiling(
            config.net,
            height,
            width,
            channels,
            scale=scale,
            performance=performance,
            device_type=request.device_type,
            budget=request.budget,
            overlap=request.overlap,
            min_tile=smallest,
            in_channels=code,
            stopping=config.fit.stopping,
        )
        tile, batch = chosen if chosen is not None else (smallest, 0)
        if batch and tile >= max(height, width):
            return Sizing(shape, scale, None, 1, whole, cap)
    if batch == 0:
        raise TooLarge(
            f"{where}: a {height}x{width} image cannot be restored in the {_gib(request.budget)} a worker has, not "
            f"even in tiles of {tile} px; give the workers more memory (--memory-per-worker) or run fewer workers"
        )
    batch = min(batch, request.batch or batch)
    return Sizing(shape, scale, tile, batch, estimate(min(tile, height), min(tile, width), batch), cap)


def _probe(path: Path, shapes: dict[Path, Shape] | None) -> Shape:
    if shapes is None:
        return probe_image(path)
    if path not in shapes:
        shapes[path] = probe_image(path)
    return shapes[path]


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
