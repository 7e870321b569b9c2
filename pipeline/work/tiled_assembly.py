"""A large image's last step on a worker: its groups' restored tiles blended into the output image.

`assemble_tiled_image` reads the groups' arrays of restored tiles one at a time and blends them
with a smooth weight over the overlaps (`dip_engine.tiling.Blender`, `blend_weight`), so no seam
shows; then writes the image atomically at the input's bit depth where the output's format holds
it (a 16-bit TIFF scan stays 16-bit) and measures it against the reference when there is one.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dip_engine import CompiledSteps
from dip_engine.tiling import Blender, blend_weight
from pipeline.io import probe_bit_depth, read_image, write_image
from pipeline.records import ImageRecord
from pipeline.work.common import UnitError, output_bit_depth, quality_metrics
from pipeline.work.units import TiledAssemblyUnit


def assemble_tiled_image(
    unit: TiledAssemblyUnit,
    out_dir: Path,
    *,
    device: str = "cpu",
    worker: str = "",
    attempt: int = 1,
    steps: CompiledSteps | None = None,
) -> dict[str, Any]:
    """Blend and write the image of `unit`; return the row's "done" record (`ImageRecord`, with
    the iterations and engine time summed over its tiles, the most common stop reason, the
    tiles' stopping rule where they all ran the same, and no trace).
    `device` and `steps` are unused (the assembly is file work) but accepted like the other
    processors'. Raises UnitError naming the row for a missing or damaged group file."""
    started = time.perf_counter()
    try:
        return _run(unit, Path(out_dir), worker, attempt, started)
    except (ValueError, OSError) as error:
        raise UnitError(unit.row, f"assembling the tiled image: {error}") from error


def _run(unit: TiledAssemblyUnit, out_dir: Path, worker: str, attempt: int, started: float) -> dict[str, Any]:
    row = unit.row
    height, width = unit.size
    blender = Blender(unit.channels, height, width)
    tiles = 0
    for group in unit.groups:
        restored = np.load(out_dir / group.output)
        if restored.shape[0] != len(group.tiles):
            raise ValueError(f"{group.output} holds {restored.shape[0]} tiles, expected {len(group.tiles)}")
        for tile, image in zip(group.tiles, restored):
            placed = tile.scaled(unit.scale)
            blender.add(torch.from_numpy(image), placed, blend_weight(placed, height, width, group.overlap * unit.scale))
            tiles += 1
    image = blender.result()
    del blender
    target = out_dir / row.output
    bit_depth = output_bit_depth(probe_bit_depth(row.input), target)  # the header: the scan itself is read only to measure it
    write_image(target, image, bit_depth, root=out_dir)
    reference = read_image(row.reference).pixels if row.reference is not None else None
    # Measured only against a reference: then the input (its PSNR) and the file as written are read back.
    x0 = read_image(row.input).pixels if reference is not None else image
    written = read_image(target).pixels if reference is not None else image
    records = unit.group_records
    reasons: Counter[str] = Counter()
    for record in records:
        reasons.update(record.get("stop_reasons") or {})
    rules = {rule for record in records for rule in (record.get("rules") or {"": 1})}  # "": a group that did not say
    assembly_seconds = time.perf_counter() - started
    return ImageRecord.of(
        row,
        unit.output.as_posix(),
        **quality_metrics(x0, written, reference),
        iterations=sum(int(record.get("iterations") or 0) for record in records),
        stop_reason=reasons.most_common(1)[0][0] if reasons else None,
        rule=(rules.pop() or None) if len(rules) == 1 else None,  # the tiles' rule if they agree; no trace (many fits)
        bit_depth=bit_depth,
        seconds=sum(float(record.get("seconds") or 0.0) for record in records) + assembly_seconds,
        engine_seconds=sum(float(record.get("engine_seconds") or 0.0) for record in records),
        tile=unit.groups[0].tile,
        tiles=tiles,
        tile_groups=len(unit.groups),
        worker=worker,
        attempt=attempt,
    ).to_dict()
