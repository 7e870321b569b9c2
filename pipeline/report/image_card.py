"""One image's card: input and output side by side, an aligned zoomed crop, its figures, its curves.

`image_card` reads the input and the output files (only these two, once each) and draws the
loss and stopping-criterion curves from the ledger line's ``trace``; nothing is recomputed.
A file that is missing or cannot be read leaves a placeholder saying why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.report.card_parts import count_text, figures, header, missing, picture, quality, read_pixels, resolve, shape
from pipeline.report.svg import PALETTE, Marker, Series, empty_plot, finite, line_plot
from pipeline.report.thumbnails import (
    CROP_SIDE,
    aligned_crops,
    data_uri,
    differing_region,
    display_size,
    integer_scale,
    resized,
    shown_size,
)
from pipeline.report.values import integer, number, seconds_text, text

ZOOM = 3  # the crop is shown this many times larger, nearest-neighbour (CSS image-rendering: pixelated)
STOP_COLOUR = "#c0392b"
KEPT_COLOUR = "#2e8b57"
NO_TRACE = "no trace in the ledger (a tiled image, or a line written before traces were kept)"


def _figures(unit: Mapping[str, Any]) -> str:
    stop = text(unit, "stop_reason") or "—"
    if text(unit, "rule"):
        stop += f" (rule: {unit['rule']})"
    seconds = seconds_text(number(unit, "seconds"))
    if number(unit, "engine_seconds") is not None:
        seconds += f" (fit {seconds_text(number(unit, 'engine_seconds'))})"
    tiles, attempt = integer(unit, "tiles"), integer(unit, "attempt")
    return figures(
        [
            *quality(unit),
            ("iterations", count_text(integer(unit, "iterations"))),
            ("stop", stop),
            ("kept iteration", count_text(integer(unit, "kept_iteration"))),
            ("time", seconds),
            ("tiles", f"{tiles} of {integer(unit, 'tile')} px" if tiles else "—"),
            ("output bit depth", text(unit, "bit_depth") or "—"),
            ("attempt", count_text(attempt) if attempt is not None and attempt > 1 else "—"),
        ]
    )


def _views(source: torch.Tensor | None, output: torch.Tensor | None, input_problem: str, output_problem: str) -> str:
    """Input and output side by side at one display size (the output's), and their zoomed crops."""
    if output is None:
        shown = missing("input", input_problem) if source is None else _single(source, "input")
        return f'<div class="views">{shown}{missing("output", output_problem)}</div>'
    height, width = display_size(*output.shape[1:])
    on_page = shown_size(*output.shape[1:])
    if source is None:
        left = missing("input", input_problem, on_page[1], on_page[0])
    else:
        caption = f"input {shape(source)}" + ("" if integer_scale(source, output) == 1 else " (shown at the output's size)")
        left = picture(data_uri(resized(source, height, width)), caption, on_page[1], on_page[0])
    right = picture(data_uri(resized(output, height, width)), f"output {shape(output)}", on_page[1], on_page[0])
    return f'<div class="views">{left}{right}</div>' + ("" if source is None else _zoom(source, output))


def _single(pixels: torch.Tensor, what: str) -> str:
    height, width = display_size(*pixels.shape[1:])
    on_page = shown_size(*pixels.shape[1:])
    return picture(data_uri(resized(pixels, height, width)), f"{what} {shape(pixels)}", on_page[1], on_page[0])


def _zoom(source: torch.Tensor, output: torch.Tensor) -> str:
    """The region where input and output differ most, at the output's resolution, magnified."""
    region = differing_region(source, output, CROP_SIDE)
    crops = aligned_crops(source, output, region)
    side = region.side * ZOOM
    where = f"{region.side}×{region.side} px at x={region.left}, y={region.top}, ×{ZOOM}"
    pictures = [
        picture(data_uri(crop, fmt="png"), f"{what}, {where}", side, side, css="view crop")
        for what, crop in zip(("input", "output"), crops)
    ]
    return f'<div class="zoom">{"".join(pictures)}</div>'


def _column(trace: Mapping[str, Any], key: str, length: int) -> list[float | None]:
    values = trace.get(key)
    if not isinstance(values, list):
        return [None] * length
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in values[:length]] + [None] * (
        length - len(values)
    )


def _log_scale(values: Sequence[float | None]) -> bool:
    """Logarithmic when every value is positive and they span over a factor of 10."""
    known = finite(values)
    return bool(known) and min(known) > 0 and max(known) / min(known) > 10


def _markers(unit: Mapping[str, Any], iterations: list[float]) -> list[Marker]:
    """The stop (the last iteration: the line's count, else the trace's last) and the kept iteration."""
    last = integer(unit, "iterations") or next((int(step) for step in reversed(iterations) if math.isfinite(step)), None)
    found = [] if last is None else [Marker("stop", last, f"stop {last}", STOP_COLOUR)]
    kept = integer(unit, "kept_iteration")
    if kept is not None:
        found.append(Marker("kept", kept, f"kept {kept}", KEPT_COLOUR))
    return found


def curves(unit: Mapping[str, Any]) -> str:
    """The loss and the stopping criterion over the iterations (and PSNR when traced), the stop
    (last iteration) and the kept iteration marked."""
    trace = unit.get("trace")
    steps = trace.get("iteration") if isinstance(trace, dict) else None
    if not isinstance(trace, dict) or not isinstance(steps, list) or not steps:
        return f'<div class="plots">{empty_plot("loss", NO_TRACE)}</div>'
    iterations = [float(step) if isinstance(step, (int, float)) else math.nan for step in steps]
    markers = _markers(unit, iterations)
    plots = []
    for key, label in (("loss", "loss"), ("criterion", "stopping criterion"), ("psnr", "PSNR (dB)")):
        if key == "psnr" and "psnr" not in trace:
            continue
        values = _column(trace, key, len(iterations))
        line = Series(key, iterations, values, PALETTE[key])
        log = key != "psnr" and _log_scale(values)
        plots.append(line_plot(label, [line], x_label="iteration", y_label=label + (" (log)" if log else ""), markers=markers, log_y=log))
    return f'<div class="plots">{"".join(plots)}</div>'


def image_card(unit: Mapping[str, Any], out_dir: Path, *, anchor: str, why: str) -> str:
    """The card of one done image unit (a ledger line), as HTML."""
    source, input_problem = read_pixels(resolve(out_dir, unit.get("input")), "input")
    output, output_problem = read_pixels(resolve(out_dir, unit.get("output")), "output")
    heading = header(str(unit.get("id")), anchor, why, [text(unit, "task") or "", text(unit, "status") or ""])
    body = _views(source, output, input_problem or "", output_problem or "")
    return f'<article class="card image-card" id="{anchor}">{heading}{_figures(unit)}<div class="card-body"><div class="pictures">{body}</div>{curves(unit)}</div></article>'
