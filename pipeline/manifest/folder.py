"""Writing a manifest for a folder of images: `pipeline manifest DIR --task denoise > manifest.csv`."""

from __future__ import annotations

import csv
import io
import numbers
import os
import re
from pathlib import Path

from dip_engine import Task, get_task
from pipeline.io import is_image_path, is_video_path

# Files paired with each input, by task kind: (kind, column, stem suffix), e.g. photo_mask.png.
_COMPANIONS: tuple[tuple[str, str, str], ...] = (("inpaint", "mask", "_mask"), ("flash", "flash", "_flash"))
_UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]")


def write_manifest_for_folder(
    folder: Path,
    task: str,
    *,
    scale: int | None = None,
    manifest_dir: Path | None = None,
) -> str:
    """CSV text of a manifest restoring every image and video of `folder` with `task`.

    Files are taken in sorted order, not recursively, skipping hidden ones. Ids are the file
    stems (characters not allowed in ids replaced by '_'), made unique with '-2', '-3', ...
    Inputs are written relative to manifest_dir (default: the current directory), where the
    manifest is meant to be saved. The task 'sr' needs a scale. Inpainting tasks take each
    image's mask from `<stem>_mask.<ext>` in the same folder, the task 'flash' its flash image
    from `<stem>_flash.<ext>`; those files are not listed as inputs. A ValueError says what is
    missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"not a folder: {folder}")
    spec = get_task(task)
    scale_cell = _scale_cell(spec, scale)
    files = sorted(
        path
        for path in folder.iterdir()
        if not path.name.startswith(".") and path.is_file() and (is_image_path(path) or is_video_path(path))
    )
    companion = next(((column, suffix) for kind, column, suffix in _COMPANIONS if kind == spec.kind), None)
    pairs = _pair(files, spec.name, *companion) if companion else [(path, None) for path in files]
    if not pairs:
        raise ValueError(f"no image or video files in {folder}")
    base = Path(manifest_dir) if manifest_dir is not None else Path.cwd()
    columns = ["id", "task", "input"] + (["scale"] if scale_cell else []) + ([companion[0]] if companion else [])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for id_, (path, partner) in zip(_unique_ids([path for path, _ in pairs]), pairs):
        row = [id_, spec.name, _relative(path, base)]
        row += [scale_cell] if scale_cell else []
        row += [_relative(partner, base)] if partner else []
        writer.writerow(row)
    return text.getvalue()


def _scale_cell(task: Task, scale: int | None) -> str:
    """The scale column's value: only the task 'sr' has one; a ValueError for a wrong scale."""
    if task.kind != "sr":
        if scale is not None:
            raise ValueError(f"a scale is only used by super-resolution tasks, not by task {task.name!r}")
        return ""
    if task.scale is not None:
        if scale is not None and scale != task.scale:
            raise ValueError(f"task {task.name!r} is fixed to scale {task.scale}, got scale {scale}; use task 'sr'")
        return ""
    if scale is None or isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 2:
        raise ValueError(f"task {task.name!r} needs a scale: a whole number >= 2, got {scale!r}")
    return str(int(scale))


def _pair(files: list[Path], task: str, column: str, suffix: str) -> list[tuple[Path, Path | None]]:
    """Each input with its companion image `<stem><suffix>.<ext>`; a ValueError lists the unpaired.

    Every file whose stem ends with the suffix is taken for a companion, never for an input.
    """
    companions = {path.stem: path for path in reversed(files) if path.stem.endswith(suffix) and is_image_path(path)}
    inputs = [path for path in files if not path.stem.endswith(suffix)]
    pairs = [(path, companions.get(path.stem + suffix)) for path in inputs]
    unpaired = [path.name for path, partner in pairs if partner is None]
    if unpaired:
        example = Path(unpaired[0]).stem + suffix + ".png"
        raise ValueError(
            f"task {task!r} needs a {column} image for every input, named <stem>{suffix}.png next to it "
            f"(e.g. {example}); none found for: {', '.join(unpaired)}"
        )
    return pairs


def _unique_ids(paths: list[Path]) -> list[str]:
    """Ids from the file stems, made safe and unique (ignoring case, since they name files)."""
    ids: list[str] = []
    taken: set[str] = set()
    for path in paths:
        stem = _UNSAFE_ID_CHARACTERS.sub("_", path.stem).lstrip(".") or "image"
        candidate, number = stem, 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem}-{number}"
        taken.add(candidate.casefold())
        ids.append(candidate)
    return ids


def _relative(path: Path, base: Path) -> str:
    """The path relative to base with '/' separators, or absolute when there is no relative one."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()
    except ValueError:  # another drive on Windows
        return Path(os.path.abspath(path)).as_posix()
