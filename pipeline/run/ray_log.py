"""Ray's own output goes to a log file in the output folder, not among the run's lines.

While a run uses Ray, three kinds of lines come from Ray in the driver process:

* its Python logging, on the ``ray`` logger ("Started a local Ray instance", the token
  authentication warning, "Connecting to existing Ray cluster"): Ray's handler writes to
  ``sys.stderr``;
* what its background threads print with ``print``: the errors Ray's processes publish to the
  driver, such as the "(raylet) Raylet is terminated" dump when a node dies, on ``sys.stdout``;
  warnings (``warnings.warn``) on ``sys.stderr``;
* what its C++ core and the processes it starts write straight to file descriptors 1 and 2.

`RayOutput.start` sends all three to the log file: the ``ray`` logger gets a handler on it
(instead of Ray's own), ``sys.stdout`` and ``sys.stderr`` become the log, and descriptors 1 and 2
are made duplicates of it (``dup2``), the originals kept aside. The run's own lines still reach
the terminal: `terminal_stream` gives the consoles of `pipeline.cli.common` the original streams
(a duplicate of the original descriptor where the stream was one). `RayOutput.stop` puts
everything back. Ray's session logs (raylet, GCS, workers) stay where Ray writes them; the log
file says where that is (`RayOutput.note_session_logs`).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from pipeline.records import now

LOG_FOLDER = "logs"
RAY_LOGGER = "ray"
_FORMAT = "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"  # Ray's own (ray_constants.LOGGER_FORMAT)

_terminal: dict[bool, TextIO] = {}  # while Ray's output is diverted: the terminal's stdout (False) and stderr (True)


def ray_log_path(out_dir: Path, shard: str | None = None) -> Path:
    """``<out>/logs/ray-driver.log`` (``ray-driver.<shard>.log`` for a shard of a job array)."""
    return out_dir / LOG_FOLDER / ("ray-driver.log" if shard is None else f"ray-driver.{shard}.log")


def terminal_stream(stderr: bool = False) -> TextIO | None:
    """The terminal's stdout (or stderr) while Ray's output goes to its log file; else None (use sys's)."""
    return _terminal.get(stderr)


def diverted() -> bool:
    """Whether Ray's output goes to a log file now (`sys.stdout` and `sys.stderr` are that file)."""
    return bool(_terminal)


class RayOutput:
    """Sends Ray's output to `path` between `start` and `stop` (see the module docstring).

    `path` None: a temporary file, removed by `stop` (a dry run writes nothing into its folder).
    `keep`: leave Ray's output on the terminal (`start` and `stop` do nothing).
    """

    def __init__(self, path: Path | None, *, keep: bool = False) -> None:
        self.keep = keep
        self._given = path
        self.path: Path | None = path
        self._log: TextIO | None = None
        self._streams: tuple[TextIO, TextIO] | None = None
        self._saved_fds: dict[int, int] = {}
        self._owned: list[TextIO] = []  # the terminal streams opened here on duplicated descriptors
        self._handlers: tuple[list[logging.Handler], bool] | None = None

    @property
    def kept_path(self) -> Path | None:
        """The log file, when it stays after `stop` (not a dry run's temporary one, and not `keep`)."""
        return None if self.keep or self._given is None else self._given

    def start(self) -> None:
        if self.keep or self._log is not None:
            return
        self.path = self._open_path()
        self._log = open(self.path, "a", encoding="utf-8", errors="backslashreplace", buffering=1)
        self._log.write(f"==== {now()} pipeline run, pid {os.getpid()}: Ray's own output from here on\n")
        self._log.flush()
        out, err = sys.stdout, sys.stderr
        self._streams = (out, err)
        for stream in (out, err):
            _flush(stream)
        _terminal[False] = self._terminal_for(out, 1)
        _terminal[True] = self._terminal_for(err, 2)
        for descriptor in (1, 2):
            try:
                self._saved_fds[descriptor] = os.dup(descriptor)
            except OSError:  # closed: nothing to divert
                continue
            os.dup2(self._log.fileno(), descriptor)
        sys.stdout = sys.stderr = self._log
        logger = logging.getLogger(RAY_LOGGER)
        self._handlers = (list(logger.handlers), logger.propagate)
        handler = logging.StreamHandler(self._log)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.handlers = [handler]
        logger.propagate = False

    def note(self, text: str) -> None:
        """A line of the pipeline's own in the log (where Ray's session logs are, say)."""
        if self._log is not None:
            self._log.write(f"==== {text}\n")
            self._log.flush()

    def note_session_logs(self) -> None:
        """Say in the log where Ray keeps its session logs (raylet, GCS, workers) on this machine."""
        folder = session_logs_folder()
        if folder is not None:
            self.note(f"Ray's session logs (raylet, GCS, workers) on this machine: {folder}")

    def stop(self) -> None:
        """Put the logger, sys's streams and descriptors 1 and 2 back; close (a temporary: remove) the log."""
        if self._log is None:
            return
        if self._handlers is not None:
            logger = logging.getLogger(RAY_LOGGER)
            logger.handlers, logger.propagate = self._handlers
        _flush(self._log)
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
        for descriptor, saved in self._saved_fds.items():
            os.dup2(saved, descriptor)
            os.close(saved)
        self._saved_fds.clear()
        for stream in self._owned:
            _flush(stream)
            stream.close()
        self._owned.clear()
        _terminal.clear()
        self._log.close()
        self._log = None
        if self._given is None and self.path is not None:
            self.path.unlink(missing_ok=True)

    def _open_path(self) -> Path:
        if self._given is None:
            descriptor, name = tempfile.mkstemp(prefix="pipeline-ray-", suffix=".log")
            os.close(descriptor)
            return Path(name)
        self._given.parent.mkdir(parents=True, exist_ok=True)
        return self._given

    def _terminal_for(self, stream: TextIO, descriptor: int) -> TextIO:
        """Where the run's own lines go: `stream` itself, unless it writes to `descriptor` (which
        is about to become the log): then a new stream on a duplicate of that descriptor."""
        try:
            backed = stream.fileno() == descriptor
        except (AttributeError, OSError, ValueError):  # a stream in memory (a test runner's)
            backed = False
        if not backed:
            return stream
        duplicate = os.fdopen(
            os.dup(descriptor), "w", buffering=1, encoding=getattr(stream, "encoding", None), errors=getattr(stream, "errors", None)
        )
        self._owned.append(duplicate)
        return duplicate


def session_logs_folder() -> str | None:
    """The logs folder of the Ray session this process is connected to, on this machine; None if unknown."""
    try:
        import ray._private.worker

        node = ray._private.worker._global_node
        return str(node.get_logs_dir_path()) if node is not None else None
    except Exception:  # noqa: BLE001 - a private attribute of Ray's: absent or changed in another version
        return None


def _flush(stream: TextIO) -> None:
    try:
        stream.flush()
    except (OSError, ValueError):
        pass
