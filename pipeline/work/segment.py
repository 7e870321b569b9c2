"""One segment of a video on a worker: restore its frames as a chain, store the kept ones.

`process_segment` decodes only the frames the segment's chain needs (streamed, one at a time),
runs `dip_engine.video.restore_video` over them, and writes the kept frames losslessly as PNG
into the segment's folder of the output folder (``.segments/<row id>/<index>/<frame>.png``),
atomically: the folder appears complete or not at all.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

import dip_engine
from dip_engine import CompiledSteps, RestoreConfig
from dip_engine.video import ChainConfig, FrameResult, restore_video
from pipeline.io import atomic_folder, frame_files, is_frame_pattern, is_image_path, iter_sequence, read_image, write_image
from pipeline.manifest import ManifestRow
from pipeline.records import SegmentRecord
from pipeline.video.jobs import short_video_problem
from pipeline.work.common import UnitError, engine_config, output_bit_depth, quality_metrics, read_mask
from pipeline.work.frame_figures import append_entry, segment_entry
from pipeline.work.units import SegmentUnit, frame_name


@dataclass
class _Tally:
    """What the chain did, accumulated frame by frame."""

    iterations: int = 0
    cold_frames: int = 0
    cuts: int = 0
    engine_seconds: float = 0.0
    stop_reasons: Counter[str] = field(default_factory=Counter)
    metrics: dict[str, list[float]] = field(default_factory=lambda: {"psnr_in": [], "psnr_out": [], "ssim_in": [], "ssim_out": []})
    per_frame: dict[str, list[Any]] = field(default_factory=dict)  # the kept frames' figures, in columns

    def add(self, result: FrameResult) -> None:
        self.iterations += result.restoration.iterations
        self.cold_frames += int(result.cold)
        self.cuts += int(result.reason == "cut")
        self.engine_seconds += result.restoration.seconds
        self.stop_reasons[result.restoration.stop_reason] += 1

    def measure(self, x0: Tensor, written: Tensor, reference: Tensor) -> dict[str, float | None]:
        metrics = quality_metrics(x0, written, reference)
        for name, value in metrics.items():
            self.metrics[name].append(value)  # type: ignore[arg-type]
        return metrics

    def keep(self, frame: int, result: FrameResult, quality: Mapping[str, float | None]) -> None:
        append_entry(self.per_frame, segment_entry(frame, result, quality))

    def means(self) -> dict[str, float | None]:
        return {name: (sum(values) / len(values) if values else None) for name, values in self.metrics.items()}


def _masks(row: ManifestRow, indices: tuple[int, ...]) -> Tensor | Iterator[Tensor] | None:
    """One mask for every frame, or the masks of the frames at `indices`, read one at a time."""
    if row.mask is None:
        return None
    if is_image_path(row.mask) and not is_frame_pattern(row.mask):
        return read_mask(row.mask)
    files = frame_files(row.mask)
    return (read_mask(files[index]) for index in indices)


def process_segment(
    unit: SegmentUnit,
    out_dir: Path,
    *,
    device: str = "cpu",
    worker: str = "",
    attempt: int = 1,
    config_override: RestoreConfig | None = None,
    chain_override: ChainConfig | None = None,
    steps: CompiledSteps | None = None,
) -> dict[str, Any]:
    """Restore one segment and return its "done" record (`pipeline.records.SegmentRecord`).

    The chain restores the frames of `segment.chain_indices` in order; the first `segment.warmup`
    of them only warm it up (see `pipeline.video.segments`).
    Cold frames use the task preset's configuration (or `config_override`) with the row's
    `max_iterations` as the cap; warm frames follow `chain_override` (default `ChainConfig.for_task`).
    The seed is the row's (0 if none). Kept frames are written as PNG at the input's bit depth
    (uint8, or uint16 for 16-bit and float frames) into the segment's folder, atomically.

    With a reference, psnr/ssim_out compare each kept frame as written with its reference frame
    and psnr/ssim_in the input frame (bicubic-upsampled for super-resolution); the record holds
    their means over the kept frames, and its per_frame each kept frame's figures
    (`pipeline.work.frame_figures`). Raises UnitError (naming the row and the segment) for what
    the user can fix: unreadable frames, a non-binary mask, anything the engine rejects, and a
    video file that decodes short of its header's duration × rate unless `unit.allow_short_video`
    (`pipeline.video.jobs.short_video_problem`; a file cut since planning fails while decoding).
    """
    started = time.perf_counter()
    segment = unit.segment
    short = None if unit.allow_short_video else short_video_problem(unit.source)
    if short is not None:  # a truncated video file: nothing is decoded or fitted
        raise UnitError(unit.row, short)
    try:
        return _run(unit, Path(out_dir), device, worker, attempt, config_override, chain_override, steps, started)
    except UnitError:
        raise
    except ValueError as error:
        where = f"segment {segment.index} (frames {segment.start}-{segment.stop - 1})"
        raise UnitError(unit.row, f"{where}: {error}") from error


def _run(
    unit: SegmentUnit,
    out_dir: Path,
    device: str,
    worker: str,
    attempt: int,
    config_override: RestoreConfig | None,
    chain_override: ChainConfig | None,
    steps: CompiledSteps | None,
    started: float,
) -> dict[str, Any]:
    row, segment = unit.row, unit.segment
    bit_depth = output_bit_depth(unit.source.bit_depth, Path(frame_name(0)))
    is_sr = dip_engine.get_task(row.task).kind == "sr"
    tally = _Tally()
    order = segment.chain_indices
    with ExitStack() as stack:
        lead_in: list[Tensor] = []
        if segment.lead_in:  # the few frames after start, restored first in reverse
            with closing(iter_sequence(row.input, segment.start + 1, segment.start + 1 + segment.lead_in)) as head:
                lead_in = list(head)[::-1]
        forward = stack.enter_context(closing(iter_sequence(row.input, segment.warmup_start, segment.stop)))
        to_engine, inputs = itertools.tee(itertools.chain(lead_in, forward), 2)  # the engine's copy, and ours for psnr_in
        references = None
        if row.reference is not None:
            references = stack.enter_context(closing(iter_sequence(row.reference, segment.start, segment.stop)))
        folder = stack.enter_context(atomic_folder(out_dir / unit.output, root=out_dir))
        masks = _masks(row, order)
        first_mask: Tensor | None  # the first frame's mask chooses the chain's inpainting network
        if masks is None or isinstance(masks, Tensor):
            first_mask = masks
        else:  # per-frame masks: peek at the first
            first_mask = next(masks)
            masks = itertools.chain([first_mask], masks)
        results = restore_video(
            to_engine,
            row.task,
            masks=masks,
            scale=row.scale if is_sr else None,
            config=engine_config(row, config_override, device, first_mask),
            chain=chain_override,
            seed=row.seed if row.seed is not None else 0,
            device=device,
            steps=steps,
            warmup=segment.warmup,
            tiling=unit.tiling,
        )
        for result in results:
            tally.add(result)
            x0 = next(inputs)
            if result.index < segment.warmup:
                continue
            index = order[result.index]
            target = folder / frame_name(index)
            write_image(target, result.image, bit_depth)
            quality = tally.measure(x0, read_image(target).pixels, next(references)) if references is not None else {}
            tally.keep(index, result, quality)
    return SegmentRecord.of(
        row,
        unit.output.as_posix(),
        **unit.record_fields(),
        frames=segment.frames,
        iterations=tally.iterations,
        cold_frames=tally.cold_frames,
        cuts=tally.cuts,
        stop_reasons=dict(tally.stop_reasons),
        **tally.means(),
        bit_depth=bit_depth,
        seconds=time.perf_counter() - started,
        engine_seconds=tally.engine_seconds,
        per_frame=tally.per_frame,
        worker=worker,
        attempt=attempt,
    ).to_dict()
