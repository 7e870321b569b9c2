"""``run.json``: what a run planned, left in its output folder for `pipeline status`.

Each `pipeline run` (not a dry run) writes it once planned, atomically, before any unit starts:
the manifest's absolute path, when the run started, its options, its rows and the units it
planned (images, video segments, tile groups, assemblies), and how many parts each row restored
in parts has. A run resumed later (a requeued SLURM job) writes it again. A shard of a job array
(``--shard i/N``) writes ``run.shard-<i>-of-<N>.json`` instead, next to its ledger file, so the
tasks of an array never write the same file; `read_run_files` reads them all.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any

from pipeline.io import atomic_path
from pipeline.records import KIND_SEGMENT, KIND_TILES, now
from pipeline.run.options import RunOptions
from pipeline.run.plan import Plan
from pipeline.work.units import RowAssembly

RUN_JSON = "run.json"
RUN_GLOB = "run.*.json"
_NOT_OPTIONS = ("out_dir", "processors", "stop_requested")  # not options a user gave


def run_file_name(shard: str | None) -> str:
    """``run.json``, or ``run.<shard>.json`` for a shard (its name: ``shard-<i>-of-<N>``)."""
    return RUN_JSON if shard is None else f"run.{shard}.json"


def run_info(manifest: Path, plan: Plan, options: RunOptions, *, manifest_rows: int, invalid_rows: int = 0) -> dict[str, Any]:
    """What `write_run_file` stores of a planned run (see the module docstring)."""
    parts = {job.row.id: {"kind": KIND_SEGMENT, "parts": job.parts} for job in plan.videos}
    parts.update({job.row.id: {"kind": KIND_TILES, "parts": job.parts} for job in plan.tiled})
    assemblies = sum(1 for job in plan.parted if job.pending_units()) + sum(1 for unit in plan.units if isinstance(unit, RowAssembly))
    return {
        "manifest": os.path.abspath(manifest),
        "out": os.path.abspath(options.out_dir),
        "started_at": now(),
        "command": shlex.join(sys.argv),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "options": {field.name: _plain(getattr(options, field.name)) for field in fields(options) if field.name not in _NOT_OPTIONS},
        "rows": {
            "manifest": manifest_rows,
            "invalid": invalid_rows,
            "planned": len(plan.skipped) + len({_row_id(unit) for unit in plan.units} | set(parts)),
            "skipped": len(plan.skipped),
        },
        "units": {
            "total": plan.unit_count,
            "images": len(plan.images),
            "segments": len(plan.segments),
            "tile_groups": len(plan.tile_groups),
            "assemblies": assemblies,
            "parts_done_before": plan.parts_done,
        },
        "workers": {"count": plan.workers, "gpus_each": plan.gpus_per_worker, "cpus_each": plan.cpus_per_worker},
        "parts": parts,
    }


def write_run_file(out_dir: Path, info: dict[str, Any], *, shard: str | None = None) -> Path:
    """Write `info` as the run file of `out_dir` (of `shard`, if given) atomically; its path."""
    path = out_dir / run_file_name(shard)
    with atomic_path(path, root=out_dir) as temporary:
        Path(temporary).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_run_files(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The run files of `out_dir` by file name (run.json first, then the shards' by name); files
    that cannot be read or are not JSON objects are left out."""
    paths = [out_dir / RUN_JSON, *sorted(out_dir.glob(RUN_GLOB))]
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(info, dict):
            found[path.name] = info
    return found


def _row_id(unit: Any) -> str:
    row = getattr(unit, "row", unit)
    return str(getattr(row, "id", ""))


def _plain(value: Any) -> Any:
    """An option's value as JSON: numbers, strings, booleans and None as they are, others as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return value.value
    return str(value)
