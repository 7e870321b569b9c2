"""Faults of the environment, with real files, file systems and processes: a read-only output
folder, a full disk, a ledger that refuses its next line, edited or replaced inputs.

The file-system tests mount small tmpfs file systems (they need root, as on the CI machine) and
use `chattr +i` (an immutable file, which even root cannot write); where the machine allows
neither they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from skimage import data

from pipeline.manifest import parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.work.image import process_image
from pipeline.work.processors import Processors

REPO = Path(__file__).resolve().parents[1]
SIDE = 192  # a 192² RGB uint8 TIFF is 110,592 bytes of samples: the disk-full test counts in these


def _can(command: list[str]) -> bool:
    return shutil.which(command[0]) is not None and os.geteuid() == 0


def _mount_tmpfs(where: Path, size: str, *, read_only: bool = False) -> None:
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs ({done.stderr.strip()}); the disk tests need root")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(name, size, read_only=False) -> a fresh tmpfs under tmp_path, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, size: str, *, read_only: bool = False) -> Path:
        where = tmp_path / name
        _mount_tmpfs(where, size, read_only=read_only)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """make(path): `chattr +i path` (undone afterwards); skips where chattr does not work."""
    marked: list[Path] = []

    def make(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i does not work here ({done.stderr.strip()})")
        marked.append(path)

    yield make
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def scans(folder: Path, count: int) -> Path:
    """`count` noisy 192² TIFF crops of the astronaut photograph and a manifest restoring them
    to uncompressed TIFFs (2 iterations each: the faults, not the quality, are under test)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["id,task,input,max_iterations"]
    for k in range(count):
        crop = data.astronaut()[40 * k : 40 * k + SIDE, 100 : 100 + SIDE].astype(np.float64)
        noisy = np.clip(crop + rng.normal(0, 25, crop.shape), 0, 255).astype(np.uint8)
        tifffile.imwrite(folder / f"scan{k}.tif", noisy, photometric="rgb")
        lines.append(f"scan{k},denoise,scan{k}.tif,2")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def pipeline_run(manifest: Path, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline.cli", "run", str(manifest), "--out", str(out), "--no-ray", *options]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=environment)


def ledger_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def leftovers(out: Path) -> list[str]:
    """Temporary files of atomic writes (``.NAME.<pid>-<hex>.tmp*``) anywhere under `out`."""
    return [str(path) for path in out.rglob("*") if ".tmp" in path.name]


def assert_outputs_match_the_ledger(out: Path) -> None:
    """No output without its done line, no done line without its output."""
    done = {line["id"]: line["output"] for line in ledger_lines(out) if line["status"] == "done"}
    written = {path.name for path in out.glob("*.tif")}
    assert written == set(done.values()), (written, done)


# ----- the output folder and the disk -----------------------------------------------------------


def test_a_read_only_output_folder_is_refused_before_any_fit(tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    manifest = scans(tmp_path / "in", 1)
    out = tmpfs("readonly", "1m", read_only=True)
    done = pipeline_run(manifest, out)
    assert done.returncode == 2, done.stderr
    assert "the output folder cannot be written" in done.stderr and "Read-only file system" in done.stderr
    assert "Traceback" not in done.stderr and not any(out.iterdir())


def test_an_immutable_ledger_is_refused_before_any_fit(tmp_path: Path, immutable: Callable[[Path], None]) -> None:
    manifest = scans(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("")
    immutable(out / "results.jsonl")
    done = pipeline_run(manifest, out)
    assert done.returncode == 2, done.stderr
    assert "results.jsonl" in done.stderr and "Operation not permitted" in done.stderr
    assert not (out / "scan0.tif").exists()


def test_a_full_disk_fails_its_unit_once_stops_the_run_and_a_rerun_completes(tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    manifest = scans(tmp_path / "in", 4)
    disk = tmpfs("disk", "2m")
    out = disk / "out"
    # Leave room for one restored scan (110,592 bytes), the ledger and the table, not for two.
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(disk).free - 180_000))
    done = pipeline_run(manifest, out)
    assert done.returncode == 1, done.stderr
    assert "the run stopped taking units" in done.stderr and "No space left on device" in done.stderr
    assert "scan1.tif" in done.stderr  # the file that could not be written
    assert "Traceback" not in done.stderr
    lines = ledger_lines(out)
    assert [(line["id"], line["status"], line["attempt"]) for line in lines] == [("scan0", "done", 1), ("scan1", "failed", 1)]
    assert "retry" not in done.stdout + done.stderr  # a refused write is not retried
    assert (out / "results.csv").exists() and not leftovers(out)
    assert_outputs_match_the_ledger(out)

    filler.unlink()  # space freed: the same command finishes the rest
    again = pipeline_run(manifest, out)
    assert again.returncode == 0, again.stderr
    latest = {line["id"]: line["status"] for line in ledger_lines(out)}
    assert latest == dict.fromkeys(["scan0", "scan1", "scan2", "scan3"], "done")
    assert [line["id"] for line in ledger_lines(out)].count("scan0") == 1  # not redone
    assert_outputs_match_the_ledger(out)


def test_the_plan_warns_when_the_output_folder_has_less_space_than_the_run_may_write(tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    manifest = scans(tmp_path / "in", 4)  # 4 × 192² RGB: 884,736 bytes at 16 bits
    small = tmpfs("small", "512k")
    done = pipeline_run(manifest, small / "out", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stdout and "free, and this run may write up to" in done.stdout
    roomy = pipeline_run(manifest, tmp_path / "out", "--dry-run")
    assert roomy.returncode == 0 and "warning:" not in roomy.stdout


def _around(action: Callable[[Path], None], unit: int, *, before: bool = False) -> Processors:
    """The real image processor, with `action(out_dir)` run after the `unit`-th unit (from 1) has
    written its output (before its ledger line), or with `before` just before that unit starts."""
    count = 0

    def image(row: Any, out_dir: Path, **keywords: Any) -> dict[str, Any]:
        nonlocal count
        count += 1
        if before and count == unit:
            action(out_dir)
        record = process_image(row, out_dir, **keywords)
        if not before and count == unit:
            action(out_dir)
        return record

    return Processors(image=image)


def test_an_output_whose_ledger_line_cannot_be_written_is_removed(tmp_path: Path, immutable: Callable[[Path], None]) -> None:
    """The ledger refuses the second unit's line (made immutable after its image was written):
    that image is removed, the run stops taking units, and nothing is recorded without its file."""
    rows = parse_manifest(scans(tmp_path / "in", 3))
    out = tmp_path / "out"
    summary = run(rows, RunOptions(out_dir=out, in_process=True, processors=_around(lambda folder: immutable(folder / "results.jsonl"), 2)))
    assert summary.write_error is not None and "cannot record unit scan1" in summary.write_error
    assert [(line["id"], line["status"]) for line in ledger_lines(out)] == [("scan0", "done")]
    assert not (out / "scan1.tif").exists() and not (out / "scan2.tif").exists()
    assert_outputs_match_the_ledger(out)
    subprocess.run(["chattr", "-i", str(out / "results.jsonl")], check=True)
    again = run(rows, RunOptions(out_dir=out, in_process=True))
    assert again.succeeded and again.state.done == 2 and again.state.skipped == 1
    assert_outputs_match_the_ledger(out)


def test_a_disk_that_fills_up_mid_run_fails_the_unit_without_output_and_stops(tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    """The disk fills completely once the first unit is recorded: the second cannot write its
    image and fails at once (its failed line still fits the ledger's last block, or is lost:
    either way no output), no third unit starts, and the first unit stays recorded."""
    rows = parse_manifest(scans(tmp_path / "in", 3))
    disk = tmpfs("full", "1m")
    out = disk / "out"

    def fill(_: Path) -> None:
        try:
            with open(disk / "filler", "wb") as handle:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        except OSError:  # full (raised by a write, or by the close's flush)
            pass

    summary = run(rows, RunOptions(out_dir=out, in_process=True, processors=_around(fill, 2, before=True)))
    assert summary.write_error is not None and not summary.state.retry_lines
    assert [(line["id"], line["status"]) for line in ledger_lines(out)] in ([("scan0", "done")], [("scan0", "done"), ("scan1", "failed")])
    assert "No space left on device" in summary.write_error and not (out / "scan1.tif").exists()
    assert_outputs_match_the_ledger(out)
    assert not leftovers(out)


# ----- stale results ------------------------------------------------------------------------------


def test_a_row_whose_input_or_parameters_changed_is_redone_and_the_plan_says_so(tmp_path: Path) -> None:
    manifest = scans(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert pipeline_run(manifest, out, "-q").returncode == 0
    first = {line["id"]: line for line in ledger_lines(out)}
    assert all(line["fingerprint"]["row"] and line["fingerprint"]["files"] for line in first.values())

    # scan0's input replaced by another photograph; scan1's seed edited; scan2 untouched.
    replacement = np.clip(data.coffee()[:SIDE, :SIDE].astype(np.float64), 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "in" / "scan0.tif", replacement, photometric="rgb")
    text = manifest.read_text().replace("scan1,denoise,scan1.tif,2", "scan1,denoise,scan1.tif,3")
    manifest.write_text(text)
    again = pipeline_run(manifest, out)
    assert again.returncode == 0, again.stderr
    assert "2 rows changed since they were done (input, parameters or version): redone (scan0, scan1)" in again.stdout
    lines = ledger_lines(out)
    assert [line["id"] for line in lines].count("scan2") == 1  # unchanged: skipped
    latest = {line["id"]: line for line in lines}
    assert latest["scan1"]["iterations"] == 3 and latest["scan0"]["fingerprint"] != first["scan0"]["fingerprint"]

    quiet = pipeline_run(manifest, out)  # nothing changed since: nothing to do
    assert quiet.returncode == 0 and "nothing to do" in quiet.stdout


def test_lines_without_a_fingerprint_count_as_current(tmp_path: Path) -> None:
    """A ledger written before fingerprints existed is resumed as it was: no row is redone."""
    rows = parse_manifest(scans(tmp_path / "in", 1))
    out = tmp_path / "out"
    assert run(rows, RunOptions(out_dir=out, in_process=True)).succeeded
    lines = ledger_lines(out)
    for line in lines:
        del line["fingerprint"]
    (out / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    again = run(rows, RunOptions(out_dir=out, in_process=True))
    assert again.records == [] and again.state.skipped == 1


# ----- rows of a large manifest -------------------------------------------------------------------


def test_one_bad_row_refuses_the_run_unless_skipped_then_it_is_recorded_as_failed(tmp_path: Path) -> None:
    manifest = scans(tmp_path / "in", 3)
    (tmp_path / "in" / "scan1.tif").unlink()  # row 3's input is gone
    out = tmp_path / "out"
    strict = pipeline_run(manifest, out)
    assert strict.returncode == 2
    assert "row 3" in strict.stderr and "scan1.tif" in strict.stderr and "add --skip-invalid" in strict.stderr
    assert not ledger_lines(out)

    skipping = pipeline_run(manifest, out, "--skip-invalid")
    assert skipping.returncode == 1, skipping.stderr
    assert "1 invalid row of the manifest was not run" in skipping.stderr
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert latest["scan0"]["status"] == "done" and latest["scan2"]["status"] == "done"
    failed = latest["scan1"]
    assert failed["status"] == "failed" and failed["row"] == 3 and failed["error"].startswith("invalid row: column 'input'")
    assert "scan1,failed" in (out / "results.csv").read_text()


def test_an_input_moved_away_after_its_row_was_done_does_not_stop_the_rerun(tmp_path: Path) -> None:
    manifest = scans(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert pipeline_run(manifest, out, "-q").returncode == 0
    (tmp_path / "in" / "scan0.tif").rename(tmp_path / "scan0-archived.tif")
    again = pipeline_run(manifest, out)
    assert again.returncode == 0, again.stderr
    assert "nothing to do: all 2 units are already done" in again.stdout
