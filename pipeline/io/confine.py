"""Confinement of outputs: nothing is written outside the output folder, symbolic links included.

A manifest's output paths are relative and free of '..', but a symbolic link inside the output
folder (``out/link -> /elsewhere``) would still take ``link/x.png`` out of it. `outside_of`
resolves a target the way the operating system will follow it (every existing part, links
included) and says where it leads when that is outside the folder; `check_inside` raises
`OutsideOutputError` then. The manifest checks it at validation, and `atomic_path` /
`atomic_folder` (given the output folder as `root`) again just before they write.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutsideOutputError(ValueError):
    """A write refused because its target resolves outside the output folder (through a symbolic
    link). A ValueError: the unit processors report it as the row's `UnitError`, a fault of the
    row's files that a retry cannot change."""

    def __init__(self, path: Path, root: Path, resolved: Path) -> None:
        super().__init__(
            f"refused to write {path}: it resolves to {resolved}, outside the output folder {root} "
            "(a symbolic link leads out of it); replace the link with a real folder, or choose another output"
        )
        self.path, self.root, self.resolved = path, root, resolved


def _real(path: Path) -> Path:
    """`path` with every existing part resolved (links followed), the missing rest as written."""
    try:
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError):  # a link loop: leave it to the write, which fails on it
        return Path(os.path.abspath(path))


def outside_of(path: Path, root: Path) -> Path | None:
    """Where `path` really leads when that is outside the folder `root` (itself resolved, so a
    linked output folder is fine); None when it stays inside."""
    real_root, real = _real(Path(root)), _real(Path(path))
    return None if real == real_root or real.is_relative_to(real_root) else real


def check_inside(path: Path, root: Path) -> None:
    """Raise OutsideOutputError when `path` resolves outside the folder `root`."""
    resolved = outside_of(path, root)
    if resolved is not None:
        raise OutsideOutputError(Path(path), Path(root), resolved)
