"""`pipeline status OUT`: a real job array of two shards run in this process, then synthetic folders
(failed rows, a stalled run, a manifest gone, a folder that is not an output folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from pipeline.cli.app import app
from pipeline.io import write_image
from pipeline.ledger import Ledger
from pipeline.run.run_file import read_run_files
from tests.conftest import photo

REPO = Path(__file__).resolve().parents[3]


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed:\n{result.output}") from result.exception
    return result


def write_manifest(folder: Path, ids: list[str], iterations: int = 5) -> Path:
    lines = ["id,task,input,max_iterations"]
    for index, row_id in enumerate(ids):
        write_image(folder / f"{row_id}.png", photo("astronaut", 30 * index, 120, 24, 20))
        lines.append(f"{row_id},denoise,{row_id}.png,{iterations}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_status_follows_a_job_array_shard_by_shard(tmp_path: Path) -> None:
    manifest, out = write_manifest(tmp_path, ["first", "second"]), tmp_path / "out"
    first = invoke("run", manifest, "--out", out, "--no-ray", "--shard", "0/2", "--quiet")
    assert first.exit_code == 0, first.output
    runs = read_run_files(out)
    assert list(runs) == ["run.shard-0-of-2.json"] and not (out / "logs").exists()  # without Ray, no Ray log
    info = runs["run.shard-0-of-2.json"]
    assert info["manifest"] == str(manifest.resolve()) and info["options"]["shard"] == "0/2"
    assert info["units"]["total"] == 1 and info["rows"] == {"manifest": 2, "invalid": 0, "planned": 1, "skipped": 0}

    halfway = invoke("status", out)
    assert halfway.exit_code == 0, halfway.output
    assert f"manifest: {manifest.resolve()} (2 rows)" in halfway.stdout  # found through the run file
    assert "rows: 1 done, 0 failed, 1 pending, of 2" in halfway.stdout
    assert "pending rows (1):\n  second (row 3)\n" in halfway.stdout
    assert "time to finish: about " in halfway.stdout and "last result: " in halfway.stdout
    assert "slowest units:\n  first " in halfway.stdout

    second = invoke("run", manifest, "--out", out, "--no-ray", "--shard", "1/2", "--quiet")
    assert second.exit_code == 0, second.output
    done = invoke("status", out)
    assert "rows: 2 done, 0 failed, 0 pending, of 2" in done.stdout and "time to finish: nothing pending" in done.stdout
    assert "runs: 2 run files (shards of 2)" in done.stdout and "2 units planned in all" in done.stdout

    # A line lost (or a unit redone): its row is pending again. --json, from another process, for scripts.
    shard_file = out / "results.shard-1-of-2.jsonl"
    shard_file.write_text("")
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pipeline.cli", "status", str(out), "--json"]
    printed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False, env=environment)
    assert printed.returncode == 0, printed.stderr
    report = json.loads(printed.stdout)
    assert report["rows"] == {"total": 2, "done": 1, "failed": 0, "pending": 1}
    assert [row["id"] for row in report["pending_rows"]] == ["second"] and report["eta_seconds"] > 0
    assert report["manifest_read"] and sorted(report["runs"]) == ["run.shard-0-of-2.json", "run.shard-1-of-2.json"]

    # The manifest moved away: what the ledger says, and that the manifest could not be read.
    manifest.rename(tmp_path / "elsewhere.csv")
    alone = invoke("status", out)
    assert alone.exit_code == 0, alone.output
    assert "the manifest could not be read (manifest file not found:" in alone.stdout
    assert "rows: 1 done, 0 failed, 0 pending, of 1" in alone.stdout
    again = invoke("status", out, "--manifest", tmp_path / "elsewhere.csv")
    assert "rows: 1 done, 0 failed, 1 pending, of 2" in again.stdout


def ledger_line(unit_id: str, minutes_ago: float, status: str = "done", **fields: Any) -> dict[str, Any]:
    moment = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return {
        "id": unit_id,
        "status": status,
        "kind": "image",
        "output": f"{unit_id}.png",
        "seconds": 30.0,
        "worker": "gpu-node-7:cuda0",
        "finished_at": moment.isoformat(timespec="milliseconds"),
        **fields,
    }


def test_failed_rows_are_listed_with_their_reasons_then_counted(tmp_path: Path) -> None:
    ids = [f"scan{index}" for index in range(9)]
    (tmp_path / "m.csv").write_text("id,task,input\n" + "".join(f"{row_id},denoise,in/{row_id}.png\n" for row_id in ids))
    out = tmp_path / "out"
    ledger = Ledger(out)
    for index, row_id in enumerate(ids[:7]):
        ledger.append(ledger_line(row_id, 60 - index, status="failed", error=f"cannot decode in/{row_id}.png", row=index + 2))
    ledger.append(ledger_line(ids[7], 45))
    (out / f"{ids[7]}.png").write_bytes(b"restored")
    result = invoke("status", out, "--manifest", tmp_path / "m.csv", "--show", "3")
    assert result.exit_code == 0, result.output
    assert "rows: 1 done, 7 failed, 1 pending, of 9" in result.stdout
    assert "failed rows (first 3 of 7):\n  scan0 (row 2): cannot decode in/scan0.png\n" in result.stdout
    assert "  and 4 more\n" in result.stdout
    assert "no new result for 45 min while rows are pending" in result.stdout  # the last line came 45 min ago
    assert "on gpu-node-7:cuda0" in result.stdout


def test_an_output_folder_without_a_ledger_or_run_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        result = invoke("status", folder)
        assert result.exit_code == 2 and "no ledger (results.jsonl) and no run.json" in result.stderr, result.output
