"""Video rows through the pipeline on a real local Ray: segments, assembly, resume, frame inputs.

Clips are a camera panning over a scikit-image photograph (`dip_engine.synthetic.camera_clip`),
32×32 and 6 to 12 frames, with σ = 25/255 noise. Quality is only under test in the first test
(a narrow network, short budgets); the others use a nearly free engine configuration, since
they test orchestration and files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
import ray.cloudpickle
import tifffile
import torch
from typer.testing import CliRunner

import dip_engine
from dip_engine import FitConfig, NetConfig, RestoreConfig, StoppingConfig
from dip_engine.synthetic import camera_clip
from dip_engine.video import ChainConfig
from pipeline.cli.app import app
from pipeline.io import (
    SequenceError,
    VideoWriter,
    atomic_folder,
    frame_files,
    is_frame_pattern,
    iter_sequence,
    iter_video_frames,
    probe_sequence,
    probe_video,
    read_image,
    write_image,
)
from pipeline.manifest import parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.run.plan import plan_run
from pipeline.video.segments import Segment, segment_ranges
from pipeline.work.processors import Processors
from pipeline.work.segment import process_segment
from pipeline.work.units import AssemblyUnit, FramesFormat, SegmentUnit
from tests.conftest import photo

# Workers import this module's processors by value: the tests folder is not on their path.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIDE = 32
FPS = 10
SIGMA = 25 / 255
# A narrow network and short budgets that still clearly denoise a 32×32 clip.
QUALITY = RestoreConfig(
    net=NetConfig(channels_down=(16, 16, 16), channels_up=(16, 16, 16), channels_skip=(4, 4, 4)),
    fit=FitConfig(max_iterations=150),
)
QUALITY_CHAIN = ChainConfig(warm_max_iterations=20, warm_stopping=StoppingConfig(window=10, patience=10, min_iterations=20))
# Nearly free: for tests of orchestration and files, not of restoration quality.
FAST = RestoreConfig(net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)), fit=FitConfig(max_iterations=3))
FAST_CHAIN = ChainConfig(warm_max_iterations=2, warm_stopping=StoppingConfig(window=2, patience=1, min_iterations=2))


# ----- processors run by the Ray workers ------------------------------------------------------


def quality_segment(unit: SegmentUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_segment(unit, out_dir, config_override=QUALITY, chain_override=QUALITY_CHAIN, **context)


def fast_segment(unit: SegmentUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_segment(unit, out_dir, config_override=FAST, chain_override=FAST_CHAIN, **context)


def failing_segment(unit: SegmentUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    """Segment 1 always fails (a frame the engine rejects, say); the others run."""
    if unit.segment.index == 1:
        raise ValueError(f"simulated failure of {unit.id}")
    return fast_segment(unit, out_dir, **context)


def dying_segment(unit: SegmentUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    """Kills its worker process half-way through writing segment 1's frames, the first time."""
    marker = out_dir.parent / f"died-{unit.segment.index}"
    if unit.segment.index == 1 and not marker.exists():
        marker.touch()
        with atomic_folder(out_dir / unit.output) as folder:
            write_image(folder / "000002.png", torch.zeros(3, SIDE, SIDE))
            os._exit(1)
    return fast_segment(unit, out_dir, **context)


# ----- clips and files ------------------------------------------------------------------------


def clean_clip(frames: int, top: int = 60) -> torch.Tensor:
    """(frames, 3, 32, 32): a camera panning 1.5 pixels a frame over the astronaut photograph."""
    return camera_clip(photo("astronaut", top, 150, 96, 128), frames, SIDE)


def noisy(clip: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The clip with σ = 25/255 Gaussian noise, clamped and rounded to 8-bit levels (as stored)."""
    generator = torch.Generator().manual_seed(seed)
    dirty = (clip + SIGMA * torch.randn(clip.shape, generator=generator)).clamp(0, 1)
    return (dirty * 255).round() / 255


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=60)


def write_video(path: Path, frames: torch.Tensor, *, audio: bool = False) -> Path:
    """Frames losslessly (they decode bit-exact), with a 440 Hz tone as the audio track if asked."""
    tone = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if audio:
        tone = path.with_name("tone.mkv")
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"color=size={SIDE}x{SIDE}:rate={FPS}:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            str(tone),
        )
    with VideoWriter(path, FPS, SIDE, SIDE, lossless=True, audio_from=tone) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def write_frames(folder: Path, frames: torch.Tensor, name: str = "{}.png") -> Path:
    for index, frame in enumerate(frames):
        write_image(folder / name.format(index), frame)
    return folder


def manifest(folder: Path, header: str, *rows: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def ledger_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def leftovers(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if ".tmp" in path.name]


def mean_psnr(frames: list[torch.Tensor] | torch.Tensor, reference: torch.Tensor) -> float:
    return sum(dip_engine.psnr(frame, clean) for frame, clean in zip(frames, reference, strict=True)) / len(reference)


# ----- segment_ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "length", "overlap", "expected"),
    [
        (5, 48, 2, [Segment(0, 0, 5, 0)]),  # fewer frames than a segment
        (8, 4, 2, [Segment(0, 0, 4, 0, lead_in=2), Segment(1, 4, 8, 2)]),  # an exact multiple
        (7, 3, 0, [Segment(0, 0, 3, 0), Segment(1, 3, 6, 3), Segment(2, 6, 7, 6)]),  # no overlap, a short last one
        (100, 0, 5, [Segment(0, 0, 100, 0)]),  # 0: the whole video one chain
        (6, 2, 5, [Segment(0, 0, 2, 0, lead_in=1), Segment(1, 2, 4, 0), Segment(2, 4, 6, 0)]),  # warm-up never before frame 0
        (1, 1, 1, [Segment(0, 0, 1, 0)]),
    ],
)
def test_segment_ranges(total: int, length: int, overlap: int, expected: list[Segment]) -> None:
    segments = segment_ranges(total, length, overlap)
    assert segments == expected
    assert [frame for s in segments for frame in range(s.start, s.stop)] == list(range(total))  # tiles exactly
    assert all(s.warmup == s.lead_in + s.start - s.warmup_start <= overlap and s.chain_frames == s.frames + s.warmup for s in segments)
    assert all(len(s.chain_indices) == s.chain_frames and s.chain_indices[s.warmup :] == tuple(range(s.start, s.stop)) for s in segments)


def test_every_segment_of_several_warms_up_first() -> None:
    """The first segment of several warms up on its own next frames, in reverse; the others on the
    frames before them; a lone segment is a plain chain."""
    first, second, last = segment_ranges(10, 4, 2)
    assert first.chain_indices == (2, 1, 0, 1, 2, 3) and first.warmup == 2
    assert second.chain_indices == (2, 3, 4, 5, 6, 7) and second.warmup == 2
    assert last.chain_indices == (6, 7, 8, 9) and last.warmup == 2
    (alone,) = segment_ranges(10, 0, 2)
    assert alone.chain_indices == tuple(range(10)) and alone.warmup == 0


@pytest.mark.parametrize(("total", "length", "overlap"), [(0, 4, 2), (-1, 4, 2), (8, -4, 2), (8, 4, -1), (8, True, 2), (8.0, 4, 2)])
def test_segment_ranges_rejects_impossible_values(total: Any, length: Any, overlap: Any) -> None:
    with pytest.raises(ValueError, match="must be a whole number"):
        segment_ranges(total, length, overlap)


# ----- frame sequences and folders -------------------------------------------------------------


def test_frame_folders_and_patterns_list_their_frames_in_order(tmp_path: Path) -> None:
    frame = torch.full((1, 8, 8), 0.5)
    for name in ("f10.png", "f2.png", "f1.png", ".hidden.png", "001.png", "0001.png", "1.png", "12.png"):
        write_image(tmp_path / name, frame)
    (tmp_path / "notes.txt").write_text("not a frame")
    assert [p.name for p in frame_files(tmp_path)] == ["0001.png", "001.png", "1.png", "12.png", "f1.png", "f2.png", "f10.png"]
    assert [p.name for p in frame_files(tmp_path / "f%d.png")] == ["f1.png", "f2.png", "f10.png"]
    assert [p.name for p in frame_files(tmp_path / "%d.png")] == ["1.png", "12.png"]  # %d: no leading zeros
    assert [p.name for p in frame_files(tmp_path / "%03d.png")] == ["001.png"]  # %03d: exactly as printf pads
    assert [p.name for p in frame_files(tmp_path / "%04d.png")] == ["0001.png"]
    assert is_frame_pattern("a/%05d.tif") and not is_frame_pattern("a%d/x.png") and not is_frame_pattern("%d%d.png")
    with pytest.raises(SequenceError, match="no file matches the frame pattern .*g%d.png .e.g. g1.png"):
        frame_files(tmp_path / "g%d.png")
    with pytest.raises(SequenceError, match="folder not found"):
        frame_files(tmp_path / "absent")
    info = probe_sequence(tmp_path / "f%d.png", every_frame=True)
    assert (info.kind, info.frames, info.channels, info.height, info.width, info.bit_depth, info.fps) == (
        "frames",
        3,
        1,
        8,
        8,
        "uint8",
        None,
    )
    with pytest.raises(SequenceError, match="has only 3 frames, but frames up to 4"):
        list(iter_sequence(tmp_path / "f%d.png", 1, 5))


def test_atomic_folder_replaces_a_folder_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "segment"
    with atomic_folder(target) as folder:
        (folder / "a").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as folder:
            (folder / "b").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["a"] and leftovers(tmp_path) == []
    with atomic_folder(target) as folder:
        (folder / "c").write_text("second")
    assert [p.name for p in target.iterdir()] == ["c"] and sorted(p.name for p in tmp_path.iterdir()) == ["segment"]


# ----- runs -------------------------------------------------------------------------------------


def test_a_noisy_clip_end_to_end_with_audio(tmp_path: Path, ray_local: Any) -> None:
    """A video file in, a video file out: same frames, size and rate, the audio, less noise."""
    clean = clean_clip(7)
    dirty = noisy(clean)
    write_video(tmp_path / "in" / "clip.mkv", dirty, audio=True)
    rows = parse_manifest(manifest(tmp_path, "id,task,input,output", "clip,denoise,in/clip.mkv,restored/clip.mp4"))
    out = tmp_path / "out"
    options = RunOptions(
        out_dir=out, workers=2, segment_frames=3, overlap=2, frames_format=FramesFormat.png, processors=Processors(segment=quality_segment)
    )
    summary = run(rows, options)
    assert summary.succeeded, summary.records
    assert summary.state.total == 4 and summary.state.done == 4  # 3 segments and the assembly

    info = probe_video(out / "restored" / "clip.mp4")
    assert (info.frames, info.width, info.height, info.fps, info.has_audio) == (7, SIDE, SIDE, FPS, True)
    restored = list(iter_video_frames(out / "restored" / "clip.mp4"))
    before, after = mean_psnr(dirty, clean), mean_psnr(restored, clean)
    assert before == pytest.approx(20.4, abs=0.3)
    assert after > before + 5.0, (before, after)  # measured: 20.4 -> 28.3 dB (the video encoded at crf 18)

    lines = ledger_lines(out)
    assert sorted(line["id"] for line in lines) == ["clip", "clip#seg0000", "clip#seg0001", "clip#seg0002"]
    segments = {line["segment"]: line for line in lines if line["kind"] == "segment"}
    assert [(s["start"], s["stop"], s["warmup_start"], s["lead_in"], s["frames"]) for _, s in sorted(segments.items())] == [
        (0, 3, 0, 2, 3),  # the first segment warms up on its frames 2, 1, then restores 0, 1, 2
        (3, 6, 1, 0, 3),
        (6, 7, 4, 0, 1),
    ]
    assert all(s["cold_frames"] >= 1 and s["iterations"] >= 150 and s["bit_depth"] == "uint8" for s in segments.values())
    video = lines[-1]
    assert video["id"] == "clip" and video["kind"] == "video" and video["status"] == "done"
    assert (video["frames"], video["segments"], video["fps"], video["audio"]) == (7, 3, FPS, True)
    assert video["iterations"] == sum(s["iterations"] for s in segments.values())
    assert video["flicker_baseline"] == "input" and 0 < video["flicker"] < 1  # calmer than the noisy input
    assert video["psnr_out"] is None and video["change_error"] is None and video["warping_error"] is None  # no reference
    assert video["output"] == "restored/clip.mp4" and video["frames_folder"] == "restored/clip_frames"
    assert sorted(p.name for p in (out / "restored" / "clip_frames").iterdir()) == [f"{i:06d}.png" for i in range(7)]
    assert not (out / ".segments").exists() and leftovers(out) == []
    table = (out / "results.csv").read_text().splitlines()
    assert len(table) == 2 and table[1].startswith("clip,done,")  # one line per video, none per segment

    # A finished video is not recomputed.
    again = run(rows, options)
    assert again.records == [] and again.state.skipped == 1 and len(ledger_lines(out)) == 4


def test_segment_resume_redoes_only_unfinished_segments(tmp_path: Path, ray_local: Any) -> None:
    write_video(tmp_path / "clip.mkv", noisy(clean_clip(6)))
    rows = parse_manifest(manifest(tmp_path, "id,task,input", "clip,denoise,clip.mkv"))
    out = tmp_path / "out"

    def options(processor: Any, **changes: Any) -> RunOptions:
        return RunOptions(
            out_dir=out, workers=2, retries=0, segment_frames=2, overlap=1, processors=Processors(segment=processor), **changes
        )

    crashed = run(rows, options(failing_segment))  # segment 1 fails for good, so the video does
    assert not crashed.succeeded
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert [latest[f"clip#seg000{i}"]["status"] for i in range(3)] == ["done", "failed", "done"]
    assert latest["clip"]["status"] == "failed" and "segment 1 (frames 2-3) failed" in latest["clip"]["error"]
    assert "simulated failure of clip#seg0001" in latest["clip"]["error"]
    assert not (out / "clip.mkv").exists()
    assert sorted(p.name for p in (out / ".segments" / "clip").iterdir()) == ["0000", "0002"]
    first_line = next(line for line in ledger_lines(out) if line["id"] == "clip#seg0000")
    # Forget segment 2 as well: its frames stay, but without its ledger line it is not done.
    lines = [line for line in (out / "results.jsonl").read_text().splitlines() if json.loads(line)["id"] != "clip#seg0002"]
    (out / "results.jsonl").write_text("\n".join(lines) + "\n")

    skipped: list[int] = []
    resumed = run(rows, options(fast_segment), on_progress=lambda state: skipped.append(state.skipped))
    assert resumed.succeeded
    assert sorted(record["id"] for record in resumed.records) == ["clip", "clip#seg0001", "clip#seg0002"]
    assert skipped[0] == 1  # segment 0, done and its frames in place
    assert [line for line in ledger_lines(out) if line["id"] == "clip#seg0000"] == [first_line]  # untouched
    video = ledger_lines(out)[-1]
    assert video["id"] == "clip" and video["status"] == "done" and video["frames"] == 6 and video["segments"] == 3
    assert probe_video(out / "clip.mkv").frames == 6
    assert not (out / ".segments").exists() and leftovers(out) == []

    mtime = (out / "clip.mkv").stat().st_mtime_ns
    finished = run(rows, options(failing_segment))  # done: skipped entirely, so the failing segment never runs
    assert finished.succeeded and finished.records == [] and (out / "clip.mkv").stat().st_mtime_ns == mtime

    forced = run(rows, options(fast_segment, force=True))
    assert sorted(record["id"] for record in forced.records) == ["clip", "clip#seg0000", "clip#seg0001", "clip#seg0002"]


def test_a_worker_killed_mid_segment_leaves_no_partial_frames(tmp_path: Path, ray_local: Any) -> None:
    write_video(tmp_path / "clip.mkv", noisy(clean_clip(6)))
    rows = parse_manifest(manifest(tmp_path, "id,task,input", "clip,denoise,clip.mkv"))
    out = tmp_path / "out"
    summary = run(rows, RunOptions(out_dir=out, workers=2, segment_frames=2, overlap=1, processors=Processors(segment=dying_segment)))
    assert (tmp_path / "died-1").exists()  # the worker really died while writing segment 1
    assert summary.succeeded and summary.state.retried == 1
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert latest["clip#seg0001"]["status"] == "done" and latest["clip#seg0001"]["attempt"] == 2
    assert latest["clip"]["status"] == "done" and probe_video(out / "clip.mkv").frames == 6
    assert leftovers(out) == [] and not (out / ".segments").exists()


def test_frame_folders_patterns_masks_and_references(tmp_path: Path, ray_local: Any) -> None:
    """Three videos in one run: frame images with an fps and a reference, and two inpainted ones."""
    clean = (clean_clip(12) * 255).round() / 255  # as stored in 8-bit PNGs
    dirty = noisy(clean, seed=1)
    write_frames(tmp_path / "shots", dirty, "shot_{}.png")  # shot_2 before shot_10: natural order
    write_frames(tmp_path / "clean", clean, "{:03d}.png")
    logo = torch.ones(1, SIDE, SIDE)
    logo[:, 4:10, 20:28] = 0
    write_image(tmp_path / "logo.png", logo)
    for index in range(6):  # a box moving 2 pixels a frame
        mask = torch.ones(1, SIDE, SIDE)
        mask[:, 10:16, 2 * index : 2 * index + 6] = 0
        write_image(tmp_path / "masks" / f"m{index}.png", mask)
    short = clean_clip(6, top=120)
    write_video(tmp_path / "clip.mkv", short)
    path = manifest(
        tmp_path,
        "id,task,input,mask,reference,fps",
        "shots,denoise,shots,,clean/%03d.png,12.5",
        "logo,inpaint,clip.mkv,logo.png,,",
        "box,watermark,clip.mkv,masks/m%d.png,,",
    )
    out = tmp_path / "out"
    summary = run(
        parse_manifest(path),
        RunOptions(out_dir=out, workers=2, segment_frames=0, frames_format=FramesFormat.tiff, processors=Processors(segment=fast_segment)),
    )
    assert summary.succeeded, summary.records
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert sorted(latest) == ["box", "box#seg0000", "logo", "logo#seg0000", "shots", "shots#seg0000"]

    shots = latest["shots"]
    assert shots["output"] == "shots.mp4" and shots["fps"] == 12.5 and shots["frames"] == 12 and shots["segments"] == 1
    assert shots["psnr_in"] == pytest.approx(mean_psnr(dirty, clean), abs=1e-4)  # frames paired in natural order
    assert shots["psnr_out"] is not None and shots["ssim_in"] is not None and shots["ssim_out"] is not None
    assert shots["flicker_baseline"] == "reference" and shots["change_error"] is not None and shots["warping_error"] is not None
    assert latest["shots#seg0000"]["psnr_in"] == pytest.approx(shots["psnr_in"])
    info = probe_video(out / "shots.mp4")
    assert (info.frames, info.fps, info.has_audio) == (12, 12.5, False)
    exported = sorted((out / "shots_frames").iterdir())
    assert [p.name for p in exported] == [f"{i:06d}.tif" for i in range(12)]
    assert tifffile.imread(exported[0]).shape == (SIDE, SIDE, 3)

    for video in ("logo", "box"):
        assert latest[video]["status"] == "done" and probe_video(out / f"{video}.mkv").frames == 6
        assert latest[video]["flicker_baseline"] == "input" and latest[video]["psnr_out"] is None
    assert leftovers(out) == [] and not (out / ".segments").exists()


# ----- the command line -------------------------------------------------------------------------


def invoke(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed:\n{result.output}") from result.exception
    return result


def test_warping_error_can_be_left_out(tmp_path: Path, ray_local: Any) -> None:
    clean = (clean_clip(4) * 255).round() / 255
    write_frames(tmp_path / "noisy", noisy(clean, seed=2))
    write_frames(tmp_path / "clean", clean)
    path = manifest(tmp_path, "id,task,input,reference,fps", "shots,denoise,noisy,clean,10")
    out = tmp_path / "out"
    summary = run(
        parse_manifest(path),
        RunOptions(out_dir=out, workers=1, segment_frames=0, warping_error=False, processors=Processors(segment=fast_segment)),
    )
    assert summary.succeeded, summary.records
    video = {line["id"]: line for line in ledger_lines(out)}["shots"]
    assert video["warping_error"] is None and video["change_error"] is not None and video["flicker_baseline"] == "reference"


def test_frames_larger_than_the_tile_run_as_tile_chains(tmp_path: Path, ray_local: Any) -> None:
    """--tile smaller than the frames: each tile position is its own warm-started chain, the frames blended back whole."""
    clip = clean_clip(4)
    write_video(tmp_path / "clip.mkv", noisy(clip))
    rows = parse_manifest(manifest(tmp_path, "id,task,input", "clip,denoise,clip.mkv"))
    out = tmp_path / "out"
    options = RunOptions(out_dir=out, workers=1, segment_frames=0, tile=24, tile_overlap=8, processors=Processors(segment=fast_segment))
    [segment] = plan_run(rows, options, cluster={"CPU": 2.0}).units
    assert isinstance(segment, SegmentUnit) and segment.tiling is not None and (segment.tiling.tile, segment.tiling.overlap) == (24, 8)
    summary = run(rows, options)
    assert summary.succeeded, summary.records
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert latest["clip#seg0000"]["cold_frames"] == 1 and latest["clip#seg0000"]["frames"] == 4  # tiles warm-start across frames
    info = probe_video(out / "clip.mkv")
    assert (info.frames, info.width, info.height) == (4, SIDE, SIDE)


def failing_assembly(unit: Any, out_dir: Path, **context: Any) -> dict[str, Any]:
    raise ValueError(f"simulated failure assembling {unit.id}")


def test_a_video_whose_segments_are_done_is_assembled_with_this_runs_options(tmp_path: Path, ray_local: Any) -> None:
    """A rerun that only assembles (every segment done before) takes its own --frames and --no-warping-error."""
    clean = (clean_clip(4) * 255).round() / 255
    write_frames(tmp_path / "noisy", noisy(clean, seed=3))
    write_frames(tmp_path / "clean", clean)
    rows = parse_manifest(manifest(tmp_path, "id,task,input,reference,fps", "shots,denoise,noisy,clean,10"))
    out = tmp_path / "out"
    first = run(
        rows,
        RunOptions(
            out_dir=out,
            workers=1,
            retries=0,
            segment_frames=2,
            overlap=1,
            processors=Processors(segment=fast_segment, assembly=failing_assembly),
        ),
    )
    latest = {line["id"]: line for line in ledger_lines(out)}
    assert not first.succeeded and latest["shots"]["status"] == "failed"
    assert latest["shots#seg0000"]["status"] == latest["shots#seg0001"]["status"] == "done"

    options = RunOptions(
        out_dir=out,
        workers=1,
        segment_frames=2,
        overlap=1,
        frames_format=FramesFormat.tiff,
        warping_error=False,
        processors=Processors(segment=failing_segment),
    )  # no segment may run again
    [assembly] = plan_run(rows, options, cluster={"CPU": 2.0}).units
    assert isinstance(assembly, AssemblyUnit) and (assembly.frames_format, assembly.warping_error) == ("tiff", False)
    second = run(rows, options)
    assert second.succeeded and [record["id"] for record in second.records] == ["shots"]
    video = second.records[0]
    assert video["warping_error"] is None and video["change_error"] is not None and video["frames_folder"] == "shots_frames"
    assert sorted(p.name for p in (out / "shots_frames").iterdir()) == [f"{i:06d}.tif" for i in range(4)]


def test_validate_and_dry_run_count_videos_segments_and_frames(tmp_path: Path, ray_local: Any) -> None:
    write_video(tmp_path / "clip.mkv", noisy(clean_clip(7)))
    write_frames(tmp_path / "frames", clean_clip(5))
    write_image(tmp_path / "photo.png", clean_clip(1)[0])
    path = manifest(
        tmp_path,
        "id,task,input,fps,max_iterations",
        "clip,denoise,clip.mkv,,10",
        "frames,denoise,frames/%d.png,25,10",
        "photo,denoise,photo.png,,10",
    )
    validated = invoke("validate", path)
    assert validated.exit_code == 0, validated.output
    assert "manifest OK: 3 rows (1 image, 2 videos)" in validated.stdout

    result = invoke("run", path, "--out", tmp_path / "out", "--dry-run", "--segment-frames", "3", "--overlap", "1")
    assert result.exit_code == 0, result.output
    assert "units to run: 8 (1 denoise, 5 video segments, 2 video assemblies)" in result.stdout
    assert "videos to finish: 2 rows, 12 frames in 5 segments (3 frames each, overlap 1)" in result.stdout
    # photo: 10; clip: segments of 4 (1 lead-in frame), 4, 2 chain frames; frames: 4 and 3;
    # each 10 cold (the row's cap, below the warm-up cold start) + the warm cap per warm frame
    warm = ChainConfig().warm_max_iterations
    assert f"estimated iterations: at most {10 + 5 * 10 + (3 + 3 + 1 + 3 + 2) * warm:,}" in result.stdout
    assert not (tmp_path / "out").exists()

    bad = manifest(tmp_path, "id,task,input,fps", "clip,flash,clip.mkv,", "frames,denoise,frames,")
    refused = invoke("run", bad, "--out", tmp_path / "out")
    assert refused.exit_code == 2
    assert "row 2, column 'task'" in refused.stderr and "frame-wise tasks are denoise" in refused.stderr
    assert "row 3, column 'fps'" in refused.stderr


@pytest.mark.slow
def test_cli_restores_a_video_with_the_task_preset(tmp_path: Path, ray_local: Any) -> None:
    """The whole command with the published denoising network: two one-frame segments, so that
    every frame is a cold start capped by the row's max_iterations (warm frames are not capped).
    Slow: about 30 s on two busy CPU cores, mostly the 128-channel network."""
    write_video(tmp_path / "clip.mkv", noisy(clean_clip(2)))
    path = manifest(tmp_path, "id,task,input,max_iterations", "clip,denoise,clip.mkv,10")
    out = tmp_path / "out"
    result = invoke("run", path, "--out", out, "--segment-frames", "1", "--overlap", "0", "--frames", "png")
    assert result.exit_code == 0, result.output
    assert "3 units: 3 done, 0 failed" in result.stdout
    assert "done   clip#seg0001  frames 1-1, 10 it. (1 cold)" in result.stdout
    assert "done   clip  video of 2 frames in 2 segments, flicker" in result.stdout
    assert probe_video(out / "clip.mkv").frames == 2 and len(list((out / "clip_frames").iterdir())) == 2
    rerun = invoke("run", path, "--out", out)
    assert rerun.exit_code == 0 and "nothing to do" in rerun.stdout


def test_frames_are_stored_at_sixteen_bits_for_sixteen_bit_inputs(tmp_path: Path) -> None:
    """A segment of 16-bit PNG frames, run in-process: its frames are stored as 16-bit PNGs."""
    clip = noisy(clean_clip(3))
    for index, frame in enumerate(clip):
        write_image(tmp_path / "deep" / f"{index}.png", frame, "uint16")
    [row] = parse_manifest(manifest(tmp_path, "id,task,input,fps,seed", "deep,denoise,deep,24,3"))
    unit = SegmentUnit(row, probe_sequence(row.input), Segment(1, 2, 3, 1), segments=2)
    record = fast_segment(unit, tmp_path / "out", device="cpu", worker="here", attempt=1)
    folder = tmp_path / "out" / ".segments" / "deep" / "0001"
    assert [p.name for p in folder.iterdir()] == ["000002.png"]
    assert read_image(folder / "000002.png").bit_depth == "uint16"
    assert (record["id"], record["frames"], record["bit_depth"], record["cold_frames"]) == ("deep#seg0001", 1, "uint16", 1)
    assert record["stop_reasons"] == {"max_iterations": 2} and record["iterations"] == 3 + 2


def test_the_ledger_keeps_per_frame_figures_of_segments_and_videos(tmp_path: Path) -> None:
    """What the report plots per frame, run in-process: two segments, each starting cold, with a reference."""
    clean = (clean_clip(6) * 255).round() / 255
    write_frames(tmp_path / "noisy", noisy(clean, seed=4))
    write_frames(tmp_path / "clean", clean)
    rows = parse_manifest(manifest(tmp_path, "id,task,input,reference,fps", "shots,denoise,noisy,clean,10"))
    out = tmp_path / "out"
    processors = Processors(segment=fast_segment)
    options = RunOptions(out_dir=out, in_process=True, segment_frames=3, overlap=0, warping_error=False, processors=processors)
    summary = run(rows, options)
    assert summary.succeeded, summary.records
    latest = {line["id"]: line for line in ledger_lines(out)}
    columns = {"frame", "iterations", "cold", "stop_reason", "psnr_in", "psnr_out", "ssim_out"}
    for name, frames in (("shots#seg0000", [0, 1, 2]), ("shots#seg0001", [3, 4, 5])):
        per_frame = latest[name]["per_frame"]
        assert set(per_frame) == columns and per_frame["frame"] == frames
        assert per_frame["cold"] == [True, False, False]  # no warm-up (overlap 0): each segment starts cold
        assert per_frame["psnr_out"][0] is not None and per_frame["ssim_out"][0] is not None
    video = latest["shots"]
    per_frame = video["per_frame"]
    assert video["per_frame_step"] == 1 and set(per_frame) == columns | {"flicker", "output_change"}
    assert per_frame["frame"] == list(range(6)) and all(len(values) == 6 for values in per_frame.values())
    assert per_frame["cold"] == [True, False, False, True, False, False]
    assert per_frame["iterations"] == [3, 2, 2, 3, 2, 2] and sum(per_frame["iterations"]) == video["iterations"]
    assert set(per_frame["stop_reason"]) == {"max_iterations"}
    assert per_frame["flicker"][0] is None and all(isinstance(value, float) for value in per_frame["flicker"][1:])
    assert per_frame["output_change"][0] is None and all(value > 0 for value in per_frame["output_change"][1:])
    assert sum(per_frame["psnr_out"]) / 6 == pytest.approx(video["psnr_out"], abs=1e-6)
    assert sum(per_frame["psnr_in"]) / 6 == pytest.approx(video["psnr_in"], abs=1e-6)
    assert sum(per_frame["output_change"][1:]) / 5 == pytest.approx(video["output_change"], abs=1e-6)
    assert "per_frame" not in (out / "results.csv").read_text()  # the traces live in results.jsonl only
