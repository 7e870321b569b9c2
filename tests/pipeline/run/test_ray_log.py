"""Ray's own output goes to a log file in the output folder; the run's own lines stay on the terminal.

First `RayOutput` alone, on each way Ray's lines leave the driver (the ``ray`` logger,
``print`` from its threads as for the "(raylet)" dump, warnings on ``sys.stderr``, and writes
straight to descriptors 1 and 2); then a real `pipeline run` process on a real local Ray.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.io import write_image
from pipeline.run.ray_log import RayOutput, diverted, ray_log_path, terminal_stream
from tests.conftest import photo

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RAY_LOG_LINE = re.compile(r"\t(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+\.py:\d+ -- ")  # Ray's logging format


def test_every_way_out_of_the_driver_lands_in_the_log(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import ray._private.worker

    path = ray_log_path(tmp_path / "out")
    output = RayOutput(path)
    ray_logger = logging.getLogger("ray")
    handlers = list(ray_logger.handlers)
    output.start()
    try:
        assert diverted()
        logging.getLogger("ray.some_module").warning("a warning of Ray's logger")
        print("printed to sys.stderr, as warnings.warn does", file=sys.stderr)
        ray._private.worker.print_to_stdstream(
            {"lines": ["Raylet is terminated. (a dump)"], "pid": "raylet", "is_err": False}, ignore_prefix=False
        )
        print("printed to sys.stdout")
        os.write(1, b"written to descriptor 1\n")
        os.write(2, b"written to descriptor 2 (glog)\n")
        stream = terminal_stream(stderr=False)
        assert stream is not None
        print("the run's own line", file=stream)
        print("the run's own error", file=terminal_stream(stderr=True))
    finally:
        output.stop()
    assert not diverted() and terminal_stream() is None and ray_logger.handlers == handlers
    captured = capfd.readouterr()
    assert captured.out == "the run's own line\n" and captured.err == "the run's own error\n"
    log = path.read_text()
    for text in (
        "a warning of Ray's logger",
        "printed to sys.stderr",
        "(raylet)",
        "Raylet is terminated. (a dump)",
        "printed to sys.stdout",
    ):
        assert text in log, log
    assert "written to descriptor 1" in log and "written to descriptor 2 (glog)" in log
    print("after")  # everything is back
    os.write(2, b"descriptor 2 after\n")
    assert capfd.readouterr() == ("after\n", "descriptor 2 after\n")


def test_a_dry_runs_log_is_temporary_and_verbose_keeps_everything_on_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    temporary = RayOutput(None)
    temporary.start()
    assert temporary.path is not None and temporary.path.is_file() and temporary.kept_path is None
    temporary.stop()
    assert not temporary.path.exists()
    verbose = RayOutput(Path("/nonexistent/logs/ray-driver.log"), keep=True)
    verbose.start()
    assert not diverted()
    os.write(2, b"stays\n")
    verbose.stop()
    assert capfd.readouterr().err == "stays\n"


def test_a_run_shows_only_its_own_lines_and_logs_rays(tmp_path: Path) -> None:
    lines = ["id,task,input,max_iterations"]
    for index, row_id in enumerate(["one", "two"]):
        write_image(tmp_path / f"{row_id}.png", photo("astronaut", 30 * index, 120, 16, 16))
        lines.append(f"{row_id},denoise,{row_id}.png,3")
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline.cli", "run", str(tmp_path / "manifest.csv"), "--out", str(out), "--workers", "1"]
    done = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "units to run: 2 (2 denoise)" in done.stdout and "2 units: 2 done, 0 failed" in done.stdout
    terminal = done.stdout + done.stderr
    assert "Started a local Ray instance" not in terminal and "(raylet)" not in terminal, terminal
    assert not RAY_LOG_LINE.search(terminal), terminal
    log = (out / "logs" / "ray-driver.log").read_text()
    assert "Started a local Ray instance" in log and "Ray's session logs (raylet, GCS, workers) on this machine: " in log
    assert f"Ray's log: {out / 'logs' / 'ray-driver.log'}" in done.stdout
