"""pipeline.ledger: append-only lines, latest record wins, crashes tolerated, shards merged, CSV view."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from pipeline.io import atomic_path
from pipeline.io.atomic import temp_path_for
from pipeline.ledger import CSV_COLUMNS, RESULTS_CSV, RESULTS_JSONL, Ledger
from pipeline.records import ImageRecord


def done(unit_id: str, output: str | None = None, **fields: object) -> dict:
    record = ImageRecord(
        id=unit_id,
        status="done",
        task="denoise",
        input=f"/data/{unit_id}.png",
        output=output or f"{unit_id}.png",
        psnr_out=31.234567,
        iterations=420,
        finished_at="2025-01-01T00:00:00.000+00:00",
    ).to_dict()
    record.update(fields)
    return record


def failed(unit_id: str, **fields: object) -> dict:
    record: dict[str, object] = {"id": unit_id, "status": "failed", "error": "boom", "output": f"{unit_id}.png"}
    record.update(fields)
    return record


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_append_writes_one_sorted_json_line_per_record(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "out")  # the folder does not exist yet
    ledger.append({"id": "a", "status": "done", "b": 1})
    ledger.append(done("b"))
    lines = (tmp_path / "out" / RESULTS_JSONL).read_text().splitlines()
    assert len(lines) == 2
    assert lines[0] == json.dumps({"id": "a", "status": "done", "b": 1}, sort_keys=True, separators=(",", ":"))
    assert json.loads(lines[1]) == done("b")


def test_append_rejects_a_record_without_an_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="id"):
        Ledger(tmp_path).append({"status": "done"})


def test_load_keeps_the_latest_record_per_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(failed("a", attempt=1))
    ledger.append(done("b"))
    ledger.append(done("a", attempt=2))
    records = ledger.load()
    assert set(records) == {"a", "b"}
    assert records["a"]["status"] == "done" and records["a"]["attempt"] == 2


def test_load_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "nowhere")
    assert ledger.load() == {} and ledger.done_ids() == set()


def test_a_truncated_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(done("a"))
    full = json.dumps(done("b"), sort_keys=True)
    with open(tmp_path / RESULTS_JSONL, "a") as handle:  # a crash in the middle of a write
        handle.write("\n\n" + full[: len(full) // 2])
    assert set(ledger.load()) == {"a"}
    assert ledger.skipped_lines == [(tmp_path / RESULTS_JSONL, 4)]
    ledger.append(done("c"))
    assert set(ledger.load()) == {"a", "c"}  # the fragment did not swallow c's line
    assert (tmp_path / RESULTS_JSONL).read_text().endswith("\n")


def test_garbage_and_records_without_ids_are_skipped(tmp_path: Path) -> None:
    (tmp_path / RESULTS_JSONL).write_bytes(b'[1, 2]\n{"status": "done"}\n\xff\xfe\n{"id": "a"}\n')
    ledger = Ledger(tmp_path)
    assert list(ledger.load()) == ["a"]
    assert [number for _, number in ledger.skipped_lines] == [1, 2, 3]


def test_shard_ledgers_are_merged_after_the_main_file(tmp_path: Path) -> None:
    Ledger(tmp_path).append(failed("a"))
    Ledger(tmp_path).append(done("main-only"))
    Ledger(tmp_path, shard=1).append(done("a"))
    Ledger(tmp_path, shard=1).append(done("s1"))
    Ledger(tmp_path, shard=2).append(failed("s1"))  # a later file wins (no times to compare)
    assert (tmp_path / "results.1.jsonl").is_file() and (tmp_path / "results.2.jsonl").is_file()
    records = Ledger(tmp_path).load()
    assert set(records) == {"a", "main-only", "s1"}
    assert records["a"]["status"] == "done"
    assert records["s1"]["status"] == "failed"


def test_across_files_a_newer_finish_time_wins(tmp_path: Path) -> None:
    """A unit that failed in its shard and was redone later into the main ledger stays done."""
    Ledger(tmp_path).append(done("a", finished_at="2025-01-02T00:00:00+00:00"))
    Ledger(tmp_path, shard="0").append(failed("a", finished_at="2025-01-01T00:00:00+00:00"))
    assert Ledger(tmp_path).load()["a"]["status"] == "done"


def test_a_bad_shard_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shard"):
        Ledger(tmp_path, shard="../x")


def test_done_ids_need_status_done_and_the_output_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for unit_id in ("kept", "deleted", "nested"):
        ledger.append(done(unit_id, output=f"sub/{unit_id}.png" if unit_id == "nested" else None))
    ledger.append(failed("bad"))
    ledger.append(done("redone-then-failed"))
    ledger.append(failed("redone-then-failed"))
    for name in ("kept.png", "sub/nested.png", "bad.png", "redone-then-failed.png"):
        touch(tmp_path / name)
    assert ledger.done_ids() == {"kept", "nested"}


def test_write_csv_has_the_fixed_columns_sorted_rows_and_formatted_cells(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(done("b", psnr_in=float("inf"), seconds=1.5, worker="w0", attempt=1))
    ledger.append(failed("a", error="row 3 (id a): the mask is not binary,\nsee the docs"))
    ledger.write_csv()
    with open(tmp_path / RESULTS_CSV, newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    table = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [row["id"] for row in table] == ["a", "b"]
    assert table[0]["error"] == "row 3 (id a): the mask is not binary,\nsee the docs"
    assert table[0]["psnr_out"] == "" and table[0]["task"] == ""
    assert table[1]["psnr_out"] == "31.2346" and table[1]["psnr_in"] == "inf"
    assert table[1]["seconds"] == "1.5000" and table[1]["iterations"] == "420"
    assert table[1]["error"] == "" and table[1]["worker"] == "w0"


def test_write_csv_replaces_the_file_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(done("a"))
    ledger.write_csv()
    before = (tmp_path / RESULTS_CSV).read_text()
    ledger.append(done("b"))

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ledger.write_csv()
    assert (tmp_path / RESULTS_CSV).read_text() == before  # the old view, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_CSV, RESULTS_JSONL]  # no temp file left
    monkeypatch.undo()
    ledger.write_csv()
    assert "b" in (tmp_path / RESULTS_CSV).read_text()


def test_clean_partials_removes_only_that_outputs_temporary_files(tmp_path: Path) -> None:
    output = Path("sub/photo.png")
    folder = tmp_path / "sub"
    leftovers = [touch(temp_path_for(folder / "photo.png")) for _ in range(2)]
    leftovers.append(touch(folder / ".photo.png.123-abcdef.tmp.png"))  # keep_suffix form
    keep = [
        touch(folder / "photo.png"),
        touch(temp_path_for(folder / "other.png")),
        touch(folder / ".photo.png.notes.tmp"),  # not the atomic naming
        touch(folder / ".photo.png.123-abcdef.tmp.jpg"),  # a suffix the target does not have
        touch(tmp_path / ".photo.png.123-abcdef.tmp"),  # another folder
    ]
    assert Ledger(tmp_path).clean_partials(output) == 3
    assert Ledger(tmp_path).clean_partials(tmp_path / output) == 0  # absolute paths work too
    assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in keep)
    assert Ledger(tmp_path).clean_partials(Path("missing/x.png")) == 0


def test_clean_all_partials_walks_the_tree_and_spares_other_files(tmp_path: Path) -> None:
    temps = [
        touch(temp_path_for(tmp_path / "a.png")),
        touch(temp_path_for(tmp_path / "x" / "y" / "b.tif")),
        touch(temp_path_for(tmp_path / "clip.mp4", keep_suffix=True)),
        touch(temp_path_for(tmp_path / RESULTS_CSV)),
    ]
    keep = [touch(tmp_path / "a.png"), touch(tmp_path / "x" / "notes.tmp"), touch(tmp_path / ".hidden")]
    Ledger(tmp_path).append(done("a"))
    assert Ledger(tmp_path).clean_all_partials() == 4
    assert not any(path.exists() for path in temps)
    assert all(path.exists() for path in keep)
    assert Ledger(tmp_path / "absent").clean_all_partials() == 0


def test_an_interrupted_atomic_write_is_cleaned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the real writer leaves when killed between writing and renaming matches the cleaner."""
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: None)  # a kill skips the cleanup
    for keep_suffix in (False, True):
        with pytest.raises(KeyboardInterrupt):
            with atomic_path(tmp_path / "clip.mp4", keep_suffix=keep_suffix) as tmp:
                tmp.write_bytes(b"partial")
                raise KeyboardInterrupt
    monkeypatch.undo()
    assert len(list(tmp_path.iterdir())) == 2
    assert Ledger(tmp_path).clean_partials(Path("clip.mp4")) == 2
    assert list(tmp_path.iterdir()) == []
