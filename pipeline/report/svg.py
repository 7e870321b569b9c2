"""Small plots as inline SVG text: lines with gaps and markers, and bars. No plotting library.

Pure functions of their data. Every text is escaped. Each plot is one ``<svg class="plot">``
with a ``<title>``; its series are ``<path class="series" data-series=LABEL>`` elements and its
markers ``<g class="marker" data-marker=NAME data-x=X>`` (what the tests and the page look for).
Values that are None or not finite are gaps in a line; a logarithmic axis leaves out values <= 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = {"input": "#9a9a9a", "output": "#1f6fb4", "loss": "#1f6fb4", "criterion": "#c45a12", "psnr": "#2e8b57"}


@dataclass(frozen=True)
class Series:
    """A line: y over x, with gaps where y is None or not finite."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    colour: str


@dataclass(frozen=True)
class Marker:
    """A vertical line at `x`, labelled (e.g. the stop and the kept iteration)."""

    name: str  # the data-marker attribute: "stop", "kept", ...
    x: float
    label: str
    colour: str


@dataclass(frozen=True)
class Bars:
    """Bars of one colour at the given x (e.g. the cold frames of a video)."""

    label: str
    xs: Sequence[float]
    heights: Sequence[float]
    colour: str


@dataclass(frozen=True)
class Box:
    """A plot's size and margins, in pixels."""

    width: int = 360
    height: int = 190
    left: int = 54
    right: int = 12
    top: int = 30
    bottom: int = 34


@dataclass(frozen=True)
class Axis:
    """Maps values in [lo, hi] (logarithmically when `log`) onto pixels [start, end]."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def at(self, value: float) -> float:
        lo, hi, value = (math.log10(self.lo), math.log10(self.hi), math.log10(value)) if self.log else (self.lo, self.hi, value)
        return self.start + (value - lo) / (hi - lo) * (self.end - self.start)


def finite(values: Iterable[float | None], *, positive: bool = False) -> list[float]:
    """The finite values (only those > 0 with `positive`)."""
    return [value for value in values if value is not None and math.isfinite(value) and (value > 0 or not positive)]


def value_range(values: Sequence[float], *, log: bool = False, zero: bool = False) -> tuple[float, float]:
    """A padded [lo, hi] holding `values` (non-empty); from 0 with `zero`; multiplicative padding when `log`."""
    lo, hi = min(values), max(values)
    if zero:
        lo = min(lo, 0.0)
    if log:
        return (lo / 1.25, hi * 1.25) if hi > lo else (lo / 2, hi * 2)
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.06
    return (lo if zero and lo == 0 else lo - pad), hi + pad


def linear_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 × 10^k) in [lo, hi]."""
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step)
    return [k * step for k in range(first, math.floor(hi / step) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten in [lo, hi], with 2× and 5× between them when fewer than two; else linear ticks."""
    for multiples in ((1,), (1, 2, 5)):
        ticks = [m * 10.0**k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in multiples]
        ticks = [tick for tick in ticks if lo <= tick <= hi]
        if len(ticks) >= 2:
            return ticks
    return [tick for tick in linear_ticks(lo, hi, 3) if tick > 0]


def tick_text(value: float) -> str:
    """A tick label: "0.5", "1200", "1e-04"."""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-2):
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.4g}"


def _num(value: float) -> str:
    return f"{value:.1f}"


def _frame(title: str, box: Box, x: Axis, y: Axis, x_label: str, y_label: str) -> list[str]:
    """The svg's opening, title, plot area, grid, ticks and axis labels."""
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {box.width} {box.height}" '
        f'width="{box.width}" height="{box.height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="plot-title" x="4" y="13">{escape(title)}</text>',
        f'<rect class="area" x="{box.left}" y="{box.top}" width="{box.width - box.left - box.right}" height="{box.height - box.top - box.bottom}"/>',
    ]
    bottom = box.height - box.bottom
    for tick in log_ticks(y.lo, y.hi) if y.log else linear_ticks(y.lo, y.hi):
        at = _num(y.at(tick))
        parts.append(f'<line class="grid" x1="{box.left}" x2="{box.width - box.right}" y1="{at}" y2="{at}"/>')
        parts.append(f'<text class="tick" x="{box.left - 4}" y="{at}" text-anchor="end" dy="3">{tick_text(tick)}</text>')
    for tick in linear_ticks(x.lo, x.hi):
        at = _num(x.at(tick))
        parts.append(f'<line class="tickmark" x1="{at}" x2="{at}" y1="{bottom}" y2="{bottom + 4}"/>')
        parts.append(f'<text class="tick" x="{at}" y="{bottom + 14}" text-anchor="middle">{tick_text(tick)}</text>')
    parts.append(
        f'<text class="axis-label" x="{box.left + (box.width - box.left - box.right) / 2:.1f}" y="{box.height - 4}" text-anchor="middle">{escape(x_label)}</text>'
    )
    if y_label:
        middle = f"{box.top + (bottom - box.top) / 2:.1f}"
        parts.append(
            f'<text class="axis-label" transform="translate(11 {middle}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
        )
    return parts


def _legend(entries: Sequence[tuple[str, str]], box: Box) -> list[str]:
    """Colour swatches and labels along the top margin, right-aligned."""
    parts, right = [], float(box.width - box.right)
    for label, colour in reversed(entries):
        width = 6.2 * len(label) + 14
        right -= width
        parts.append(f'<rect x="{right:.1f}" y="18" width="9" height="9" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{right + 12:.1f}" y="26">{escape(label)}</text>')
        right -= 6
    return parts


def _path(series: Series, x: Axis, y: Axis) -> str:
    """One path for a series: a run of known points is one sub-path (gaps break it)."""
    commands, pen_down = [], False
    for x_value, y_value in zip(series.xs, series.ys):
        usable = math.isfinite(x_value) and y_value is not None and math.isfinite(y_value) and (y_value > 0 or not y.log)
        if not usable:
            pen_down = False
            continue
        assert y_value is not None
        point = f"{_num(x.at(x_value))},{_num(y.at(y_value))}"
        commands.append(f"L{point}" if pen_down else f"M{point}l0,0")
        pen_down = True
    return (
        f'<path class="series" data-series="{escape(series.label)}" d="{"".join(commands)}" fill="none" '
        f'stroke="{series.colour}" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"/>'
    )


def _value_at(series: Series, x_value: float) -> float | None:
    """The series' y at the known point nearest `x_value`."""
    known = [(abs(x - x_value), y) for x, y in zip(series.xs, series.ys) if math.isfinite(x) and y is not None and math.isfinite(y)]
    return min(known)[1] if known else None


def _marker(marker: Marker, row: int, series: Sequence[Series], box: Box, x: Axis, y: Axis) -> str:
    at = x.at(marker.x)
    bottom = box.height - box.bottom
    anchor = "end" if at > box.width - box.right - 60 else "start"
    shift = -3 if anchor == "end" else 3
    parts = [
        f'<g class="marker" data-marker="{escape(marker.name)}" data-x="{marker.x:g}">',
        f'<line x1="{_num(at)}" x2="{_num(at)}" y1="{box.top}" y2="{bottom}" stroke="{marker.colour}" stroke-dasharray="4 3"/>',
        f'<text class="marker-label" x="{_num(at + shift)}" y="{box.top + 11 + 11 * row}" text-anchor="{anchor}" fill="{marker.colour}">{escape(marker.label)}</text>',
    ]
    if series:
        value = _value_at(series[0], marker.x)
        if value is not None and (value > 0 or not y.log):
            parts.append(f'<circle cx="{_num(at)}" cy="{_num(y.at(value))}" r="3.5" fill="{marker.colour}"/>')
    parts.append("</g>")
    return "".join(parts)


def line_plot(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str = "",
    markers: Sequence[Marker] = (),
    log_y: bool = False,
    box: Box | None = None,
) -> str:
    """Lines over a shared x axis, with labelled vertical markers (a circle where each meets the
    first series). `log_y` draws y on a logarithmic axis. A plot with no finite value says so."""
    box = box or Box()
    ys = finite((value for line in series for value in line.ys), positive=log_y)
    xs = finite([*(value for line in series for value in line.xs), *(marker.x for marker in markers)])
    if not ys or not xs:
        return empty_plot(title, "no values recorded", box)
    x_lo, x_hi = (min(xs), max(xs)) if max(xs) > min(xs) else (min(xs) - 1, max(xs) + 1)
    x = Axis(x_lo, x_hi, box.left, box.width - box.right)
    y = Axis(*value_range(ys, log=log_y), box.height - box.bottom, box.top, log=log_y)
    parts = _frame(title, box, x, y, x_label, y_label)
    parts += [_path(line, x, y) for line in series]
    parts += [_marker(marker, row, series, box, x, y) for row, marker in enumerate(markers)]
    if len(series) > 1:
        parts += _legend([(line.label, line.colour) for line in series], box)
    parts.append("</svg>")
    return "".join(parts)


def bar_plot(title: str, bars: Sequence[Bars], *, x_label: str, y_label: str = "", step: float = 1.0, box: Box | None = None) -> str:
    """Bars from 0, one path per colour group; `step` is the x distance between neighbouring bars."""
    box = box or Box()
    heights = finite(value for group in bars for value in group.heights)
    xs = finite(value for group in bars for value in group.xs)
    if not heights or not xs:
        return empty_plot(title, "no values recorded", box)
    x = Axis(min(xs) - step / 2, max(xs) + step / 2, box.left, box.width - box.right)
    y = Axis(*value_range(heights, zero=True), box.height - box.bottom, box.top)
    width = max(0.6, (x.at(x.lo + step) - x.at(x.lo)) * 0.85)
    parts = _frame(title, box, x, y, x_label, y_label)
    base = _num(y.at(0.0))
    for group in bars:
        commands = [
            f"M{_num(x.at(x_value) - width / 2)},{base}V{_num(y.at(height))}h{width:.2f}V{base}Z"
            for x_value, height in zip(group.xs, group.heights)
            if math.isfinite(height)
        ]
        parts.append(f'<path class="series" data-series="{escape(group.label)}" d="{"".join(commands)}" fill="{group.colour}"/>')
    parts += _legend([(group.label, group.colour) for group in bars], box)
    parts.append("</svg>")
    return "".join(parts)


def empty_plot(title: str, message: str, box: Box | None = None) -> str:
    """A framed plot that says why it has no data."""
    box = box or Box()
    return (
        f'<svg class="plot empty" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {box.width} {box.height}" '
        f'width="{box.width}" height="{box.height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text class="plot-title" x="4" y="13">{escape(title)}</text>'
        f'<rect class="area" x="{box.left}" y="{box.top}" width="{box.width - box.left - box.right}" height="{box.height - box.top - box.bottom}"/>'
        f'<text class="empty-note" x="{box.width / 2:.1f}" y="{box.height / 2:.1f}" text-anchor="middle">{escape(message)}</text></svg>'
    )
