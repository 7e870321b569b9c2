"""The report tests' fixture: a real small output folder (see `tests.pipeline.report.folder`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.report.folder import make_run_folder


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """An output folder with real images and a real video and a ledger naming them (`make_run_folder`)."""
    return make_run_folder(tmp_path)
