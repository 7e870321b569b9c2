"""Ledger lines for report tests, shaped as the pipeline writes them (pipeline.records), without
running the engine: image lines with traces, video lines with per-frame columns, parts."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.work.traces import TRACE_POINTS, trace_point


def trace(iterations: int, kept: int, points: int = TRACE_POINTS, *, psnr: bool = False) -> dict[str, list[Any]]:
    """A fit's downsampled trace: the loss falls, the criterion is lowest at `kept`."""
    count = min(points, iterations)
    steps = sorted({1 + round(i * (iterations - 1) / max(1, count - 2)) for i in range(count - 1)} | {kept, iterations})
    shown: dict[str, list[Any]] = {
        "iteration": steps,
        "loss": [trace_point(0.05 * math.exp(-step / 300) + 0.002) for step in steps],
        "criterion": [trace_point(1e-4 * (1 + ((step - kept) / 400) ** 2)) if step > 20 else None for step in steps],
    }
    if psnr:
        shown["psnr"] = [trace_point(30 - 8 * math.exp(-step / 200) - 0.002 * max(0, step - kept)) for step in steps]
    return shown


def image_line(unit_id: str, row: int, **fields: Any) -> dict[str, Any]:
    """A done image line (fields override), with a trace of `iterations` unless trace=None is given."""
    iterations = fields.get("iterations", 900)
    kept = fields.get("kept_iteration", iterations - 150)
    line = {
        "id": unit_id,
        "status": "done",
        "kind": "image",
        "task": "denoise",
        "input": f"/archive/{unit_id}.png",
        "output": f"{unit_id}.png",
        "row": row,
        "psnr_in": 20.0 + (row % 7),
        "psnr_out": 27.0 + (row % 11) * 0.5,
        "ssim_in": 0.41,
        "ssim_out": 0.83,
        "iterations": iterations,
        "stop_reason": "early_stop",
        "rule": "variance",
        "kept_iteration": kept,
        "seconds": 10.0 + row % 5,
        "engine_seconds": 9.0 + row % 5,
        "worker": "w0",
        "attempt": 1,
        "finished_at": f"2026-03-01T10:{(row // 60) % 60:02d}:{row % 60:02d}.000+00:00",
        "error": None,
    }
    line.update(fields)
    if "trace" not in fields:
        line["trace"] = trace(iterations, kept)
    return line


def failed_line(unit_id: str, row: int, error: str, **fields: Any) -> dict[str, Any]:
    """A failed image line."""
    line = image_line(unit_id, row, status="failed", error=error, psnr_in=None, psnr_out=None, ssim_in=None, ssim_out=None, trace=None)
    line.update(iterations=None, stop_reason=None, kept_iteration=None, rule=None)
    line.update(fields)
    return line


def per_frame(frames: int, *, reference: bool = True, cold_every: int = 4) -> dict[str, list[Any]]:
    """A video line's per_frame columns."""
    cold = [index % cold_every == 0 for index in range(frames)]
    return {
        "frame": list(range(frames)),
        "iterations": [400 if flag else 120 + index for index, flag in enumerate(cold)],
        "cold": cold,
        "stop_reason": ["early_stop"] * frames,
        "psnr_in": [20.0 + 0.1 * index if reference else None for index in range(frames)],
        "psnr_out": [29.0 - 0.05 * index if reference else None for index in range(frames)],
        "ssim_out": [0.8 if reference else None for _ in range(frames)],
        "flicker": [None] + [0.9 + 0.01 * (index % 5) for index in range(1, frames)],
        "output_change": [None] + [0.01] * (frames - 1),
    }


def video_line(unit_id: str, row: int, frames: int, **fields: Any) -> dict[str, Any]:
    """A done video line with per-frame columns."""
    line = {
        "id": unit_id,
        "status": "done",
        "kind": "video",
        "task": "denoise",
        "input": f"/archive/{unit_id}.mp4",
        "output": f"{unit_id}.mp4",
        "row": row,
        "frames": frames,
        "fps": 24.0,
        "segments": 2,
        "iterations": 200 * frames,
        "cold_frames": frames // 4,
        "psnr_in": 21.0,
        "psnr_out": 28.5,
        "ssim_in": 0.5,
        "ssim_out": 0.8,
        "flicker": 0.93,
        "flicker_baseline": "reference",
        "warping_error": 0.012,
        "seconds": 42.0,
        "finished_at": "2026-03-01T11:00:00.000+00:00",
        "error": None,
        "per_frame": per_frame(frames),
        "per_frame_step": 1,
        "codec": "libx264",
        "pixel_format": "yuv420p",
        "streams_copied": ["audio:aac"],
        "streams_dropped": ["data:tmcd (the container cannot hold it)"],
    }
    line.update(fields)
    return line


def segment_line(video: str, index: int, segments: int, row: int) -> dict[str, Any]:
    """A done segment line of a video that has no video line yet."""
    return {
        "id": f"{video}#seg{index:04d}",
        "status": "done",
        "kind": "segment",
        "task": "denoise",
        "input": f"/archive/{video}.mp4",
        "output": f".segments/{video}/{index:04d}",
        "row": row,
        "video": video,
        "segment": index,
        "segments": segments,
        "iterations": 1000,
        "seconds": 30.0,
        "finished_at": "2026-03-01T12:00:00.000+00:00",
    }


def write_ledger(out: Path, lines: Iterable[dict[str, Any]], name: str = "results.jsonl") -> Path:
    """Write the lines as a ledger file (one JSON object per line), quickly (no fsync per line)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")
    return path
