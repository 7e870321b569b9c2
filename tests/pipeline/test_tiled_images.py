"""Large images through the pipeline: groups of tiles as units on the queue, blended by an assembly, resumed by group."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import ray.cloudpickle
import tifffile
from skimage import data
from typer.testing import CliRunner

from dip_engine import FitConfig, NetConfig, Performance, RestoreConfig, psnr
from pipeline.cli.app import app
from pipeline.io import read_image
from pipeline.ledger import Ledger
from pipeline.manifest import parse_manifest
from pipeline.records import TileGroupRecord
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.run.plan import plan_run
from pipeline.work.processors import Processors
from pipeline.work.tile_group import process_tile_group
from pipeline.work.units import TileGroupUnit

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers import the processors by value

TINY = RestoreConfig(
    net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)),
    fit=FitConfig(max_iterations=4, performance=Performance()),
)


def tiny_group(unit: TileGroupUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_tile_group(unit, out_dir, config_override=TINY, **context)


def failing_group(unit: TileGroupUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    """Group 2 fails for good (an input the engine rejects, say); the others run."""
    if unit.index == 2:
        raise ValueError(f"simulated failure of {unit.id}")
    return tiny_group(unit, out_dir, **context)


def dying_group(unit: TileGroupUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    """Kills its worker process the first time it runs group 1."""
    marker = out_dir.parent / "died"
    if unit.index == 1 and not marker.exists():
        marker.touch()
        os._exit(1)
    return tiny_group(unit, out_dir, **context)


def noisy_astronaut(folder: Path, *, sixteen_bits: bool = False) -> tuple[Path, Path]:
    """The 512×512 astronaut with σ = 25 noise, as a PNG (or a 16-bit TIFF), and its clean reference."""
    folder.mkdir(parents=True, exist_ok=True)
    clean = data.astronaut().astype(np.float64) / 255
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    if sixteen_bits:
        path = folder / "scan.tif"
        tifffile.imwrite(path, np.round(noisy * 65535).astype(np.uint16), photometric="rgb")
    else:
        path = folder / "scan.png"
        iio.imwrite(path, np.round(noisy * 255).astype(np.uint8))
    reference = folder / "clean.png"
    iio.imwrite(reference, data.astronaut())
    return path, reference


def manifest(folder: Path, *lines: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def ledger_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line]


def test_a_large_image_runs_as_tile_groups_and_resumes_only_the_unfinished(tmp_path: Path, ray_local: Any) -> None:
    scan, reference = noisy_astronaut(tmp_path / "in")
    rows = parse_manifest(manifest(tmp_path, "id,task,input,reference", f"scan,denoise,{scan},{reference}"))
    out = tmp_path / "out"

    def options(processor: Any) -> RunOptions:
        return RunOptions(
            out_dir=out, workers=2, retries=0, tile=256, tile_overlap=32, tile_batch=2, processors=Processors(tile_group=processor)
        )

    plan = plan_run(rows, options(tiny_group), cluster={"CPU": 2.0})
    groups = [unit for unit in plan.units if isinstance(unit, TileGroupUnit)]
    assert [len(group.tiles) for group in groups] == [2, 2, 2, 2, 1]  # a 3×3 grid of 256-px tiles in groups of 2
    assert plan.unit_count == 6 and plan.images == []

    failed = run(rows, options(failing_group))
    assert not failed.succeeded
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert [latest[f"scan#tiles000{i}"]["status"] for i in range(5)] == ["done", "done", "failed", "done", "done"]
    assert latest["scan"]["status"] == "failed" and "tile group 2 (tiles 4-5) failed" in latest["scan"]["error"]
    assert not (out / "scan.png").exists() and sorted(p.name for p in (out / ".tiles" / "scan").iterdir()) == [
        "0000.npy",
        "0001.npy",
        "0003.npy",
        "0004.npy",
    ]

    resumed = run(rows, options(tiny_group))
    assert resumed.succeeded and resumed.state.skipped == 4
    assert [record["id"] for record in resumed.records] == ["scan#tiles0002", "scan"]
    image = resumed.records[-1]
    assert (image["tiles"], image["tile"], image["tile_groups"]) == (9, 256, 5) and image["iterations"] == 9 * 4
    restored = read_image(out / "scan.png").pixels
    clean = read_image(reference).pixels
    assert restored.shape == (3, 512, 512) and image["psnr_out"] == pytest.approx(psnr(restored, clean), abs=1e-3)
    assert not (out / ".tiles").exists()


def test_a_worker_killed_mid_group_is_replaced_and_the_group_redone(tmp_path: Path, ray_local: Any) -> None:
    scan, _ = noisy_astronaut(tmp_path / "in")
    rows = parse_manifest(manifest(tmp_path, "id,task,input", f"scan,denoise,{scan}"))
    out = tmp_path / "out"
    options = RunOptions(out_dir=out, workers=2, tile=256, tile_overlap=32, tile_batch=3, processors=Processors(tile_group=dying_group))
    summary = run(rows, options)
    assert (tmp_path / "died").exists() and summary.succeeded and summary.state.retried == 1
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert latest["scan#tiles0001"]["attempt"] == 2 and latest["scan"]["status"] == "done"
    assert [path.name for path in out.rglob("*") if ".tmp" in path.name] == []


def test_a_16_bit_tiff_scan_stays_16_bit_through_tiles(tmp_path: Path) -> None:
    scan, _ = noisy_astronaut(tmp_path / "in", sixteen_bits=True)
    rows = parse_manifest(manifest(tmp_path, "id,task,input", f"scan,denoise,{scan}"))
    out = tmp_path / "out"
    summary = run(rows, RunOptions(out_dir=out, in_process=True, tile=256, tile_batch=9, processors=Processors(tile_group=tiny_group)))
    assert summary.succeeded, summary.records
    written = tifffile.imread(out / "scan.tif")
    assert written.dtype == np.uint16 and written.shape == (512, 512, 3)
    assert summary.records[-1]["bit_depth"] == "uint16" and len(np.unique(written)) > 256  # more levels than 8 bits hold
    groups, image = summary.records[:-1], summary.records[-1]
    assert all(group["rules"] == {"variance": group["tiles"]} for group in groups)  # each tile's rule, counted
    assert image["rule"] == "variance" and image["trace"] is None  # the tiles agree; many fits have no one trace


def test_the_dry_run_shows_the_tiling_and_refuses_what_cannot_fit(tmp_path: Path) -> None:
    scan, _ = noisy_astronaut(tmp_path / "in")
    small = tmp_path / "in" / "small.png"
    iio.imwrite(small, data.astronaut()[:64, :64])
    path = manifest(tmp_path, "id,task,input,max_iterations", f"scan,denoise,{scan},100", f"small,denoise,{small},100")
    out = tmp_path / "out"
    shown = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--dry-run", "--no-ray", "--tile", "256", "--tile-batch", "4"])
    assert shown.exit_code == 0, shown.output
    assert "units to run: 5 (1 denoise, 3 tile groups, 1 tiled image assembly)" in shown.stdout
    assert "images tiled: 1 image in 9 tiles of 256 px (overlap 32) in 3 tile groups" in shown.stdout
    assert (
        "estimated peak of one unit: denoise" in shown.stdout
        and "iterations per fit (the caps; per tile when tiled): denoise 100" in shown.stdout
    )
    assert not out.exists()

    refused = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--dry-run", "--no-ray", "--memory-per-worker", "1M"])
    assert refused.exit_code == 2
    assert "row 2 (id scan)" in refused.output and "--memory-per-worker" in refused.output and "cannot be planned" in refused.output
    validated = CliRunner().invoke(app, ["validate", str(path), "--memory-per-worker", "1M"])
    assert validated.exit_code == 2 and "row 2 (id scan)" in validated.output and "row 3 (id small)" in validated.output


def identity_group(unit: TileGroupUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    """A stand-in restoration that returns each tile as it was given, stored the way process_tile_group stores tiles."""
    x0 = read_image(unit.row.input).pixels
    target = out_dir / unit.output
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, np.stack([tile.crop(x0).numpy() for tile in unit.tiles]))
    return TileGroupRecord.of(unit.row, unit.output.as_posix(), **unit.record_fields(), iterations=0, worker=context["worker"]).to_dict()


@pytest.mark.parametrize("tile, overlap", [(256, 32), (200, 48), (97, 13)])
def test_tiles_blended_by_the_assembly_give_back_the_image_exactly(tmp_path: Path, tile: int, overlap: int) -> None:
    """Tiling and blending end to end (groups stored, read back, blended, written) is the identity on unrestored tiles."""
    scan, _ = noisy_astronaut(tmp_path / "in")
    rows = parse_manifest(manifest(tmp_path, "id,task,input", f"scan,denoise,{scan}"))
    out = tmp_path / "out"
    options = RunOptions(
        out_dir=out, in_process=True, tile=tile, tile_overlap=overlap, tile_batch=4, processors=Processors(tile_group=identity_group)
    )
    summary = run(rows, options)
    assert summary.succeeded and summary.records[-1]["tiles"] > 4
    assert np.array_equal(iio.imread(out / "scan.png"), iio.imread(scan))
    assert Ledger(out).done_ids() == {"scan"} and not (out / ".tiles").exists()  # the groups' tiles went with the work folder
    again = plan_run(rows, options, cluster={"CPU": 2.0})
    assert [row.id for row in again.skipped] == ["scan"] and again.units == []
