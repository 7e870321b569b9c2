"""A group of tiles of a large image on a worker: restore them in one batch and store them.

`process_tile_group` reads the row's image (and mask, flash image), restores the group's tiles
through `dip_engine.tiling.restore_tiles` (one `fit_batch`, each tile its own early stop, seeded
by its index in the whole grid so that its result does not depend on its group), and stores the
restored tiles losslessly as one float32 array, K×C×h×w, in ``.tiles/<row id>/<group>.npy``,
atomically. The image's assembly (`pipeline.work.tiled_assembly`) blends them.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dip_engine
from dip_engine import CompiledSteps, RestoreConfig
from dip_engine.tiling import restore_tiles
from pipeline.io import atomic_path, read_image
from pipeline.records import TileGroupRecord
from pipeline.work.common import UnitError, engine_config, read_mask
from pipeline.work.units import TileGroupUnit


def process_tile_group(
    unit: TileGroupUnit,
    out_dir: Path,
    *,
    device: str = "cpu",
    worker: str = "",
    attempt: int = 1,
    config_override: RestoreConfig | None = None,
    steps: CompiledSteps | None = None,
) -> dict[str, Any]:
    """Restore the tiles of `unit`, store them, and return the group's "done" record
    (`pipeline.records.TileGroupRecord`). The configuration is the row's for the whole image
    (`engine_config`, the whole mask choosing the inpainting network), or `config_override`.
    Raises UnitError naming the row and the group for what the user can fix."""
    started = time.perf_counter()
    try:
        return _run(unit, Path(out_dir), device, worker, attempt, config_override, steps, started)
    except UnitError:
        raise
    except ValueError as error:
        last = unit.first_tile + len(unit.tiles) - 1
        raise UnitError(unit.row, f"tile group {unit.index} (tiles {unit.first_tile}-{last}): {error}") from error


def _run(
    unit: TileGroupUnit,
    out_dir: Path,
    device: str,
    worker: str,
    attempt: int,
    config_override: RestoreConfig | None,
    steps: CompiledSteps | None,
    started: float,
) -> dict[str, Any]:
    row = unit.row
    x0 = read_image(row.input).pixels
    mask = read_mask(row.mask) if row.mask is not None else None
    flash = read_image(row.flash).pixels if row.flash is not None else None
    is_sr = dip_engine.get_task(row.task).kind == "sr"
    results = restore_tiles(
        x0,
        row.task,
        unit.tiles,
        mask=mask,
        scale=row.scale if is_sr else None,
        flash=flash,
        config=engine_config(row, config_override, device, mask),
        seed=(row.seed or 0) + unit.first_tile,
        device=device,
        steps=steps,
        batch=len(unit.tiles),
    )
    del x0, mask, flash
    restored = torch.stack([result.image.detach().float().cpu() for result in results]).numpy()
    with atomic_path(out_dir / unit.output, keep_suffix=True, root=out_dir) as temporary, open(temporary, "wb") as handle:
        np.save(handle, restored)
    return TileGroupRecord.of(
        row,
        unit.output.as_posix(),
        **unit.record_fields(),
        iterations=sum(result.iterations for result in results),
        stop_reasons=dict(Counter(result.stop_reason for result in results)),
        rules=dict(Counter(result.history.rule for result in results)),
        seconds=time.perf_counter() - started,
        engine_seconds=max(result.seconds for result in results),  # the batch's time: its tiles were fitted together
        worker=worker,
        attempt=attempt,
    ).to_dict()
