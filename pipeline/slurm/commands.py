"""Every call this package makes to SLURM's commands (sbatch, scontrol), in one class."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class SlurmError(RuntimeError):
    """A SLURM command failed; the message carries the command, its exit code and stderr's tail."""

    def __init__(self, command: Sequence[str], returncode: int | None, stderr: str, hint: str = "") -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        tail = " | ".join(stderr.strip().splitlines()[-3:]) or "no error output"
        status = "could not be run" if returncode is None else f"exited with {returncode}"
        super().__init__(f"`{' '.join(self.command)}` {status}: {tail}" + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class SlurmCommands:
    """sbatch and scontrol, run through `run` (subprocess.run; a stand-in in tests)."""

    run: Callable[..., subprocess.CompletedProcess[str]] = field(default=subprocess.run)

    def sbatch(self, script: Path) -> str:
        """Submit `script`; the job id sbatch gives."""
        output = self._call(["sbatch", "--parsable", str(script)], hint="the script was kept at " + str(script))
        job_id = output.strip().split(";")[0]  # --parsable: "<id>" or "<id>;<cluster>"
        if not job_id:
            raise SlurmError(["sbatch", "--parsable", str(script)], 0, f"no job id in its output {output!r}")
        return job_id

    def requeue(self, job_id: str) -> None:
        """Put job `job_id` back in the queue (it is stopped now and starts again later)."""
        self._call(["scontrol", "requeue", job_id], hint="the job was not requeued: submit it again to resume")

    def _call(self, command: list[str], hint: str) -> str:
        try:
            done = self.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise SlurmError(
                command, None, f"{command[0]} is not on PATH", "run this where SLURM's commands are installed (a login node)"
            ) from None
        if done.returncode != 0:
            raise SlurmError(command, done.returncode, done.stderr, hint)
        return done.stdout
