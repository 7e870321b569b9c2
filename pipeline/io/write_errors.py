"""Write errors that no retry can fix: the disk is full, read-only, over quota, or refuses us.

`atomic_path` and `atomic_folder` turn such an error into `OutputWriteError`, which names the file
that could not be written. A unit that raises it is not retried (its fit would be redone only to
fail on the same write), and the run stops taking new units: nothing more could be saved.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

# ENOSPC full, EDQUOT over quota, EROFS read-only, EACCES/EPERM refused (permissions, immutable), EFBIG too large.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
NEARLY_FULL = 1 << 20  # bytes free below which a writer's failure is taken for a full disk


class OutputWriteError(OSError):
    """`path` could not be written for a reason of the file system (`errno` one of `WRITE_ERRNOS`)."""

    def __init__(self, path: Path | str, code: int, reason: str) -> None:
        super().__init__(code, f"cannot write {path}: {reason}")
        self.path = str(path)

    def __reduce__(self) -> tuple[object, ...]:
        """Rebuilt from its parts, so that it crosses process boundaries (Ray workers) intact."""
        return (OutputWriteError, (self.path, self.errno, self.strerror.split(": ", 1)[-1] if self.strerror else ""))


def as_write_error(path: Path, error: BaseException) -> OutputWriteError | None:
    """`error`, raised while writing `path`, as an OutputWriteError when the file system caused it:
    an OSError with one of `WRITE_ERRNOS`, or any failure of a writer (an encoder, ffmpeg) while
    the disk has less than `NEARLY_FULL` bytes free. None for anything else."""
    if isinstance(error, OutputWriteError):
        return error
    if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
        return OutputWriteError(path, error.errno, error.strerror or str(error))
    if isinstance(error, Exception) and free_bytes(path.parent) < NEARLY_FULL:
        return OutputWriteError(path, errno.ENOSPC, f"no space left on the device ({type(error).__name__}: {error})")
    return None


def free_bytes(folder: Path) -> int:
    """Free bytes on the file system of `folder` (of its nearest existing parent); a large number when unknown."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 1 << 62
