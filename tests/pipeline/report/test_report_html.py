"""The page: values of the ledger never become markup, and the table's JSON cannot end its element."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from pipeline.report.html import embed_json, page
from pipeline.report.image_card import image_card
from pipeline.report.sections import Source, failures_section, summary_section
from pipeline.report.summary import summarize, units_of
from pipeline.report.table import table_data
from pipeline.report.video_card import video_card
from tests.pipeline.report.synthetic import failed_line, image_line, video_line

EVIL = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"


class Tags(HTMLParser):
    """The start tags of a document, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_embedded_json_has_no_markup_characters_and_round_trips() -> None:
    value = {"id": EVIL, "error": "a & b > c", "n": [1, None, "inf"]}
    text = embed_json(value)
    assert not set("<>&") & set(text)
    assert json.loads(text) == value


def test_a_malicious_id_and_error_stay_text_everywhere(tmp_path: Path) -> None:
    lines = {
        EVIL: image_line(EVIL, 2, output="missing.png"),
        "v": video_line(EVIL + "v", 3, 4, output="missing.mp4"),
        "f": failed_line("f" + EVIL, 4, EVIL),
    }
    units = units_of(lines)
    summary = summarize(units)
    source = Source(EVIL, 1, 0, "2026-03-01T00:00:00+00:00")
    sections = [
        summary_section(summary, source),
        failures_section(summary),
        image_card(lines[EVIL], tmp_path, anchor="card-1", why=EVIL),
        video_card(lines["v"], tmp_path, anchor="card-2", why=""),
    ]
    html = page(EVIL, sections, table_data(units, {EVIL: "card-1"}))
    tags = tags_of(html)
    assert [tag for tag, _ in tags].count("script") == 2  # the table's JSON and the page's own script
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in tags)
    assert not any(name.startswith("on") for _, attrs in tags for name in attrs)
    assert EVIL not in html and "&lt;/script&gt;&lt;script&gt;alert(1)" in html
    data = re.search(r'<script type="application/json" id="table-data">(.*?)</script>', html, re.S)
    assert data is not None
    table = json.loads(data.group(1))
    assert table["rows"][0][0] == EVIL and table["cards"] == {EVIL: "card-1"}
