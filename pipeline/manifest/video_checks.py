"""The file checks of video rows: the input decodes, and its mask and reference fit its frames.

A video row's input is a video file or frame images (a folder or a printf pattern). Checked,
each problem reported at its row and column:

* the input: a video file decodes, has at least one frame and a constant frame rate (a variable
  rate would change its timing when written back at one rate); frame images exist, decode and
  all have one C×H×W; frames are at least 4×4 pixels;
* the mask (inpainting): one image of the frames' H×W, or frame images with one mask per frame,
  each of the frames' H×W;
* the reference: a video or frame images with as many frames as the input, each of the
  output's size (the input's, times the scale for super-resolution) and channel count;
* pixels (`PixelChecks`): every per-frame mask that fits is decoded and must be binary; with
  `deep`, every frame image of the input and the reference is decoded whole.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from pipeline.io import SequenceError, SequenceInfo, is_frame_pattern, is_image_path, probe_sequence, shape_text
from pipeline.manifest.pixel_checks import PixelChecks
from pipeline.manifest.schema import MIN_SIDE, RELATIVE_HINT, Draft, Report, Shape, output_shape

Sequences = dict[Path, SequenceInfo | None]  # what each path probed as (None: it had a problem)


def check_video_row(draft: Draft, sequences: Sequences, mask_shape: Shape | None, report: Report, pixels: PixelChecks) -> None:
    """Check a video row's input, mask and reference (see the module docstring).

    `mask_shape`: the C×H×W of a single mask image, already probed (and its pixels checked) by
    the caller (None if the mask is frame images, absent or unreadable).
    """
    source = probe_column(draft, "input", sequences, report)
    if source is None:
        return
    draft.source = source
    if source.kind == "frames":
        pixels.frames(draft, "input", report)
    variable = variable_rate_problem(draft.input, source) if draft.input is not None else None
    if variable is not None:
        report.add(draft.line, "input", variable)
    if min(source.height, source.width) < MIN_SIDE:
        report.add(draft.line, "input", f"the frames are {source.height}x{source.width} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    if mask_shape is not None and mask_shape[1:] != (source.height, source.width):
        report.add(
            draft.line,
            "mask",
            f"the mask is {mask_shape[1]}x{mask_shape[2]} pixels (HxW) but the frames are {source.height}x{source.width}; it must cover them pixel for pixel",
        )
    if draft.mask is not None and not _is_still(draft.mask):
        masks = probe_column(draft, "mask", sequences, report)
        if masks is not None and _check_masks(draft, source, masks, report):
            pixels.frames(draft, "mask", report)
    references = probe_column(draft, "reference", sequences, report)
    if references is not None:
        _check_reference(draft, source, references, report)
        if references.kind == "frames":
            pixels.frames(draft, "reference", report)


def variable_rate_problem(path: Path, source: SequenceInfo) -> str | None:
    """Why a video file of variable frame rate cannot be restored as it is, with the command that
    converts it; None for a constant rate, unknown timing and frame images."""
    timing = source.timing
    if source.kind != "video" or timing is None or not timing.variable:
        return None
    rate = f"{source.fps:g}" if source.fps else f"{1000 / timing.shortest_ms:g}"
    converted = path.with_name(f"{path.stem}_cfr{path.suffix}")
    command = f"ffmpeg -i {shlex.quote(str(path))} -fps_mode cfr -r {rate} {shlex.quote(str(converted))}"
    return (
        f"{path.name} has a variable frame rate (frame durations {timing.text()}); the restored video would change its "
        f"timing; convert it to a constant rate first: {command}"
    )


def _is_still(path: Path) -> bool:
    return is_image_path(path) and not is_frame_pattern(path)


def probe_column(draft: Draft, column: str, sequences: Sequences, report: Report) -> SequenceInfo | None:
    """The sequence the row names in `column` (probed once per path); None if empty or unusable."""
    path: Path | None = getattr(draft, column)
    if path is None:
        return None
    if path in sequences:
        if sequences[path] is None:
            report.add(draft.line, column, f"cannot use {path} (see the first row that uses it)")
        return sequences[path]
    try:
        sequences[path] = probe_sequence(path, every_frame=True)
    except SequenceError as error:
        sequences[path] = None
        relative = not os.path.isabs(os.path.expanduser(draft.given[column]))
        named = path.parent if is_frame_pattern(path) else path
        hint = RELATIVE_HINT if relative and not named.exists() else ""
        report.add(draft.line, column, f"{error}{hint}")
    return sequences[path]


def _check_masks(draft: Draft, source: SequenceInfo, masks: SequenceInfo, report: Report) -> bool:
    """Whether the masks fit the frames (one per frame, of their size); each misfit reported."""
    fits = masks.frames == source.frames and (masks.height, masks.width) == (source.height, source.width)
    if masks.frames != source.frames:
        report.add(
            draft.line,
            "mask",
            f"there are {masks.frames} masks but {source.frames} frames; give one mask per frame, or one mask image for all",
        )
    if (masks.height, masks.width) != (source.height, source.width):
        report.add(
            draft.line,
            "mask",
            f"the masks are {masks.height}x{masks.width} pixels (HxW) but the frames are {source.height}x{source.width}; they must cover them pixel for pixel",
        )
    return fits


def _check_reference(draft: Draft, source: SequenceInfo, reference: SequenceInfo, report: Report) -> None:
    output = output_shape(draft, source.channels, source.height, source.width)
    if output is None:
        return  # the output size is unknown; the task or scale problem is reported already
    expected, why = output
    got = (reference.channels, reference.height, reference.width)
    if got != expected:
        report.add(
            draft.line,
            "reference",
            f"the reference frames are {shape_text(got)} but the output frames will be {shape_text(expected)} (CxHxW: {why}); they must match",
        )
    if reference.frames != source.frames:
        report.add(
            draft.line,
            "reference",
            f"the reference has {reference.frames} frames but the input has {source.frames}; they must match frame for frame",
        )
