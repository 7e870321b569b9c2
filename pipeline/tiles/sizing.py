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
from dip_engine.tasks import with_performance
from dip_engine.tiling import TilingConfig, TilingRefused
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


ADVICE = {  # what the user can do, by `TilingRefused.reason`
    "whole_too_large": "give a smaller --tile or leave it automatic",
    "tile_too_small": "give a larger --tile or leave it automatic",
    "nothing_fits": "give the workers more memory (--memory-per-worker) or run fewer workers",
}


def size_row(row: ManifestRow, request: SizingRequest, shapes: dict[Path, Shape] | None = None) -> Sizing:
    """How `row` (an image row) fits a worker (see the module docstring). `shapes` caches probed
    headers by path across rows. Raises TooLarge naming the row when nothing fits."""
    shape = _probe(row.input, shapes)
    task = dip_engine.get_task(row.task)
    scale = (row.scale or 1) if task.kind == "sr" else 1
    mask = read_mask(row.mask) if task.kind == "inpaint" and row.mask is not None else None
    config = with_performance(task.config_for(scale=row.scale, mask=mask), dip_engine.performance_for(request.device_type))
    tiling = TilingConfig(tile=request.tile, overlap=request.overlap, batch=request.batch, memory_budget=request.budget)
    try:
        layout = tiling.layout(task, config, shape, scale=scale, mask=mask, device_type=request.device_type, strict=True)
    except TilingRefused as error:
        raise TooLarge(f"row {row.row_number} (id {row.id}): {error}; {ADVICE[error.reason]}") from None
    return Sizing(shape, scale, layout.tile, layout.batch, layout.peak_bytes, row.max_iterations or config.fit.max_iterations)


def _probe(path: Path, shapes: dict[Path, Shape] | None) -> Shape:
    if shapes is None:
        return probe_image(path)
    if path not in shapes:
        shapes[path] = probe_image(path)
    return shapes[path]
