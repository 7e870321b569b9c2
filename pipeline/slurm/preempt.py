"""Stopping cleanly on SLURM's signals, and requeueing.

``--signal=B:USR1@T`` (in both templates) has SLURM send SIGUSR1 to the batch script T seconds
before the time limit, and the script passes it on to `pipeline run`. There, `StopSignals` turns
it into a stop request the run polls (`RunOptions.stop_requested`): no new unit starts, running
ones get a grace period to finish, the ledger and results.csv are written, and then `requeue`
puts the job back in the queue; the restarted job (``SLURM_RESTART_COUNT`` > 0) resumes from the
ledger. SIGTERM (``scancel``, the end of a requeued job) ends the run at once as an interrupt:
running units are abandoned and their temporary files removed.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

from pipeline.slurm.commands import SlurmCommands
from pipeline.slurm.environment import SlurmEnvironment


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C (finished units are kept, running ones abandoned)."""


class StopSignals:
    """While active: SIGUSR1 requests a stop (`requested`), SIGTERM raises `Terminated`."""

    def __init__(self) -> None:
        self.received: int | None = None  # the stop signal that arrived, if any
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {
            signal.SIGUSR1: signal.signal(signal.SIGUSR1, self._on_stop),
            signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_terminate),
        }
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def requested(self) -> bool:
        """Whether a stop was requested (`RunOptions.stop_requested`)."""
        return self.received is not None

    def _on_stop(self, number: int, frame: FrameType | None) -> None:
        self.received = number

    def _on_terminate(self, number: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signal.Signals(number).name}")


def requeue(environment: SlurmEnvironment, commands: SlurmCommands) -> str:
    """Requeue the job this process runs in (after a stop); what happened, in words.

    SLURM ends the job on a requeue with SIGTERM, so from here on SIGTERM is ignored: this
    process has flushed everything and only has to exit.
    """
    if not environment.in_job or environment.job_id is None:
        return "not in a SLURM job, so nothing was requeued: run the same command again to resume"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    commands.requeue(environment.job_id)
    restart = (environment.restart_count or 0) + 1
    return f"requeued SLURM job {environment.job_id} (restart {restart}): it resumes from the ledger when it starts again"
