"""What runs units on one device, whether inside a Ray actor or in the calling process."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from dip_engine import CompiledSteps
from pipeline.units import Unit


class UnitExecutor:
    """The processors, the device they run on, the worker's name in the ledger, and the worker's
    compiled training steps (one cache per worker: each image shape compiles once)."""

    def __init__(self, processors: Any, device: str, suffix: str, threads: int) -> None:
        """processors: a `pipeline.runner.Processors`; suffix: appended to "<host>:<device>" in
        the worker's name; threads: torch's CPU threads when the device is the CPU."""
        import torch

        if device == "cpu":
            torch.set_num_threads(max(1, threads))
        self.device = device
        self.name = f"{socket.gethostname()}:{device}{suffix}"
        self.processors = processors
        self.steps = CompiledSteps()

    def run(self, unit: Unit, out_dir: str | Path, attempt: int) -> dict[str, Any]:
        processor = self.processors.of(unit)
        return processor(unit, Path(out_dir), device=self.device, worker=self.name, attempt=attempt, steps=self.steps)
