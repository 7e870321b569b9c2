"""`folder_status` on synthetic ledgers (states, parts, throughput, ETA, slowest, stalls), and on a real run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dip_engine import FitConfig, NetConfig, RestoreConfig
from pipeline.io import write_image
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow, parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.run.status import DONE, FAILED, PENDING, folder_status
from pipeline.work.image import process_image
from pipeline.work.processors import Processors
from tests.conftest import photo

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def line(unit_id: str, finished: float, seconds: float | None = 60.0, status: str = "done", **fields: Any) -> dict[str, Any]:
    """A ledger record of `unit_id` that finished `finished` seconds after T0, after `seconds` of work."""
    kind = fields.pop("kind", "segment" if "#seg" in unit_id else "tiles" if "#tiles" in unit_id else "image")
    moment = (T0 + timedelta(seconds=finished)).isoformat(timespec="milliseconds")
    return {"id": unit_id, "status": status, "kind": kind, "seconds": seconds, "finished_at": moment, "worker": "node1:cpu0", **fields}


def ledger(*records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in records}


def manifest_ids(*ids: str) -> list[tuple[str, int | None]]:
    return [(row_id, number) for number, row_id in enumerate(ids, start=2)]


def test_rows_are_done_failed_or_pending_with_their_parts() -> None:
    records = ledger(
        line("a", 60),
        line("b", 120, status="failed", error="cannot decode b.jpg"),
        line("clip#seg0000", 180, video="clip", segment=0, segments=5),
        line("clip#seg0001", 240, video="clip", segment=1, segments=5),
    )
    status = folder_status(records, manifest_ids("a", "b", "c", "clip"), now=T0 + timedelta(seconds=300))
    states = {row.id: row.state for row in status.rows}
    assert states == {"a": DONE, "b": FAILED, "c": PENDING, "clip": PENDING}
    clip = next(row for row in status.rows if row.id == "clip")
    assert clip.parts_text() == "2 of 5 segments" and clip.row == 5
    assert status.of_state(FAILED)[0].error == "cannot decode b.jpg"
    assert (status.units_done, status.units_failed) == (3, 1)
    assert status.pending_units == 1 + (5 - 2 + 1)  # c, then clip's three segments and its assembly
    assert status.manifest_read and status.not_in_manifest == []


def test_throughput_and_eta_come_from_the_recent_window() -> None:
    # One worker, a unit a minute, for four minutes: 60 units an hour; an old unit outside the window does not count.
    records = ledger(line("old", -7200), *(line(f"u{index}", 60 * (index + 1)) for index in range(4)))
    ids = manifest_ids("old", "u0", "u1", "u2", "u3", "p0", "p1", "p2")
    status = folder_status(records, ids, now=T0 + timedelta(seconds=250))
    assert status.throughput is not None
    assert status.throughput.units == 4 and status.throughput.seconds == pytest.approx(240)
    assert status.throughput.units_per_hour == pytest.approx(60) and status.throughput.rows_per_hour == pytest.approx(60)
    assert status.eta_seconds == pytest.approx(3 * 60)  # three rows pending, a minute each
    assert status.last_result_age == pytest.approx(10) and not status.stalled


def test_parallel_workers_count_together() -> None:
    # Two workers, each a unit every 100 s, over 1000 s: 72 units an hour.
    records = ledger(*(line(f"w{worker}-{index}", 100 * (index + 1), seconds=100) for worker in (0, 1) for index in range(10)))
    status = folder_status(records, None, now=T0 + timedelta(seconds=1000))
    assert status.throughput is not None and status.throughput.units_per_hour == pytest.approx(72)


def test_eta_is_unknown_until_a_unit_finished_and_zero_when_nothing_is_pending() -> None:
    invalid = line("(row 3)", 0, seconds=None, status="failed", error="invalid row: column 'task': unknown")
    waiting = folder_status(ledger(invalid), manifest_ids("a", "(row 3)"), now=T0)
    assert waiting.throughput is None and waiting.eta_seconds is None and waiting.count(PENDING) == 1
    finished = folder_status(ledger(line("a", 60)), manifest_ids("a"), now=T0 + timedelta(days=3))
    assert finished.eta_seconds == 0 and not finished.stalled  # long silent, but nothing is left to do


def test_a_silent_folder_with_pending_rows_is_stalled() -> None:
    records = ledger(line("a", 60), line("b", 120))
    ids = manifest_ids("a", "b", "c")
    assert not folder_status(records, ids, now=T0 + timedelta(minutes=8)).stalled
    stalled = folder_status(records, ids, now=T0 + timedelta(minutes=40))
    assert stalled.stalled and stalled.last_result_age == pytest.approx(38 * 60)
    slow = ledger(line("a", 3600, seconds=3600))  # units of an hour: 40 min of silence is normal
    assert not folder_status(slow, ids, now=T0 + timedelta(minutes=100)).stalled


def test_the_slowest_units_count_an_assembly_by_its_own_time() -> None:
    records = ledger(
        *(line(f"img{index}", 10 * index, seconds=float(index)) for index in range(8)),
        line("clip#seg0000", 500, seconds=300.0, segments=2),
        line("clip#seg0001", 600, seconds=250.0, segments=2),
        line("clip", 700, seconds=600.0, kind="video", assembly_seconds=50.0),
        line("scan#tiles0000", 800, seconds=100.0, groups=1),
        line("scan", 810, seconds=105.0, tile_groups=1),
    )
    status = folder_status(records, None, now=T0 + timedelta(seconds=900))
    assert [(unit.id, unit.seconds) for unit in status.slowest] == [
        ("clip#seg0000", 300.0),
        ("clip#seg0001", 250.0),
        ("scan#tiles0000", 100.0),
        ("clip", 50.0),
        ("img7", 7.0),
    ]
    assert status.slowest[0].worker == "node1:cpu0"
    assert {row.id: row.parts_text() for row in status.rows if row.parts_kind} == {"clip": "2 of 2 segments", "scan": "1 of 1 tile groups"}


def test_a_failed_row_whose_parts_run_again_is_pending() -> None:
    records = ledger(
        line("clip", 100, status="failed", kind="video", error="segment 1 failed"),
        line("clip#seg0001", 200, segments=3),
        line("img", 100, status="failed", error="out of memory"),
    )
    status = folder_status(records, manifest_ids("clip", "img"), now=T0 + timedelta(seconds=210))
    assert {row.id: row.state for row in status.rows} == {"clip": PENDING, "img": FAILED}


def test_outputs_gone_and_rows_the_manifest_dropped() -> None:
    records = ledger(line("a", 60), line("b", 60), line("gone", 60))
    status = folder_status(records, manifest_ids("a", "b"), now=T0, done=lambda record: record["id"] != "b")
    b = next(row for row in status.rows if row.id == "b")
    assert b.state == PENDING and b.note is not None and "output is missing" in b.note
    assert status.not_in_manifest == ["gone"]


def test_without_a_manifest_the_rows_are_those_the_ledger_has_seen() -> None:
    records = ledger(line("b", 60, row=3), line("a", 30, row=2), line("clip#seg0000", 90, segments=4, row=4))
    status = folder_status(records, None, now=T0)
    assert not status.manifest_read
    assert [(row.id, row.state) for row in status.rows] == [("a", DONE), ("b", DONE), ("clip", PENDING)]


def test_parts_not_yet_seen_come_from_the_run_files_or_an_average() -> None:
    records = ledger(line("v1#seg0000", 60, segments=4))
    planned = {"v2": {"kind": "segment", "parts": 6}}
    ids = manifest_ids("v1", "v2", "v3")
    status = folder_status(records, ids, now=T0, planned_parts=planned, videos={"v1", "v2", "v3"})
    assert [row.parts_text() for row in status.rows] == ["1 of 4 segments", "0 of 6 segments", "0 of ? segments"]
    assert status.pending_units == (4 - 1 + 1) + (6 + 1) + (5 + 1)  # v3: the average video, and its assembly


# ----- a real run --------------------------------------------------------------------------------

TINY = RestoreConfig(net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)), fit=FitConfig(max_iterations=5))


def tiny_processor(row: ManifestRow, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_image(row, out_dir, config_override=TINY, **context)


def test_status_of_a_real_run_and_of_one_with_a_line_removed(tmp_path: Path) -> None:
    for index, name in enumerate(["first", "second"]):
        write_image(tmp_path / f"{name}.png", photo("astronaut", 30 * index, 120, 24, 20))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,task,input,max_iterations\nfirst,denoise,first.png,5\nsecond,denoise,second.png,5\n")
    rows = parse_manifest(manifest)
    out = tmp_path / "out"
    summary = run(rows, RunOptions(out_dir=out, in_process=True, processors=Processors(image=tiny_processor)))
    assert summary.succeeded
    ids = [(row.id, row.row_number) for row in rows]

    def status_now() -> Any:
        store = Ledger(out)
        return folder_status(store.load(), ids, now=datetime.now(timezone.utc), done=store.is_done)

    done = status_now()
    assert (done.count(DONE), done.count(PENDING), done.count(FAILED)) == (2, 0, 0)
    assert done.eta_seconds == 0 and done.throughput is not None and done.throughput.units == 2
    assert {unit.id for unit in done.slowest} == {"first", "second"} and all(unit.seconds > 0 for unit in done.slowest)
    assert done.last_result_age is not None and 0 <= done.last_result_age < 600

    lines = (out / "results.jsonl").read_text().splitlines()
    kept = [text for text in lines if json.loads(text)["id"] != "second"]
    (out / "results.jsonl").write_text("\n".join(kept) + "\n")
    one_left = status_now()
    assert [row.id for row in one_left.of_state(PENDING)] == ["second"] and one_left.count(DONE) == 1
    assert one_left.eta_seconds is not None and one_left.eta_seconds > 0
