"""The report's pure parts: units, summary figures, the table's JSON, which units get a card."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipeline.report.sample import CardLimits, pick, pick_cards, spread
from pipeline.report.summary import STATUS_RUNNING, summarize, units_of
from pipeline.report.table import COLUMNS, table_data
from tests.pipeline.report.synthetic import failed_line, image_line, segment_line, video_line


def by_id(*lines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in lines}


def test_units_leave_out_parts_and_stand_in_for_a_video_in_progress() -> None:
    records = by_id(
        image_line("b", 3),
        image_line("a", 2),
        video_line("clip", 4, 8),
        segment_line("clip", 0, 2, 4),  # a part of a finished video: not a unit
        segment_line("film", 0, 3, 5),
        segment_line("film", 1, 3, 5),
        {"id": "big#tiles0000", "kind": "tiles", "status": "done", "image": "big", "groups": 4, "task": "denoise", "row": 6},
    )
    units = units_of(records)
    assert [unit["id"] for unit in units] == ["a", "b", "clip", "film", "big"]  # manifest order
    film, big = units[3], units[4]
    assert film["status"] == STATUS_RUNNING and film["kind"] == "video" and film["progress"] == "2 of 3 segments done"
    assert film["iterations"] == 2000 and film["seconds"] == 60.0
    assert big["status"] == STATUS_RUNNING and big["kind"] == "image" and big["progress"] == "1 of 4 tile groups done"


def test_old_lines_without_kind_or_row_are_image_units_after_the_numbered_ones() -> None:
    old = {"id": "legacy", "status": "done", "output": "legacy.png"}
    units = units_of(by_id(old, image_line("first", 9)))
    assert [unit["id"] for unit in units] == ["first", "legacy"]
    assert summarize(units).images == 2


def test_summary_figures() -> None:
    lines = [
        image_line("a", 2, psnr_in=20.0, psnr_out=30.0, seconds=10.0, iterations=100, finished_at="2026-03-01T10:00:00+00:00"),
        image_line("b", 3, psnr_in=22.0, psnr_out=24.0, seconds=20.0, iterations=300, stop_reason="max_iterations"),
        image_line("c", 4, psnr_in=None, psnr_out=None, seconds=30.0, iterations=200),  # no reference
        image_line("d", 5, psnr_in=25.0, psnr_out=math.inf, seconds=None, finished_at="2026-03-01T09:00:00Z"),  # identical: no finite gain
        failed_line("e", 6, "disk full", seconds=1.0, finished_at="2026-03-01T11:30:00.000+01:00"),
        failed_line("f", 7, "disk full", seconds=1.0, finished_at="garbage"),
        failed_line("g", 8, "cannot decode x.png", seconds=1.0),
        video_line("v", 9, 4, seconds=40.0, iterations=800),
    ]
    summary = summarize(units_of(by_id(*lines)))
    assert (summary.units, summary.images, summary.videos) == (8, 7, 1)
    assert (summary.done, summary.failed, summary.running) == (5, 3, 0)
    assert summary.seconds_total == pytest.approx(10 + 20 + 30 + 3 + 40)
    assert summary.seconds_mean == pytest.approx(103 / 7)  # d has no time
    assert summary.iterations_total == 100 + 300 + 200 + 900 + 800
    assert summary.gain_count == 3 and summary.gain_mean == pytest.approx((10 + 2 + 7.5) / 3)  # a, b and the video
    assert summary.first_finished == "2026-03-01T09:00:00Z"
    assert summary.last_finished == "2026-03-01T11:00:00.000+00:00"  # 11:30+01:00 is 10:30 UTC, earlier
    assert dict(summary.stop_reasons) == {"early_stop": 3, "max_iterations": 1}
    assert [(group.error, group.count, group.examples) for group in summary.failures] == [
        ("disk full", 2, ("e", "f")),
        ("cannot decode x.png", 1, ("g",)),
    ]
    assert summary.failure_kinds == 2


def test_an_empty_ledger_summarises_to_zeros() -> None:
    summary = summarize([])
    assert summary.units == 0 and summary.seconds_mean is None and summary.gain_mean is None and summary.first_finished is None


def test_table_rows_are_compact_and_decodable() -> None:
    lines = [
        image_line("a", 2, psnr_in=20.123, psnr_out=math.inf),
        failed_line("b", 3, "disk full"),
        segment_line("film", 0, 3, 4),
        {"id": "odd", "status": "done", "kind": "image", "psnr_in": "n/a", "iterations": True, "row": 5},  # wrong types
    ]
    data = table_data(units_of(by_id(*lines)), {"a": "card-1"})
    keys = [column["key"] for column in data["columns"]]
    assert keys == [column.key for column in COLUMNS]
    assert keys[:4] == ["id", "kind", "task", "status"] and "error" in keys
    decoded = [
        {
            key: (data["vocab"][str(index)][value] if str(index) in data["vocab"] and value is not None else value)
            for index, (key, value) in enumerate(zip(keys, row))
        }
        for row in data["rows"]
    ]
    a, b, film, odd = decoded
    assert a["psnr_in"] == 20.12 and a["psnr_out"] == "inf" and a["gain"] == "inf" and a["error"] is None
    assert b["status"] == "failed" and b["error"] == "disk full" and b["psnr_out"] is None
    assert film["status"] == "running" and film["error"] == "1 of 3 segments done"
    assert odd["psnr_in"] is None and odd["iterations"] is None
    assert data["cards"] == {"a": "card-1"}


def test_spread_takes_the_ends_and_is_even() -> None:
    assert spread(5, 10) == [0, 1, 2, 3, 4]
    assert spread(100, 5) == [0, 25, 50, 74, 99]
    assert spread(100, 1) == [0] and spread(100, 0) == []
    assert len(spread(100_000, 24)) == 24


def test_cards_are_the_worst_by_gain_then_a_sample_of_the_rest() -> None:
    lines = [image_line(f"u{index:03d}", index + 2, psnr_in=20.0, psnr_out=20.0 + index % 50) for index in range(200)]
    lines.append(failed_line("failed", 300, "boom"))
    picks = pick(units_of(by_id(*lines)), "image", sample=10, worst=3)
    worst, rest = picks[:3], picks[3:]
    assert [chosen.unit["id"] for chosen in worst] == ["u000", "u050", "u100"]  # gain 0, in manifest order among ties
    assert [chosen.why for chosen in worst] == ["worst 1 by PSNR gain", "worst 2 by PSNR gain", "worst 3 by PSNR gain"]
    assert len(rest) == 10 and all(chosen.why == "sample" for chosen in rest)
    assert rest[0].unit["id"] == "u001" and rest[-1].unit["id"] == "u199"  # spread to the ends, worst left out
    assert "failed" not in {chosen.unit["id"] for chosen in picks}


def test_without_references_the_worst_are_by_psnr_out_or_none() -> None:
    no_gain = [image_line(f"u{index}", index, psnr_in=None, psnr_out=30.0 - index) for index in range(10)]
    picks = pick(units_of(by_id(*no_gain)), "image", sample=2, worst=1)
    assert picks[0].unit["id"] == "u9" and picks[0].why == "worst 1 by PSNR out"
    blind = [image_line(f"u{index}", index, psnr_in=None, psnr_out=None) for index in range(10)]
    picks = pick(units_of(by_id(*blind)), "image", sample=3, worst=5)
    assert [chosen.why for chosen in picks] == ["sample"] * 3


def test_a_small_run_shows_every_done_unit() -> None:
    lines = [image_line(f"u{index}", index) for index in range(5)] + [video_line("v", 9, 4)]
    images, videos = pick_cards(units_of(by_id(*lines)), CardLimits(images=24, worst_images=2, videos=6, worst_videos=1))
    assert [chosen.unit["id"] for chosen in images] == ["u0", "u1", "u2", "u3", "u4"] and {chosen.why for chosen in images} == {""}
    assert [chosen.unit["id"] for chosen in videos] == ["v"]
