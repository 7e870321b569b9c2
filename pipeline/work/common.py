"""What the units of images and of video segments share: the error that names a row, reading a
row's mask, the engine configuration of a row, the bit depth of an output, and quality figures."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

import dip_engine
from dip_engine import RestoreConfig
from dip_engine.tasks import with_max_iterations, with_performance
from pipeline.io.mask import read_mask as read_mask  # re-exported for the units; validation checks masks with it too
from pipeline.manifest import ManifestRow


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
