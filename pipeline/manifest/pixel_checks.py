"""The manifest checks that decode pixels, not only headers.

* Always: every mask is read whole and must be binary (`pipeline.io.mask`), a still mask and
  each of a video's per-frame masks alike.
* With `deep` (`pipeline validate --deep`): every other image the manifest names (inputs, flash
  images, references, and every frame image of a video row) is decoded whole, so that damaged
  pixel data (a JPEG cut short, a TIFF strip that does not decompress) is found before a run
  rather than by the unit that reads it. The headers alone are read otherwise. Video files are
  decoded whole by the frame count either way.

Each file is decoded once, however many rows use it; every row that uses a bad file is told.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.io import ImageReadError, frame_files, read_image
from pipeline.io.mask import MaskError, read_mask
from pipeline.manifest.schema import Draft, Report


class PixelChecks:
    """Decodes the files of a manifest's rows, once each (see the module docstring)."""

    def __init__(self, *, deep: bool) -> None:
        self.deep = deep
        self._found: dict[tuple[Path, bool], str | None] = {}  # (file, read as a mask) -> what is wrong, or None

    def image(self, draft: Draft, column: str, report: Report) -> None:
        """Decode the row's image in `column`: a mask always, others only when deep."""
        path: Path | None = getattr(draft, column)
        if path is None or not (column == "mask" or self.deep):
            return
        problem = self._problem(path, is_mask=column == "mask")
        if problem is not None:
            report.add(draft.line, column, problem)

    def frames(self, draft: Draft, column: str, report: Report) -> None:
        """Decode every frame image the row names in `column` (a folder or a pattern): masks
        always, others only when deep. One problem per row and column: how many frames are bad,
        and what is wrong with the first."""
        path: Path | None = getattr(draft, column)
        is_mask = column == "mask"
        if path is None or not (is_mask or self.deep):
            return
        files = frame_files(path)  # already listed without error by the sequence probe
        bad = [(file, problem) for file in files if (problem := self._problem(file, is_mask=is_mask)) is not None]
        if bad:
            what = "masks" if is_mask else "frames"
            first, problem = bad[0]
            report.add(draft.line, column, f"{len(bad)} of {len(files)} {what} of {path} are unusable; the first, {first.name}: {problem}")

    def _problem(self, path: Path, *, is_mask: bool) -> str | None:
        key = (path, is_mask)
        if key not in self._found:
            self._found[key] = _decode(path, is_mask=is_mask)
        return self._found[key]


def _decode(path: Path, *, is_mask: bool) -> str | None:
    """What is wrong with the file's pixels, or None."""
    try:
        if is_mask:
            read_mask(path)
        else:
            read_image(path)
    except MaskError as error:
        return str(error)
    except ImageReadError as error:
        return f"its header reads but its pixels do not: {error}; replace it with an intact copy"
    return None
