"""A run over a real two-node Ray cluster on this machine loses the second node mid-run: the unit it
was running is requeued on the survivor, and every unit is done exactly once, with no partial file.

The cluster is two `ray start --block` processes, each in a session of its own (so that a node is
every process of its session), with its own ports, one CPU and its own temp folder: a head, and a
second node that joins it. `pipeline run --address` runs two workers on it, which can only be one
per node. Nothing here stops another Ray of the machine: the nodes are ended by their sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest

from tests.conftest import photo

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ROWS = 6
ITERATIONS = 40  # a few seconds a unit here: the second node is still busy when it is killed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def session_members(session: int) -> list[int]:
    """The PIDs of the live processes of session `session` (zombies left out)."""
    members = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session and fields[0] not in "ZX":
            members.append(int(entry))
    return members


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    temp: Path
    log: Path

    def kill(self) -> None:
        """SIGKILL every process of this node (its session), and reap `ray start`."""
        for pid in session_members(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.process.wait(timeout=30)


def start_node(head_port: int, *, head: bool) -> Node:
    temp = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # short: Ray's socket paths must stay under ~107 bytes
    ports = {
        name: free_port()
        for name in (
            "node-manager-port",
            "object-manager-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "runtime-env-agent-port",
            "metrics-export-port",
        )
    }
    args = [f"--{name}={port}" for name, port in ports.items()]
    args += ["--block", "--num-cpus=1", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    args += ["--object-store-memory=100000000"]
    if head:
        args += ["--head", f"--port={head_port}", "--include-dashboard=false", f"--ray-client-server-port={free_port()}"]
    else:
        args += [f"--address=127.0.0.1:{head_port}"]
    log = temp.with_suffix(".log")
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", *args],
            env=ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Node(process, temp, log)


def wait_started(node: Node, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in node.log.read_text(errors="replace"):
        assert node.process.poll() is None, f"ray start ended:\n{node.log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"ray start took over {timeout} s:\n{node.log.read_text(errors='replace')}"
        time.sleep(0.2)


@pytest.fixture
def two_nodes() -> Iterator[tuple[str, Node, Node]]:
    """The head's address, the head and the second node, on one machine; both ended afterwards."""
    port = free_port()
    nodes = [start_node(port, head=True)]
    try:
        wait_started(nodes[0])
        nodes.append(start_node(port, head=False))
        wait_started(nodes[1])
        yield f"127.0.0.1:{port}", nodes[0], nodes[1]
    finally:
        for node in reversed(nodes):
            node.kill()
            shutil.rmtree(node.temp, ignore_errors=True)
            node.log.unlink(missing_ok=True)


def write_manifest(folder: Path) -> Path:
    lines = ["id,task,input,max_iterations"]
    for index in range(ROWS):
        pixels = (photo("astronaut", 20 * index, 100, 20, 24).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        iio.imwrite(folder / f"p{index}.png", pixels)
        lines.append(f"p{index},denoise,p{index}.png,{ITERATIONS}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def ledger(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_losing_a_node_mid_run_requeues_its_unit_on_the_survivor(two_nodes: tuple[str, Node, Node], tmp_path: Path) -> None:
    address, head, second = two_nodes
    manifest, out = write_manifest(tmp_path), tmp_path / "out"
    command = [sys.executable, "-m", "pipeline.cli", "run", str(manifest), "--out", str(out), "--address", address, "--workers", "2"]
    with open(tmp_path / "stdout.txt", "w") as stdout, open(tmp_path / "stderr.txt", "w") as stderr:
        driver = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=stdout, stderr=stderr)
    try:
        # Both workers (one per node) have finished a unit, and the second node's is running another.
        deadline = time.monotonic() + 300
        while True:
            assert driver.poll() is None, f"the run ended before the node was killed:\n{(tmp_path / 'stderr.txt').read_text()}"
            assert time.monotonic() < deadline, "the second node never ran a unit"
            workers = {line["worker"] for line in ledger(out) if line["status"] == "done"}
            busy = [pid for pid in session_members(second.process.pid) if command_line(pid).startswith("ray::Worker.run")]
            if len(workers) == 2 and busy:
                break
            time.sleep(0.1)
        second.kill()
        code = driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    output = (tmp_path / "stdout.txt").read_text() + (tmp_path / "stderr.txt").read_text()
    assert code == 0, output
    assert "worker died" in output, output  # a unit was lost with the node, and retried
    lines = ledger(out)
    done = Counter(line["id"] for line in lines if line["status"] == "done")
    assert done == Counter({f"p{index}": 1 for index in range(ROWS)}), lines  # every unit exactly once
    assert {line["id"]: line["status"] for line in lines} == {f"p{index}": "done" for index in range(ROWS)}
    assert any(line["attempt"] == 2 for line in lines), lines  # the lost unit, done on its second attempt
    files = sorted(path.name for path in out.iterdir() if path.is_file())
    assert [name for name in files if name.endswith(".png")] == [f"p{index}.png" for index in range(ROWS)], files
    assert {"results.csv", "results.jsonl", "run.json"} <= set(files), files
    # Ray's own lines, the dump of the lost node's raylet included when Ray sends one, are in the log file only.
    assert "(raylet)" not in output and "Connected to Ray cluster" not in output, output
    assert "Connected to Ray cluster" in (out / "logs" / "ray-driver.log").read_text()
    assert not [path for path in out.rglob("*") if path.name.startswith(".") or ".tmp" in path.name], "partial files left"
    # A cluster the run joined is not the run's to stop.
    assert any("raylet" in command_line(pid) for pid in session_members(head.process.pid))
