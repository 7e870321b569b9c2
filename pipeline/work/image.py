"""An image row on a worker: restore its image, write it, and return its ledger record.

`process_image` is what a worker runs for an image row. Video rows run as segments instead
(`pipeline.work.segment`, `pipeline.work.assembly`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import dip_engine
from dip_engine import CompiledSteps, RestoreConfig
from pipeline.io import read_image, write_image
from pipeline.manifest import ManifestRow
from pipeline.records import ImageRecord
from pipeline.work.common import UnitError, engine_config, output_bit_depth, quality_metrics, read_mask
from pipeline.work.traces import downsample_trace


def process_image(
    row: ManifestRow,
    out_dir: Path,
    *,
    device: str = "cpu",
    worker: str = "",
    attempt: int = 1,
    config_override: RestoreConfig | None = None,
    steps: CompiledSteps | None = None,
) -> dict[str, Any]:
    """Restore the image of `row`, write it to ``out_dir / row.output`` and return its "done" record.

    Inputs: the input image; the mask (see `read_mask`), the flash image and the reference when
    the row has them. The engine runs the task preset's configuration with the speed switches
    measured best on `device` (`engine_config`), or `config_override`, through the worker's
    compiled steps `steps` when the configuration compiles, with the row's `max_iterations` (if
    any) as the cap, seed `row.seed` (0 if none), and the row's scale for super-resolution tasks.

    The output is written atomically at the input's bit depth where the output's format holds it
    (`output_bit_depth`: float32 into PNG is written as uint16, anything into JPEG as uint8).
    Running a row twice replaces the file with the same result (same seed, same device).

    Metrics (only with a reference): psnr_out/ssim_out compare the output as written (read back
    from the file) with the reference; psnr_in/ssim_in compare the input with it, the input
    first upsampled bicubically (torch interpolate, clamped to [0, 1]) to the reference's size
    for super-resolution. `seconds` is the whole unit's wall time, reading and writing included;
    `engine_seconds` the fit's own. `rule` is the stopping rule the fit ran and `trace` its
    traces downsampled (`pipeline.work.traces`; None when the engine restored it in tiles).

    Raises UnitError (a ValueError naming the row) for what the user can fix: unreadable or
    mismatched files, a non-binary mask, anything the engine rejects. A video row is refused:
    videos run as segments (`pipeline.work.segment`).
    """
    started = time.perf_counter()
    if row.is_video:
        raise UnitError(row, f"{row.input} is a video; process_image restores images, video rows run as segments (pipeline.work.segment)")
    target = Path(out_dir) / row.output
    try:
        return _run(row, target, Path(out_dir), device, worker, attempt, config_override, steps, started)
    except UnitError:
        raise
    except ValueError as error:  # ImageReadError and the engine's checks: the user can act on them
        raise UnitError(row, str(error)) from error


def _run(
    row: ManifestRow,
    target: Path,
    out_dir: Path,
    device: str,
    worker: str,
    attempt: int,
    config_override: RestoreConfig | None,
    steps: CompiledSteps | None,
    started: float,
) -> dict[str, Any]:
    loaded = read_image(row.input)
    x0 = loaded.pixels
    mask = read_mask(row.mask) if row.mask is not None else None
    flash = read_image(row.flash).pixels if row.flash is not None else None
    reference = read_image(row.reference).pixels if row.reference is not None else None
    is_sr = dip_engine.get_task(row.task).kind == "sr"
    result = dip_engine.restore(
        x0,
        row.task,
        mask=mask,
        scale=row.scale if is_sr else None,
        flash=flash,
        config=engine_config(row, config_override, device, mask),
        seed=row.seed if row.seed is not None else 0,
        device=device,
        reference=reference,
        steps=steps,
    )
    bit_depth = output_bit_depth(loaded.bit_depth, target)
    write_image(target, result.image, bit_depth, root=out_dir)  # refused if a link leads out of out_dir
    written = read_image(target).pixels if reference is not None else result.image
    return ImageRecord.of(
        row,
        row.output.as_posix(),
        **quality_metrics(x0, written, reference),
        iterations=result.iterations,
        stop_reason=result.stop_reason,
        kept_iteration=result.kept_iteration,
        rule=result.history.rule or None,
        trace=downsample_trace(result.history, result.kept_iteration),
        bit_depth=bit_depth,
        seconds=time.perf_counter() - started,
        engine_seconds=result.seconds,
        worker=worker,
        attempt=attempt,
    ).to_dict()
