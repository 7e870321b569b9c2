"""SIGTERM and Ctrl-C end `pipeline run` the documented way at any point, not only while units run.

`exits_on_interrupt` wraps the command: from its first line on, SIGTERM (``scancel``, ``kill``)
raises `Terminated` like Ctrl-C raises KeyboardInterrupt, and either one that reaches the
wrapper (while the manifest is read, while Ray starts, while the run is planned, or after it)
ends the command with exit code 130 and a one-line message. The command's own clean-up (its
``finally``: Ray shut down) has run by then; while units run, the command reports the interrupt
itself.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.markup import escape

from pipeline.cli.common import EXIT_INTERRUPTED, console
from pipeline.slurm.preempt import Terminated


def raise_terminated(number: int, frame: FrameType | None) -> None:
    """A SIGTERM handler: end what runs the way Ctrl-C does."""
    raise Terminated(f"signal {signal.Signals(number).name}")


def exits_on_interrupt(command: Callable[..., None]) -> Callable[..., None]:
    """`command` (which takes the output folder as `out`), ending with exit code 130 on SIGTERM or Ctrl-C."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> None:
        main = threading.current_thread() is threading.main_thread()  # only there can signals be handled
        previous = signal.signal(signal.SIGTERM, raise_terminated) if main else None
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:  # Terminated is one
            out = kwargs.get("out")
            kept = f" in {escape(str(out))}" if isinstance(out, Path) else ""
            console(stderr=True).print(
                f"[yellow]interrupted[/]: no unit is running; units finished before are kept{kept}, and running the "
                "same command again resumes after them",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            if main and signal.getsignal(signal.SIGTERM) is raise_terminated:  # not one put in since (a requeue ignores SIGTERM)
                signal.signal(signal.SIGTERM, previous)

    return guarded
