"""pipeline.work.frame_figures: a video's per-frame figures merged, and bucketed for long videos."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from dip_engine.temporal import FrameChange
from pipeline.work.frame_figures import VIDEO_COLUMNS, VideoFrameFigures, bucket_columns


def long_columns(count: int) -> dict[str, list[Any]]:
    """A feature film's per_frame: frame k has k iterations, a cut every 1000 frames, no flicker at 0."""
    return {
        "frame": list(range(count)),
        "iterations": list(range(count)),
        "cold": [k % 1000 == 0 for k in range(count)],
        "stop_reason": ["max_iterations" if k % 3 else "early_stop" for k in range(count)],
        "psnr_in": [None] * count,
        "psnr_out": [30.0 + (k % 2) for k in range(count)],
        "ssim_out": [0.9] * count,
        "flicker": [None] + [0.5] * (count - 1),
        "output_change": [None] + [0.01] * (count - 1),
    }


def test_a_long_video_is_averaged_over_buckets_of_consecutive_frames() -> None:
    columns = long_columns(5000)
    bucketed, step = bucket_columns(columns, 2000)
    assert step == 3
    assert all(len(values) == math.ceil(5000 / 3) <= 2000 for values in bucketed.values())
    assert bucketed["frame"][:3] == [0, 3, 6] and bucketed["frame"][-1] == 4998  # each bucket's first frame
    assert bucketed["iterations"][:2] == [1.0, 4.0] and bucketed["iterations"][-1] == 4998.5  # the last bucket holds 2
    assert [k for k, cold in enumerate(bucketed["cold"]) if cold] == [0, 333, 666, 1000, 1333]  # any cold frame
    assert set(bucketed["stop_reason"][:-1]) == {"max_iterations"}  # the most common of each bucket
    assert bucketed["psnr_in"][0] is None and bucketed["ssim_out"][0] == 0.9
    assert bucketed["psnr_out"][0] == pytest.approx(30 + 1 / 3, abs=1e-7)
    assert bucketed["flicker"][:2] == [0.5, 0.5]  # None left out of the mean
    assert len(json.dumps(bucketed)) < 150_000  # measured: 121 kB


def test_a_video_that_fits_is_unchanged_with_step_one() -> None:
    columns = long_columns(2000)
    bucketed, step = bucket_columns(columns, 2000)
    assert step == 1 and bucketed == columns


def test_video_figures_merge_the_segments_in_frame_order_with_the_changes() -> None:
    first = {"per_frame": {"frame": [0, 1], "iterations": [30, 5], "cold": [True, False], "stop_reason": ["a", "b"]}}
    second = {"per_frame": {"frame": [2], "iterations": [30], "cold": [True], "stop_reason": ["a"], "psnr_out": [31.5]}}
    figures = VideoFrameFigures.of_segments([second, first, {"frames": 1}])  # a line without per_frame: its frames unknown
    figures.add(0, None)
    figures.add(1, FrameChange(output=0.02, baseline=0.04))
    figures.add(2, FrameChange(output=0.03, baseline=0.0))  # the baseline did not change: no flicker
    figures.add(3, FrameChange(output=0.01))
    fields = figures.record_fields()
    per_frame = fields["per_frame"]
    assert fields["per_frame_step"] == 1 and tuple(per_frame) == VIDEO_COLUMNS
    assert per_frame["frame"] == [0, 1, 2, 3] and per_frame["iterations"] == [30, 5, 30, None]
    assert per_frame["cold"] == [True, False, True, None] and per_frame["psnr_out"] == [None, None, 31.5, None]
    assert per_frame["flicker"] == [None, 0.5, None, None] and per_frame["output_change"] == [None, 0.02, 0.03, 0.01]
