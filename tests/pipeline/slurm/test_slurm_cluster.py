"""`pipeline slurm submit` on a real SLURM: the one-node cluster of slurm/local-cluster.sh, with fake GPUs.

The session fixture starts that cluster unless it already runs (CI starts it in .ci/run) and stops
it afterwards if it started it. These tests are skipped only where sbatch cannot be had: not
installed, and no root or apt-get to install it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import imageio.v3 as iio
import pytest
from skimage import data

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "slurm" / "local-cluster.sh"
DONE_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def _can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment for SLURM commands and `pipeline`: SLURM_CONF of the local cluster, Ray without auth."""
    if shutil.which("sbatch") is None and not _can_install():
        pytest.skip("no SLURM: sbatch is not installed, and slurm/local-cluster.sh needs root and apt-get to install it")
    status = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, check=False)
    started = status.returncode != 0
    if started:
        status = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, check=False, timeout=600)
        if status.returncode != 0:
            pytest.fail(f"slurm/local-cluster.sh start failed:\n{status.stderr}")
    conf = status.stdout.strip().splitlines()[-1].removeprefix("SLURM_CONF=")
    env = {**os.environ, "SLURM_CONF": conf, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    yield env
    if started:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, check=False, timeout=120)


# ----- helpers ---------------------------------------------------------------------------------


def tiny_manifest(folder: Path, count: int, iterations: int) -> Path:
    """`count` 32×32 crops of scikit-image photographs to denoise, each capped at `iterations`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,task,input,max_iterations"]
    for index in range(count):
        name = ("astronaut", "coffee", "chelsea", "rocket")[index % 4]
        top = 60 + 32 * (index // 4)
        iio.imwrite(folder / f"unit{index}.png", getattr(data, name)()[top : top + 32, 200:232])
        lines.append(f"unit{index},denoise,unit{index}.png,{iterations}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def submit(env: dict[str, str], manifest: Path, out: Path, *options: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "slurm", "submit", str(manifest), "--out", str(out), "--time", "15", *options],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\d+", done.stdout.strip()), done.stdout
    return done.stdout.strip()


def states(env: dict[str, str], job: str) -> list[dict[str, str]]:
    """`scontrol show job -o` as one dict per job (an array gives one per task)."""
    text = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, env=env, check=True).stdout
    return [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in text.splitlines() if line]


def logs(out: Path) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for path in sorted((out / "slurm").glob("*.out")))


def wait_until(condition: Callable[[], bool], timeout: float, what: str, out: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs(out)}")
        time.sleep(0.5)


def wait_done(env: dict[str, str], job: str, out: Path, timeout: float = 240) -> list[dict[str, str]]:
    wait_until(lambda: all(task["JobState"] in DONE_STATES for task in states(env, job)), timeout, f"job {job} to end", out)
    return states(env, job)


def ledger_lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def ledger_lines(out: Path) -> list[dict[str, object]]:
    return [line for path in sorted(out.glob("results*.jsonl")) for line in ledger_lines_of(path)]


def partial_files(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if ".tmp" in path.name or (path.name.startswith(".") and path.is_file())]


def assert_each_unit_done_once(out: Path, ids: list[str]) -> None:
    lines = ledger_lines(out)
    assert Counter(str(line["id"]) for line in lines) == Counter(ids), lines
    assert all(line["status"] == "done" for line in lines)
    assert sorted(path.stem for path in out.glob("*.png")) == sorted(ids)
    assert partial_files(out) == []
    with open(out / "results.csv", newline="") as handle:
        assert sorted(row["id"] for row in csv.DictReader(handle)) == sorted(ids)


def no_ray_left(job: str) -> bool:
    found = subprocess.run(["pgrep", "-f", f"/tmp/ray-{job}"], capture_output=True, text=True, check=False)
    return found.stdout.strip() == "" and not Path(f"/tmp/ray-{job}").exists()


# ----- tests -----------------------------------------------------------------------------------


def test_the_demo_manifest_through_the_ray_template(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    """The demo's four rows (their iteration caps cut to 25 to keep this short) on Ray with 2 fake GPUs."""
    demo = REPO / "manifests" / "demo.csv"
    with open(demo, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("input", "mask", "flash", "reference"):
            if row[column]:
                row[column] = str((demo.parent / row[column]).resolve())
        row["max_iterations"] = "25"
    manifest = tmp_path / "demo.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "demo-out"
    job = submit(slurm_env, manifest, out, "--gpus-per-node", "2", "--cpus-per-node", "2")
    [task] = wait_done(slurm_env, job, out)
    assert (task["JobState"], task["ExitCode"]) == ("COMPLETED", "0:0"), logs(out)
    ids = [row["id"] for row in rows]
    assert_each_unit_done_once(out, ids)
    for row in rows:
        restored = iio.imread(out / f"{row['id']}.png")
        assert restored.shape == iio.imread(row["reference"]).shape
    metrics = {line["id"]: line for line in ledger_lines(out)}
    assert all(isinstance(metrics[unit]["psnr_out"], float) and metrics[unit]["iterations"] == 25 for unit in ids)
    assert len(list((out / "slurm").glob("ray-cluster-*.sbatch"))) == 1
    assert "2 × (1 GPU + 1 CPUs each)" in logs(out)  # one pipeline worker per fake GPU
    assert no_ray_left(job)


def test_an_array_of_two_shards_does_every_unit_once(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    manifest = tiny_manifest(tmp_path / "in", count=5, iterations=30)
    out = tmp_path / "a'; echo x"  # a hostile folder: every value reaches sbatch and the script as one word
    job = submit(slurm_env, manifest, out, "--array", "2", "--cpus-per-node", "1")
    tasks = wait_done(slurm_env, job, out)
    assert [(task["JobState"], task["ExitCode"]) for task in tasks] == [("COMPLETED", "0:0")] * 2, logs(out)
    assert_each_unit_done_once(out, [f"unit{index}" for index in range(5)])
    by_shard = {path.name: sorted(str(line["id"]) for line in ledger_lines_of(path)) for path in out.glob("*.jsonl")}
    assert by_shard == {
        "results.shard-0-of-2.jsonl": ["unit0", "unit2", "unit4"],
        "results.shard-1-of-2.jsonl": ["unit1", "unit3"],
    }
    assert not (tmp_path / "x").exists() and not Path("x").exists()


def test_usr1_stops_requeues_and_the_restart_finishes(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    """SIGUSR1 once a unit is done: the others are abandoned after a 1 s grace, the job requeues and resumes."""
    # Long enough units (~10 s each) that the signal lands while some are still running.
    manifest = tiny_manifest(tmp_path / "in", count=4, iterations=200)
    out = tmp_path / "out"
    job = submit(slurm_env, manifest, out, "--gpus-per-node", "2", "--cpus-per-node", "2", "--signal-seconds", "2")
    wait_until(lambda: (out / "results.jsonl").exists(), 180, "the first finished unit", out)
    signalled = time.monotonic()
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=slurm_env, check=True)
    wait_until(lambda: states(slurm_env, job)[0].get("Restarts", "0") != "0", 60, "the requeue", out)
    requeued = time.monotonic() - signalled
    # A requeued job may start again only ~120 s later; once it is back in the queue, make that now.
    wait_until(lambda: states(slurm_env, job)[0]["JobState"] == "PENDING", 60, "the requeued job to be pending", out)
    assert len(ledger_lines(out)) < 4, "the stop came too late to test anything: every unit was already done"
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=slurm_env, check=True)
    [task] = wait_done(slurm_env, job, out)
    assert (task["JobState"], task["ExitCode"], task["Restarts"]) == ("COMPLETED", "0:0", "1"), logs(out)
    assert_each_unit_done_once(out, [f"unit{index}" for index in range(4)])
    log = logs(out)
    assert "stopped on SIGUSR1" in log and f"requeued SLURM job {job} (restart 1)" in log and "(restart 1) on 1 node" in log
    assert no_ray_left(job)
    print(f"USR1 to requeue: {requeued:.1f} s")


def test_a_cancelled_job_leaves_a_folder_a_later_run_completes(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    """scancel while a unit runs (SIGTERM: it is abandoned), then the same submission again finishes the rest."""
    manifest = tiny_manifest(tmp_path / "in", count=3, iterations=200)
    out = tmp_path / "out"
    job = submit(slurm_env, manifest, out, "--array", "1", "--cpus-per-node", "1")
    ledger = out / "results.shard-0-of-1.jsonl"
    wait_until(ledger.exists, 180, "the first finished unit", out)
    cancelled = time.monotonic()
    subprocess.run(["scancel", job], env=slurm_env, check=True)
    [task] = wait_done(slurm_env, job, out, timeout=60)
    assert task["JobState"] == "CANCELLED"
    print(f"scancel to the end of the job: {time.monotonic() - cancelled:.1f} s")
    done_before = [line["id"] for line in ledger_lines(out)]
    assert 1 <= len(done_before) < 3 and partial_files(out) == []
    again = submit(slurm_env, manifest, out, "--array", "1", "--cpus-per-node", "1")  # the same command, later
    [task] = wait_done(slurm_env, again, out)
    assert (task["JobState"], task["ExitCode"]) == ("COMPLETED", "0:0"), logs(out)
    assert f"{len(done_before)} skipped as already done" in (out / "slurm" / f"dip-restore-{again}_0.out").read_text()
    assert_each_unit_done_once(out, ["unit0", "unit1", "unit2"])
