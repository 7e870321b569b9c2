"""The `pipeline` command end to end: validate, manifest, run (dry run, success, failures) on a real local Ray."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from skimage import data
from typer.testing import CliRunner, Result

from pipeline.cli.app import app
from pipeline.manifest import parse_manifest

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "manifests" / "demo.csv"
HEADER = "id,task,input,mask,scale,flash,reference,output,max_iterations,seed"
ITERATIONS = 5  # enough to exercise the whole path; quality is not under test here
SIDE = 36  # tiny images; the published 5-level networks pad them to 64×64


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    # A SystemExit is how typer ends with a code; anything else is a crash of the command itself.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed:\n{result.output}") from result.exception
    return result


# ----- inputs --------------------------------------------------------------------------------


def rgb(size: int, top: int = 120, left: int = 200) -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[top : top + size, left : left + size])


def noisy(clean: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = 65535 if clean.dtype == np.uint16 else 255
    out = clean.astype(np.float64) + rng.normal(0, 0.1 * scale, clean.shape)
    return np.clip(np.round(out), 0, scale).astype(clean.dtype)


def write(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        tifffile.imwrite(path, pixels, photometric="rgb" if pixels.ndim == 3 else "minisblack")
    else:
        iio.imwrite(path, pixels)
    return path


def manifest(folder: Path, *rows: str, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def hole_mask(size: int, value: int = 0) -> np.ndarray:
    """255 = known; a missing block in the middle filled with `value` (0, or a grey that is not binary)."""
    pixels = np.full((size, size), 255, dtype=np.uint8)
    pixels[size // 4 : size // 2, size // 3 : size // 2 + 2] = value
    return pixels


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Four tiny rows: grey denoise with a reference, sr ×2, inpaint with a mask, a 16-bit TIFF denoise."""
    images = tmp_path / "in"
    grey_clean = np.ascontiguousarray(data.camera()[100 : 100 + SIDE, 200 : 200 + SIDE])
    write(images / "grey.png", noisy(grey_clean, 1))
    write(images / "grey_ref.png", grey_clean)
    write(images / "small.png", rgb(2 * SIDE)[::4, ::4])  # SIDE/2 square, restored ×2 to SIDE
    write(images / "holes.png", rgb(SIDE) * (hole_mask(SIDE)[..., None] // 255))
    write(images / "holes_mask.png", hole_mask(SIDE))
    write(images / "deep.tif", noisy(rgb(SIDE).astype(np.uint16) * 257, 2))
    its = ITERATIONS
    return manifest(
        tmp_path,
        f"grey-noisy,denoise,in/grey.png,,,,in/grey_ref.png,,{its},",
        f"small,sr,in/small.png,,2,,,,{its},",
        f"holes,inpaint,in/holes.png,in/holes_mask.png,,,,restored/holes.png,{its},",
        f"deep,denoise,in/deep.tif,,,,,,{its},7",
    )


def ledger_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


# ----- validate --------------------------------------------------------------------------------


def test_validate_demo_manifest_passes() -> None:
    result = invoke("validate", DEMO)
    assert result.exit_code == 0, result.output
    assert "manifest OK: 4 rows (4 images, 0 videos)" in result.output
    video = invoke("validate", DEMO.with_name("demo_video.csv"))
    assert video.exit_code == 0, video.output
    assert "manifest OK: 1 row (0 images, 1 video)" in video.output


def test_validate_lists_every_problem_with_its_row(tmp_path: Path) -> None:
    write(tmp_path / "a.png", rgb(24))
    path = manifest(tmp_path, "a,denoise,a.png,,,,,,,", "b,blur,a.png,,,,,,,", "c,denoise,missing.png,,,,,,,")
    result = invoke("validate", path)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert any(line.startswith("manifest.csv, row 3, column 'task'") and "unknown task" in line for line in lines), lines
    assert any(line.startswith("manifest.csv, row 4, column 'input'") and "file not found" in line for line in lines), lines
    assert "2 problems" in result.stderr
    assert "Traceback" not in result.output


def test_validate_console_script(tmp_path: Path) -> None:
    """The installed `pipeline` entry point (pyproject's console script) runs the same app."""
    exe = shutil.which("pipeline") or str(Path(sys.executable).with_name("pipeline"))
    done = subprocess.run([exe, "validate", str(DEMO)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "manifest OK" in done.stdout


# ----- manifest --------------------------------------------------------------------------------


def test_manifest_for_folder_parses_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "scans" / "one.png", rgb(24))
    write(tmp_path / "scans" / "two photo.png", rgb(24, top=40))
    monkeypatch.chdir(tmp_path)
    result = invoke("manifest", "scans", "--task", "denoise")
    assert result.exit_code == 0, result.output
    (tmp_path / "scans.csv").write_text(result.stdout, encoding="utf-8")
    rows = parse_manifest(tmp_path / "scans.csv")
    assert [(row.id, row.task, row.input) for row in rows] == [
        ("one", "denoise", tmp_path / "scans" / "one.png"),
        ("two_photo", "denoise", tmp_path / "scans" / "two photo.png"),
    ]


def test_manifest_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "a.png", rgb(24))
    result = invoke("manifest", tmp_path, "--task", "sr")
    assert result.exit_code == 2
    assert "needs a scale" in result.stderr and result.stdout == ""
    assert invoke("manifest", tmp_path / "nowhere", "--task", "denoise").exit_code == 2
    assert "Traceback" not in result.output


# ----- run -------------------------------------------------------------------------------------


def test_run_with_a_bad_manifest_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    path = manifest(tmp_path, "a,denoise,missing.png,,,,,,,", "b,inpaint,missing.png,,,,,,,")
    result = invoke("run", path, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "row 2" in result.stderr and "row 3" in result.stderr and "mask" in result.stderr
    assert not (tmp_path / "out").exists()


def test_run_usage_errors_exit_2(tmp_path: Path) -> None:
    assert invoke("run", DEMO).exit_code == 2  # no --out
    assert invoke("run", DEMO, "--out", tmp_path, "--workers", "0").exit_code == 2
    (tmp_path / "file").write_text("x")
    result = invoke("run", DEMO, "--out", tmp_path / "file")
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_dry_run_prints_the_plan_and_writes_nothing(ray_local: None, mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", mixed, "--out", out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "units to run: 4 (2 denoise, 1 inpaint, 1 sr)" in result.stdout
    assert "0 skipped as already done" in result.stdout
    assert "workers: 1 × (2 CPUs each, no GPU)" in result.stdout
    assert f"estimated iterations: at most {4 * ITERATIONS}" in result.stdout
    assert not out.exists()


def test_run_mixed_manifest_end_to_end(ray_local: None, mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", mixed, "--out", out, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "4 units: 4 done, 0 failed" in result.stdout
    assert str(out / "results.jsonl") in result.stdout and str(out / "results.csv") in result.stdout

    grey = iio.imread(out / "grey-noisy.png")
    assert grey.shape == (SIDE, SIDE) and grey.dtype == np.uint8
    assert iio.imread(out / "small.png").shape == (SIDE, SIDE, 3)
    assert iio.imread(out / "restored" / "holes.png").shape == (SIDE, SIDE, 3)
    deep = tifffile.imread(out / "deep.tif")
    assert deep.shape == (SIDE, SIDE, 3) and deep.dtype == np.uint16

    records = ledger_lines(out)
    assert sorted(record["id"] for record in records) == ["deep", "grey-noisy", "holes", "small"]
    assert all(record["status"] == "done" and record["iterations"] == ITERATIONS for record in records)
    by_id = {record["id"]: record for record in records}
    assert by_id["grey-noisy"]["psnr_in"] is not None and by_id["grey-noisy"]["psnr_out"] is not None
    assert by_id["small"]["psnr_out"] is None  # no reference
    table = (out / "results.csv").read_text().splitlines()
    assert table[0].startswith("id,status,") and len(table) == 5

    # Resume: everything is done, so a rerun runs nothing and adds no ledger line.
    again = invoke("run", mixed, "--out", out)
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    assert len(ledger_lines(out)) == 4
    plan = invoke("run", mixed, "--out", out, "--dry-run")
    assert "units to run: 0" in plan.stdout and "4 skipped as already done" in plan.stdout


def test_run_with_a_failing_unit_exits_1_and_keeps_the_rest(ray_local: None, tmp_path: Path) -> None:
    write(tmp_path / "a.png", rgb(SIDE))
    write(tmp_path / "b.jpg", rgb(SIDE, top=60))
    encoded = (tmp_path / "b.jpg").read_bytes()  # cut in its pixel data: passes validation (headers), fails at run time
    (tmp_path / "b.jpg").write_bytes(encoded[: (encoded.index(b"\xff\xda") + len(encoded)) // 2])
    path = manifest(
        tmp_path,
        f"fine,denoise,a.png,,,,,,{ITERATIONS},",
        f"damaged,denoise,b.jpg,,,,,,{ITERATIONS},",
    )
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out, "--retries", "1")
    assert result.exit_code == 1, result.output
    assert "1 done, 1 failed" in result.stderr
    assert "some units failed" in result.stderr
    assert "Traceback" not in result.output

    latest = {record["id"]: record for record in ledger_lines(out)}
    assert latest["fine"]["status"] == "done" and (out / "fine.png").is_file()
    failed = latest["damaged"]
    assert failed["status"] == "failed" and failed["attempt"] == 1  # a file that does not decode is not retried
    assert "cannot decode" in failed["error"] and "row 3" in failed["error"]
    assert not (out / "damaged.png").exists()
    assert "damaged" in (out / "results.csv").read_text()
