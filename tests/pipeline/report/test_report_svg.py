"""The report's SVG plots: well-formed, markers where the stop and the kept iteration are, gaps, escaping."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from pipeline.report.image_card import curves
from pipeline.report.svg import Bars, Marker, Series, bar_plot, line_plot, linear_ticks, log_ticks, tick_text
from tests.pipeline.report.synthetic import image_line, trace

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_ticks_are_round_and_inside() -> None:
    assert linear_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert linear_ticks(0.93, 1.07) == [0.95, 1.0, 1.05] or all(0.93 <= tick <= 1.07 for tick in linear_ticks(0.93, 1.07))
    assert log_ticks(1e-4, 0.2) == [1e-4, 1e-3, 1e-2, 1e-1]
    assert log_ticks(0.004, 0.03) == [0.005, 0.01, 0.02]
    assert tick_text(0.0001) == "1e-4" and tick_text(1200.0) == "1200" and tick_text(0.5) == "0.5"


def test_line_plot_marks_the_stop_and_the_kept_iteration() -> None:
    line = Series("loss", [1, 100, 200, 300], [0.1, 0.01, 0.005, 0.004], "#000")
    markers = [Marker("stop", 300, "stop 300", "red"), Marker("kept", 200, "kept 200", "green")]
    svg = line_plot("loss", [line], x_label="iteration", markers=markers, log_y=True)
    root = parse(svg)
    groups = {group.get("data-marker"): group for group in root.iter("{http://www.w3.org/2000/svg}g")}
    assert groups["stop"].get("data-x") == "300" and groups["kept"].get("data-x") == "200"
    for group in groups.values():
        assert group.find("svg:line", NS) is not None and group.find("svg:circle", NS) is not None
    # the markers stand where the series' points for those iterations are
    path = root.find("svg:path[@class='series']", NS)
    assert path is not None
    points = re.findall(r"[ML]([\d.]+),([\d.]+)", path.get("d", ""))
    stop_line = groups["stop"].find("svg:line", NS)
    assert stop_line is not None and float(stop_line.get("x1", "nan")) == float(points[-1][0])
    kept_circle = groups["kept"].find("svg:circle", NS)
    assert kept_circle is not None and (float(kept_circle.get("cx", "nan")), float(kept_circle.get("cy", "nan"))) == tuple(
        map(float, points[2])
    )


def test_gaps_and_non_finite_values_break_the_line() -> None:
    line = Series("psnr", [1, 2, 3, 4, 5, 6], [20.0, 21.0, None, math.inf, 22.0, math.nan], "#000")
    path = parse(line_plot("psnr", [line], x_label="frame")).find("svg:path[@class='series']", NS)
    assert path is not None and path.get("d", "").count("M") == 2  # two runs: frames 1-2 and frame 5


def test_a_plot_without_values_says_so() -> None:
    svg = line_plot("criterion", [Series("criterion", [1, 2], [None, None], "#000")], x_label="iteration")
    assert "no values recorded" in svg and parse(svg).get("class") == "plot empty"
    log = line_plot("loss", [Series("loss", [1, 2], [0.0, -1.0], "#000")], x_label="iteration", log_y=True)
    assert "no values recorded" in log


def test_bars_are_one_path_per_group() -> None:
    svg = bar_plot(
        "iterations", [Bars("cold", [0, 4], [400, 380], "blue"), Bars("warm", [1, 2, 3], [120, 121, 122], "orange")], x_label="frame"
    )
    paths = {path.get("data-series"): path.get("d", "") for path in parse(svg).iter("{http://www.w3.org/2000/svg}path")}
    assert paths["cold"].count("M") == 2 and paths["warm"].count("M") == 3


def test_titles_and_labels_are_escaped() -> None:
    svg = line_plot("<b>&", [Series("<i>", [1, 2], [1.0, 2.0], "#000"), Series("x", [1, 2], [2.0, 3.0], "#111")], x_label="<x>")
    parse(svg)  # well-formed
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg and "&lt;i&gt;" in svg


def test_an_image_cards_curves_mark_stop_and_kept() -> None:
    unit = image_line("a", 2, iterations=1200, kept_iteration=850, trace=trace(1200, 850, psnr=True))
    html = curves(unit)
    svgs = re.findall(r"<svg.*?</svg>", html)
    assert len(svgs) == 3  # loss, criterion, psnr
    for svg in svgs:
        assert 'data-marker="stop" data-x="1200"' in svg and 'data-marker="kept" data-x="850"' in svg
    assert "no trace" in curves(image_line("b", 3, trace=None))
    odd = re.findall(r"<svg.*?</svg>", curves(image_line("c", 4, trace={"iteration": [1, 2], "loss": [0.1, "bad"], "criterion": None})))
    assert 'class="series"' in odd[0] and "no values recorded" in odd[1]  # what is there is drawn; a broken column says so
