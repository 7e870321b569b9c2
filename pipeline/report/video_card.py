"""One video's card: a few frames before and after, its figures, and its per-frame plots.

`video_card` decodes only the frames it shows (first, middle, last) from the input sequence
(a video file, a folder or a pattern of frame images) and from the output video, or the
restored frames folder when the video cannot be read. The plots come from the ledger line's
``per_frame`` columns: PSNR of input and output per frame (with a reference), flicker per
frame, and the iterations per frame with the cold frames (a fresh network) told apart from
the warm ones (started from the previous frame's network).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.io import iter_sequence
from pipeline.report.card_parts import count_text, figures, header, missing, notes, picture, quality, resolve, shape
from pipeline.report.svg import PALETTE, Bars, Box, Series, bar_plot, empty_plot, line_plot
from pipeline.report.thumbnails import data_uri, display_size, resized, shown_size
from pipeline.report.values import figure, integer, number, seconds_text, text

FRAME_SIDE = 240  # long side of a shown frame, in pixels
COLD_COLOUR = "#1f6fb4"
WARM_COLOUR = "#f0a35e"
PLOT_BOX = Box(width=420)


def shown_frames(count: int) -> list[int]:
    """The frames a card shows: the first, the middle and the last (fewer for a short video)."""
    return sorted({0, (count - 1) // 2, count - 1}) if count > 0 else []


def read_frame(path: Path | None, index: int, what: str) -> tuple[torch.Tensor | None, str | None]:
    """Frame `index` of a frame sequence, or None and why it cannot be shown."""
    if path is None:
        return None, f"no {what} is recorded"
    try:
        with contextlib.closing(iter_sequence(path, index, index + 1)) as frames:
            return next(frames), None
    except StopIteration:
        return None, f"the {what} {path} has no frame {index}"
    except (OSError, ValueError, RuntimeError) as error:
        return None, f"frame {index} of the {what} cannot be shown: {error}"


def _frame_count(unit: Mapping[str, Any], per_frame: Mapping[str, list[Any]] | None) -> int:
    count = integer(unit, "frames")
    if count is None and per_frame and isinstance(per_frame.get("frame"), list) and per_frame["frame"]:
        last = per_frame["frame"][-1]
        count = last + 1 if isinstance(last, int) else None
    return count or 1


def _output_frame(paths: list[Path], index: int) -> tuple[torch.Tensor | None, str]:
    """Frame `index` of the output video, else of the restored frames folder, else why neither."""
    problem = "no output is recorded"
    for path in paths:
        frame, found = read_frame(path, index, "output")
        if frame is not None:
            return frame, ""
        problem = found or problem
    return None, problem


def _frames(unit: Mapping[str, Any], out_dir: Path, count: int) -> str:
    """The strip of shown frames, each an input and output pair at the output's display size."""
    source = resolve(out_dir, unit.get("input"))
    outputs = [path for path in (resolve(out_dir, unit.get("output")), resolve(out_dir, unit.get("frames_folder"))) if path is not None]
    pairs = []
    for index in shown_frames(count):
        after, output_problem = _output_frame(outputs, index)
        before, input_problem = read_frame(source, index, "input")
        known = after if after is not None else before
        size = (known.shape[1], known.shape[2]) if known is not None else (9, 16)
        height, width = display_size(*size, FRAME_SIDE)
        on_page = shown_size(*size, FRAME_SIDE)
        cells = []
        for what, pixels, why in (("input", before, input_problem), ("output", after, output_problem)):
            caption = f"{what}, frame {index}"
            if pixels is None:
                cells.append(missing(caption, why or "", on_page[1], on_page[0]))
            else:
                cells.append(picture(data_uri(resized(pixels, height, width)), f"{caption} ({shape(pixels)})", on_page[1], on_page[0]))
        pairs.append(f'<div class="frame-pair">{"".join(cells)}</div>')
    return f'<div class="frames">{"".join(pairs)}</div>'


def _listed(unit: Mapping[str, Any], key: str) -> str:
    value = unit.get(key)
    return ", ".join(str(item) for item in value) if isinstance(value, list) and value else "—"


def _figures(unit: Mapping[str, Any]) -> str:
    frames, iterations, fps = integer(unit, "frames"), integer(unit, "iterations"), number(unit, "fps")
    frames_text = "—" if frames is None else f"{frames}" + (f" at {figure(fps, 4)} fps" if fps else "")
    per_frame = f" ({iterations / frames:.0f} per frame)" if frames and iterations is not None else ""
    flicker = figure(number(unit, "flicker"))
    if flicker != "—" and text(unit, "flicker_baseline"):
        flicker += f" (against the {unit['flicker_baseline']})"
    codec = " / ".join(value for value in (text(unit, "codec"), text(unit, "pixel_format")) if value)
    return figures(
        [
            ("frames", frames_text),
            ("segments", count_text(integer(unit, "segments"))),
            ("cold frames", count_text(integer(unit, "cold_frames"))),
            ("iterations", f"{iterations}{per_frame}" if iterations is not None else "—"),
            *quality(unit),
            ("flicker", flicker),
            ("warping error", figure(number(unit, "warping_error"))),
            ("codec", codec or "—"),
            ("streams copied", _listed(unit, "streams_copied")),
            ("streams dropped", _listed(unit, "streams_dropped")),
            ("time", seconds_text(number(unit, "seconds"))),
            ("frames folder", text(unit, "frames_folder") or "—"),
        ]
    )


def _numbers(values: Any, length: int) -> list[float | None]:
    values = values if isinstance(values, list) else []
    found = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in values[:length]]
    return found + [None] * (length - len(found))


def frame_plots(unit: Mapping[str, Any]) -> tuple[str, list[str]]:
    """PSNR, flicker and iterations per frame from the line's per_frame, and notes about them."""
    per_frame = unit.get("per_frame")
    frames = per_frame.get("frame") if isinstance(per_frame, dict) else None
    if not isinstance(per_frame, dict) or not isinstance(frames, list) or not frames:
        message = "no per-frame figures in the ledger (a line written before they were kept)"
        return f'<div class="plots">{empty_plot("per frame", message, PLOT_BOX)}</div>', []
    xs = [float(frame) if isinstance(frame, (int, float)) else float(index) for index, frame in enumerate(frames)]
    length = len(xs)
    step = integer(unit, "per_frame_step") or 1
    psnr = [
        Series("input", xs, _numbers(per_frame.get("psnr_in"), length), PALETTE["input"]),
        Series("output", xs, _numbers(per_frame.get("psnr_out"), length), PALETTE["output"]),
    ]
    if all(value is None for line in psnr for value in line.ys):
        psnr_plot = empty_plot("PSNR per frame", "no reference: no PSNR per frame", PLOT_BOX)
    else:
        psnr_plot = line_plot("PSNR per frame", psnr, x_label="frame", y_label="dB", box=PLOT_BOX)
    baseline = text(unit, "flicker_baseline") or "baseline"
    flicker = Series("flicker", xs, _numbers(per_frame.get("flicker"), length), PALETTE["criterion"])
    flicker_plot = line_plot(f"flicker per frame (change / the {baseline}'s)", [flicker], x_label="frame", y_label="flicker", box=PLOT_BOX)
    flags = _flags(per_frame.get("cold"), length)
    iterations = _numbers(per_frame.get("iterations"), length)
    groups = []
    for label, want, colour in (("cold", True, COLD_COLOUR), ("warm", False, WARM_COLOUR)):
        chosen = [(x, count) for x, flag, count in zip(xs, flags, iterations) if flag == want and count is not None]
        groups.append(Bars(label, [x for x, _ in chosen], [count for _, count in chosen], colour))
    bars = bar_plot("iterations per frame", groups, x_label="frame", y_label="iterations", step=float(step), box=PLOT_BOX)
    said = [f"Each point is {step} consecutive frames (their mean; a bar is cold if any of them was)."] if step > 1 else []
    return f'<div class="plots">{psnr_plot}{flicker_plot}{bars}</div>', said


def _flags(values: Any, length: int) -> list[bool]:
    """The "cold" column as booleans (False where missing)."""
    values = values if isinstance(values, list) else []
    return [bool(value) for value in values[:length]] + [False] * (length - min(length, len(values)))


def video_card(unit: Mapping[str, Any], out_dir: Path, *, anchor: str, why: str) -> str:
    """The card of one done video unit (a ledger line), as HTML."""
    per_frame = unit.get("per_frame") if isinstance(unit.get("per_frame"), dict) else None
    strip = _frames(unit, out_dir, _frame_count(unit, per_frame))
    plots, said = frame_plots(unit)
    heading = header(str(unit.get("id")), anchor, why, [text(unit, "task") or "", "video", text(unit, "status") or ""])
    return f'<article class="card video-card" id="{anchor}">{heading}{_figures(unit)}{strip}{plots}{notes(said)}</article>'
