"""Tiling: an image of any size restored as overlapping tiles and blended back with no seam.

A Deep Image Prior fit holds the whole image's activations (and, for the variance criterion, a
window of outputs) in memory, so a large image may not fit a device. It is then cut into a grid
of overlapping tiles of one shape (`tile_grid`), each tile restored as its own DIP problem with
the task's operator restricted to it (`restore_tiles`, several tiles at a time through
`dip_engine.batch.fit_batch`), and the restored tiles are blended with a weight that falls
smoothly to near zero over the overlaps (`blend_weight`, `Blender`): where two tiles meet, the
result passes gradually from one to the other, so no seam shows. `restore(..., tiling=...)` and
`restore_video(..., tiling=...)` take a `TilingConfig`; `choose_tiling` picks the largest tile
and batch that fit a memory budget from the memory model (`dip_engine.memory`).

What tiling costs:

- a tile sees less context. The network's prior works on what a tile holds: structure larger
  than a tile is restored piecewise, and an inpainting hole is filled from the known pixels the
  tile sees around it. A hole larger than the tile (or cut by the tile's border) is filled from
  one side only or not at all, so the automatic choice never goes below `min_tile_for`, a tile
  wider than the mask's widest hole plus the overlaps and a margin of known pixels, and refuses
  an image whose smallest such tile does not fit the budget;
- each tile pays its own iterations: a tile stops by its own criterion, with its own noise
  estimate (a task whose stopping rule is "auto" may judge one tile noisy and the next clean),
  and a tile needs about as many iterations as a whole image, so the total grows with the number
  of tiles;
- the overlap is computed twice (four times where four tiles meet): a grid of tiles of side t
  stepping t − overlap fits about (t / (t − overlap))² times the image's pixels;
- the tiles of one image are independent problems: their networks, codes and noise streams
  differ (tile k is seeded with seed + k), so neighbouring tiles restore their shared pixels
  slightly differently; the blend hides that as a smooth transition, not as a seam.

A tiled video (`restore_video(..., tiling=...)`) runs one warm-started chain per tile position,
each judging scene cuts on its own crop; the tiles of a frame are fitted `batch` at a time
through `fit_batch`, the warm ones each from its tile's state of the previous frame.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from dip_engine.batch import fit_batch
from dip_engine.config import NetConfig, Performance, RestoreConfig, StoppingConfig
from dip_engine.fit import Problem
from dip_engine.masks import hole_radius
from dip_engine.memory import estimate_fit_bytes
from dip_engine.restore import check_image, prepare, resolve_device
from dip_engine.result import History, Restoration
from dip_engine.step import CompiledSteps
from dip_engine.tasks import Task, get_task, inpainting_config

# The smallest tile of a task without holes to see around: large enough for a few levels of the
# network to see structure, small enough to fit almost any budget.
MIN_TILE = 64
# Known pixels an inpainting tile must see on each side of the mask's widest hole.
HOLE_CONTEXT = 16

Estimate = Callable[..., int]  # dip_engine.memory.estimate_fit_bytes or a stand-in with its signature


@dataclass(frozen=True)
class Tile:
    """A tile in the observation's pixel grid: rows top … top + height − 1, columns left … left + width − 1."""

    top: int
    left: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.top < 0 or self.left < 0 or self.height < 1 or self.width < 1:
            raise ValueError(f"a tile needs top, left >= 0 and height, width >= 1, got {self}")

    def scaled(self, scale: int) -> Tile:
        """The same tile in the output grid of a restoration `scale` times larger (super-resolution)."""
        return Tile(self.top * scale, self.left * scale, self.height * scale, self.width * scale)

    def crop(self, image: Tensor) -> Tensor:
        """The tile's pixels of `image` (…×H×W): a view."""
        return image[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def inside(self, height: int, width: int) -> bool:
        """Whether the tile lies within an image of `height` × `width`."""
        return self.top + self.height <= height and self.left + self.width <= width


@dataclass(frozen=True)
class TileLayout:
    """How one observation is cut (`TilingConfig.layout`): `tile` None = whole, in one fit."""

    tile: int | None  # tile side in observation pixels
    batch: int  # tiles fitted at once (1 when whole)
    tiles: int  # tiles in the grid (1 when whole)
    peak_bytes: int  # the memory model's peak of one fit: the whole image, or one batch of tiles


class TilingRefused(ValueError):
    """An observation `TilingConfig.layout` cannot cut within its budget. `reason`:
    "whole_too_large" (a tile covering the image was given), "tile_too_small" (a given tile is
    smaller than the task needs) or "nothing_fits" (not even one of the smallest tiles fits)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def gib(size: int) -> str:
    """`size` bytes in GiB, one decimal."""
    return f"{size / 2**30:.1f} GiB"


@dataclass(frozen=True)
class TilingConfig:
    """How `restore` and `restore_video` cut an image into tiles.

    tile: the tile side in observation pixels; None = automatic, from `memory_budget` (or the
    whole image untiled when that is None too). A tile at least as large as the image is the
    whole image, restored untiled. overlap: observation pixels shared by neighbouring tiles,
    over which they are blended. batch: tiles fitted at once through `fit_batch`; None = all of
    them with a given tile, as many as fit `memory_budget` with an automatic one (a given batch
    then caps that). memory_budget: bytes one fit (one batch of tiles) may use: the automatic
    choice (`choose_tiling`) takes the largest tile that fits it; a given tile is fitted as many
    at once as fit it; None = no limit. See `layout`.
    """

    tile: int | None = None
    overlap: int = 32
    batch: int | None = None
    memory_budget: int | None = None

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile < 1:
            raise ValueError(f"tile={self.tile} must be >= 1 (or None: automatic)")
        if self.overlap < 0:
            raise ValueError(f"overlap={self.overlap} must be >= 0")
        if self.tile is not None and self.overlap >= self.tile:
            raise ValueError(f"overlap={self.overlap} must be smaller than tile={self.tile}")
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch={self.batch} must be >= 1 (or None)")
        if self.memory_budget is not None and self.memory_budget < 1:
            raise ValueError(f"memory_budget={self.memory_budget} must be >= 1 byte (or None)")

    def layout(
        self,
        task: Task,
        config: RestoreConfig,
        shape: tuple[int, int, int],
        *,
        scale: int,
        mask: Tensor | None,
        device_type: str,
        strict: bool = False,
    ) -> TileLayout:
        """How an observation of `shape` (C, H, W) restored with `config` is cut, and the memory
        model's peak for one fit of it (`dip_engine.memory`, at `config.fit.performance`).

        A given tile at least as large as the image, or no tile and no budget, is the whole image.
        With a budget, the whole image must fit it, a given tile is fitted as many at once as fit
        (at most `batch`), and an automatic tile is the largest that fits (`choose_tiling`).
        Raises TilingRefused when the whole image or a given tile exceeds the budget, when not even
        the smallest tile fits, and, with `strict`, when a given tile is smaller than the task needs
        (`min_tile_for`: an automatic tile never is; without `strict` a given tile only has to see
        a known pixel of the mask, checked when it is restored).
        """
        channels, height, width = shape
        in_channels = code_channels(config.net, task.kind, channels)
        budget = self.memory_budget

        def peak(tile_height: int, tile_width: int, problems: int) -> int:
            return estimate_fit_bytes(
                config.net,
                (tile_height * scale, tile_width * scale),
                in_channels,
                channels,
                problems=problems,
                performance=config.fit.performance,
                device_type=device_type,
                stopping=config.fit.stopping,
            )

        whole = TileLayout(None, 1, 1, peak(height, width, 1))
        if self.tile is not None and self.tile >= max(height, width):
            if budget is not None and whole.peak_bytes > budget:
                raise TilingRefused(
                    "whole_too_large",
                    f"the whole {height}x{width} image needs about {gib(whole.peak_bytes)}, more than the {gib(budget)} budget",
                )
            return whole
        smallest = min_tile_for(task.kind, mask, self.overlap)
        if self.tile is not None:
            if strict and self.tile < smallest:
                raise TilingRefused(
                    "tile_too_small",
                    f"tiles of {self.tile} px are smaller than the {smallest} px this input needs (a tile must see known "
                    "pixels around the mask's holes)",
                )
            tile, tiles = self.tile, len(tile_grid(height, width, self.tile, self.overlap))
            tile_height, tile_width = min(tile, height), min(tile, width)
            limit = min(tiles, self.batch or tiles)
            batch = limit if budget is None else _most(lambda k: peak(tile_height, tile_width, k) <= budget, limit)
            if batch == 0:
                raise TilingRefused(
                    "nothing_fits",
                    f"one tile of {tile} px needs about {gib(peak(tile_height, tile_width, 1))}, more than the {gib(budget or 0)} budget",
                )
            return TileLayout(tile, batch, tiles, peak(tile_height, tile_width, batch))
        if budget is None:
            return whole
        chosen = choose_tiling(
            config.net,
            height,
            width,
            channels,
            scale=scale,
            performance=config.fit.performance,
            device_type=device_type,
            budget=budget,
            overlap=self.overlap,
            min_tile=smallest,
            in_channels=in_channels,
            stopping=config.fit.stopping,
        )
        if chosen is None:
            floor = smallest_tile(config.net, scale, self.overlap, smallest)
            raise TilingRefused(
                "nothing_fits",
                f"a {height}x{width} image cannot fit in {budget} bytes even in tiles of {floor} px (a budget of {gib(budget)})",
            )
        tile, batch = chosen
        if tile >= max(height, width):
            return whole
        batch = batch if self.batch is None else min(batch, self.batch)
        tile_height, tile_width = min(tile, height), min(tile, width)
        return TileLayout(tile, batch, len(tile_grid(height, width, tile, self.overlap)), peak(tile_height, tile_width, batch))

    def restore_tiled(
        self,
        x0: Tensor,
        task: Task,
        *,
        mask: Tensor | None,
        scale: int | None,
        flash: Tensor | None,
        config: RestoreConfig | None,
        seed: int,
        device: torch.device | str | None,
        reference: Tensor | None,
        steps: CompiledSteps | None,
    ) -> Restoration | None:
        """`restore`'s tiled path (see `dip_engine.restore.TiledRestore`): the blended restoration
        of x0's tiles, or None when x0 is restored whole (`layout`)."""
        started = time.perf_counter()
        spec, problem = prepare(x0, task, mask=mask, scale=scale, flash=flash)
        chosen = config if config is not None else spec.config_for(scale=scale, mask=mask)
        factor = problem.size[0] // x0.shape[-2]
        target = resolve_device(device)
        cut = self.layout(spec, chosen, (x0.shape[0], x0.shape[1], x0.shape[2]), scale=factor, mask=mask, device_type=target.type)
        if cut.tile is None:
            return None
        grid = tile_grid(x0.shape[-2], x0.shape[-1], cut.tile, self.overlap)
        if reference is not None:
            check_reference(reference, x0.shape[0], problem.size)
        results = restore_tiles(
            x0, spec, grid, mask=mask, scale=scale, flash=flash, config=chosen, seed=seed, device=target, steps=steps, batch=cut.batch
        )
        blended = blend_tiles(results, grid, factor, problem.size, self.overlap)
        return summarise(results, blended.to(x0.device), spec.name, time.perf_counter() - started)


def _axis_starts(length: int, side: int, overlap: int) -> list[int]:
    """Where the tiles of `side` start along an axis of `length`, stepping side − overlap, the last at the far edge."""
    if side >= length:
        return [0]
    if overlap >= side:
        raise ValueError(f"overlap={overlap} must be smaller than the tile side {side}")
    return [*range(0, length - side, side - overlap), length - side]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """The tiles covering a `height` × `width` image, in row-major order.

    Every tile has side min(tile, side of the image) along each axis, so all share one shape
    (`fit_batch` fits problems of one shape); they step tile − overlap, and the last row and
    column are aligned to the far edges (overlapping their neighbours by at least `overlap`).
    One tile when the image fits in one."""
    if height < 1 or width < 1:
        raise ValueError(f"an image of {height}x{width} pixels has no tiles")
    if tile < 1 or overlap < 0:
        raise ValueError(f"tiling needs tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    tile_h, tile_w = min(tile, height), min(tile, width)
    rows, columns = _axis_starts(height, tile_h, overlap), _axis_starts(width, tile_w, overlap)
    return [Tile(top, left, tile_h, tile_w) for top in rows for left in columns]


def _ramp(length: int, overlap: int, rising: bool, falling: bool) -> Tensor:
    """Weights along one side of a tile: a raised cosine over `overlap` pixels at each end that has a neighbour."""
    weight = torch.ones(length, dtype=torch.float64)
    if overlap <= 0:
        return weight
    positions = torch.arange(min(overlap, length), dtype=torch.float64)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (positions + 0.5) / overlap)  # in (0, 1): never exactly 0
    if rising:
        weight[: len(ramp)] = torch.minimum(weight[: len(ramp)], ramp)
    if falling:
        weight[length - len(ramp) :] = torch.minimum(weight[length - len(ramp) :], ramp.flip(0))
    return weight


def blend_weight(tile: Tile, height: int, width: int, overlap: int) -> Tensor:
    """The tile's blending weight, H_t × W_t float32: a raised cosine rising over the first and
    falling over the last `overlap` pixels on each side where the tile has a neighbour (it does
    not touch the image's border there), 1 elsewhere. Two tiles overlapping by exactly `overlap`
    have weights summing to 1 across the overlap, so the blend passes smoothly from one to the
    other. No weight is exactly 0, so every pixel a tile covers gets a defined value.
    `height`, `width`: the image's size, in the same grid as the tile (the output grid for
    super-resolution, with the overlap scaled alike)."""
    if not tile.inside(height, width):
        raise ValueError(f"{tile} lies outside the {height}x{width} image")
    rows = _ramp(tile.height, overlap, tile.top > 0, tile.top + tile.height < height)
    columns = _ramp(tile.width, overlap, tile.left > 0, tile.left + tile.width < width)
    return (rows[:, None] * columns[None, :]).float()


class Blender:
    """Blends restored tiles into one image: Σ w·x / Σ w over the tiles covering each pixel,
    accumulated in float64 on the CPU, so the blend of identical tiles is exactly their image."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        """An empty C × H × W image in the output grid."""
        self.channels, self.height, self.width = channels, height, width
        self._sum = torch.zeros(channels, height, width, dtype=torch.float64)
        self._weight = torch.zeros(height, width, dtype=torch.float64)

    def add(self, image: Tensor, tile: Tile, weight: Tensor) -> None:
        """Add a restored tile `image` (C × h × w) placed at `tile` (already in the output grid),
        weighted by `weight` (h × w, e.g. `blend_weight`)."""
        if not tile.inside(self.height, self.width):
            raise ValueError(f"{tile} lies outside the {self.height}x{self.width} image")
        if tuple(image.shape) != (self.channels, tile.height, tile.width) or tuple(weight.shape) != (tile.height, tile.width):
            raise ValueError(
                f"a tile image {tuple(image.shape)} with weight {tuple(weight.shape)} does not fit {tile} "
                f"of a {self.channels}-channel image"
            )
        w = weight.detach().to("cpu", torch.float64)
        tile.crop(self._sum).add_(image.detach().to("cpu", torch.float64) * w)
        tile.crop(self._weight).add_(w)

    def result(self) -> Tensor:
        """The blended image, C × H × W float32. ValueError when a pixel has no tile (zero total weight)."""
        uncovered = (self._weight <= 0).nonzero()
        if len(uncovered):
            y, x = uncovered[0].tolist()
            raise ValueError(f"{len(uncovered)} pixels are covered by no tile (the first at row {y}, column {x})")
        return (self._sum / self._weight).float()


def blend_tiles(results: Sequence[Restoration], tiles: Sequence[Tile], scale: int, size: tuple[int, int], overlap: int) -> Tensor:
    """The image (C × H × W in the output grid of `size`) blended from restored `tiles` (in the
    observation's grid; their images in the output grid, `scale` times larger)."""
    height, width = size
    blender = Blender(results[0].image.shape[0], height, width)
    for result, tile in zip(results, tiles):
        placed = tile.scaled(scale)
        blender.add(result.image, placed, blend_weight(placed, height, width, overlap * scale))
    return blender.result()


def summarise(results: Sequence[Restoration], image: Tensor, task: str, seconds: float) -> Restoration:
    """One record of a tiled restoration: its blended `image`, the iterations summed over the
    tiles, their most common stop reason, the latest iteration any tile kept, `seconds` as
    given (the caller's wall time), `tiles` their count and no state. Per-tile traces do not add
    up to an image's, so the history's traces are empty; it holds the tiles' most common stopping
    rule, their mean estimated noise σ (NaN when none estimated it), whether any put the known
    pixels back, and every tile's events with a "tile" entry (its index)."""
    rules = Counter(result.history.rule for result in results)
    sigmas = [result.history.noise_sigma for result in results if math.isfinite(result.history.noise_sigma)]
    history = History(
        rule=rules.most_common(1)[0][0],
        noise_sigma=sum(sigmas) / len(sigmas) if sigmas else math.nan,
        keep_known=any(result.history.keep_known for result in results),
        events=[{**event, "tile": k} for k, result in enumerate(results) for event in result.history.events],
    )
    return Restoration(
        image=image,
        iterations=sum(result.iterations for result in results),
        stop_reason=Counter(result.stop_reason for result in results).most_common(1)[0][0],
        history=history,
        seconds=seconds,
        kept_iteration=max(result.kept_iteration for result in results),
        task=task,
        tiles=len(results),
    )


def code_channels(net_config: NetConfig, task_kind: str, channels: int) -> int:
    """Channels of the network's input code: the guide image's (flash), 2 for a meshgrid, else `input_depth`."""
    if task_kind == "flash":
        return channels
    return 2 if net_config.input_kind == "meshgrid" else net_config.input_depth


def tile_step(net_config: NetConfig, scale: int) -> int:
    """The granularity of tile sides: the smallest side whose output (× scale) is a multiple of the network's size multiple."""
    multiple = net_config.size_multiple
    return multiple // math.gcd(multiple, scale)


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def smallest_tile(net_config: NetConfig, scale: int, overlap: int, min_tile: int) -> int:
    """The smallest tile `choose_tiling` considers: at least `min_tile`, and wider than its two
    overlaps by one granularity step (`tile_step`), so every tile has pixels of its own and its
    two ramps never meet; rounded up to the step."""
    step = tile_step(net_config, scale)
    return _round_up(max(min_tile, 2 * overlap + step), step)


def _most(fits: Callable[[int], bool], limit: int) -> int:
    """The largest k in 1 … limit with fits(k), assuming fits is monotone (true, then false); 0 if none."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def choose_tiling(
    net_config: NetConfig,
    height: int,
    width: int,
    channels: int,
    *,
    scale: int,
    performance: Performance,
    device_type: str,
    budget: int,
    overlap: int,
    min_tile: int = MIN_TILE,
    in_channels: int | None = None,
    stopping: StoppingConfig | None = None,
    estimate: Estimate | None = None,
) -> tuple[int, int] | None:
    """(tile, batch) for restoring a `height` × `width` observation with `channels` channels
    (output `scale` times larger) within `budget` bytes per fit.

    (max(height, width), 1) when the whole image fits in one fit. Otherwise the largest tile (a
    multiple of `tile_step`, at least `smallest_tile`, smaller than the image) whose one-tile fit
    fits, and the most tiles K of that size that fit together (at most the grid's number of
    tiles). None when not even the smallest tile fits. `in_channels`: the input code's channels
    (default: `code_channels` of a noise or meshgrid input; a flash task's guide has the image's
    channels). `stopping`: the fit's stopping configuration, passed on to the estimate when given
    (its variance window is held in memory). `estimate`: the memory model,
    `dip_engine.memory.estimate_fit_bytes` by default, called with (net_config, output (h, w),
    in_channels, out_channels, problems=K, performance=, device_type=[, stopping=]).
    """
    if estimate is None:
        estimate = estimate_fit_bytes
    code = in_channels if in_channels is not None else code_channels(net_config, "", channels)
    extra = {} if stopping is None else {"stopping": stopping}

    def fits(tile_height: int, tile_width: int, problems: int) -> bool:
        size = (tile_height * scale, tile_width * scale)
        needed = estimate(net_config, size, code, channels, problems=problems, performance=performance, device_type=device_type, **extra)
        return bool(needed <= budget)

    if fits(height, width, 1):
        return max(height, width), 1
    step = tile_step(net_config, scale)
    floor = smallest_tile(net_config, scale, overlap, min_tile)
    largest = (max(height, width) - 1) // step * step
    for tile in range(largest, floor - 1, -step):
        tile_h, tile_w = min(tile, height), min(tile, width)
        if fits(tile_h, tile_w, 1):
            tiles = len(tile_grid(height, width, tile, overlap))
            return tile, max(1, _most(partial(fits, tile_h, tile_w), tiles))
    return None


def min_tile_for(task_kind: str, mask: Tensor | None, overlap: int) -> int:
    """The smallest tile that still sees enough context for the task.

    Inpainting (with a mask): at least the mask's widest hole (2 · `hole_radius`) plus both
    overlaps plus `HOLE_CONTEXT` known pixels on each side, so a tile can hold a hole with known
    pixels around it, rounded up to the size multiple of the network the mask chooses
    (`inpainting_config`); never below `MIN_TILE`. Every other task: `MIN_TILE`."""
    if task_kind != "inpaint" or mask is None:
        return MIN_TILE
    multiple = inpainting_config(mask).net.size_multiple
    return max(MIN_TILE, _round_up(2 * hole_radius(mask) + 2 * overlap + 2 * HOLE_CONTEXT, multiple))


def check_reference(reference: Tensor, channels: int, size: tuple[int, int]) -> Tensor:
    """`reference` checked as an image of `channels` channels and the output `size` (H, W)."""
    reference = check_image("reference", reference, channels=channels)
    if reference.shape[-2:] != size:
        raise ValueError(f"reference is {tuple(reference.shape[-2:])}, expected the output size {size}")
    return reference


def _tile_problem(spec: Task, x0: Tensor, tile: Tile, mask: Tensor | None, scale: int | None, flash: Tensor | None) -> Problem:
    """The DIP problem of one tile: the task's operator restricted to the tile's crops."""
    if mask is not None and not bool((tile.crop(mask) != 0).any()):
        raise ValueError(f"{tile} has no known pixel in the mask; tiles must see known pixels (use larger tiles)")
    crop_mask = None if mask is None else tile.crop(mask).contiguous()
    crop_flash = None if flash is None else tile.crop(flash).contiguous()
    _, problem = prepare(tile.crop(x0).contiguous(), spec, mask=crop_mask, scale=scale, flash=crop_flash)
    return problem


def _groups(tiles: Sequence[Tile], batch: int) -> list[list[int]]:
    """Indices of `tiles` in groups of at most `batch` tiles of one shape, in order."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for k, tile in enumerate(tiles):
        by_shape.setdefault((tile.height, tile.width), []).append(k)
    return [indices[start : start + batch] for indices in by_shape.values() for start in range(0, len(indices), batch)]


def restore_tiles(
    x0: Tensor,
    task: str | Task,
    tiles: Sequence[Tile],
    *,
    mask: Tensor | None = None,
    scale: int | None = None,
    flash: Tensor | None = None,
    config: RestoreConfig | None = None,
    seed: int = 0,
    device: torch.device | str | None = "cpu",
    reference: Tensor | None = None,
    steps: CompiledSteps | None = None,
    batch: int | None = None,
) -> list[Restoration]:
    """Restore the given `tiles` of the whole observation x0 (C × H × W), in their order.

    Each tile is its own DIP problem with the task's operator restricted to it: denoising the
    crop, super-resolution the low-resolution crop (its output tile `scale` times larger),
    inpainting the mask's crop, flash/no-flash both images' crops. Tiles of one shape are fitted
    `batch` at a time (default: all) through `fit_batch`, each with its own early stop; tile k of
    `tiles` is seeded with seed + k, so its result does not depend on the group it was fitted in
    (up to float rounding). The configuration is the one for the WHOLE image (`Task.config_for`
    with the whole mask) unless `config` is given, so every tile runs the same network.
    reference: the whole clean image in the output grid, cropped per tile for the PSNR traces.
    Each result's image is the tile's restoration in the output grid (`tile.scaled(scale)`) on
    x0's device; its `seconds` is its batch's time. Raises ValueError for anything `restore`
    rejects, a tile outside the image, or a tile whose mask crop has no known pixel.
    """
    spec = get_task(task) if isinstance(task, str) else task
    _, whole = prepare(x0, spec, mask=mask, scale=scale, flash=flash)  # checks the images once, whole
    if not tiles:
        raise ValueError("restore_tiles needs at least one tile")
    if batch is not None and batch < 1:
        raise ValueError(f"batch={batch} must be >= 1 (or None: all tiles at once)")
    height, width = x0.shape[-2:]
    for tile in tiles:
        if not tile.inside(height, width):
            raise ValueError(f"{tile} lies outside the {height}x{width} image")
    factor = whole.size[0] // height
    if reference is not None:
        reference = check_reference(reference, x0.shape[0], whole.size)
    chosen = config if config is not None else spec.config_for(scale=scale, mask=mask)
    target = resolve_device(device)
    results: list[Restoration | None] = [None] * len(tiles)
    for group in _groups(tiles, batch or len(tiles)):
        problems = [_tile_problem(spec, x0, tiles[k], mask, scale, flash) for k in group]
        references = (
            None if reference is None else [tiles[k].scaled(factor).crop(reference).unsqueeze(0).float().contiguous() for k in group]
        )
        fitted = fit_batch(
            problems, chosen.net, chosen.fit, seeds=[seed + k for k in group], device=target, references=references, steps=steps
        )
        for k, result in zip(group, fitted):
            result.image = result.image.to(x0.device)
            result.task = spec.name
            results[k] = result
    return [result for result in results if result is not None]
