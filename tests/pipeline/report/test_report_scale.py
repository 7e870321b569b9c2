"""A report of a large run: a table of every row, cards for a sample and the worst only, built in seconds.

Every line carries a full 200-point trace, as the pipeline writes them; the lines name a few real
images (cycled), so the cards read real files. 10,000 rows run by default, 100,000 with -m slow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.report import make_report
from tests.pipeline.report.folder import real_images
from tests.pipeline.report.synthetic import failed_line, image_line, trace


def large_ledger(out: Path, rows: int) -> None:
    """`rows` lines: about 1% failed (13 distinct errors), the rest done with a trace each and
    scattered PSNR. (The trace's JSON is made once and spliced into each line: writing is quick.)"""
    images = real_images(out.parent / "inputs", out)
    shared = ', "trace": ' + json.dumps(trace(900, 750)) + "}\n"
    with open(out / "results.jsonl", "w", encoding="utf-8") as handle:
        for index in range(rows):
            if index % 97 == 5:
                line = failed_line(f"unit-{index:06d}", index + 2, f"cannot decode /archive/u{index % 13}.png: truncated")
                handle.write(json.dumps(line) + "\n")
                continue
            image = images[index % len(images)]
            psnr_in = 18 + (index * 7919 % 1000) / 100
            line = image_line(f"unit-{index:06d}", index + 2, input=image["input"], output=image["output"], psnr_in=psnr_in, trace=None)
            del line["trace"]
            handle.write(json.dumps(line)[:-1] + shared)


def check_large_report(out: Path, rows: int, limit_s: float) -> None:
    started = time.perf_counter()
    report = make_report(out)
    seconds = time.perf_counter() - started
    print(
        f"\n{rows} rows: report built in {seconds:.1f} s, {report.bytes / 1e6:.1f} MB; ledger {(out / 'results.jsonl').stat().st_size / 1e6:.0f} MB"
    )
    assert seconds < limit_s
    assert report.summary.units == rows and report.summary.failed == len(range(5, rows, 97))
    assert report.image_cards == 36  # 12 worst + 24 sample
    assert report.bytes < 1000 * rows + 4_000_000  # the table costs well under a kilobyte a row
    html = report.path.read_text(encoding="utf-8")
    assert html.count('class="card image-card"') == 36 and html.count("worst ") >= 12


def test_a_10_000_row_report(tmp_path: Path) -> None:
    large_ledger(tmp_path / "out", 10_000)
    check_large_report(tmp_path / "out", 10_000, limit_s=20)


@pytest.mark.slow
def test_a_100_000_row_report(tmp_path: Path) -> None:
    large_ledger(tmp_path / "out", 100_000)
    check_large_report(tmp_path / "out", 100_000, limit_s=60)
