"""A SLURM job's environment, read in one place (`SlurmEnvironment.from_mapping(os.environ)`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Each field of SlurmEnvironment and the variable SLURM sets for it.
VARIABLES: Mapping[str, str] = {
    "job_id": "SLURM_JOB_ID",
    "job_name": "SLURM_JOB_NAME",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "array_task_count": "SLURM_ARRAY_TASK_COUNT",
    "restart_count": "SLURM_RESTART_COUNT",
    "node_list": "SLURM_JOB_NODELIST",
    "num_nodes": "SLURM_JOB_NUM_NODES",
    "cpus_per_task": "SLURM_CPUS_PER_TASK",
    "gpus_on_node": "SLURM_GPUS_ON_NODE",
    "submit_dir": "SLURM_SUBMIT_DIR",
    "mem_per_node": "SLURM_MEM_PER_NODE",
    "mem_per_cpu": "SLURM_MEM_PER_CPU",
}
_INTEGERS = frozenset(
    {"array_task_id", "array_task_count", "restart_count", "num_nodes", "cpus_per_task", "gpus_on_node", "mem_per_node", "mem_per_cpu"}
)


class SlurmEnvironmentError(ValueError):
    """A SLURM variable holds something that is not what SLURM writes there."""


@dataclass(frozen=True)
class SlurmEnvironment:
    """What this process knows of the SLURM job it runs in (all None outside a job)."""

    job_id: str | None = None
    job_name: str | None = None
    array_job_id: str | None = None
    array_task_id: int | None = None  # this task's index in a job array
    array_task_count: int | None = None  # tasks in the array
    restart_count: int | None = None  # > 0 once the job was requeued
    node_list: str | None = None  # compressed form, e.g. "gpu[01-04]"
    num_nodes: int | None = None
    cpus_per_task: int | None = None
    gpus_on_node: int | None = None
    submit_dir: str | None = None
    mem_per_node: int | None = None  # MiB the job may use per node (sbatch --mem)
    mem_per_cpu: int | None = None  # MiB per allocated CPU (sbatch --mem-per-cpu)

    @classmethod
    def from_mapping(cls, environ: Mapping[str, str]) -> SlurmEnvironment:
        """The job's fields from `environ` (e.g. `os.environ`); unset or empty variables are None."""
        values: dict[str, str | int | None] = {}
        for name, variable in VARIABLES.items():
            text = environ.get(variable, "").strip()
            values[name] = _integer(variable, text) if name in _INTEGERS and text else (text or None)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def current(cls) -> SlurmEnvironment:
        """The environment of this process."""
        return cls.from_mapping(os.environ)

    @property
    def in_job(self) -> bool:
        return self.job_id is not None


def _integer(variable: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SlurmEnvironmentError(f"{variable}={text!r} is not an integer; SLURM sets it to one") from None
