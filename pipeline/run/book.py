"""The driver's book of the rows a run restores in parts: video segments, groups of tiles.

Each such row is a job (`pipeline.video.jobs.VideoJob`, `pipeline.tiles.jobs.TiledJob`) with its
parts, those an earlier run already finished, and its assembly. The book follows the run: as
parts finish it hands out the row's assembly once all are done, or the row's failed line when
one fails for good (once per row; its other parts still run and are kept for the next run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pipeline.manifest import ManifestRow
from pipeline.records import is_done
from pipeline.work.units import PartUnit, Unit, failed_row_record


class PartedJob(Protocol):
    """A row restored in parts (see the module docstring)."""

    @property
    def row(self) -> ManifestRow: ...

    @property
    def parts(self) -> int: ...

    @property
    def done(self) -> Mapping[int, dict[str, Any]]: ...  # part index -> its done record

    def pending_units(self) -> Sequence[PartUnit]: ...

    def assembly(self, records: tuple[dict[str, Any], ...]) -> Unit: ...  # from every part's done record, in order

    def part_failed(self, unit: Any, record: dict[str, Any]) -> str: ...  # why the row fails with this part


class Book:
    """Which parts of each parted row are done, and which rows failed."""

    def __init__(self, jobs: Sequence[PartedJob]) -> None:
        self.jobs = {job.row.id: job for job in jobs}
        self.records: dict[str, dict[int, dict[str, Any]]] = {job.row.id: dict(job.done) for job in jobs}
        self.failed: set[str] = set()

    def initial_units(self) -> list[Unit]:
        """Every pending part, and the assembly of each row that has none pending."""
        units: list[Unit] = []
        for job in self.jobs.values():
            pending = job.pending_units()
            units.extend(pending)
            if not pending:
                units.append(self._assembly(job))
        return units

    def part_finished(self, unit: PartUnit, record: dict[str, Any]) -> Unit | dict[str, Any] | None:
        """Take a part's final record; return the row's assembly once all its parts are done, the
        row's failed record when this part failed (once per row), else None."""
        row_id = unit.row.id
        job = self.jobs[row_id]
        if not is_done(record):
            if row_id in self.failed:
                return None
            self.failed.add(row_id)
            return failed_row_record(unit.row, error=job.part_failed(unit, record), attempt=int(record.get("attempt") or 1))
        self.records[row_id][unit.part] = record
        if row_id in self.failed or len(self.records[row_id]) < job.parts:
            return None
        return self._assembly(job)

    def _assembly(self, job: PartedJob) -> Unit:
        records = self.records[job.row.id]
        return job.assembly(tuple(records[index] for index in range(job.parts)))
