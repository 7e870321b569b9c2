"""A truncated video file: the header's duration × rate against the frames that decode, the plan
that refuses it (one segment queued, failing at once) and the segment that fails without decoding."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from dip_engine.synthetic import camera_clip
from pipeline.io import VideoWriter, probe_sequence, probe_video
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.video.jobs import VideoJob, plan_video, short_video_problem
from pipeline.work.common import UnitError
from pipeline.work.segment import process_segment
from tests.conftest import photo

FRAMES, FPS, SIDE = 12, 10, 32


def write_truncated_clip(folder: Path, keep: float = 0.8) -> tuple[Path, Path]:
    """(whole, cut): 12 frames of a pan over the astronaut photograph as lossless H.264 with its index
    (moov) at the front, as cameras and streaming copies write it; and the same cut to `keep` of its bytes."""
    frames = camera_clip(photo("astronaut", 60, 150, 96, 128), FRAMES, SIDE)
    encoded = folder / "encoded.mp4"
    with VideoWriter(encoded, FPS, SIDE, SIDE, lossless=True) as writer:
        for frame in frames:
            writer.write(frame)
    whole, cut = folder / "whole.mp4", folder / "clip.mp4"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-i",
        str(encoded),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        str(whole),
    ]
    subprocess.run(command, check=True, timeout=60)
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    return whole, cut


@pytest.fixture
def clips(tmp_path: Path) -> tuple[Path, Path]:
    return write_truncated_clip(tmp_path)


def test_the_header_promises_frames_a_truncated_file_does_not_decode(clips: tuple[Path, Path]) -> None:
    whole, cut = clips
    complete = probe_video(whole)
    assert (complete.frames, complete.expected_frames) == (FRAMES, FRAMES)
    assert short_video_problem(probe_sequence(whole)) is None
    info = probe_sequence(cut)
    assert info.expected_frames == FRAMES and 0 < info.frames < FRAMES - 1 and info.missing_frames == FRAMES - info.frames
    assert short_video_problem(info) == (
        f"decoded {info.frames} of {FRAMES} frames: file truncated? (its header gives {FRAMES} frames at {FPS} fps); "
        f"replace it with a complete copy, or run with --allow-short-video to restore the {info.frames} frames that decode"
    )


def test_a_refused_video_is_planned_as_one_failing_segment(tmp_path: Path, clips: tuple[Path, Path]) -> None:
    _whole, cut = clips
    source = probe_sequence(cut)
    row = ManifestRow(2, "clip", "denoise", cut, None, None, None, None, Path("clip.mp4"), source=source)

    def plan(allow: bool) -> VideoJob:
        ledger = Ledger(tmp_path / "out")
        return plan_video(
            row,
            segment_frames=2,
            overlap=0,
            ledger=ledger,
            records={},
            force=False,
            frames_format=None,
            warping_error=False,
            allow_short_video=allow,
        )

    refused = plan(False)
    assert refused.refused and len(refused.segments) > 1
    (unit,) = refused.pending_units()  # only the first: its failure fails the video
    with pytest.raises(UnitError, match=rf"^row 2 \(id clip\): decoded {source.frames} of 12 frames: file truncated\?"):
        process_segment(unit, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing decoded, fitted or written
    allowed = plan(True)
    assert not allowed.refused and len(allowed.pending_units()) == len(allowed.segments)
    assert all(unit.allow_short_video for unit in allowed.pending_units())
