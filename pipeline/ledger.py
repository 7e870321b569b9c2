"""The ledger of an output folder: what is done, with its metrics; the source of truth for resume.

Files, in the output folder:

* ``results.jsonl``: append-only, one JSON object per line, one line per finished or failed
  attempt of a unit (a manifest row). Each line is written with a single ``write`` followed by
  ``fsync``, so a crash leaves at most one incomplete line, at the end; reading skips it (and any
  other line that is not a JSON object with an ``id``), and the next append starts a fresh line.
* ``results.<shard>.jsonl``: the same, one file per shard of a job array (``Ledger(out, shard=3)``
  appends there). Reading merges the main file and every shard file.
* ``results.csv``: a table regenerated from the ledger (`Ledger.write_csv`), one row per image
  and per video (the segments of videos are in results.jsonl only).

Records are plain dicts (`pipeline.records` has the fields the pipeline writes for images,
video segments and videos). The latest record of a unit decides its state: a unit is done when
that record has status ``"done"`` and its output (a file, or for a video segment the folder of
its frames) still exists, so deleting an output makes a rerun redo it.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
import math
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.io import atomic_path
from pipeline.io.atomic import temp_path_for
from pipeline.io.write_errors import OutputWriteError
from pipeline.records import PART_KINDS, is_done, parse_time

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
SHARD_GLOB = "results.*.jsonl"

# The columns of results.csv, in order (other record fields are kept in results.jsonl only).
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "task",
    "input",
    "output",
    "psnr_in",
    "psnr_out",
    "ssim_in",
    "ssim_out",
    "iterations",
    "stop_reason",
    "kept_iteration",
    "frames",
    "frames_expected",
    "frames_decoded",
    "segments",
    "tiles",
    "flicker",
    "change_error",
    "warping_error",
    "seconds",
    "worker",
    "attempt",
    "error",
    "finished_at",
)

_SHARD_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
# The temporary names of pipeline.io.atomic.temp_path_for: ".NAME.<pid>-<6 hex>.tmp[SUFFIX]".
_TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.\d+-[0-9a-f]{6}\.tmp(?P<suffix>\.[^.]*)?")


class Ledger:
    """The ledger of one output folder (see the module docstring).

    `shard`: appends go to ``results.<shard>.jsonl`` instead of ``results.jsonl`` (letters,
    digits, '-' and '_'), so the tasks of a job array never write the same file. Reading always
    merges every ledger file of the folder.
    """

    def __init__(self, out_dir: Path | str, *, shard: str | int | None = None) -> None:
        self.out_dir = Path(out_dir)
        if shard is not None and not _SHARD_PATTERN.fullmatch(str(shard)):
            raise ValueError(f"shard must be letters, digits, '-' or '_', got {shard!r}")
        self.path = self.out_dir / (RESULTS_JSONL if shard is None else f"results.{shard}.jsonl")
        self.csv_path = self.out_dir / RESULTS_CSV
        self.skipped_lines: list[tuple[Path, int]] = []  # (file, line number) skipped by the last load

    # ----- writing ---------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Raise OutputWriteError (naming the file) unless the output folder takes a new file
        and this ledger's files, where they exist, can be appended to and replaced: what a run
        checks before any unit starts, so that no fit is computed only to be lost. Creates the
        output folder; the probe file is removed again."""
        target = self.out_dir
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            probe = temp_path_for(self.out_dir / "write-check")
            descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(descriptor, b"\n")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
                probe.unlink(missing_ok=True)
            for target in (self.path, self.csv_path):
                if target.exists():
                    os.close(os.open(target, os.O_WRONLY | os.O_APPEND))
        except OSError as error:
            raise OutputWriteError(target, error.errno or errno.EIO, error.strerror or str(error)) from error

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line: a single write, flushed and fsync'd before returning.

        The record needs a string ``id``. If the file does not end with a newline (a crash cut its
        last line short), the new line starts with one, so it never merges with the fragment.
        """
        if not isinstance(record.get("id"), str) or not record["id"]:
            raise ValueError(f"a ledger record needs a non-empty string 'id', got {record.get('id')!r}")
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(descriptor).st_size
            if size > 0 and os.pread(descriptor, 1, size - 1) != b"\n":
                line = "\n" + line
            data = line.encode("utf-8")
            written = os.write(descriptor, data)
            if written != len(data):  # a full disk; the short line is skipped by load()
                raise OSError(f"only {written} of {len(data)} bytes were appended to {self.path}")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def write_csv(self) -> None:
        """Regenerate results.csv from `load()`, atomically: one row per unit, sorted by id.

        Columns are `CSV_COLUMNS`; missing values are empty cells, floats have 4 decimals.
        Segment records (kind "segment") are left out: a video has one row, its own record.
        Shards writing into one folder take turns (a lock on the folder), so the table the last
        one writes has every shard's lines: none can replace it with one read before its own end.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with _folder_lock(self.out_dir):
            records = {key: record for key, record in self.load().items() if record.get("kind") not in PART_KINDS}
            with atomic_path(self.csv_path) as tmp:
                with open(tmp, "w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(CSV_COLUMNS)
                    for unit_id in sorted(records):
                        writer.writerow([_cell(records[unit_id].get(column)) for column in CSV_COLUMNS])

    # ----- reading ---------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The ledger files that exist, in merge order: results.jsonl, then shard files by name."""
        main = self.out_dir / RESULTS_JSONL
        shards = sorted(path for path in self.out_dir.glob(SHARD_GLOB) if path.is_file())
        return ([main] if main.is_file() else []) + shards

    def load(self) -> dict[str, dict[str, Any]]:
        """The latest record of each unit id.

        Within a file the last line wins. Across files (main, then shards sorted by name) a later
        file's record wins too, unless both records carry a ``finished_at`` time and the later
        file's is older: so a unit retried outside its shard ends in its newest state. Blank lines
        and lines that are not JSON objects with a string ``id`` (a line cut short by a crash) are
        skipped and listed in `skipped_lines`.
        """
        self.skipped_lines = []
        latest: dict[str, dict[str, Any]] = {}
        for path in self.files():
            for unit_id, record in self._read_file(path).items():
                earlier = latest.get(unit_id)
                if earlier is None or not _is_older(record, earlier):
                    latest[unit_id] = record
        return latest

    def done_ids(self, records: Mapping[str, dict[str, Any]] | None = None) -> set[str]:
        """Ids whose latest record (in `records`, default `load()`) is done and whose output still exists."""
        latest = self.load() if records is None else records
        return {unit_id for unit_id, record in latest.items() if self.is_done(record)}

    def is_done(self, record: dict[str, Any]) -> bool:
        """Whether `record` has status "done" and its output (file, or segment folder) exists."""
        output = record.get("output")
        return is_done(record) and isinstance(output, str) and (self.out_dir / output).exists()

    def _read_file(self, path: Path) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                record = _parse_line(raw)
                if record is None:
                    self.skipped_lines.append((path, number))
                else:
                    latest[record["id"]] = record
        return latest

    # ----- partial outputs -------------------------------------------------------------------

    def clean_partials(self, output: Path | str) -> int:
        """Remove the temporary files an interrupted atomic write of `output` left; how many.

        `output` is relative to the output folder (or absolute). Only names that
        `pipeline.io.atomic.temp_path_for` makes for it are removed (``.NAME.<pid>-<hex>.tmp`` and
        ``.NAME.<pid>-<hex>.tmp.EXT``): files, and the temporary folders of
        `pipeline.io.atomic.atomic_folder`. Call it only while no other process writes that
        output: a live writer's temporary file looks the same.
        """
        target = Path(output) if Path(output).is_absolute() else self.out_dir / output
        if not target.parent.is_dir():
            return 0
        removed = 0
        for entry in os.scandir(target.parent):
            match = _TEMP_PATTERN.fullmatch(entry.name)
            if match and match["name"] == target.name and _suffix_fits(match):
                removed += _remove(entry.path)
        return removed

    def clean_all_partials(self) -> int:
        """Remove every atomic-write temporary file (and folder) under the output folder; how many.

        Same naming rule and the same caution as `clean_partials` (no writer may be running).
        """
        if not self.out_dir.is_dir():
            return 0
        removed = 0
        for folder, subfolders, names in os.walk(self.out_dir):
            for name in names + subfolders:
                match = _TEMP_PATTERN.fullmatch(name)
                if match and _suffix_fits(match):
                    removed += _remove(os.path.join(folder, name))
            subfolders[:] = [name for name in subfolders if os.path.isdir(os.path.join(folder, name))]
        return removed


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive `flock` on the folder itself (no lock file is left behind)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """The record on one line, or None if it is not a JSON object with a non-empty string id."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
        return None
    return record


def _is_older(record: dict[str, Any], earlier: dict[str, Any]) -> bool:
    """Whether `record` (from a later file) finished strictly before `earlier` (both timed)."""
    new, old = parse_time(record.get("finished_at")), parse_time(earlier.get("finished_at"))
    return new is not None and old is not None and new < old


def _suffix_fits(match: re.Match[str]) -> bool:
    """temp_path_for(keep_suffix=True) appends the target's own extension after '.tmp'."""
    suffix = match["suffix"]
    return suffix is None or match["name"].endswith(suffix)


def _remove(path: str) -> int:
    """Remove a temporary file, or a temporary folder with its contents (never a link's target)."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
        else:
            return 0
    except FileNotFoundError:  # removed meanwhile (its writer finished or cleaned up)
        return 0
    return 1


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)
