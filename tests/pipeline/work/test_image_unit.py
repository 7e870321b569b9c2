"""pipeline.work.image: one manifest row restored end to end on tiny real photographs and a tiny network."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch
from skimage import data

import dip_engine
from dip_engine import FitConfig, NetConfig, RestoreConfig
from pipeline.io import read_image
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.work.common import UnitError, engine_config, output_bit_depth, upsample_to
from pipeline.work.image import process_image
from pipeline.work.units import failed_record
from tests.conftest import photo

TINY = RestoreConfig(
    net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)),
    fit=FitConfig(max_iterations=30),
)
SIZE = 24


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny fits run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def clean_rgb(size: int = SIZE) -> np.ndarray:
    """A size×size crop of the astronaut's face, uint8 H×W×3."""
    return np.ascontiguousarray(data.astronaut()[60 : 60 + size, 180 : 180 + size])


def noisy(clean: np.ndarray, sigma: float, peak: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    values = clean.astype(np.float64) + rng.normal(0, sigma * peak, clean.shape)
    return np.clip(np.round(values), 0, peak).astype(clean.dtype)


def row(tmp_path: Path, task: str, input_name: str, **fields: object) -> ManifestRow:
    values: dict = dict(mask=None, flash=None, reference=None, scale=None, output=Path(f"restored/{task}.png"))
    values.update(fields)
    return ManifestRow(row_number=2, id=f"{task}-row", task=task, input=tmp_path / input_name, **values)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if ".tmp" in path.name)


@pytest.fixture
def denoise_files(tmp_path: Path) -> tuple[Path, Path]:
    clean = clean_rgb()
    iio.imwrite(tmp_path / "clean.png", clean)
    iio.imwrite(tmp_path / "noisy.png", noisy(clean, 0.1, 255))
    return tmp_path / "noisy.png", tmp_path / "clean.png"


def test_a_denoise_row_with_a_reference_writes_the_output_and_its_record(tmp_path: Path, denoise_files: tuple[Path, Path]) -> None:
    noisy_path, clean_path = denoise_files
    unit = row(tmp_path, "denoise", "noisy.png", reference=clean_path, seed=3)
    out = tmp_path / "out"
    record = process_image(unit, out, worker="w1", attempt=2, config_override=TINY)

    written = read_image(out / "restored/denoise.png")
    assert written.bit_depth == "uint8" and written.pixels.shape == (3, SIZE, SIZE)
    assert record["id"] == "denoise-row" and record["status"] == "done" and record["task"] == "denoise"
    assert record["input"] == str(noisy_path) and record["output"] == "restored/denoise.png"
    assert record["row"] == 2 and record["worker"] == "w1" and record["attempt"] == 2
    assert record["error"] is None and record["bit_depth"] == "uint8"
    assert record["iterations"] == 30 and record["stop_reason"] == "max_iterations"
    assert 0 <= record["kept_iteration"] <= 30
    assert 0 < record["engine_seconds"] <= record["seconds"]
    assert record["finished_at"].endswith("+00:00")

    reference, x0 = read_image(clean_path).pixels, read_image(noisy_path).pixels
    assert record["psnr_in"] == pytest.approx(dip_engine.psnr(x0, reference), abs=1e-9)
    assert record["ssim_in"] == pytest.approx(dip_engine.ssim(x0, reference), abs=1e-9)
    assert record["psnr_out"] == pytest.approx(dip_engine.psnr(written.pixels, reference), abs=1e-9)
    assert record["ssim_out"] == pytest.approx(dip_engine.ssim(written.pixels, reference), abs=1e-9)
    assert 10 < record["psnr_out"] < 50 and -1 <= record["ssim_out"] <= 1

    ledger = Ledger(out)  # the record is what the ledger stores and the CSV shows
    ledger.append(record)
    assert ledger.done_ids() == {"denoise-row"}
    assert leftovers(out) == []


def test_running_a_row_twice_gives_the_same_file(tmp_path: Path, denoise_files: tuple[Path, Path]) -> None:
    unit = row(tmp_path, "denoise", "noisy.png", max_iterations=8)
    out = tmp_path / "out"
    first = process_image(unit, out, config_override=TINY)
    content = (out / unit.output).read_bytes()
    second = process_image(unit, out, config_override=TINY)
    assert (out / unit.output).read_bytes() == content
    assert first["iterations"] == second["iterations"] == 8  # the row's cap over the override's
    assert first["psnr_out"] is None and first["ssim_in"] is None  # no reference
    assert leftovers(out) == []


def test_a_16_bit_tiff_is_restored_into_a_16_bit_tiff(tmp_path: Path) -> None:
    grey = data.camera()[200 : 200 + SIZE, 220 : 220 + SIZE].astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "scan.tif", noisy(grey, 0.05, 65535))
    unit = row(tmp_path, "denoise", "scan.tif", output=Path("scan.tif"))
    record = process_image(unit, tmp_path / "out", config_override=TINY)
    written = read_image(tmp_path / "out" / "scan.tif")
    assert written.bit_depth == "uint16" and written.format == "tiff"
    assert written.pixels.shape == (1, SIZE, SIZE) and record["bit_depth"] == "uint16"
    stored = tifffile.imread(tmp_path / "out" / "scan.tif")
    assert stored.dtype == np.uint16 and len(np.unique(stored)) > 256  # really 16-bit, not 8 shifted


@pytest.mark.parametrize(
    ("depth", "name", "expected"),
    [
        ("uint16", "a.png", "uint16"),
        ("float32", "a.png", "uint16"),
        ("float32", "a.TIF", "float32"),
        ("uint16", "a.jpg", "uint8"),
        ("float32", "a.jpeg", "uint8"),
        ("uint8", "a.tiff", "uint8"),
    ],
)
def test_output_bit_depth_is_the_nearest_the_format_holds(depth: str, name: str, expected: str) -> None:
    assert output_bit_depth(depth, Path(name)) == expected


def test_a_float_tiff_into_a_png_is_written_as_16_bit(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "hdr.tif", clean_rgb().astype(np.float32) / 255, photometric="rgb")
    unit = row(tmp_path, "denoise", "hdr.tif", max_iterations=3)
    process_image(unit, tmp_path / "out", config_override=TINY)
    assert read_image(tmp_path / "out" / unit.output).bit_depth == "uint16"


def test_an_sr_row_doubles_the_size_and_measures_the_input_upsampled(tmp_path: Path) -> None:
    clean = clean_rgb()
    iio.imwrite(tmp_path / "clean.png", clean)
    small = torch.nn.functional.avg_pool2d(torch.from_numpy(clean).permute(2, 0, 1).float()[None], 2)[0]
    iio.imwrite(tmp_path / "small.png", small.permute(1, 2, 0).round().to(torch.uint8).numpy())
    unit = row(tmp_path, "sr", "small.png", scale=2, reference=tmp_path / "clean.png")
    record = process_image(unit, tmp_path / "out", config_override=TINY)

    written = read_image(tmp_path / "out" / unit.output).pixels
    assert written.shape == (3, SIZE, SIZE)
    reference = read_image(tmp_path / "clean.png").pixels
    upsampled = torch.nn.functional.interpolate(
        read_image(tmp_path / "small.png").pixels[None], size=(SIZE, SIZE), mode="bicubic", align_corners=False
    )[0].clamp(0, 1)
    assert torch.equal(upsample_to(read_image(tmp_path / "small.png").pixels, (SIZE, SIZE)), upsampled)
    assert record["psnr_in"] == pytest.approx(dip_engine.psnr(upsampled, reference), abs=1e-9)
    assert record["psnr_out"] == pytest.approx(dip_engine.psnr(written, reference), abs=1e-9)


def mask_png(path: Path, *, grey_level: int | None = None) -> Path:
    mask = np.full((SIZE, SIZE), 255, dtype=np.uint8)
    mask[8:14, 6:18] = 0
    if grey_level is not None:
        mask[0:2, 0:3] = grey_level
    iio.imwrite(path, mask)
    return path


def test_an_inpaint_row_uses_its_mask(tmp_path: Path) -> None:
    iio.imwrite(tmp_path / "photo.png", clean_rgb())
    mask = mask_png(tmp_path / "mask.png")
    unit = row(tmp_path, "inpaint", "photo.png", mask=mask, reference=tmp_path / "photo.png")
    record = process_image(unit, tmp_path / "out", config_override=TINY)
    assert read_image(tmp_path / "out" / unit.output).pixels.shape == (3, SIZE, SIZE)
    assert math.isinf(record["psnr_in"]) and record["ssim_in"] == pytest.approx(1.0)  # input = reference
    assert record["psnr_out"] < 60


def test_a_non_binary_mask_raises_a_unit_error_naming_the_row(tmp_path: Path) -> None:
    iio.imwrite(tmp_path / "photo.png", clean_rgb())
    mask = mask_png(tmp_path / "mask.png", grey_level=128)
    unit = row(tmp_path, "inpaint", "photo.png", mask=mask)
    with pytest.raises(UnitError, match=r"^row 2 \(id inpaint-row\): the mask .* is not binary: 6 of 576 pixels"):
        process_image(unit, tmp_path / "out", config_override=TINY)
    assert not (tmp_path / "out" / unit.output).exists()


def test_near_binary_mask_noise_is_tolerated(tmp_path: Path) -> None:
    """A black-and-white mask saved as JPEG (samples a few levels off) still works."""
    iio.imwrite(tmp_path / "photo.png", clean_rgb())
    mask = mask_png(tmp_path / "mask.png", grey_level=40)  # 16% white: black
    unit = row(tmp_path, "inpaint", "photo.png", mask=mask, max_iterations=2)
    assert process_image(unit, tmp_path / "out", config_override=TINY)["status"] == "done"


def test_engine_value_errors_become_unit_errors(tmp_path: Path) -> None:
    iio.imwrite(tmp_path / "photo.png", clean_rgb())
    iio.imwrite(tmp_path / "black.png", np.zeros((SIZE, SIZE), dtype=np.uint8))
    unit = row(tmp_path, "inpaint", "photo.png", mask=tmp_path / "black.png")
    with pytest.raises(UnitError, match=r"^row 2 \(id inpaint-row\): mask marks every pixel as missing") as caught:
        process_image(unit, tmp_path / "out", config_override=TINY)
    assert isinstance(caught.value, ValueError) and caught.value.row_number == 2 and caught.value.id == "inpaint-row"


def test_an_unreadable_input_becomes_a_unit_error(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UnitError, match=r"^row 2 \(id denoise-row\): cannot decode .*broken.png"):
        process_image(row(tmp_path, "denoise", "broken.png"), tmp_path / "out", config_override=TINY)


def test_a_flash_row_runs(tmp_path: Path) -> None:
    clean = clean_rgb()
    iio.imwrite(tmp_path / "flash.png", clean)
    iio.imwrite(tmp_path / "dark.png", noisy(clean // 3, 0.05, 255))
    unit = row(tmp_path, "flash", "dark.png", flash=tmp_path / "flash.png", max_iterations=3)
    record = process_image(unit, tmp_path / "out", config_override=TINY)
    assert record["iterations"] == 3 and (tmp_path / "out" / unit.output).is_file()


def test_video_rows_are_refused_clearly(tmp_path: Path) -> None:
    unit = row(tmp_path, "denoise", "clip.mp4", output=Path("clip.mp4"))
    with pytest.raises(ValueError, match=r"row 2 \(id denoise-row\): .*process_image restores images, video rows run as segments"):
        process_image(unit, tmp_path / "out")


def test_engine_config_takes_the_preset_or_the_override_and_the_rows_cap(tmp_path: Path) -> None:
    assert engine_config(row(tmp_path, "sr4", "a.png")) == dip_engine.get_task("sr4").config
    capped = engine_config(row(tmp_path, "inpaint", "a.png", max_iterations=50))
    assert capped.fit.max_iterations == 50 and capped.net == dip_engine.get_task("inpaint").config.net
    assert engine_config(row(tmp_path, "denoise", "a.png"), TINY) is TINY
    on_cpu = engine_config(row(tmp_path, "denoise", "a.png", max_iterations=50), device="cpu")
    assert on_cpu.fit.performance == dip_engine.performance_for("cpu") and on_cpu.fit.max_iterations == 50
    assert engine_config(row(tmp_path, "denoise", "a.png"), TINY, device="cpu") is TINY  # an override is taken as it is


def test_failed_record(tmp_path: Path) -> None:
    unit = row(tmp_path, "denoise", "a.png")
    record = failed_record(unit, error="row 2 (id denoise-row): boom", worker="node1/gpu0", attempt=3)
    assert record["status"] == "failed" and record["error"].endswith("boom")
    assert record["id"] == "denoise-row" and record["output"] == "restored/denoise.png"
    assert record["worker"] == "node1/gpu0" and record["attempt"] == 3 and record["psnr_out"] is None
    Ledger(tmp_path).append(record)
    assert Ledger(tmp_path).load()["denoise-row"]["status"] == "failed"


def test_unit_error_survives_pickling() -> None:
    import pickle

    from pipeline.work.common import UnitError

    error = UnitError.__new__(UnitError)
    ValueError.__init__(error, "row 3 (id x): the mask is not binary")
    error.row_number, error.id = 3, "x"
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, UnitError) and str(copy) == str(error)
    assert (copy.row_number, copy.id) == (3, "x")


def test_the_record_keeps_the_fits_rule_and_its_traces_downsampled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace the report plots: iterations 1-based like kept_iteration, the History's values at them."""
    clean = (photo("coffee", 100, 200, SIZE, SIZE) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    iio.imwrite(tmp_path / "clean.png", clean)
    iio.imwrite(tmp_path / "noisy.png", noisy(clean, 0.1, 255))
    fits: list[dip_engine.Restoration] = []
    restore = dip_engine.restore

    def keeping(*args: Any, **kwargs: Any) -> dip_engine.Restoration:
        fits.append(restore(*args, **kwargs))
        return fits[-1]

    monkeypatch.setattr(dip_engine, "restore", keeping)  # the unit's fit, to compare its record with
    unit = row(tmp_path, "denoise", "noisy.png", reference=tmp_path / "clean.png")
    record = process_image(unit, tmp_path / "out", config_override=TINY)

    [fit] = fits
    trace = record["trace"]
    assert record["rule"] == fit.history.rule and record["rule"] in ("variance", "converged", "fixed")
    assert set(trace) == {"iteration", "loss", "criterion", "psnr"}  # psnr: a reference was given
    assert trace["iteration"] == list(range(1, 31)) and trace["iteration"][-1] == record["iterations"] == 30
    assert record["kept_iteration"] in trace["iteration"]
    for position, iteration in enumerate(trace["iteration"]):
        assert trace["loss"][position] == pytest.approx(fit.history.loss[iteration - 1], rel=1e-3)
        assert trace["psnr"][position] == pytest.approx(fit.history.psnr[iteration - 1], rel=1e-3)
        criterion = fit.history.criterion[iteration - 1]
        assert trace["criterion"][position] == (None if math.isnan(criterion) else pytest.approx(criterion, rel=1e-3))
    assert len(json.dumps(record)) < 3000
