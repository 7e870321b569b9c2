"""Planning a large image row into groups of tiles: a `TiledJob` per image row to finish in tiles.

The image's tile grid (`dip_engine.tiling.tile_grid`, from the row's `Sizing`) is cut into groups
of `Sizing.batch` tiles, each group one unit that a worker fits in one batch. A group is done when
its latest ledger line is "done", holds the same tiles (the same tile size, overlap and position)
and its file of restored tiles exists; those are skipped, so a resumed run redoes only the
unfinished groups. The run's `pipeline.run.book.Book` hands out the image's assembly once all
groups are done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dip_engine.tiling import tile_grid
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.tiles.sizing import Sizing
from pipeline.work.units import TiledAssemblyUnit, TileGroupUnit


@dataclass(frozen=True)
class TiledJob:
    """An image row to finish in tiles: its groups, and those already done (by index)."""

    row: ManifestRow
    sizing: Sizing
    groups: tuple[TileGroupUnit, ...]
    done: Mapping[int, dict[str, Any]] = field(default_factory=dict)  # group index -> done record

    @property
    def parts(self) -> int:
        return len(self.groups)

    @property
    def tiles(self) -> int:
        return sum(len(group.tiles) for group in self.groups)

    def pending_units(self) -> list[TileGroupUnit]:
        return [group for group in self.groups if group.index not in self.done]

    def assembly(self, records: tuple[dict[str, Any], ...]) -> TiledAssemblyUnit:
        """The image's assembly from its groups' done records (in group order)."""
        channels, height, width = self.sizing.shape
        scale = self.sizing.scale
        return TiledAssemblyUnit(self.row, self.groups, records, (height * scale, width * scale), channels, scale)

    def part_failed(self, unit: TileGroupUnit, record: dict[str, Any]) -> str:
        """Why the image fails when `unit` failed for good with `record`."""
        last = unit.first_tile + len(unit.tiles) - 1
        return f"tile group {unit.index} (tiles {unit.first_tile}-{last}) failed: {record.get('error')}"


def plan_tiled(row: ManifestRow, sizing: Sizing, *, overlap: int, ledger: Ledger, records: Mapping[str, dict[str, Any]]) -> TiledJob:
    """The row's groups of tiles and which are already done (`records` empty: none); see the module docstring."""
    assert sizing.tile is not None, "plan_tiled is for rows sized in tiles"
    _, height, width = sizing.shape
    grid = tile_grid(height, width, sizing.tile, overlap)
    starts = range(0, len(grid), sizing.batch)
    groups = tuple(
        TileGroupUnit(row, tuple(grid[first : first + sizing.batch]), index, len(starts), first, sizing.tile, overlap)
        for index, first in enumerate(starts)
    )
    done: dict[int, dict[str, Any]] = {}
    for group in groups:
        record = records.get(group.id)
        if record is not None and ledger.is_done(record) and _same_tiles(record, group):
            done[group.index] = record
    return TiledJob(row, sizing, groups, done)


def _same_tiles(record: Mapping[str, Any], group: TileGroupUnit) -> bool:
    """The record holds exactly this group's tiles."""
    fields = group.record_fields()
    return all(record.get(name) == fields[name] for name in ("first_tile", "tiles", "tile", "overlap", "groups"))
