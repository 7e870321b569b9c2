"""`pipeline slurm submit` without a cluster: the script written next to the output, sbatch's answer, --dry-run."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from typer.testing import CliRunner

from pipeline.cli.app import app
from pipeline.slurm.commands import SlurmCommands
from pipeline.slurm.render import JobRequest
from pipeline.slurm.submit import script_text, submit_job


def fake_sbatch(calls: list[list[str]]) -> Any:
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "4242\n", "")

    return run


def manifest(folder: Path) -> Path:
    iio.imwrite(folder / "a.png", np.zeros((8, 8), dtype=np.uint8))
    (folder / "m.csv").write_text("id,task,input\na,denoise,a.png\n")
    return folder / "m.csv"


def test_the_script_goes_into_the_output_folder_and_sbatch_gets_it(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    job = JobRequest(manifest=tmp_path / "m.csv", out=tmp_path / "out", python="python3", array=2)
    submission = submit_job(job, SlurmCommands(fake_sbatch(calls)), now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert submission.job_id == "4242"
    assert submission.script == tmp_path / "out" / "slurm" / "array-20260102T030405000000Z.sbatch"
    assert calls == [["sbatch", "--parsable", str(submission.script)]]
    assert submission.script.read_text() == script_text(job) and os.access(submission.script, os.X_OK)


def test_dry_run_prints_the_script_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["slurm", "submit", str(manifest(tmp_path)), "--out", str(out), "--nodes", "2", "--gpus-per-node", "4", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "#SBATCH --nodes=2\n" in result.output and "#SBATCH --gres=gpu:4\n" in result.output
    assert f"DIP_OUT={out}\n" in result.output and not out.exists()


def test_a_bad_request_is_refused_before_sbatch(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["slurm", "submit", str(manifest(tmp_path)), "--out", str(tmp_path / "o"), "--array", "2", "--nodes", "2"]
    )
    assert result.exit_code == 2 and "--array N runs N one-node tasks" in result.output


def test_a_broken_manifest_is_refused_before_sbatch(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("id,task,input\na,denoise,missing.png\n")
    result = CliRunner().invoke(app, ["slurm", "submit", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "missing.png" in result.output and not (tmp_path / "o").exists()
