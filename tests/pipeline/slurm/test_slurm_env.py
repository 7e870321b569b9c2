"""SLURM's environment through one mapping, the sbatch/scontrol calls, and the stop signals."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.slurm.commands import SlurmCommands, SlurmError
from pipeline.slurm.environment import SlurmEnvironment, SlurmEnvironmentError
from pipeline.slurm.preempt import StopSignals, Terminated, requeue

ARRAY_TASK = {
    "SLURM_JOB_ID": "1043",
    "SLURM_JOB_NAME": "dip-restore",
    "SLURM_ARRAY_JOB_ID": "1040",
    "SLURM_ARRAY_TASK_ID": "3",
    "SLURM_ARRAY_TASK_COUNT": "4",
    "SLURM_RESTART_COUNT": "2",
    "SLURM_JOB_NODELIST": "gpu[01-02]",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_CPUS_PER_TASK": "16",
    "SLURM_GPUS_ON_NODE": "4",
    "SLURM_SUBMIT_DIR": "/home/me",
    "HOME": "/root",  # anything else is ignored
}


def test_a_job_environment_is_read_into_one_record() -> None:
    env = SlurmEnvironment.from_mapping(ARRAY_TASK)
    assert env == SlurmEnvironment(
        job_id="1043",
        job_name="dip-restore",
        array_job_id="1040",
        array_task_id=3,
        array_task_count=4,
        restart_count=2,
        node_list="gpu[01-02]",
        num_nodes=2,
        cpus_per_task=16,
        gpus_on_node=4,
        submit_dir="/home/me",
    )
    assert env.in_job and env.restart_count == 2


def test_outside_a_job_everything_is_none() -> None:
    env = SlurmEnvironment.from_mapping({"PATH": "/usr/bin", "SLURM_RESTART_COUNT": ""})
    assert env == SlurmEnvironment() and not env.in_job


def test_a_first_run_is_not_a_restart() -> None:
    assert SlurmEnvironment.from_mapping({"SLURM_JOB_ID": "7", "SLURM_RESTART_COUNT": "0"}).restart_count == 0


def test_a_garbled_variable_is_named() -> None:
    with pytest.raises(SlurmEnvironmentError, match="SLURM_ARRAY_TASK_ID='three' is not an integer"):
        SlurmEnvironment.from_mapping({"SLURM_ARRAY_TASK_ID": "three"})


class FakeRun:
    """Stands in for subprocess.run: records commands, answers with a fixed result."""

    def __init__(self, returncode: int = 0, stdout: str = "", stderr: str = "", missing: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.result = (returncode, stdout, stderr)
        self.missing = missing

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        if self.missing:
            raise FileNotFoundError(command[0])
        return subprocess.CompletedProcess(command, *self.result)


def test_sbatch_gives_the_job_id(tmp_path: Path) -> None:
    run = FakeRun(stdout="4711;cluster\n")
    assert SlurmCommands(run).sbatch(tmp_path / "job.sbatch") == "4711"
    assert run.calls == [["sbatch", "--parsable", str(tmp_path / "job.sbatch")]]


def test_a_refused_submission_carries_sbatch_s_words(tmp_path: Path) -> None:
    run = FakeRun(returncode=1, stderr="sbatch: error: invalid partition specified: gpu\n")
    with pytest.raises(SlurmError, match="exited with 1: sbatch: error: invalid partition specified: gpu; the script was kept"):
        SlurmCommands(run).sbatch(tmp_path / "job.sbatch")


def test_no_sbatch_says_where_to_run() -> None:
    with pytest.raises(SlurmError, match="sbatch is not on PATH; run this where SLURM's commands are installed"):
        SlurmCommands(FakeRun(missing=True)).sbatch(Path("job.sbatch"))


def test_requeue_calls_scontrol_for_this_job() -> None:
    run = FakeRun()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        message = requeue(SlurmEnvironment.from_mapping({"SLURM_JOB_ID": "88", "SLURM_RESTART_COUNT": "1"}), SlurmCommands(run))
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the requeue's own SIGTERM must not cut the exit short
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert run.calls == [["scontrol", "requeue", "88"]]
    assert "requeued SLURM job 88 (restart 2)" in message


def test_outside_slurm_nothing_is_requeued() -> None:
    run = FakeRun()
    assert "run the same command again" in requeue(SlurmEnvironment(), SlurmCommands(run))
    assert run.calls == []


def test_usr1_requests_a_stop_and_term_interrupts() -> None:
    before = (signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM))
    with StopSignals() as signals:
        assert not signals.requested()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert signals.requested() and signals.received == signal.SIGUSR1
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # not reached: the handler raises as soon as the signal is delivered
    assert (signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM)) == before
