"""A worker's memory budget: sizes as written, the limits that apply (cgroup, SLURM, the machine), the share per worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.run import memory_budget
from pipeline.run.memory_budget import GIB, MIB, memory_limit_bytes, parse_size, worker_budget_bytes
from pipeline.slurm.environment import SlurmEnvironment

PHYSICAL = 64 * GIB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2048", 2048),
        ("8G", 8 * GIB),
        ("512M", 512 * MIB),
        ("1.5GiB", 1536 * MIB),
        ("64 MB", 64 * MIB),
        ("4k", 4096),
        ("2t", 2 * 1024 * GIB),
        ("10B", 10),
        (" .5g ", GIB // 2),
        ("0.3", 0),  # rounded down to a byte
    ],
)
def test_sizes_parse_in_powers_of_1024(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "eight", "8X", "-1G", "8iB", "1e3", "1.2.3M", "8 G B"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a size; .* e\.g\. 2048, 512M, 8G"):
        parse_size(text)


def cgroup(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content + "\n")
    return path


def limit(tmp_path: Path, environ: dict[str, str], *files: Path) -> int:
    return memory_limit_bytes(environ=environ, cgroup_files=files or (tmp_path / "absent",), physical=PHYSICAL)


def test_without_a_cgroup_or_job_the_machine_is_the_limit(tmp_path: Path) -> None:
    assert limit(tmp_path, {}) == PHYSICAL
    assert memory_limit_bytes(environ={}, cgroup_files=(tmp_path / "absent",)) == memory_budget.physical_memory()


def test_a_cgroup_limit_below_the_machine_applies(tmp_path: Path) -> None:
    assert limit(tmp_path, {}, cgroup(tmp_path, "memory.max", str(8 * GIB))) == 8 * GIB


@pytest.mark.parametrize("content", ["max", str(2**63 - 4096), "garbled"])
def test_an_unlimited_cgroup_is_no_limit(tmp_path: Path, content: str) -> None:
    assert limit(tmp_path, {}, cgroup(tmp_path, "memory.max", content)) == PHYSICAL


def test_cgroup_v2_is_read_before_v1(tmp_path: Path) -> None:
    v2, v1 = cgroup(tmp_path, "memory.max", str(4 * GIB)), cgroup(tmp_path, "limit_in_bytes", str(2 * GIB))
    assert limit(tmp_path, {}, v2, v1) == 4 * GIB
    assert limit(tmp_path, {}, tmp_path / "no-v2", v1) == 2 * GIB
    assert limit(tmp_path, {}, cgroup(tmp_path, "unlimited-v2", "max"), v1) == PHYSICAL


def test_slurm_memory_per_node_is_in_mib(tmp_path: Path) -> None:
    assert limit(tmp_path, {"SLURM_MEM_PER_NODE": "16384"}) == 16 * GIB


def test_slurm_memory_per_cpu_counts_the_tasks_cpus(tmp_path: Path) -> None:
    assert limit(tmp_path, {"SLURM_MEM_PER_CPU": "2048", "SLURM_CPUS_PER_TASK": "4"}) == 8 * GIB


def test_memory_per_cpu_without_cpus_per_task_counts_the_cpus_this_process_may_use(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert limit(tmp_path, {"SLURM_MEM_PER_CPU": "1024"}) == min(PHYSICAL, cpus * GIB)


def test_memory_per_node_wins_over_per_cpu_and_zero_is_the_whole_node(tmp_path: Path) -> None:
    assert limit(tmp_path, {"SLURM_MEM_PER_NODE": "1024", "SLURM_MEM_PER_CPU": "4096", "SLURM_CPUS_PER_TASK": "8"}) == GIB
    assert limit(tmp_path, {"SLURM_MEM_PER_NODE": "0"}) == PHYSICAL


def test_the_smallest_limit_applies(tmp_path: Path) -> None:
    job = {"SLURM_MEM_PER_NODE": str(12 * 1024)}
    assert limit(tmp_path, job, cgroup(tmp_path, "memory.max", str(10 * GIB))) == 10 * GIB
    assert limit(tmp_path, job, cgroup(tmp_path, "memory.max", str(20 * GIB))) == 12 * GIB
    assert memory_limit_bytes(environ=job, cgroup_files=(), physical=8 * GIB) == 8 * GIB


def test_the_job_environment_has_its_memory_fields() -> None:
    environment = SlurmEnvironment.from_mapping({"SLURM_MEM_PER_NODE": "4000", "SLURM_MEM_PER_CPU": "500"})
    assert (environment.mem_per_node, environment.mem_per_cpu) == (4000, 500)


def test_cpu_workers_share_the_limit_after_headroom_up_to_a_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_budget, "memory_limit_bytes", lambda: 8 * GIB)
    assert worker_budget_bytes(4, gpu=False) == int(8 * GIB * 0.7 / 4)
    assert worker_budget_bytes(4, gpu=False, headroom=1.0) == 2 * GIB
    assert worker_budget_bytes(1, gpu=False) == memory_budget.CPU_WORKER_CAP  # 5.6 GiB of headroom, capped
    monkeypatch.setattr(memory_budget, "memory_limit_bytes", lambda: 40 * GIB)
    assert worker_budget_bytes(2, gpu=False) == memory_budget.CPU_WORKER_CAP


def test_an_override_is_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_budget_bytes(8, gpu=False, override=3 * GIB) == 3 * GIB
    assert worker_budget_bytes(1, gpu=True, override=parse_size("40G")) == 40 * GIB


def test_a_gpu_worker_plans_into_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_budget, "gpu_memory", lambda: 80 * GIB)
    assert worker_budget_bytes(4, gpu=True) == int(80 * GIB * 0.9)
    monkeypatch.setattr(memory_budget, "gpu_memory", lambda: None)
    assert worker_budget_bytes(4, gpu=True) == 16 * GIB


@pytest.mark.parametrize(("workers", "kwargs"), [(0, {}), (1, {"headroom": 0.0}), (1, {"headroom": 1.5}), (1, {"override": 0})])
def test_impossible_budgets_are_refused(workers: int, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be|not possible"):
        worker_budget_bytes(workers, gpu=False, **kwargs)  # type: ignore[arg-type]
