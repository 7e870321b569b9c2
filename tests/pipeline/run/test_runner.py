"""A run on a real local Ray cluster: resume, a worker killed mid-unit, retries, failures."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import ray.cloudpickle

from dip_engine import FitConfig, NetConfig, RestoreConfig
from pipeline.io import atomic_path
from pipeline.manifest import ManifestRow, parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.run.plan import plan_run
from pipeline.work.image import process_image
from pipeline.work.processors import Processors
from tests.conftest import photo

# Workers import this module's processors by value: the tests folder is not on their path.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TINY = RestoreConfig(
    net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)),
    fit=FitConfig(max_iterations=15),
)


def tiny_processor(row: ManifestRow, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_image(row, out_dir, config_override=TINY, **context)


def dying_processor(row: ManifestRow, out_dir: Path, **context: Any) -> dict[str, Any]:
    """Kills its worker process in the middle of writing the first attempt at unit 'victim'."""
    marker = out_dir.parent / f"died-{row.id}"
    if row.id == "victim" and not marker.exists():
        marker.touch()
        with atomic_path(out_dir / row.output) as temporary:
            Path(temporary).write_bytes(b"half an image")
            os._exit(1)
    return tiny_processor(row, out_dir, **context)


def flaky_processor(row: ManifestRow, out_dir: Path, **context: Any) -> dict[str, Any]:
    """'broken' always fails, as a bad input does (a ValueError); 'flaky' fails on its first attempt
    only, as a crash might (a RuntimeError)."""
    if row.id == "broken":
        raise ValueError(f"simulated failure of {row.id} (attempt {context['attempt']})")
    if row.id == "flaky" and context["attempt"] == 1:
        raise RuntimeError(f"simulated crash of {row.id} (attempt {context['attempt']})")
    return tiny_processor(row, out_dir, **context)


def write_manifest(folder: Path, ids: list[str]) -> list[ManifestRow]:
    images = folder / "images"
    images.mkdir(parents=True)
    lines = ["id,task,input"]
    for index, unit in enumerate(ids):
        pixels = (photo("astronaut", 20 * index, 100, 20, 24).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        iio.imwrite(images / f"{unit}.png", pixels)
        lines.append(f"{unit},denoise,images/{unit}.png")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return parse_manifest(manifest)


def ledger_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


def test_resume_skips_finished_units_and_redoes_removed_ones(tmp_path: Path, ray_local: Any) -> None:
    rows = write_manifest(tmp_path, ["a", "b", "c"])
    out = tmp_path / "out"
    options = RunOptions(out_dir=out, workers=2, processors=Processors(image=tiny_processor))
    first = run(rows, options)
    assert first.succeeded and first.state.done == 3
    ledger_before = (out / "results.jsonl").read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert sorted(mtimes) == ["a.png", "b.png", "c.png"]

    again = run(rows, options)
    assert again.state.skipped == 3 and again.state.done == 0 and again.records == []
    assert (out / "results.jsonl").read_bytes() == ledger_before
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes

    kept = [line for line in ledger_before.decode().splitlines() if json.loads(line)["id"] != "b"]
    (out / "results.jsonl").write_text("\n".join(kept) + "\n")
    redo = run(rows, options)
    assert [r["id"] for r in redo.records] == ["b"] and redo.state.skipped == 2
    assert sorted(line["id"] for line in ledger_lines(out)) == ["a", "b", "c"]

    forced = run(rows, RunOptions(out_dir=out, workers=2, processors=Processors(image=tiny_processor), force=True))
    assert forced.state.done == 3 and len(ledger_lines(out)) == 6


def test_a_killed_worker_loses_nothing(tmp_path: Path, ray_local: Any) -> None:
    rows = write_manifest(tmp_path, ["first", "victim", "last"])
    out = tmp_path / "out"
    summary = run(rows, RunOptions(out_dir=out, workers=2, processors=Processors(image=dying_processor)))
    assert (tmp_path / "died-victim").exists()  # the worker really died mid-write
    assert summary.succeeded and summary.state.done == 3 and summary.state.retried == 1
    lines = ledger_lines(out)
    assert sorted(line["id"] for line in lines) == ["first", "last", "victim"]
    victim = next(line for line in lines if line["id"] == "victim")
    assert victim["status"] == "done" and victim["attempt"] == 2
    assert iio.imread(out / "victim.png").shape == (20, 24, 3)
    assert leftovers(out) == []


def test_transient_failures_are_retried_and_permanent_ones_recorded_at_once(tmp_path: Path, ray_local: Any) -> None:
    rows = write_manifest(tmp_path, ["ok", "flaky", "broken"])
    out = tmp_path / "out"
    summary = run(rows, RunOptions(out_dir=out, workers=2, retries=1, processors=Processors(image=flaky_processor)))
    assert not summary.succeeded
    assert summary.state.done == 2 and summary.state.failed == 1
    by_id = {line["id"]: line for line in ledger_lines(out)}
    assert by_id["flaky"]["status"] == "done" and by_id["flaky"]["attempt"] == 2
    assert by_id["broken"]["status"] == "failed" and by_id["broken"]["attempt"] == 1  # a bad input is not retried
    assert "simulated failure of broken (attempt 1)" in by_id["broken"]["error"]
    assert len(summary.state.retry_lines) == 1
    assert (
        summary.state.retry_lines[0].startswith("row 3 (flaky): attempt 1 failed (")
        and "attempt 2 of 2 queued" in summary.state.retry_lines[0]
    )
    assert not (out / "broken.png").exists()
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("id,status")
    # A rerun retries only the failed unit.
    rerun = run(rows, RunOptions(out_dir=out, workers=2, retries=0, processors=Processors(image=flaky_processor)))
    assert [r["id"] for r in rerun.records] == ["broken"] and rerun.state.skipped == 2


def test_plan_shards_by_gpus_or_cpu_workers(tmp_path: Path) -> None:
    rows = write_manifest(tmp_path, ["a", "b"])
    options = RunOptions(out_dir=tmp_path / "out")
    gpu = plan_run(rows, options, cluster={"CPU": 32.0, "GPU": 4.0})
    assert (gpu.workers, gpu.gpus_per_worker, gpu.cpus_per_worker) == (4, 1, 8)
    cpu = plan_run(rows, RunOptions(out_dir=tmp_path / "out", workers=3), cluster={"CPU": 6.0})
    assert (cpu.workers, cpu.gpus_per_worker, cpu.cpus_per_worker) == (3, 0, 2)
    assert len(cpu.units) == 2 and cpu.estimated_iterations == 2 * 3000
