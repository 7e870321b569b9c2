"""report.html from a real small output folder: real images and a real video, synthetic ledger lines."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import pytest

from pipeline.report import REPORT_HTML, CardLimits, NoLedgerError, make_report, write_report
from pipeline.report import build as build_module
from tests.pipeline.report.folder import EVIL_ID
from tests.pipeline.report.synthetic import image_line, write_ledger


def cards_of(html: str) -> dict[str, str]:
    """Each card's HTML by its heading's text (unescaped ids are not needed: the test ids are plain)."""
    found = {}
    for card in re.findall(r'<article class="card[^"]*".*?</article>', html, re.S):
        heading = re.search(r"<h3>(?:<a [^>]*>)?(.*?)<", card)
        assert heading is not None
        found[heading.group(1)] = card
    return found


def table_of(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="table-data">(.*?)</script>', html, re.S)
    assert match is not None
    table: dict[str, Any] = json.loads(match.group(1))
    return table


def test_a_report_of_a_real_output_folder(run_folder: Path) -> None:
    report = make_report(run_folder)
    assert report.path == run_folder / REPORT_HTML and report.path.stat().st_size == report.bytes
    html = report.path.read_text(encoding="utf-8")
    summary = report.summary
    assert (summary.units, summary.images, summary.videos, summary.done, summary.failed, summary.running) == (9, 7, 2, 7, 1, 1)
    assert report.image_cards == 6 and report.video_cards == 1  # every done image and video

    # self-contained: every image embedded, nothing fetched
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert sources and all(source.startswith(("data:image/jpeg;base64,", "data:image/png;base64,")) for source in sources)
    for source in sources:
        assert iio.imread(base64.b64decode(source.split(",", 1)[1])).size > 0
    assert not re.search(r'(src|href)="(?!data:|#)', html) and "<link" not in html and "@import" not in html

    cards = cards_of(html)
    cat, moon, rocket, gone, old, clip = (cards[name] for name in ("cat", "moon", "rocket", "gone", "old", "clip"))
    assert cat.count("<img") == 4 and 'class="zoom"' in cat  # input, output and their crops
    assert 'data-marker="stop" data-x="1200"' in cat and 'data-marker="kept" data-x="850"' in cat
    assert "early_stop (rule: variance)" in cat and "22.00 dB → 28.00 dB (+6.00 dB)" in cat
    assert "(shown at the output&#x27;s size)" in moon and "input 1×48×64" in moon and "output 1×96×128" in moon
    assert "input 3×80×120" in rocket and "PSNR" not in rocket.split("<img")[0]  # float TIFF; no reference
    assert "the output cannot be shown" in gone and "no such file" in gone and gone.count("<img") == 1
    assert "no trace in the ledger" in old
    assert clip.count('class="frame-pair"') == 3 and "frame 0" in clip and "frame 3" in clip and "frame 7" in clip
    assert clip.count("<img") == 6 and "libx264 / yuv420p" in clip and "audio:aac" in clip and "data:tmcd" in clip
    assert 'data-series="cold"' in clip and 'data-series="warm"' in clip and "PSNR per frame" in clip and "flicker per frame" in clip
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and EVIL_ID not in html

    table = table_of(html)
    rows = table["rows"]
    assert isinstance(rows, list) and len(rows) == 9
    statuses = table["vocab"]["3"]
    assert {statuses[row[3]] for row in rows} == {"done", "failed", "running"}
    assert set(table["cards"]) == {"cat", "moon", "rocket", "gone", "old", EVIL_ID, "clip"}
    assert "Failures (1)" in html and "the file is empty (0 bytes)" in html
    assert [path.name for path in run_folder.iterdir() if path.name.startswith(".")] == []  # no temporary file left


def test_cards_are_capped_and_the_rest_is_in_the_table(run_folder: Path) -> None:
    report = make_report(run_folder, limits=CardLimits(images=2, worst_images=1, videos=0, worst_videos=0))
    html = report.path.read_text(encoding="utf-8")
    assert report.image_cards == 3 and report.video_cards == 0
    assert "3 of 6 shown" in html and 'id="videos"' not in html
    assert len(table_of(html)["rows"]) == 9


def test_the_ledger_is_read_while_it_is_written(run_folder: Path) -> None:
    """A half-written last line (a run still appending) is left out and said so; shards merge."""
    write_ledger(run_folder, [image_line("sharded", 20, input="nowhere.png", output="cat.png")], name="results.3.jsonl")
    with open(run_folder / "results.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": "half", "status": "do')
    report = make_report(run_folder)
    html = report.path.read_text(encoding="utf-8")
    assert report.summary.units == 10 and "1 ledger line(s) could not be read" in html and "From 2 ledger file(s)" in html
    assert "the input cannot be shown" in cards_of(html)["sharded"]


def test_a_card_that_cannot_be_drawn_does_not_stop_the_report(run_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(build_module, "video_card", broken)
    html = write_report(run_folder).read_text(encoding="utf-8")
    assert "this card could not be drawn: RuntimeError: decoder exploded" in html and 'id="images"' in html


def test_no_ledger_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoLedgerError, match="no ledger.*pipeline run MANIFEST --out OUT"):
        make_report(tmp_path)
    assert not (tmp_path / REPORT_HTML).exists()


def test_the_report_does_not_need_ray() -> None:
    """`pipeline report` runs where Ray is not (a login node, a laptop reading a copied folder)."""
    code = "import sys, pipeline.report, pipeline.cli.report_command; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=120).returncode == 0
