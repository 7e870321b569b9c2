"""Atomic file and folder replacement: write next to the target, fsync, then rename onto it."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.io.confine import check_inside
from pipeline.io.write_errors import as_write_error


def temp_path_for(path: Path, *, keep_suffix: bool = False) -> Path:
    """A fresh hidden temporary name beside `path`, e.g. ``.photo.png.4711-3f9a2c.tmp``.

    The name starts with '.', keeps the target's full name as a recognisable stem and ends with
    '.tmp' (the project's .gitignore ignores ``*.tmp``). With `keep_suffix` the target's extension is
    appended after '.tmp' (``.clip.mp4.4711-3f9a2c.tmp.mp4``) for tools such as ffmpeg that pick
    the container from the extension. The process id and a random token make concurrent writers
    of the same target use different temporary files.
    """
    token = f"{os.getpid()}-{secrets.token_hex(3)}"
    suffix = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{token}.tmp{suffix}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; silently skipped where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def _refusals_named(path: Path) -> Iterator[None]:
    """Re-raise a refusal of the file system in the block as an OutputWriteError naming `path`."""
    try:
        yield
    except BaseException as error:
        refused = as_write_error(path, error)
        if refused is not None and refused is not error:
            raise refused from error
        raise


@contextmanager
def atomic_path(path: Path, *, keep_suffix: bool = False, root: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path to write `path` through; on success it replaces `path` atomically.

    Usage::

        with atomic_path(Path("out/ledger.csv")) as tmp:
            tmp.write_text(text)

    The parent folders are created. When the block finishes, the temporary file is fsync'd and
    `os.replace`d onto `path` (readers see the old file or the complete new one, never a partial
    one). If the block raises (or the body never created the file), the temporary file is removed,
    `path` is left as it was, and the exception propagates, as `OutputWriteError` naming `path`
    when the file system refused the write (`pipeline.io.write_errors`). See `temp_path_for` for
    the naming.

    With `root` (the output folder), `path` must resolve inside it, symbolic links followed:
    checked before any folder is created and again just before the rename, else
    `pipeline.io.confine.OutsideOutputError` and nothing is written.
    """
    path = Path(path)
    if root is not None:
        check_inside(path, root)
    with _refusals_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path, keep_suffix=keep_suffix)
    with _refusals_named(path):
        try:
            yield tmp
            if root is not None:
                check_inside(path, root)
            if not tmp.is_file():
                raise FileNotFoundError(f"the writer did not create {tmp}; {path} was left unchanged")
            _fsync_file(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    _fsync_dir(path.parent)


@contextmanager
def atomic_folder(path: Path, *, root: Path | None = None) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces the folder `path` as a whole.

    Usage::

        with atomic_folder(Path("out/.segments/clip/0003")) as tmp:
            write_image(tmp / "000123.png", frame)

    The temporary folder is a hidden sibling named like `temp_path_for`'s files
    (``.0003.4711-3f9a2c.tmp``), so the ledger's clean-up of partial outputs recognises it. When
    the block finishes it is renamed onto `path`; a `path` that already exists is first renamed
    aside (to another temporary name) and removed after, so `path` is always either the old
    folder or the complete new one. If the block raises, the temporary folder is removed and
    `path` is left as it was. `root`: as for `atomic_path`.
    """
    path = Path(path)
    if root is not None:
        check_inside(path, root)
    tmp = temp_path_for(path)
    with _refusals_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    with _refusals_named(path):
        try:
            yield tmp
            if root is not None:
                check_inside(path, root)
            old = temp_path_for(path) if path.exists() else None
            if old is not None:
                os.replace(path, old)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
