"""Archival video through the whole pipeline: a 10-bit clip with audio and subtitles in, FFV1 out.

The run is in-process (no Ray) with a nearly free engine configuration: what is under test is
files, depth and streams, not restoration quality. Clips are made with the bundled ffmpeg from a
photograph panned (`tests.pipeline.io.archival_clips`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from dip_engine import FitConfig, NetConfig, RestoreConfig, StoppingConfig
from dip_engine.video import ChainConfig
from pipeline.cli.app import app
from pipeline.cli.display import dropped_stream_lines
from pipeline.io import VideoOutput, read_image
from pipeline.io.video_streams import probe_streams
from pipeline.manifest import ManifestError, parse_manifest
from pipeline.run.execute import run
from pipeline.run.options import RunOptions
from pipeline.work.processors import Processors
from pipeline.work.segment import process_segment
from pipeline.work.units import FramesFormat, SegmentUnit
from tests.pipeline.io.archival_clips import decode, deep_clip, ffmpeg, packets, pan

FAST = RestoreConfig(net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)), fit=FitConfig(max_iterations=3))
FAST_CHAIN = ChainConfig(warm_max_iterations=2, warm_stopping=StoppingConfig(window=2, patience=1, min_iterations=2))


def fast_segment(unit: SegmentUnit, out_dir: Path, **context: Any) -> dict[str, Any]:
    return process_segment(unit, out_dir, config_override=FAST, chain_override=FAST_CHAIN, **context)


def manifest(folder: Path, *rows: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join(["id,task,input,output", *rows]) + "\n", encoding="utf-8")
    return path


def mov_with_mov_text(path: Path) -> Path:
    """An 8-bit H.264 clip in QuickTime with PCM audio and mov_text subtitles (which Matroska cannot hold)."""
    srt = path.with_name("tape.srt")
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nTape 7\n")
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10:duration=0.4", "-f", "lavfi", "-i", "sine=duration=0.4", "-i", str(srt)),
        *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-c:s", "mov_text"),
        str(path),
    )
    return path


def test_a_10_bit_clip_with_audio_and_subtitles_comes_out_as_ffv1_bit_exact(tmp_path: Path) -> None:
    reel = deep_clip(tmp_path / "in" / "reel.mkv", pan(5))
    tape = mov_with_mov_text(tmp_path / "in" / "tape.mov")
    video = VideoOutput("ffv1")
    rows = parse_manifest(
        manifest(tmp_path, "reel,denoise,in/reel.mkv,restored/reel.mkv", "tape,denoise,in/tape.mov,tape.mkv"), video=video
    )
    out = tmp_path / "out"
    options = RunOptions(
        out_dir=out,
        in_process=True,
        segment_frames=0,
        frames_format=FramesFormat.png,
        warping_error=False,
        processors=Processors(segment=fast_segment),
        video_codec="ffv1",
    )
    summary = run(rows, options)
    assert summary.succeeded, summary.records

    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    done = {line["id"]: line for line in lines}
    assert done["reel#seg0000"]["bit_depth"] == "uint16" and done["tape#seg0000"]["bit_depth"] == "uint8"  # the segments' PNG
    record = done["reel"]
    assert (record["codec"], record["pixel_format"], record["audio"]) == ("ffv1", "gbrp16le", True)
    assert (record["streams_copied"], record["streams_dropped"]) == (["audio 1: aac", "subtitle 2: subrip"], [])

    restored = out / "restored" / "reel.mkv"
    for stream in ("0:a", "0:s"):
        assert packets(restored, stream) == packets(reel, stream)  # copied byte for byte, not re-encoded
    pngs = [read_image(png) for png in sorted((out / "restored" / "reel_frames").iterdir())]
    assert [png.bit_depth for png in pngs] == ["uint16"] * 5
    stored = np.stack([(png.pixels.double() * 65535).round().permute(1, 2, 0).numpy() for png in pngs]).astype(np.uint16)
    assert np.array_equal(decode(restored, "rgb48le"), stored)  # the frames as the segments stored them, bit for bit
    info = probe_streams(restored)
    assert info.rotation == 90.0 and (info.colour.primaries, info.colour.transfer) == ("bt709", "bt709")
    metadata = ffmpeg("-i", str(restored), "-f", "ffmetadata", "-").decode()
    assert all(text in metadata for text in ("title=Harbour reel", "TIMECODE=01:00:00:00", "title=Opening", "title=Harbour"))

    tape_record = done["tape"]
    assert (tape_record["status"], tape_record["pixel_format"], tape_record["streams_copied"]) == ("done", "bgr0", ["audio 1: pcm_s16le"])
    (dropped,) = tape_record["streams_dropped"]
    assert dropped.startswith("subtitle 2: mov_text: Matroska (.mkv) cannot hold it")
    assert dropped_stream_lines(tape_record) == [f"  tape: not copied: {dropped}"] and dropped_stream_lines(record) == []
    payloads = [line.split(",")[-2:] for line in packets(out / "tape.mkv", "0:a")]  # Matroska's time base is not QuickTime's
    assert payloads == [line.split(",")[-2:] for line in packets(tape, "0:a")]  # the same bytes, packet for packet


def test_a_variable_frame_rate_clip_is_refused_at_validation(tmp_path: Path) -> None:
    vfr = tmp_path / "clip.mkv"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=30:duration=0.3"),
        *("-vf", "setpts='if(lt(N,4),N,4+2*(N-4))/30/TB'", "-fps_mode", "passthrough", "-c:v", "ffv1", str(vfr)),
    )
    with pytest.raises(ManifestError) as refused:
        parse_manifest(manifest(tmp_path, "clip,denoise,clip.mkv,"))
    (problem,) = refused.value.problems
    assert (problem.row_number, problem.column) == (2, "input")
    assert problem.message.startswith(
        "clip.mkv has a variable frame rate (frame durations 33.0–67.0 ms); the restored video would change its timing; "
        f"convert it to a constant rate first: ffmpeg -i {vfr} -fps_mode cfr -r 30 {tmp_path / 'clip_cfr.mkv'}"
    )


def test_an_ffv1_row_writing_mp4_is_refused_before_anything_runs(tmp_path: Path) -> None:
    deep_clip(tmp_path / "reel.mkv", pan(2), extras=False)
    path = manifest(tmp_path, "reel,denoise,reel.mkv,reel.mp4")
    with pytest.raises(ManifestError) as refused:
        parse_manifest(path, video=VideoOutput("ffv1"))
    (problem,) = refused.value.problems
    assert (problem.row_number, problem.column) == (2, "output") and "reel.mkv" in problem.message
    assert parse_manifest(path, video=VideoOutput("x264"))  # the default codec writes .mp4

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--no-ray", "--dry-run", "--video-codec", "ffv1"])
    assert result.exit_code == 2
    assert "FFV1 (lossless), which goes in Matroska (.mkv)" in result.output and not (out / "results.jsonl").exists()
    result = CliRunner().invoke(
        app, ["run", str(path), "--out", str(out), "--no-ray", "--dry-run", "--video-codec", "prores", "--video-pixel-format", "yuv420p"]
    )
    assert result.exit_code == 2 and "yuv420p is not one prores_ks accepts" in result.output


def test_slurm_submit_passes_the_video_encoding_on(tmp_path: Path) -> None:
    deep_clip(tmp_path / "reel.mkv", pan(2), extras=False)
    path = manifest(tmp_path, "reel,denoise,reel.mkv,reel.mkv")
    options = ["--video-codec", "ffv1", "--video-pixel-format", "gbrp16le"]
    result = CliRunner().invoke(app, ["slurm", "submit", str(path), "--out", str(tmp_path / "out"), "--dry-run", *options])
    assert result.exit_code == 0, result.output
    assert "--retries 2 --video-codec ffv1 --video-pixel-format gbrp16le" in result.output


def test_an_empty_output_cell_takes_the_codecs_container(tmp_path: Path) -> None:
    deep_clip(tmp_path / "reel.mp4", pan(2), extras=False)  # an input whose own container cannot hold FFV1
    path = manifest(tmp_path, "reel,denoise,reel.mp4,")
    assert [row.output.as_posix() for row in parse_manifest(path, video=VideoOutput("ffv1"))] == ["reel.mkv"]
    assert [row.output.as_posix() for row in parse_manifest(path, video=VideoOutput("prores"))] == ["reel.mov"]
    assert [row.output.as_posix() for row in parse_manifest(path)] == ["reel.mp4"]


def test_a_rerun_with_another_codec_redoes_the_video_with_it(tmp_path: Path) -> None:
    deep_clip(tmp_path / "reel.mkv", pan(3), extras=False)
    rows = parse_manifest(manifest(tmp_path, "reel,denoise,reel.mkv,reel.mkv"))
    out = tmp_path / "out"
    options = RunOptions(out_dir=out, in_process=True, segment_frames=0, warping_error=False, processors=Processors(segment=fast_segment))
    assert run(rows, options).succeeded
    first = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [line["id"] for line in first] == ["reel#seg0000", "reel"] and first[-1]["codec"] == "x264"

    assert run(rows, options).records == []  # the same encoding: nothing to do
    lossless = replace(options, video_codec="ffv1")
    summary = run(rows, lossless)
    assert summary.succeeded and [record["id"] for record in summary.records] == ["reel#seg0000", "reel"]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == ["reel#seg0000", "reel", "reel#seg0000", "reel"]
    assert (lines[-1]["codec"], lines[-1]["pixel_format"]) == ("ffv1", "gbrp16le")
    assert probe_streams(out / "reel.mkv").video.codec == "ffv1"


def test_a_finished_video_is_checked_against_a_new_codec_too(tmp_path: Path) -> None:
    deep_clip(tmp_path / "reel.mkv", pan(2), extras=False)
    path = manifest(tmp_path, "reel,denoise,reel.mkv,reel.mp4")
    out = tmp_path / "out"
    options = RunOptions(out_dir=out, in_process=True, segment_frames=0, warping_error=False, processors=Processors(segment=fast_segment))
    assert run(parse_manifest(path), options).succeeded  # H.264 into .mp4: done
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--no-ray", "--video-codec", "ffv1"])
    assert result.exit_code == 2  # it would be redone with FFV1, which .mp4 cannot hold: refused before anything runs
    assert "FFV1 (lossless), which goes in Matroska (.mkv)" in result.output
