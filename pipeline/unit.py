"""One unit of work: restore the image of one manifest row and write it, with its metrics.

`process_unit` is what a worker runs for an image row; `failed_record` is what the runner logs
when it fails. Both return plain dicts for `pipeline.ledger.Ledger.append`. Video rows run as
segments instead (`pipeline.segment_unit`, `pipeline.assembly`).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor

import dip_engine
from dip_engine import CompiledSteps, RestoreConfig
from dip_engine.tasks import with_max_iterations, with_performance
from pipeline.io import read_image, write_image
from pipeline.ledger import STATUS_DONE, STATUS_FAILED, UnitRecord
from pipeline.manifest import ManifestRow

# Mask samples at or below MASK_LOW are black, at or above MASK_HIGH white; anything between is
# grey and makes the mask non-binary (a soft matte is rejected rather than guessed at). The band
# tolerates the few levels JPEG compression moves a black-and-white mask by.
MASK_LOW = 0.25
MASK_HIGH = 0.75


class UnitError(ValueError):
    """A row that cannot be restored for a reason the user can fix; the message names the row."""

    def __init__(self, row: ManifestRow, what: str) -> None:
        super().__init__(f"row {row.row_number} (id {row.id}): {what}")
        self.row_number = row.row_number
        self.id = row.id

    def __reduce__(self) -> tuple[object, ...]:
        """Rebuilt from its message, so that it crosses process boundaries (Ray workers) intact."""
        return (_rebuild_unit_error, (str(self), self.row_number, self.id))


def _rebuild_unit_error(message: str, row_number: int, unit_id: str) -> UnitError:
    error = UnitError.__new__(UnitError)
    ValueError.__init__(error, message)
    error.row_number, error.id = row_number, unit_id
    return error


def output_bit_depth(input_bit_depth: str, output: Path) -> str:
    """The bit depth to write `output` with for an input stored at `input_bit_depth`.

    The input's own depth where the output's format holds it; otherwise the nearest it does:
    PNG has no float samples, so float32 becomes uint16; JPEG is 8-bit only, so everything
    becomes uint8. TIFF holds all three.
    """
    suffix = output.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        return "uint8"
    if suffix == ".png" and input_bit_depth == "float32":
        return "uint16"
    return input_bit_depth


def read_mask(path: Path) -> Tensor:
    """A mask image as a 1×H×W float tensor: 1 where the pixel is known, 0 where it is missing.

    Any channel count is accepted. Each sample must be black (<= MASK_LOW) or white
    (>= MASK_HIGH) after the usual scaling to [0, 1]; a pixel is known when every channel is
    white (> 0.5), so for a colour mask only white means known. ValueError for a grey sample.
    """
    pixels = read_image(path).pixels
    grey = (pixels > MASK_LOW) & (pixels < MASK_HIGH)
    if grey.any():
        count = int(grey.any(dim=0).sum())
        raise ValueError(
            f"the mask {path} is not binary: {count} of {grey[0].numel()} pixels are grey "
            f"(between {MASK_LOW:.0%} and {MASK_HIGH:.0%} white); use white (1) for known pixels and "
            "black (0) for missing ones"
        )
    return (pixels > 0.5).all(dim=0, keepdim=True).float()


def engine_config(
    row: ManifestRow, override: RestoreConfig | None = None, device: str | None = None, mask: Tensor | None = None
) -> RestoreConfig:
    """The row's configuration: `override`, or the task preset's for the row's scale and `mask`
    (`Task.config_for`) with the speed switches measured best on `device`
    (`dip_engine.performance_for`; the preset's own without a device), with the row's iteration cap."""
    if override is not None:
        config = override
    else:
        config = dip_engine.get_task(row.task).config_for(scale=row.scale, mask=mask)
        if device is not None:
            config = with_performance(config, dip_engine.performance_for(device))
    return config if row.max_iterations is None else with_max_iterations(config, row.max_iterations)


def upsample_to(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic interpolation of a C×H×W image to `size` (H, W), clamped to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    scaled = F.interpolate(image.unsqueeze(0), size=tuple(size), mode="bicubic", align_corners=False)
    return scaled.squeeze(0).clamp(0.0, 1.0)


def quality_metrics(x0: Tensor, output: Tensor, reference: Tensor | None) -> dict[str, float | None]:
    """PSNR and SSIM against the reference of the input (bicubic-upsampled to the reference's size)
    and of the output, as psnr_in/out and ssim_in/out; all None without a reference."""
    if reference is None:
        return {"psnr_in": None, "psnr_out": None, "ssim_in": None, "ssim_out": None}
    baseline = upsample_to(x0, (reference.shape[-2], reference.shape[-1]))
    return {
        "psnr_in": dip_engine.psnr(baseline, reference),
        "psnr_out": dip_engine.psnr(output, reference),
        "ssim_in": dip_engine.ssim(baseline, reference),
        "ssim_out": dip_engine.ssim(output, reference),
    }


def now() -> str:
    """The current UTC time for a record's finished_at, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def process_unit(
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
    compiled steps `steps` when the configuration compiles,
    with the row's `max_iterations` (if any) as the cap, seed `row.seed` (0 if none), and the
    row's scale for super-resolution tasks.

    The output is written atomically at the input's bit depth where the output's format holds it
    (`output_bit_depth`: float32 into PNG is written as uint16, anything into JPEG as uint8).
    Running a row twice replaces the file with the same result (same seed, same device).

    Metrics (only with a reference): psnr_out/ssim_out compare the output as written (read back
    from the file) with the reference; psnr_in/ssim_in compare the input with it, the input
    first upsampled bicubically (torch interpolate, clamped to [0, 1]) to the reference's size
    for super-resolution. `seconds` is the whole unit's wall time, reading and writing included;
    `engine_seconds` the fit's own.

    Raises UnitError (a ValueError naming the row) for what the user can fix: unreadable or
    mismatched files, a non-binary mask, anything the engine
    rejects. A video row is refused: videos run as segments (`pipeline.segment_unit`).
    """
    started = time.perf_counter()
    if row.is_video:
        raise UnitError(row, f"{row.input} is a video; process_unit restores images, video rows run as segments (pipeline.segment_unit)")
    target = Path(out_dir) / row.output
    try:
        return _run(row, target, device, worker, attempt, config_override, steps, started)
    except UnitError:
        raise
    except ValueError as error:  # ImageReadError and the engine's checks: the user can act on them
        raise UnitError(row, str(error)) from error


def _run(
    row: ManifestRow,
    target: Path,
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
    write_image(target, result.image, bit_depth)
    written = read_image(target).pixels if reference is not None else result.image
    record = UnitRecord(
        id=row.id,
        status=STATUS_DONE,
        task=row.task,
        input=str(row.input),
        output=row.output.as_posix(),
        row=row.row_number,
        **quality_metrics(x0, written, reference),
        iterations=result.iterations,
        stop_reason=result.stop_reason,
        kept_iteration=result.kept_iteration,
        bit_depth=bit_depth,
        seconds=time.perf_counter() - started,
        engine_seconds=result.seconds,
        worker=worker,
        attempt=attempt,
        finished_at=now(),
        error=None,
    )
    return record.to_dict()


def failed_record(
    row: ManifestRow, *, error: str, worker: str, attempt: int, seconds: float | None = None
) -> dict[str, Any]:
    """The ledger record of a failed attempt at `row` (status "failed", `error` the reason)."""
    record = UnitRecord(
        id=row.id,
        status=STATUS_FAILED,
        task=row.task,
        input=str(row.input),
        output=row.output.as_posix(),
        row=row.row_number,
        seconds=seconds,
        worker=worker,
        attempt=attempt,
        finished_at=now(),
        error=error,
    )
    return record.to_dict()
