"""Tiling (dip_engine.tiling): the grid, the seamless blend, every task restored in tiles, the
automatic choice of tile and batch, and tiled video chains.

The restorations use a tiny network and fixed iteration counts on real photographs with seeded
degradations, so they are quick and deterministic; the figures they assert are gains over the
input (or over bicubic interpolation), not the presets' full quality.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from dip_engine import (
    ChainConfig,
    Denoising,
    FitConfig,
    Inpainting,
    NetConfig,
    Performance,
    RestoreConfig,
    StoppingConfig,
    SuperResolution,
    block_mask,
    get_task,
    psnr,
    restore,
    restore_video,
    synthesize_flash_pair,
)
from dip_engine.synthetic import camera_clip
from dip_engine.tiling import (
    MIN_TILE,
    Blender,
    Tile,
    TilingConfig,
    blend_tiles,
    blend_weight,
    choose_tiling,
    min_tile_for,
    restore_tiles,
    tile_grid,
)
from tests.conftest import photo

TINY = NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2))
TILING = TilingConfig(tile=48, overlap=16)
# Super-resolution's tiles: the 8-channel network needs far more iterations to pass bicubic interpolation.
SR_NET = NetConfig(channels_down=(16, 16), channels_up=(16, 16), channels_skip=(4, 4))


def _config(task: str, iterations: int, mask: torch.Tensor | None = None, scale: int | None = None) -> RestoreConfig:
    """The task's preset for this input with the tiny network and a fixed number of float32 iterations."""
    preset = get_task(task).config_for(scale=scale, mask=mask)
    fit = replace(preset.fit, max_iterations=iterations, stopping=StoppingConfig(kind="fixed"), performance=Performance())
    return RestoreConfig(net=replace(TINY, input_kind=preset.net.input_kind, input_depth=preset.net.input_depth), fit=fit)


def _noisy(clean: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return Denoising().degrade(clean, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"),
    [(96, 96, 48, 16), (100, 37, 48, 16), (50, 130, 32, 8), (40, 40, 64, 16), (97, 200, 48, 0), (64, 64, 64, 8)],
)
def test_the_grid_covers_the_image_with_tiles_of_one_shape(height: int, width: int, tile: int, overlap: int) -> None:
    grid = tile_grid(height, width, tile, overlap)
    covered = torch.zeros(height, width, dtype=torch.int32)
    for placed in grid:
        placed.crop(covered).add_(1)
    assert (covered >= 1).all()
    assert {(t.height, t.width) for t in grid} == {(min(tile, height), min(tile, width))}
    assert max(t.top + t.height for t in grid) == height and max(t.left + t.width for t in grid) == width
    assert min(t.top for t in grid) == 0 and min(t.left for t in grid) == 0
    assert grid == sorted(grid, key=lambda t: (t.top, t.left))  # row-major
    for axis in ("top", "left"):
        starts = sorted({getattr(t, axis) for t in grid})
        side = grid[0].height if axis == "top" else grid[0].width
        assert all(b - a <= side - overlap for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap
    if tile >= max(height, width):
        assert grid == [Tile(0, 0, height, width)]


def test_the_blend_weight_ramps_only_towards_neighbours() -> None:
    grid = tile_grid(96, 96, 48, 16)
    corner, middle = grid[0], grid[4]
    w = blend_weight(corner, 96, 96, 16)
    assert w.dtype == torch.float32 and tuple(w.shape) == (48, 48)
    assert (w > 0).all() and (w <= 1).all()
    assert (w[:32, :32] == 1).all()  # the image's borders are not ramped, nor the inside
    assert w[0, 47] < 0.05 and w[47, 0] < 0.05  # the sides with a neighbour are
    inner = blend_weight(middle, 96, 96, 16)
    assert (inner[16:32, 16:32] == 1).all() and inner[0, 24] < 0.05 and inner[24, 47] < 0.05
    # Two tiles overlapping by exactly the overlap: their ramps add up to 1 across it.
    left, right = Tile(0, 0, 48, 48), Tile(0, 32, 48, 48)
    total = blend_weight(left, 48, 80, 16)[0, 32:] + blend_weight(right, 48, 80, 16)[0, :16]
    torch.testing.assert_close(total, torch.ones(16), atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale", [1, 2])
def test_cutting_into_tiles_and_blending_back_returns_the_image_exactly(scale: int) -> None:
    height, width, overlap = 70, 90, 8
    image = photo("coffee", 100, 200, height * scale, width * scale)
    blender = Blender(3, height * scale, width * scale)
    for tile in tile_grid(height, width, 32, overlap):
        placed = tile.scaled(scale)
        blender.add(placed.crop(image), placed, blend_weight(placed, height * scale, width * scale, overlap * scale))
    assert torch.equal(blender.result(), image)


def test_a_pixel_no_tile_covers_is_an_error() -> None:
    blender = Blender(1, 8, 8)
    blender.add(torch.zeros(1, 4, 8), Tile(0, 0, 4, 8), torch.ones(4, 8))
    with pytest.raises(ValueError, match="covered by no tile"):
        blender.result()


def _tiled(task: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any], RestoreConfig, TilingConfig]:
    """(clean, observation, baseline in the output grid, restore keywords, config, tiling): a 96²
    output in 48-px tiles overlapping by 16 (9 tiles), or a 64² one for super-resolution (4 tiles)."""
    rng = torch.Generator().manual_seed(5)
    clean = photo("astronaut", 30, 120, 96, 96)
    if task == "sr2":
        # A 64² output in 48-px output tiles (24 observation px), of a brick wall: fine regular detail
        # that bicubic interpolation blurs, where a short fit of a small network already passes it.
        clean = photo("brick", 0, 0, 64, 64, grey=True)
        low = SuperResolution(2).degrade(clean, rng)
        bicubic = F.interpolate(low[None], scale_factor=2, mode="bicubic", align_corners=False)[0].clamp(0, 1)
        config = _config("sr2", 200)
        config = RestoreConfig(net=SR_NET, fit=replace(config.fit, average=0.9))
        return clean, low, bicubic, {}, config, TilingConfig(tile=24, overlap=8)
    if task == "inpaint":
        mask = block_mask(96, 96, rng, holes=6, size=0.08)
        holed = Inpainting(mask).degrade(clean, rng)
        return clean, holed, holed, {"mask": mask}, _config("inpaint", 100, mask=mask), TILING
    if task == "flash":
        pair = synthesize_flash_pair(clean, rng)
        return pair.ambient, pair.no_flash, pair.no_flash, {"flash": pair.flash}, _config("flash", 100), TILING
    noisy = _noisy(clean)
    return clean, noisy, noisy, {}, _config("denoise", 100), TILING


@pytest.mark.parametrize("task", ["denoise", "sr2", "inpaint", "flash"])
def test_every_task_restores_in_tiles(task: str) -> None:
    clean, observation, baseline, keywords, config, tiling = _tiled(task)
    result = restore(observation, task, config=config, tiling=tiling, **keywords)
    tiles = 4 if task == "sr2" else 9
    assert result.image.shape == clean.shape and result.tiles == tiles and result.task == task
    assert result.iterations == tiles * config.fit.max_iterations and result.stop_reason == "max_iterations"
    assert psnr(result.image, clean) > psnr(baseline, clean) + (0.5 if task == "sr2" else 1.0)
    if task == "inpaint":  # the photograph's own pixels come back unchanged
        known = keywords["mask"].bool().expand_as(observation)
        assert torch.equal(result.image[known], observation[known])
    if task in ("denoise", "flash"):  # consistent with the data: about the noise's distance from it
        assert 18 < psnr(result.image, observation) < 30


@pytest.fixture
def float64() -> Iterator[None]:
    """Weights, codes and activations in float64 (the data term stays float32, as in `fit`)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def test_a_tiles_result_does_not_depend_on_its_batch(float64: None) -> None:
    """Tile k is seeded with seed + k whatever group it is fitted in. In float64, so that Adam's
    amplification of float32 rounding (tests/engine/test_batch.py) does not blur the comparison."""
    noisy = _noisy(photo("astronaut", 30, 120, 96, 96))
    grid = tile_grid(96, 96, 48, 16)
    config = _config("denoise", 10)
    alone = restore_tiles(noisy, "denoise", grid, config=config, seed=3, batch=1)
    together = restore_tiles(noisy, "denoise", grid, config=config, seed=3)
    later = restore_tiles(noisy, "denoise", grid[4:], config=config, seed=3 + 4, batch=2)  # tile 4 first in its own group
    for a, b in zip(alone, together):
        assert (a.image - b.image).abs().max().item() < 1e-6
    assert (later[0].image - alone[4].image).abs().max().item() < 1e-6
    assert not torch.allclose(alone[0].image, alone[1].image, atol=1e-2)  # distinct tiles, distinct images


def test_a_tile_whose_mask_crop_is_all_holes_is_named() -> None:
    image = photo("astronaut", 30, 120, 96, 96)
    mask = torch.ones(96, 96)
    mask[48:, 48:] = 0
    with pytest.raises(ValueError, match=r"Tile\(top=48, left=48.*no known pixel"):
        restore_tiles(image, "inpaint", tile_grid(96, 96, 48, 16), mask=mask, config=_config("inpaint", 1, mask=mask))


def _near_borders(tiles: list[Tile], height: int, width: int, distance: int) -> torch.Tensor:
    """Pixels within `distance` of an interior tile border (an edge of a tile not on the image's border)."""
    near = torch.zeros(height, width, dtype=torch.bool)
    for t in tiles:
        bottom, right = t.top + t.height, t.left + t.width
        rows, columns = slice(t.top, bottom), slice(t.left, right)
        for edge in (t.top, bottom):
            if 0 < edge < height:
                near[max(0, edge - distance) : edge + distance, columns] = True
        for edge in (t.left, right):
            if 0 < edge < width:
                near[rows, max(0, edge - distance) : edge + distance] = True
    return near


def test_no_seam_shows_at_the_tile_borders() -> None:
    """The blended output is as good within 4 px of an interior tile border as elsewhere. On a
    photograph of gravel, a texture alike all over, so that the two regions differ by where the
    tiles meet and not by what they show (on a scene, the content of the bands alone moves their
    PSNR either way, in a whole-image restoration too). Grey, a tiny net, 150 iterations: the
    tiles have denoised without fitting the noise yet. Where tiles overlap, the blend averages
    two independent fits, so the border bands tend to come out better, not worse."""
    clean = photo("gravel", 0, 0, 96, 96, grey=True)
    noisy = _noisy(clean, seed=2)
    result = restore(noisy, "denoise", config=_config("denoise", 150), tiling=TILING)
    near = _near_borders(tile_grid(96, 96, 48, 16), 96, 96, 4).expand_as(clean)
    assert 0.2 < near.float().mean() < 0.8
    assert psnr(result.image, clean) > psnr(noisy, clean) + 2.0
    seam = psnr(result.image[near], clean[near]) - psnr(result.image[~near], clean[~near])
    assert seam > -0.3, f"the border pixels are {-seam:.2f} dB worse"


def _stand_in(net: NetConfig, size: tuple[int, int], code: int, channels: int, *, problems: int = 1, **_: object) -> int:
    """A memory model of the real one's form: a fixed cost plus one per output pixel and problem."""
    return 1000 + problems * (200 + size[0] * size[1] * (code + channels))


def _choose(budget: int, size: int = 256, scale: int = 1, min_tile: int = 64) -> tuple[int, int] | None:
    return choose_tiling(
        NetConfig(),
        size,
        size,
        3,
        scale=scale,
        performance=Performance(),
        device_type="cpu",
        budget=budget,
        overlap=16,
        min_tile=min_tile,
        estimate=_stand_in,
    )


def test_the_automatic_choice_shrinks_tiles_and_batches_with_the_budget() -> None:
    whole = _stand_in(NetConfig(), (256, 256), 32, 3)
    assert _choose(whole) == (256, 1)
    chosen = [_choose(budget) for budget in (whole - 1, whole // 2, whole // 4, whole // 10)]
    assert all(c is not None for c in chosen)
    tiles = [c[0] for c in chosen if c is not None]
    assert tiles == sorted(tiles, reverse=True) and tiles[0] < 256 and tiles[-1] < tiles[0]
    assert all(t % 32 == 0 and t >= 64 for t in tiles)  # multiples of the 5-level network's 32
    for budget, (tile, batch) in zip((whole - 1, whole // 2, whole // 4, whole // 10), [c for c in chosen if c is not None]):
        assert _stand_in(NetConfig(), (tile, tile), 32, 3, problems=batch) <= budget
        more = min(batch + 1, len(tile_grid(256, 256, tile, 16)))
        assert more == batch or _stand_in(NetConfig(), (tile, tile), 32, 3, problems=more) > budget
    smallest = _stand_in(NetConfig(), (64, 64), 32, 3)
    assert _choose(smallest) == (64, 1) and _choose(smallest - 1) is None
    assert _choose(_stand_in(NetConfig(), (72 * 4, 72 * 4), 32, 3), scale=4) == (72, 1)  # ×4: tiles in steps of 8
    assert _choose(10**12, min_tile=96) == (256, 1)


def test_an_inpainting_tile_must_be_wider_than_the_holes() -> None:
    rng = torch.Generator().manual_seed(0)
    small, large = block_mask(256, 256, rng, holes=3, size=0.05), block_mask(256, 256, rng, holes=3, size=0.3)
    assert min_tile_for("denoise", None, 16) == MIN_TILE == min_tile_for("inpaint", None, 16)
    assert MIN_TILE <= min_tile_for("inpaint", small, 16) < min_tile_for("inpaint", large, 16)
    assert min_tile_for("inpaint", large, 16) >= 0.3 * 256 + 2 * 16
    assert min_tile_for("inpaint", large, 32) > min_tile_for("inpaint", large, 16)


def test_an_image_that_cannot_fit_is_refused_and_one_that_fits_is_restored_whole() -> None:
    noisy = _noisy(photo("astronaut", 30, 120, 96, 96))
    config = _config("denoise", 5)
    with pytest.raises(ValueError, match="cannot fit in 1000 bytes even in tiles of"):
        restore(noisy, "denoise", config=config, tiling=TilingConfig(memory_budget=1000))
    plain = restore(noisy, "denoise", config=config)
    for tiling in (TilingConfig(memory_budget=10**12), TilingConfig(tile=96), TilingConfig()):
        same = restore(noisy, "denoise", config=config, tiling=tiling)
        assert torch.equal(same.image, plain.image) and same.tiles == 1 and same.history.loss == plain.history.loss


def test_a_tiled_video_is_a_warm_chain_per_tile() -> None:
    clean = camera_clip(photo("astronaut", 0, 0, 160, 160), 4, 64, pan=(0.0, 2.0))
    noisy = [_noisy(frame, seed=k) for k, frame in enumerate(clean)]
    config = _config("denoise", 100)
    chain = ChainConfig(warm_max_iterations=30)
    frames = list(restore_video(noisy, "denoise", config=config, chain=chain, tiling=TILING))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.cold for f in frames] == [True, False, False, False] and frames[0].reason == "first"
    assert all(f.image.shape == (3, 64, 64) and f.restoration.tiles == 4 for f in frames)
    for f, c, n in zip(frames, clean, noisy):
        assert psnr(f.image, c) > psnr(n, c) + 1.0


def test_the_tiles_of_a_frame_are_fitted_in_batches_each_continuing_its_own_chain(float64: None) -> None:
    """A tiled video's frame is fitted in batches of tiles (here all 4 at once, or 3 then 1), each
    tile warm from the same tile of the previous frame with its own temporal term: in float64 the
    frames are those blended from each tile position's crops restored alone as an untiled chain
    (seeded seed + k). The warm frames run fixed budgets, so every tile's Adam counts the same
    steps (a batch continues from the largest count: unequal counts would differ slightly)."""
    clean = camera_clip(photo("astronaut", 0, 0, 160, 160), 3, 64, pan=(0.0, 2.0))
    noisy = [_noisy(frame, seed=k) for k, frame in enumerate(clean)]
    config = _config("denoise", 40)
    chain = ChainConfig(warm_max_iterations=10, warm_stopping=StoppingConfig(kind="fixed"))
    grid = tile_grid(64, 64, TILING.tile or 0, TILING.overlap)
    tiled = {
        batch: list(restore_video(noisy, "denoise", config=config, chain=chain, seed=3, tiling=replace(TILING, batch=batch)))
        for batch in (None, 3)
    }
    alone = [
        list(restore_video([tile.crop(f) for f in noisy], "denoise", config=config, chain=chain, seed=3 + k)) for k, tile in enumerate(grid)
    ]
    assert len(grid) == 4 and all([f.reason for f in tile_chain] == ["first", "warm", "warm"] for tile_chain in alone)
    for t in range(3):
        expected = blend_tiles([tile_chain[t].restoration for tile_chain in alone], grid, 1, (64, 64), TILING.overlap)
        for frames in tiled.values():
            assert (frames[t].image - expected).abs().max().item() < 1e-5
    for frames in tiled.values():
        assert [(f.cold, f.reason) for f in frames] == [(True, "first"), (False, "warm"), (False, "warm")]
        # Iterations summed over the 4 tiles: a warm frame costs a quarter of the cold one.
        assert [f.restoration.iterations for f in frames] == [4 * 40, 4 * 10, 4 * 10]


def test_tiling_rejects_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="overlap"):
        TilingConfig(tile=32, overlap=32)
    with pytest.raises(ValueError, match="not supported with tiling"):
        restore(torch.rand(3, 16, 16), "denoise", tiling=TILING, callback=lambda i, x, n: None)
    with pytest.raises(ValueError, match="outside"):
        restore_tiles(
            torch.rand(3, 16, 16), "denoise", [Tile(8, 8, 16, 16)], config=RestoreConfig(net=TINY, fit=FitConfig(max_iterations=1))
        )
