"""Shards of a manifest (`pipeline run --shard i/N`), their ledger files merged on read, and stopping a run early."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import ray.cloudpickle
from typer.testing import CliRunner

from dip_engine import FitConfig, NetConfig, RestoreConfig
from pipeline.cli.app import app
from pipeline.io import atomic_path
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow, parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.run.plan import plan_run
from pipeline.run.shard import Shard
from pipeline.work.image import process_image
from pipeline.work.processors import Processors
from tests.conftest import photo

REPO = Path(__file__).resolve().parents[3]
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers import the processors by value

TINY = RestoreConfig(
    net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)),
    fit=FitConfig(max_iterations=10),
)


def tiny_processor(row: ManifestRow, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_image(row, out_dir, config_override=TINY, **context)


def stalling_processor(row: ManifestRow, out_dir: Path, **context: Any) -> dict[str, Any]:
    """Unit 'slow' starts writing its output, then hangs until its worker is killed."""
    if row.id == "slow":
        with atomic_path(out_dir / row.output) as temporary:
            Path(temporary).write_bytes(b"the first half of an image")
            time.sleep(120)
    return tiny_processor(row, out_dir, **context)


def write_manifest(folder: Path, ids: list[str], iterations: int = 0) -> Path:
    """Tiny coffee crops to denoise; `iterations` > 0 caps the published network's iterations (for the CLI)."""
    (folder / "images").mkdir(parents=True)
    lines = ["id,task,input,max_iterations"]
    for index, unit in enumerate(ids):
        pixels = (photo("coffee", 10 * index, 150, 16, 20).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        iio.imwrite(folder / "images" / f"{unit}.png", pixels)
        lines.append(f"{unit},denoise,images/{unit}.png,{iterations or ''}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def ids_per_line(out: Path) -> list[str]:
    return sorted(json.loads(line)["id"] for path in Ledger(out).files() for line in path.read_text().splitlines())


def leftovers(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if path.name.startswith(".") or ".tmp" in path.name]


# ----- shards ----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 7])
@pytest.mark.parametrize("rows", [0, 1, 5, 23])
def test_the_shards_cover_every_row_exactly_once(count: int, rows: int) -> None:
    items = [f"row{index}" for index in range(rows)]
    parts = [Shard(index, count).select(items) for index in range(count)]
    assert sorted(item for part in parts for item in part) == sorted(items)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert parts == [Shard(index, count).select(items) for index in range(count)]  # the same every time


def test_shard_specs_parse_and_name_their_ledger() -> None:
    shard = Shard.parse(" 2 / 8 ")
    assert (shard.index, shard.count, shard.name, str(shard)) == (2, 8, "shard-2-of-8", "2/8")
    assert Ledger("out", shard=shard.name).path == Path("out/results.shard-2-of-8.jsonl")


@pytest.mark.parametrize("text", ["2", "8/8", "-1/4", "a/b", "1/0"])
def test_bad_shard_specs_say_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="i/N"):
        Shard.parse(text)


def test_a_shard_plans_its_rows_and_skips_what_any_shard_finished(tmp_path: Path) -> None:
    rows = parse_manifest(write_manifest(tmp_path, ["a", "b", "c", "d", "e"]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "d.png").write_bytes(b"done by shard 1 in an earlier run")
    Ledger(out, shard="shard-1-of-2").append({"id": "d", "status": "done", "output": "d.png"})
    first = plan_run(rows, RunOptions(out_dir=out, shard=Shard(0, 2)), cluster={"CPU": 2.0})
    second = plan_run(rows, RunOptions(out_dir=out, shard=Shard(1, 2)), cluster={"CPU": 2.0})
    assert [row.id for row in first.units] == ["a", "c", "e"]
    assert [row.id for row in second.units] == ["b"] and [row.id for row in second.skipped] == ["d"]


def test_the_ledger_merges_every_shard_file_into_one_table(tmp_path: Path) -> None:
    for index, unit in enumerate(["x", "y", "z"]):
        (tmp_path / f"{unit}.png").write_bytes(b"png")
        Ledger(tmp_path, shard=f"shard-{index}-of-3").append({"id": unit, "status": "done", "output": f"{unit}.png"})
    ledger = Ledger(tmp_path)
    assert ledger.done_ids() == {"x", "y", "z"}
    ledger.write_csv()
    assert [line.split(",")[0] for line in (tmp_path / "results.csv").read_text().splitlines()] == ["id", "x", "y", "z"]


def test_two_shards_through_the_command_fill_one_folder(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ["a", "b"], iterations=2)
    out = tmp_path / "out"
    for index in range(2):
        result = CliRunner().invoke(
            app, ["run", str(manifest), "--out", str(out), "--shard", f"{index}/2", "--no-ray", "-q", "--retries", "0"]
        )
        assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.glob("results*")) == ["results.csv", "results.shard-0-of-2.jsonl", "results.shard-1-of-2.jsonl"]
    assert ids_per_line(out) == ["a", "b"] and sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png"]


NO_RAY_SCRIPT = """
import sys
from pathlib import Path

import ray
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.manifest import parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.work.processors import Processors
from tests.pipeline.run.test_shard import tiny_processor

def checked(row, out_dir, **context):
    assert not ray.is_initialized(), "Ray was started for an in-process run"
    return tiny_processor(row, out_dir, **context)

manifest, out = Path(sys.argv[1]), Path(sys.argv[2])
summary = run(parse_manifest(manifest), RunOptions(out_dir=out / "api", in_process=True, processors=Processors(image=checked)))
assert summary.succeeded and summary.state.done == 2, summary.records
result = CliRunner().invoke(app, ["run", str(manifest), "--out", str(out / "cli"), "--no-ray", "-q", "--retries", "0"])
assert result.exit_code == 0, result.output
print("ray initialized:", ray.is_initialized())
"""


def test_an_in_process_run_never_starts_ray(tmp_path: Path) -> None:
    """`run` with in_process (and `pipeline run --no-ray`) neither starts nor joins Ray: checked in a fresh process."""
    manifest = write_manifest(tmp_path, ["a", "b"], iterations=2)
    done = subprocess.run(
        [sys.executable, "-c", NO_RAY_SCRIPT, str(manifest), str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ray initialized: False")
    assert sorted(p.name for p in (tmp_path / "out" / "api").glob("*.png")) == ["a.png", "b.png"]
    assert sorted(p.name for p in (tmp_path / "out" / "cli").glob("*.png")) == ["a.png", "b.png"]


def test_a_bad_shard_option_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(write_manifest(tmp_path, ["a"])), "--out", str(tmp_path / "o"), "--shard", "3"])
    assert result.exit_code == 2 and "--shard takes i/N" in result.output


# ----- stopping early --------------------------------------------------------------------------


def test_a_stop_between_units_in_process_keeps_the_finished_and_resumes(tmp_path: Path) -> None:
    rows = parse_manifest(write_manifest(tmp_path, ["a", "b", "c"]))
    out = tmp_path / "out"

    def after_one() -> bool:
        return (out / "results.jsonl").exists()

    options = RunOptions(out_dir=out, processors=Processors(image=tiny_processor), in_process=True, stop_requested=after_one)
    stopped = run(rows, options)
    assert stopped.stopped and stopped.state.done == 1 and stopped.state.abandoned == ["b", "c"]
    assert ids_per_line(out) == ["a"] and leftovers(out) == []
    resumed = run(rows, RunOptions(out_dir=out, processors=Processors(image=tiny_processor), in_process=True))
    assert not resumed.stopped and resumed.state.skipped == 1 and resumed.state.done == 2
    assert ids_per_line(out) == ["a", "b", "c"]


def test_a_stop_abandons_a_running_unit_after_the_grace_without_a_partial_file(tmp_path: Path, ray_local: Any) -> None:
    rows = parse_manifest(write_manifest(tmp_path, ["fast", "slow", "later"]))
    out = tmp_path / "out"

    def once_fast_is_done() -> bool:
        return (out / "results.jsonl").exists()

    options = RunOptions(
        out_dir=out, workers=2, processors=Processors(image=stalling_processor), stop_requested=once_fast_is_done, stop_grace=0.5
    )
    stopped = run(rows, options)
    assert stopped.stopped and stopped.state.done == 1
    assert sorted(stopped.state.abandoned) == ["later", "slow"]
    assert ids_per_line(out) == ["fast"] and leftovers(out) == [] and not (out / "slow.png").exists()
    resumed = run(rows, RunOptions(out_dir=out, workers=2, processors=Processors(image=tiny_processor)))
    assert resumed.state.done == 2 and ids_per_line(out) == ["fast", "later", "slow"]
