"""The local Ray of a `pipeline run` does not outlive it: a driver killed with SIGKILL leaves no Ray
process behind, and SIGTERM or Ctrl-C while Ray starts ends the run with exit code 130, its
message, and Ray shut down. Real `pipeline run` processes, a real local Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline.run.watchdog import Process, alive, descendants, processes, read_process
from tests.conftest import photo

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start_run(folder: Path, iterations: int) -> subprocess.Popen[str]:
    """`pipeline run` on one tiny denoise row capped at `iterations`, its output in files under `folder`."""
    pixels = (photo("astronaut", 0, 100, 20, 24).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    iio.imwrite(folder / "noisy.png", pixels)
    manifest = folder / "manifest.csv"
    manifest.write_text(f"id,task,input,max_iterations\nslow,denoise,noisy.png,{iterations}\n")
    command = [sys.executable, "-m", "pipeline.cli", "run", str(manifest), "--out", str(folder / "out"), "--workers", "1"]
    with open(folder / "stdout.txt", "w") as stdout, open(folder / "stderr.txt", "w") as stderr:
        return subprocess.Popen(command, cwd=REPO, env=ENV, stdout=stdout, stderr=stderr, text=True)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def wait_for_process(driver: subprocess.Popen[str], marker: str, timeout: float = 180.0) -> list[Process]:
    """The driver's processes once one of them has `marker` in its command line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = descendants(driver.pid, processes())
        if any(marker in command_line(process.pid) for process in tree):
            return tree
        assert driver.poll() is None, f"the run ended (exit {driver.returncode}) before a process {marker!r} appeared"
        time.sleep(0.1)
    raise AssertionError(f"no process {marker!r} under the run after {timeout} s")


def follow(driver: subprocess.Popen[str], tree: list[Process], timeout: float) -> list[Process]:
    """`tree` and every process the driver starts until it ends (within `timeout` seconds)."""
    seen = {process.pid: process for process in tree}
    deadline = time.monotonic() + timeout
    while driver.poll() is None:
        assert time.monotonic() < deadline, f"the run did not end within {timeout} s"
        seen.update((process.pid, process) for process in descendants(driver.pid, processes()))
        time.sleep(0.05)
    return list(seen.values())


def survivors(tree: list[Process], within: float) -> list[Process]:
    """Those of `tree` still alive after up to `within` seconds."""
    deadline = time.monotonic() + within
    left = [process for process in tree if alive(process)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [process for process in left if alive(process)]
    return left


def kill_all(tree: list[Process]) -> None:
    for process in tree:
        if alive(process):
            os.kill(process.pid, signal.SIGKILL)


# A driver that starts a watchdog, then a child that starts a grandchild ignoring SIGTERM and exits at
# once (an orphan, as Ray's agents become when their raylet is stopped), then waits.
ORPHAN_DRIVER = """
import subprocess, sys, time
from pipeline.run.watchdog import Watchdog
watchdog = Watchdog.start()
orphan = "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
subprocess.run([sys.executable, "-c", f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {orphan!r}, sys.argv[1]])", sys.argv[1]])
if sys.argv[2] == "stop":
    while not __import__("os").path.exists(sys.argv[1]):
        time.sleep(0.05)
    time.sleep(1.0)
    watchdog.stop()
    print("stopped", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("end", ["SIGKILL", "stop"])
def test_the_watchdog_ends_what_its_driver_started_even_orphans_that_ignore_sigterm(tmp_path: Path, end: str) -> None:
    pid_file = tmp_path / "orphan.pid"
    command = [sys.executable, "-c", ORPHAN_DRIVER, str(pid_file), end]
    driver = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    orphan: Process | None = None
    try:
        deadline = time.monotonic() + 60
        while orphan is None:
            assert time.monotonic() < deadline and driver.poll() is None, "the orphan never started"
            text = pid_file.read_text() if pid_file.exists() else ""
            orphan = read_process(int(text)) if text else None
            time.sleep(0.05)
        assert orphan.ppid == driver.pid  # adopted by the driver (a subreaper), not by PID 1
        if end == "SIGKILL":
            time.sleep(1.0)  # the watchdog has looked by now
            driver.kill()
        else:
            assert driver.stdout is not None and driver.stdout.readline().strip() == "stopped"
        assert not survivors([orphan], within=10.0), "the orphan outlived its driver by 10 s"
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.wait()
        kill_all([orphan] if orphan is not None else [])


def test_a_driver_killed_with_sigkill_leaves_no_ray_process(tmp_path: Path) -> None:
    driver = start_run(tmp_path, iterations=100_000)
    tree: list[Process] = []
    try:
        tree = wait_for_process(driver, "ray::Worker")  # Ray is up and a unit runs
        names = " | ".join(command_line(process.pid) for process in tree)
        assert "raylet" in names and "gcs_server" in names and "ray::DashboardAgent" in names, names
        driver.kill()
        driver.wait(timeout=30)
        left = survivors(tree, within=10.0)
        assert not left, "still running 10 s after the driver was killed: " + "; ".join(
            f"{process.pid} {command_line(process.pid)}" for process in left
        )
    finally:
        if driver.poll() is None:
            driver.kill()
        kill_all(tree)


@pytest.mark.parametrize(("number", "marker"), [(signal.SIGTERM, "gcs_server"), (signal.SIGTERM, "raylet"), (signal.SIGINT, "raylet")])
def test_a_signal_while_ray_starts_exits_130_with_a_message(tmp_path: Path, number: signal.Signals, marker: str) -> None:
    driver = start_run(tmp_path, iterations=100_000)
    tree: list[Process] = []
    try:
        tree = wait_for_process(driver, marker)
        driver.send_signal(number)
        tree = follow(driver, tree, timeout=120.0)
        code = driver.returncode
        stderr = (tmp_path / "stderr.txt").read_text()
        assert code == 130, f"exit {code}; stderr:\n{stderr}"
        assert "interrupted" in stderr, stderr
        assert "Traceback" not in stderr, stderr
        left = survivors(tree, within=10.0)
        assert not left, "Ray processes left: " + "; ".join(command_line(process.pid) for process in left)
        out = tmp_path / "out"
        assert not [path for path in out.rglob("*") if ".tmp" in path.name], "temporary files left"
        assert not (out / "slow.png").exists()
    finally:
        if driver.poll() is None:
            driver.kill()
        kill_all(tree)
