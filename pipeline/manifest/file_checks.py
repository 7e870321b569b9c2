"""The manifest's file checks: referenced files exist, images decode, sizes agree, masks are binary.

Images are probed from their headers; masks are decoded whole, and with `deep` every image
(`pipeline.manifest.pixel_checks`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.io import ImageReadError, is_frame_pattern, is_image_path, probe_image, shape_text
from pipeline.manifest.pixel_checks import PixelChecks
from pipeline.manifest.schema import MIN_SIDE, PATH_COLUMNS, RELATIVE_HINT, Draft, Report, Shape, output_shape
from pipeline.manifest.video_checks import Sequences, check_video_row


def check_files(drafts: list[Draft], report: Report, *, deep: bool = False) -> None:
    """Every referenced file exists; images decode and have the sizes their row implies.

    Video rows (a video file or frame images) are checked by `check_video_row`: the input
    decodes, masks and references fit its frames. Each file is probed once, however many rows
    use it. Masks are then decoded whole and must be binary; with `deep`, every other image is
    decoded whole too (`PixelChecks`), else only its header is read.
    """
    shapes: dict[Path, Shape | None] = {}
    sequences: Sequences = {}
    pixels = PixelChecks(deep=deep)
    for draft in drafts:
        if draft.is_video:
            still_mask = draft.mask is not None and is_image_path(draft.mask) and not is_frame_pattern(draft.mask)
            mask = _probe(draft, "mask", shapes, report) if still_mask else None
            if mask is not None:
                pixels.image(draft, "mask", report)
            check_video_row(draft, sequences, mask, report, pixels)
            continue
        found = {column: _probe(draft, column, shapes, report) for column in PATH_COLUMNS}
        for column in PATH_COLUMNS:
            if found[column] is not None:
                pixels.image(draft, column, report)
        if found["input"] is not None:
            _check_shapes(draft, found, report)


def _probe(draft: Draft, column: str, shapes: dict[Path, Shape | None], report: Report) -> Shape | None:
    """The C×H×W of the row's image in `column`; None for empty cells and problems."""
    path: Path | None = getattr(draft, column)
    if path is None:
        return None
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as error:
        report.add(draft.line, column, f"cannot access {path}: {error.strerror or error}")
        return None
    if not exists:
        relative = not os.path.isabs(os.path.expanduser(draft.given[column]))
        report.add(draft.line, column, f"file not found: {path}" + (RELATIVE_HINT if relative else ""))
        return None
    if not is_file:
        report.add(draft.line, column, f"not a file: {path}")
        return None
    if path not in shapes:
        try:
            shapes[path] = probe_image(path)
        except ImageReadError as error:
            shapes[path] = None
            report.add(draft.line, column, str(error) if str(path) in str(error) else f"cannot read {path}: {error}")
    elif shapes[path] is None:
        report.add(draft.line, column, f"cannot read {path} (see the first row that uses it)")
    return shapes[path]


def _check_shapes(draft: Draft, found: dict[str, Shape | None], report: Report) -> None:
    """Against the input's C×H×W: the mask's H×W, the flash image's C×H×W, the reference's."""
    channels, height, width = found["input"] or (0, 0, 0)
    if min(height, width) < MIN_SIDE:
        report.add(draft.line, "input", f"the image is {height}x{width} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    mask, flash, reference = found["mask"], found["flash"], found["reference"]
    if mask is not None and mask[1:] != (height, width):
        report.add(
            draft.line,
            "mask",
            f"the mask is {mask[1]}x{mask[2]} pixels (HxW) but the input is {height}x{width}; it must cover the input pixel for pixel",
        )
    if flash is not None and flash != (channels, height, width):
        report.add(
            draft.line,
            "flash",
            f"the flash image is {shape_text(flash)} but the no-flash input is {shape_text((channels, height, width))} (CxHxW); both must have the same channels and size",
        )
    output = output_shape(draft, channels, height, width)
    if reference is not None and output is not None:
        expected, why = output
        if reference != expected:
            report.add(
                draft.line,
                "reference",
                f"the reference is {shape_text(reference)} but the output will be {shape_text(expected)} (CxHxW: {why}); it must match the output",
            )
