"""Optical flow (dip_engine.flow) on real photographs moved by a known amount, and the warping
error of dip_engine.temporal that it feeds."""

from __future__ import annotations

import math

import pytest
import torch

from dip_engine.flow import FlowConfig, consistent, estimate_flow, warp
from dip_engine.synthetic import camera_clip
from dip_engine.temporal import TemporalConsistency
from tests.conftest import photo


def moved(name: str, pan: tuple[float, float], frames: int = 2, size: int = 96, zoom: float = 1.0) -> torch.Tensor:
    """A window of `size` moving `pan` (dy, dx) pixels a frame over a 256² crop of the photograph."""
    return camera_clip(photo(name, 0, 0, 256, 256), frames, size, pan=pan, zoom=zoom, start=(128.0, 100.0))


@pytest.mark.parametrize(("name", "pan"), [("astronaut", (0.4, 1.2)), ("coffee", (0.0, 3.3)), ("chelsea", (-2.5, 4.0))])
def test_flow_recovers_a_known_pan(name: str, pan: tuple[float, float]) -> None:
    clip = moved(name, pan)
    flow = estimate_flow(clip[1], clip[0])  # frame 1's content sits `pan` further on in frame 0
    assert flow.shape == (2, 96, 96) and flow.dtype == torch.float32
    inner = flow[:, 8:-8, 8:-8]
    error = ((inner[0] - pan[1]) ** 2 + (inner[1] - pan[0]) ** 2).sqrt()
    # Measured (astronaut, coffee, chelsea): median 0.025, 0.030, 0.024 px; 95th percentile 0.13–0.31 px.
    assert error.median() < 0.15 and error.quantile(0.95) < 1.0
    warped, inside = warp(clip[0], flow)
    # Warping by the flow explains the motion: measured 0.001–0.002 against a raw change of 0.015–0.07.
    assert (warped - clip[1]).abs().mean(0)[inside].mean() < 0.25 * (clip[1] - clip[0]).abs().mean()


def test_forward_backward_check_masks_pixels_that_come_from_outside() -> None:
    clip = moved("astronaut", (0.0, 4.0))
    backward = estimate_flow(clip[1], clip[0])
    forward = estimate_flow(clip[0], clip[1])
    explained = consistent(forward, backward)
    assert not explained[:, -4:].any()  # the 4 columns that entered the view this frame
    assert explained[8:-8, 8:-12].float().mean() > 0.8  # measured 0.92 on the interior


def test_flow_config_is_checked() -> None:
    with pytest.raises(ValueError, match="odd window"):
        FlowConfig(window=4)
    with pytest.raises(ValueError, match="differ in size"):
        estimate_flow(torch.zeros(3, 32, 32), torch.zeros(3, 32, 48))


def test_warping_error_follows_the_scene_not_the_frame() -> None:
    """An output carrying a fixed pattern (sensor noise left in) changes from frame to frame exactly
    like the reference (change error 0), but does not move with the scene: the warping error sees it."""
    clean = moved("astronaut", (0.4, 1.2), frames=4)
    generator = torch.Generator().manual_seed(0)
    blemish = 0.03 * torch.randn(clean[0].shape, generator=generator)
    figures = {name: TemporalConsistency() for name in ("perfect", "blemish", "noisy")}
    for frame in clean:
        figures["perfect"].add(frame, frame)
        figures["blemish"].add(frame + blemish, frame)
        figures["noisy"].add(frame + 0.05 * torch.randn(frame.shape, generator=generator), frame)
    perfect, blemish_, noisy = (figures[name] for name in ("perfect", "blemish", "noisy"))
    assert perfect.warping_error < 0.003  # interpolation and flow error only; measured 0.0014
    assert blemish_.change_error == pytest.approx(0.0, abs=1e-6)
    assert blemish_.warping_error > 10 * perfect.warping_error  # measured 0.028
    assert noisy.warping_error > 0.03  # measured 0.046 (the noise of two frames, bilinearly blurred once)
    assert perfect.summary()["warping_error"] == perfect.warping_error


def test_warping_error_needs_a_reference_and_can_be_skipped() -> None:
    clip = moved("coffee", (0.0, 1.0), frames=3)
    against_input = TemporalConsistency()
    skipped = TemporalConsistency(warping=False)
    for frame in clip:
        against_input.add(frame, frame, is_reference=False)
        skipped.add(frame, frame)
    assert math.isnan(against_input.warping_error)
    assert math.isnan(skipped.warping_error) and skipped.change_error == 0.0 and skipped.warped_pairs == 0


def test_large_frames_are_estimated_downscaled() -> None:
    clip = camera_clip(photo("astronaut", 0, 0, 512, 512), 2, (192, 320), pan=(1.0, 2.0), start=(200.0, 200.0))
    flow = estimate_flow(clip[1], clip[0], FlowConfig(max_side=96))  # estimated at 58×96, scaled back
    assert flow.shape == (2, 192, 320)
    inner = flow[:, 16:-16, 16:-16]
    # Measured: median 1.97 px and 0.98 px against the true 2 and 1.
    assert inner[0].median() == pytest.approx(2.0, abs=0.15) and inner[1].median() == pytest.approx(1.0, abs=0.15)


def test_warping_error_skips_a_scene_cut() -> None:
    clip = torch.cat([moved("astronaut", (0.4, 1.2), frames=3), moved("coffee", (0.0, 1.0), frames=3)])
    figures = TemporalConsistency()
    for frame in clip:
        figures.add(frame, frame)
    assert (figures.pairs, figures.warped_pairs) == (5, 4)
    assert figures.warping_error < 0.003
