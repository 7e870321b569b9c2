"""Which rows an output folder already has: done in its ledger, with their output, and current."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.run.fingerprint import fingerprint


def finished_rows(out_dir: Path, *, force: bool = False) -> Callable[[ManifestRow], bool]:
    """Whether a row is finished in `out_dir`: its latest ledger line is done, its output exists
    and its fingerprint has not changed since (`pipeline.run.fingerprint`). Such a row is skipped
    by the run, so its files are not checked again. Never true with `force`."""
    if force:
        return lambda row: False
    ledger = Ledger(out_dir)
    records = ledger.load()

    def finished(row: ManifestRow) -> bool:
        record = records.get(row.id)
        return record is not None and ledger.is_done(record) and not fingerprint(row).outdates(record.get("fingerprint"))

    return finished
