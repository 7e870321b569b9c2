"""A row's fingerprint: what its result depends on, so that resume can tell a stale result.

Every ledger line carries the fingerprint of its row as it was planned, in two parts:

* ``row``: a hash of the row's parameters (task, the paths of input, mask, flash and reference,
  scale, output, max_iterations, seed, fps) and the pipeline's version;
* ``files``: a hash of the size and modification time (in nanoseconds) of every file the row
  reads (each frame of a folder or pattern of frames); None when one of them is missing.

A row the ledger has as done is redone when its ``row`` part changed, or when its files are all
there and their part changed (an input replaced or edited since). A file that has moved away since
leaves a done row done: its result is still the result of what was given. Size and time, not the
content, are compared, as make and Nextflow's resume do: touching a file redoes its row. Lines
written before fingerprints existed have none and count as current.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipeline.manifest import ManifestRow

PACKAGE = "dip-pipeline"


def _version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stats(path: Path) -> list[tuple[str, int, int]] | None:
    """(name, size, mtime_ns) of a file, or of every file of a folder of frames (a frame pattern:
    of its folder); None when it is missing."""
    folder = path if path.is_dir() else path.parent if "%" in path.name else None
    try:
        if folder is None:
            status = path.stat()
            return [(path.name, status.st_size, status.st_mtime_ns)]
        with os.scandir(folder) as entries:
            files = [entry for entry in entries if entry.is_file()]
            return sorted((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in files)
    except OSError:
        return None


@dataclass(frozen=True)
class Fingerprint:
    row: str
    files: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"row": self.row, "files": self.files}

    def outdates(self, recorded: Any) -> bool:
        """Whether a ledger line's fingerprint (`recorded`, a dict or None) is of an older row."""
        if not isinstance(recorded, dict):
            return False
        if recorded.get("row") != self.row:
            return True
        return self.files is not None and recorded.get("files") is not None and recorded.get("files") != self.files


def fingerprint(row: ManifestRow) -> Fingerprint:
    """The fingerprint of `row` now (see the module docstring)."""
    parameters = {
        "task": row.task,
        "input": row.input,
        "mask": row.mask,
        "flash": row.flash,
        "reference": row.reference,
        "scale": row.scale,
        "output": row.output.as_posix(),
        "max_iterations": row.max_iterations,
        "seed": row.seed,
        "fps": row.fps,
        "version": _version(),
    }
    stats = [_stats(path) for path in (row.input, row.mask, row.flash, row.reference) if path is not None]
    files = None if any(stat is None for stat in stats) else _digest(stats)
    return Fingerprint(_digest(parameters), files)
