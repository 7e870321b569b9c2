"""A video's last step on a worker: its segments' frames streamed into the output video.

`assemble_video` reads the kept frames of every segment in order, one at a time, and writes them
with `pipeline.io.VideoWriter` (atomically) at the video's frame rate, encoded as the run asks
(`AssemblyUnit.video`: --video-codec, --video-pixel-format; `pipeline.io.video_codecs`), 16-bit
frames fed at 16 bits. A video-file input's audio, subtitle, data and attachment streams, tags,
chapters, rotation and colour tags are copied unchanged (`pipeline.io.stream_copy`); its ledger
line lists the streams copied and those the container could not hold. With --frames it also
writes them as PNG or TIFF files into
``<output stem>_frames/`` (atomically, as a folder). While streaming it measures the temporal
consistency of the result (`dip_engine.temporal.TemporalConsistency`) against the reference
frames, or the input frames when there is no reference.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from torch import Tensor

from dip_engine.step import CompiledSteps
from dip_engine.temporal import TemporalConsistency
from pipeline.io import VideoWriter, atomic_folder, iter_sequence, read_image, write_image
from pipeline.records import VideoRecord
from pipeline.work.common import UnitError, output_bit_depth, upsample_to
from pipeline.work.frame_figures import VideoFrameFigures
from pipeline.work.units import AssemblyUnit, frame_counts, frame_name, frames_folder, segment_folder


def _restored_frames(unit: AssemblyUnit, out_dir: Path) -> Iterator[tuple[int, Path]]:
    """(frame index, stored frame file) of the whole video, in order."""
    for segment in unit.segments:
        folder = out_dir / segment_folder(unit.row.id, segment.index)
        for index in range(segment.start, segment.stop):
            yield index, folder / frame_name(index)


def _export(folder: Path, index: int, stored: Path, frame: Tensor, bit_depth: str, frames_format: str) -> None:
    if frames_format == "png":
        shutil.copyfile(stored, folder / stored.name)  # the stored PNG is already the lossless frame
    else:
        write_image(folder / f"{index:06d}.tif", frame, bit_depth)


def assemble_video(
    unit: AssemblyUnit,
    out_dir: Path,
    *,
    device: str = "cpu",
    worker: str = "",
    attempt: int = 1,
    steps: CompiledSteps | None = None,
) -> dict[str, Any]:
    """Write the video of `unit` from its segments' frames; return the video's "done" record.

    The record (`pipeline.records.VideoRecord`) sums the segments' iterations and seconds
    (plus this assembly's), averages their PSNR/SSIM over all frames, and adds the temporal
    figures measured here. `device` and `steps` are unused (the assembly is file work) but
    accepted like the other units' processors. Raises UnitError naming the row for a missing or unreadable frame.
    """
    started = time.perf_counter()
    try:
        return _run(unit, Path(out_dir), worker, attempt, started)
    except ValueError as error:
        raise UnitError(unit.row, f"assembling the video: {error}") from error


def _run(unit: AssemblyUnit, out_dir: Path, worker: str, attempt: int, started: float) -> dict[str, Any]:
    row, source = unit.row, unit.source
    scale = row.scale or 1
    height, width = source.height * scale, source.width * scale
    has_reference = row.reference is not None
    copy_from = row.input if source.kind == "video" else None
    stored_depth = output_bit_depth(source.bit_depth, Path(frame_name(0)))  # of the segments' PNG frames
    encoding = unit.video.encoding(stored_depth, width, height, unit.output.suffix)
    consistency = TemporalConsistency(warping=unit.warping_error)
    figures = VideoFrameFigures.of_segments(unit.segment_records)  # the per_frame of the record
    export_to = frames_folder(unit.output) if unit.frames_format else None
    with ExitStack() as stack:
        baselines = stack.enter_context(closing(iter_sequence(row.reference or row.input)))
        export = stack.enter_context(atomic_folder(out_dir / export_to, root=out_dir)) if export_to is not None else None
        writer = VideoWriter(
            out_dir / unit.output,
            unit.fps,
            width,
            height,
            codec=encoding.encoder,
            crf=encoding.crf,
            pix_fmt=encoding.pixel_format,
            options=encoding.options,
            streams_from=copy_from,
            root=out_dir,
        )
        stack.enter_context(writer)
        for index, stored in _restored_frames(unit, out_dir):
            loaded = read_image(stored)
            writer.write(loaded.pixels)
            if export is not None:
                _export(export, index, stored, loaded.pixels, loaded.bit_depth, unit.frames_format or "png")
            frame = next(baselines, None)
            if frame is None:
                raise ValueError(f"{row.reference if has_reference else row.input} has fewer frames than the restored video")
            baseline = upsample_to(frame, (height, width))
            figures.add(index, consistency.add(loaded.pixels, baseline, is_reference=has_reference))
    combined = _combine_segments(unit.segment_records)
    temporal = consistency.summary()
    assembly_seconds = time.perf_counter() - started
    return VideoRecord.of(
        row,
        unit.output.as_posix(),
        frames=combined["frames"],
        **frame_counts(source),
        fps=unit.fps,
        segments=combined["segments"],
        iterations=combined["iterations"],
        cold_frames=combined["cold_frames"],
        psnr_in=combined["psnr_in"],
        psnr_out=combined["psnr_out"],
        ssim_in=combined["ssim_in"],
        ssim_out=combined["ssim_out"],
        flicker=_finite_or_none(temporal["flicker"]),
        flicker_baseline=temporal["flicker_baseline"],
        change_error=_finite_or_none(temporal["change_error"]),
        warping_error=_finite_or_none(temporal["warping_error"]),
        output_change=_finite_or_none(temporal["output_change"]),
        audio=writer.streams is not None and writer.streams.audio,
        codec=unit.video.codec,
        pixel_format=encoding.pixel_format,
        streams_copied=list(writer.streams.copied) if writer.streams is not None else None,
        streams_dropped=list(writer.streams.dropped) if writer.streams is not None else None,
        frames_folder=export_to.as_posix() if export_to is not None else None,
        seconds=combined["segment_seconds"] + assembly_seconds,
        assembly_seconds=assembly_seconds,
        **figures.record_fields(),
        worker=worker,
        attempt=attempt,
    ).to_dict()


def _finite_or_none(value: float | str | None) -> float | None:
    """NaN (an undefined figure, e.g. flicker of a one-frame video) as None; others unchanged."""
    return None if value is None or isinstance(value, str) or math.isnan(value) else value


def _combine_segments(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The video-wide sums and frame-weighted means of its segments' done records."""
    records = list(records)
    combined: dict[str, Any] = {
        "frames": sum(int(record.get("frames") or 0) for record in records),
        "segments": len(records),
        "iterations": sum(int(record.get("iterations") or 0) for record in records),
        "cold_frames": sum(int(record.get("cold_frames") or 0) for record in records),
        "segment_seconds": sum(float(record.get("seconds") or 0.0) for record in records),
    }
    for metric in ("psnr_in", "psnr_out", "ssim_in", "ssim_out"):
        values = [(record.get(metric), int(record.get("frames") or 0)) for record in records]
        known = [(float(value), weight) for value, weight in values if isinstance(value, (int, float))]
        weight = sum(weight for _value, weight in known)
        combined[metric] = sum(value * w for value, w in known) / weight if known and len(known) == len(values) and weight else None
    return combined
