"""report.html in a real headless browser (the system's chromium, driven by playwright).

The page loads from file:// with no console error and no page error, every image decodes, every
plot is drawn, the table pages, sorts and filters, and a screenshot is taken. Skipped only where
playwright or chromium is missing (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.report import make_report
from tests.pipeline.report.test_report_scale import large_ledger

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="the browser test needs Debian's chromium (apt-get install chromium)")
SCREENSHOT_COPY = Path("/tmp/report_screenshot.png")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Opened:
    """A page of the report, with what went wrong while it loaded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", lambda message: self.problems.append(f"console {message.text}") if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error {error}"))
        self.page.on("dialog", self.dismiss)
        self.page.on(
            "request", lambda request: None if request.url.startswith(("file:", "data:")) else self.problems.append(f"fetch {request.url}")
        )
        started = time.perf_counter()
        self.page.goto(path.as_uri(), wait_until="load")
        self.page.wait_for_function("document.querySelectorAll('#units tbody tr').length > 0")
        self.seconds = time.perf_counter() - started

    def dismiss(self, dialog: Any) -> None:
        """An alert (e.g. from a malicious id that ran as script) is a problem."""
        self.problems.append(f"dialog {dialog.message}")
        dialog.dismiss()

    def first_id(self) -> str:
        return str(self.page.locator("#units tbody tr").first.locator("td").first.inner_text())

    def page_text(self) -> str:
        return str(self.page.locator("#page-text").inner_text())


def table_of(path: Path) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="table-data">(.*?)</script>', path.read_text(encoding="utf-8"), re.S)
    assert match is not None
    table: dict[str, Any] = json.loads(match.group(1))
    return table


def test_the_report_of_a_real_folder_loads_with_every_image_and_plot(browser: Any, run_folder: Path, tmp_path: Path) -> None:
    report = make_report(run_folder)
    opened = Opened(browser, report.path)
    page = opened.page
    assert opened.problems == []  # no console error, page error, alert (the malicious id) or fetch
    images = page.eval_on_selector_all("img", "images => images.map(image => [image.complete, image.naturalWidth, image.alt])")
    assert len(images) == 5 * 4 + 1 + 6  # five cards: input, output, two crops; one without output; a video's 3 frame pairs
    assert all(complete and width > 0 for complete, width, _ in images), images
    plots = page.eval_on_selector_all(
        "svg.plot",
        "plots => plots.map(plot => [plot.childElementCount, plot.getBoundingClientRect().width, plot.querySelectorAll('path.series').length])",
    )
    assert len(plots) == 5 * 2 + 1 + 3  # loss and criterion per traced image, one "no trace", three for the video
    assert all(children > 3 and width > 0 for children, width, _ in plots), plots
    assert sum(series > 0 for _, _, series in plots) == len(plots) - 1  # all drawn but the line without a trace
    assert page.locator('svg.plot g.marker[data-marker="kept"]').count() == 2 * 5
    assert page.locator("#units tbody tr").count() == 9
    page.get_by_role("button", name="Show every failed row in the table").click()
    assert page.locator("#units tbody tr").count() == 1 and page.locator("#units tbody tr.status-failed").count() == 1
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)
    page.close()


def test_the_table_pages_sorts_and_filters_10_000_rows(browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    large_ledger(out, 10_000)
    path = make_report(out).path
    table = table_of(path)
    psnr_in = [column["key"] for column in table["columns"]].index("psnr_in")
    done = [(row[psnr_in], index) for index, row in enumerate(table["rows"]) if row[psnr_in] is not None]
    ascending = [table["rows"][index][0] for _, index in sorted(done)]
    descending = [table["rows"][index][0] for _, index in sorted(done, key=lambda item: (-item[0], item[1]))]

    opened = Opened(browser, path)
    page = opened.page
    print(f"\n10,000 rows: {path.stat().st_size / 1e6:.1f} MB, loaded and drawn in {opened.seconds:.2f} s")
    assert opened.problems == []
    assert opened.first_id() == "unit-000000" and opened.page_text().startswith("rows 1–50 of 10000")
    page.locator('th button[data-column="psnr_in"]').click()
    assert opened.first_id() == ascending[0]
    assert page.locator("th").nth(psnr_in).get_attribute("aria-sort") == "ascending"
    page.locator("#page-next").click()
    assert opened.first_id() == ascending[50] and "rows 51–100" in opened.page_text()
    page.locator('th button[data-column="psnr_in"]').click()  # again: the other way, back to page 1
    assert opened.first_id() == descending[0]
    page.locator("#page-last").click()
    assert "failed" in page.locator("#units tbody tr").last.get_attribute("class")  # no PSNR sorts last
    page.locator("#status-filter").select_option("failed")
    assert opened.page_text().startswith(f"rows 1–50 of {len(range(5, 10_000, 97))} (filtered from 10000)")
    assert page.locator("#units tbody tr.status-failed").count() == 50
    page.locator("#status-filter").select_option("")
    page.locator("#text-filter").fill("unit-00999")
    page.wait_for_function("document.querySelector('#page-text').textContent.includes('of 10 ')")
    assert opened.first_id() == "unit-009990"
    page.close()


@pytest.mark.slow
def test_a_100_000_row_report_loads(browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    large_ledger(out, 100_000)
    path = make_report(out).path
    opened = Opened(browser, path)
    print(f"\n100,000 rows: {path.stat().st_size / 1e6:.1f} MB, loaded and drawn in {opened.seconds:.2f} s")
    assert opened.problems == [] and opened.page_text().startswith("rows 1–50 of 100000")
    started = time.perf_counter()
    opened.page.locator('th button[data-column="gain"]').click()
    print(f"sorted 100,000 rows in {time.perf_counter() - started:.2f} s")
    assert opened.seconds < 30
    opened.page.close()
