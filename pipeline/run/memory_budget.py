"""How much memory a worker may plan its fits into.

A fit's peak is estimated by `dip_engine.memory.estimate_fit_bytes`; this module says what a
worker has to fit it in. On a CPU the workers of a node share the process's limit, the smallest
of its cgroup's limit (what the kernel enforces on a container or a SLURM job step), the SLURM
job's request and the machine's memory; a headroom leaves room for what the estimate does not
count (decoded images, the ledger, Ray's object store). On a GPU each worker has its own device.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from pipeline.slurm.environment import SlurmEnvironment

MIB = 2**20
GIB = 2**30
# Where the kernel publishes this process's memory limit: cgroup v2, then v1.
CGROUP_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
# Above this a cgroup limit means none: v1 writes "no limit" as the largest page-aligned int64.
NO_LIMIT = 2**60
GPU_SHARE = 0.9  # of a GPU's memory: the rest is the CUDA context's and the allocator's slack
GPU_FALLBACK = 16 * GIB  # a GPU worker's budget planned where this process sees no GPU (a CPU-only driver)
UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
SIZE_PATTERN = re.compile(r"\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?:(?P<unit>[kmgtp])(?:i?b)?|b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in a size such as "8G", "512M", "1.5GiB", "64 MB" or "2048" (bytes).

    Every unit is a power of 1024, as SLURM's `--mem` and the kernel's cgroup files count them:
    K, M, G, T, P with an optional "B" or "iB", in any case. Fractions round down to a byte.
    """
    match = SIZE_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; write a number of bytes or one with a unit, e.g. 2048, 512M, 8G, 1.5GiB")
    unit = match["unit"]
    return math.floor(float(match["number"]) * (UNITS[unit.lower()] if unit else 1))


def cgroup_limit(files: Sequence[Path] = CGROUP_LIMIT_FILES) -> int | None:
    """The first cgroup memory limit among `files` that exists, or None where there is none
    ("max", or v1's huge number for unlimited, or no readable file)."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            limit = int(text)
        except ValueError:
            continue
        return limit if 0 < limit < NO_LIMIT else None
    return None


def task_cpus(environment: SlurmEnvironment) -> int:
    """The CPUs of this task: SLURM's CPUs per task, else those this process may run on."""
    if environment.cpus_per_task:
        return environment.cpus_per_task
    return len(os.sched_getaffinity(0))


def slurm_limit(environment: SlurmEnvironment) -> int | None:
    """What the SLURM job asked for this node: `--mem` (per node) or `--mem-per-cpu` × the task's
    CPUs, in bytes; None outside a job or where neither was asked (0 means the whole node)."""
    if environment.mem_per_node:
        return environment.mem_per_node * MIB
    if environment.mem_per_cpu:
        return environment.mem_per_cpu * MIB * task_cpus(environment)
    return None


def physical_memory() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_limit_bytes(
    *,
    environ: Mapping[str, str] | None = None,
    cgroup_files: Sequence[Path] = CGROUP_LIMIT_FILES,
    physical: int | None = None,
) -> int:
    """What this process may use: the smallest of its cgroup's limit, the SLURM job's memory
    and the machine's physical memory, of those that apply. `environ` (default: this process's
    environment), `cgroup_files` and `physical` (default: the machine's) stand in for the real
    ones in tests."""
    environment = SlurmEnvironment.current() if environ is None else SlurmEnvironment.from_mapping(environ)
    limits = [physical if physical is not None else physical_memory(), cgroup_limit(cgroup_files), slurm_limit(environment)]
    return min(limit for limit in limits if limit is not None)


def gpu_memory() -> int | None:
    """The total memory of this process's current GPU, or None where torch sees no GPU."""
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)


CPU_WORKER_CAP = 3 * 2**30  # the most a CPU worker plans for by default (see worker_budget_bytes)


def worker_budget_bytes(workers: int, *, gpu: bool, override: int | None = None, headroom: float = 0.7) -> int:
    """The bytes one of `workers` workers may plan its fits into.

    `override` when given (a budget the user set). On a GPU each worker has a GPU of its own:
    `GPU_SHARE` of the local GPU's memory, or `GPU_FALLBACK` (16 GiB, the smallest data-centre
    GPUs this pipeline targets) where this process sees none, as a driver planning for GPU nodes
    may not. On a CPU the workers share `memory_limit_bytes()`, of which `headroom` is planned,
    and each gets at most `CPU_WORKER_CAP`: a CPU restores a large image no faster as one fit
    than as tiles fitted a few at a time, so a larger budget would only let one image take all
    of the machine's memory.
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    if not 0 < headroom <= 1:
        raise ValueError(f"headroom={headroom} must be in (0, 1]")
    if override is not None:
        if override <= 0:
            raise ValueError(f"a memory budget of {override} bytes is not possible; give a positive size")
        return override
    if gpu:
        total = gpu_memory()
        return GPU_FALLBACK if total is None else int(total * GPU_SHARE)
    return min(CPU_WORKER_CAP, int(memory_limit_bytes() * headroom / workers))
