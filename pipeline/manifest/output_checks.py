"""The manifest's check of outputs against the output folder: none may resolve outside it.

An output cell is relative and free of '..' (`pipeline.manifest.parse`), but a symbolic link
already in the output folder can still lead out of it. Given the output folder, every row's
output is resolved as the operating system would follow it (`pipeline.io.confine.outside_of`)
and a row whose output leaves the folder is a problem. Writers check again when they write.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.io import outside_of
from pipeline.manifest.schema import Draft, Report


def check_outputs_inside(drafts: list[Draft], out_dir: Path, report: Report) -> None:
    """Report every row whose output resolves outside `out_dir`."""
    for draft in drafts:
        if draft.output is None:
            continue
        resolved = outside_of(Path(out_dir) / draft.output, out_dir)
        if resolved is not None:
            report.add(
                draft.line,
                "output",
                f"{draft.output.as_posix()!r} resolves to {resolved}, outside the output folder {out_dir} "
                "(a symbolic link in the output folder leads out of it); replace the link with a real folder, "
                "or choose another output",
            )
