"""What a worker runs: the processor of each kind of unit, on the worker's device.

A processor's signature is (unit, out_dir, *, device, worker, attempt, steps) -> record; the
unit is a `ManifestRow` (`process_image`), a `SegmentUnit` (`process_segment`), an
`AssemblyUnit` (`assemble_video`), a `TileGroupUnit` (`process_tile_group`) or a
`TiledAssemblyUnit` (`assemble_tiled_image`). `UnitRunner` holds them with the device, the worker's name
and its compiled training steps, whether it lives in a Ray actor or in the calling process.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dip_engine import CompiledSteps
from pipeline.work.assembly import assemble_video
from pipeline.work.image import process_image
from pipeline.work.segment import process_segment
from pipeline.work.tile_group import process_tile_group
from pipeline.work.tiled_assembly import assemble_tiled_image
from pipeline.work.units import AssemblyUnit, SegmentUnit, TiledAssemblyUnit, TileGroupUnit, Unit

Processor = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Processors:
    """What a worker runs for each kind of unit (stand-ins in tests and benchmarks)."""

    image: Processor = process_image
    segment: Processor = process_segment
    assembly: Processor = assemble_video
    tile_group: Processor = process_tile_group
    tiled_assembly: Processor = assemble_tiled_image

    def of(self, unit: Unit) -> Processor:
        if isinstance(unit, SegmentUnit):
            return self.segment
        if isinstance(unit, AssemblyUnit):
            return self.assembly
        if isinstance(unit, TileGroupUnit):
            return self.tile_group
        if isinstance(unit, TiledAssemblyUnit):
            return self.tiled_assembly
        return self.image


class UnitRunner:
    """The processors, the device they run on, the worker's name in the ledger, and the worker's
    compiled training steps (one cache per worker: each image shape compiles once)."""

    def __init__(self, processors: Processors, device: str, suffix: str, threads: int) -> None:
        """suffix: appended to "<host>:<device>" in the worker's name; threads: torch's CPU
        threads when the device is the CPU."""
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
