"""Frame chains with temporal warm-starting (dip_engine.video), the test clips they run on, and
the temporal-consistency figures.

Clips are a camera panning over real photographs (dip_engine.synthetic.camera_clip) with seeded
σ = 25 noise. The networks are the preset's, narrowed to 48 channels and 4 levels, so that a
chain of a few 32×32 frames takes seconds; the full presets are measured by benchmarks/video.py.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
import torch

from dip_engine import NetConfig, RestoreConfig, block_mask, get_task, psnr
from dip_engine.synthetic import camera_clip
from dip_engine.temporal import TemporalConsistency
from dip_engine.video import ChainConfig, restore_video, static_weight
from tests.conftest import photo

SIGMA = 25 / 255


def narrow(task: str, max_iterations: int) -> RestoreConfig:
    preset = get_task(task).config
    net: NetConfig = replace(preset.net, channels_down=(48,) * 4, channels_up=(48,) * 4, channels_skip=(4,) * 4)
    return RestoreConfig(net=net, fit=replace(preset.fit, max_iterations=max_iterations))


def pan(name: str, frames: int, size: int = 32, step: float = 1.0) -> torch.Tensor:
    image = photo(name, 0, 0, 256, 256)
    return camera_clip(image, frames, size, pan=(0.3, step), start=(120.0, 100.0))


def noisy(clean: torch.Tensor, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (clean + SIGMA * torch.randn(clean.shape, generator=generator)).clamp(0, 1)


def test_camera_clip_moves_the_window_by_the_pan() -> None:
    clip = pan("astronaut", 3, size=24, step=2.0)
    assert clip.shape == (3, 3, 24, 24)
    still = camera_clip(photo("astronaut", 0, 0, 256, 256), 3, 24, pan=(0.0, 2.0), start=(120.0, 100.0))
    # An integer pan with no zoom: frame 1 is frame 0 shifted two columns left.
    torch.testing.assert_close(still[1][:, :, :-2], still[0][:, :, 2:], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="leaves"):
        camera_clip(photo("astronaut", 0, 0, 64, 64), 10, 32, pan=(0.0, 8.0))


def test_warm_chain_carries_the_state_and_needs_far_fewer_iterations() -> None:
    clean = pan("astronaut", 5)
    frames = list(restore_video(iter(noisy(clean)), "denoise", config=narrow("denoise", 600), references=iter(clean)))
    assert [f.reason for f in frames] == ["first", "warm", "warm", "warm", "warm"]
    cold, warm = frames[0].restoration, [f.restoration for f in frames[1:]]
    for result in warm:
        # The state carried over: the warm network's very first output already explains the frame
        # down to about the noise (σ² = 0.0096); measured: first loss 0.010-0.015 warm against
        # 0.059 for the fresh network.
        assert result.history.loss[0] < 0.3 * cold.history.loss[0] and result.history.loss[0] < 2 * SIGMA**2
        # The criterion was reset: its window of 10 outputs fills again from scratch.
        assert all(math.isnan(value) for value in result.history.criterion[:9])
        assert not math.isnan(result.history.criterion[9])
        assert result.stop_reason == "early_stop" and 30 <= result.iterations <= 100
    # Measured: cold 318 iterations, the warm frames 44-47 each, 181 in all.
    assert sum(r.iterations for r in warm) < 0.75 * cold.iterations
    noisy_psnr = statistics.fmean(psnr(f, c) for f, c in zip(noisy(clean), clean))
    warm_psnr = statistics.fmean(psnr(f.image, clean[f.index]) for f in frames[1:])
    # Measured: noisy 20.1-20.2 dB, cold frame 26.1 dB, warm frames 32.6-36.0 dB, rising along the
    # chain (each warm frame builds on the previous fits; the cold one of this narrow network stops early).
    assert warm_psnr > noisy_psnr + 6.0
    assert warm_psnr > psnr(frames[0].image, clean[0]) - 0.5


def test_keyframe_interval_and_scene_cut_restart_the_chain_cold() -> None:
    clean = torch.cat([pan("astronaut", 3), pan("coffee", 3)])
    chain = ChainConfig(warm_max_iterations=40, keyframe_interval=0)
    frames = list(restore_video(iter(noisy(clean)), "denoise", config=narrow("denoise", 250), chain=chain))
    # The cut between frame 2 (astronaut) and frame 3 (coffee) is detected from the data term.
    assert [f.reason for f in frames] == ["first", "warm", "warm", "cut", "warm", "warm"]
    assert [f.cold for f in frames] == [True, False, False, True, False, False]
    scheduled = ChainConfig(warm_max_iterations=20, keyframe_interval=2, cut_ratio=0)
    reasons = [f.reason for f in restore_video(iter(noisy(clean[:5])), "denoise", config=narrow("denoise", 60), chain=scheduled)]
    assert reasons == ["first", "warm", "keyframe", "warm", "keyframe"]


def test_inpainting_a_clip_with_one_mask_for_every_frame_keeps_known_pixels() -> None:
    clean = pan("coffee", 3)
    mask = block_mask(32, 32, torch.Generator().manual_seed(1), holes=2, size=0.2)
    holed = clean * mask
    chain = ChainConfig(warm_max_iterations=60)
    frames = list(restore_video(iter(holed), "inpaint", masks=mask, config=narrow("inpaint", 300), chain=chain))
    assert len(frames) == 3
    for frame in frames:
        known = mask.expand_as(frame.image).bool()
        error = (frame.image - clean[frame.index])[known].abs().mean().item()
        assert error < 0.03  # measured 0.013
        # The holes are filled: measured 34.5-35.3 dB against 17.9-18.0 dB for the holed frames.
        assert psnr(frame.image, clean[frame.index]) > psnr(holed[frame.index], clean[frame.index]) + 10


def test_super_resolution_chain_outputs_the_high_resolution_frames_and_finds_the_cut() -> None:
    clean = torch.cat([pan("astronaut", 2), pan("coffee", 2)])
    small = torch.nn.functional.avg_pool2d(clean, 2)  # noise-free: motion alone jumps the data term
    chain = ChainConfig(warm_max_iterations=20)
    frames = list(restore_video(iter(small), "sr", scale=2, config=narrow("sr", 60), chain=chain))
    assert [tuple(f.image.shape) for f in frames] == [(3, 32, 32)] * 4
    assert [f.reason for f in frames] == ["first", "warm", "cut", "warm"]


def test_super_resolution_chains_run_their_own_fixed_warm_budget() -> None:
    chain = ChainConfig.for_task(get_task("sr2"))
    assert (chain.warm_max_iterations, chain.warm_stopping.kind, chain.warm_average, chain.temporal_weight) == (250, "fixed", None, 0.0)
    assert ChainConfig.for_task(get_task("denoise")) == ChainConfig() != ChainConfig.for_task(get_task("inpaint"))
    clean = pan("astronaut", 2)
    small = torch.nn.functional.avg_pool2d(clean, 2)
    first, warm = restore_video(iter(small), "sr2", config=narrow("sr2", 60))  # no chain given: the task's
    assert (warm.reason, warm.restoration.iterations, warm.restoration.stop_reason) == ("warm", 250, "max_iterations")
    # The warm frame keeps on sharpening past the 60-iteration cold start: measured 39.6 dB for the
    # cold frame, 43.6 dB for the warm one.
    assert psnr(warm.image, clean[1]) > psnr(first.image, clean[0]) + 2.0


def test_a_chain_that_starts_with_warm_up_frames_starts_with_a_short_cold_fit() -> None:
    clean = pan("astronaut", 7)
    observed = noisy(clean)
    config = narrow("denoise", 600)
    whole = list(restore_video(iter(observed), "denoise", config=config))
    assert whole[0].restoration.stop_reason == "early_stop"  # frame 0 of a plain chain: the full, early-stopped fit
    chain = ChainConfig(warmup_cold_iterations=80)
    segment = list(restore_video(iter(observed[2:]), "denoise", config=config, chain=chain, warmup=2))
    first = segment[0].restoration
    assert (segment[0].reason, first.iterations, first.stop_reason) == ("first", 80, "max_iterations")
    assert [f.reason for f in segment[1:]] == ["warm"] * 4
    # After 2 warm-up frames the kept frames 4-6 are as good as the chain's from frame 0: measured
    # 37.9 dB against 35.6 dB (80 + 4 × ~47 iterations against the chain's 318-iteration start).
    kept = statistics.fmean(psnr(f.image, clean[2 + f.index]) for f in segment[2:])
    reference = statistics.fmean(psnr(f.image, clean[f.index]) for f in whole[4:])
    assert kept > reference - 0.5


def test_a_chain_rejects_what_it_cannot_restore() -> None:
    clean = pan("astronaut", 2)
    with pytest.raises(ValueError, match="cannot restore video"):
        next(restore_video(iter(clean), "flash"))
    mixed = [clean[0], clean[1][:, :24, :24]]
    with pytest.raises(ValueError, match="frame 1 has shape"):
        list(restore_video(iter(mixed), "denoise", config=narrow("denoise", 5), chain=ChainConfig(warm_max_iterations=2)))
    with pytest.raises(ValueError):
        ChainConfig(warm_average=1.0)


def test_static_weight_marks_only_the_moving_region() -> None:
    generator = torch.Generator().manual_seed(0)
    previous = 0.5 + SIGMA * torch.randn(1, 3, 32, 32, generator=generator)
    current = 0.5 + SIGMA * torch.randn(1, 3, 32, 32, generator=generator)
    current[..., 8:16, 8:16] += 0.4  # something moved in
    weight = static_weight(previous, current, (32, 32), threshold=0.03)
    assert weight[..., 10:14, 10:14].sum() == 0
    assert weight[..., 24:, 24:].mean() > 0.95  # noise alone does not count as motion
    assert static_weight(previous[..., :16, :16], current[..., :16, :16], (32, 32), 0.03).shape == (1, 1, 32, 32)


def test_the_temporal_term_ties_a_frame_to_its_predecessor() -> None:
    clean = pan("astronaut", 2)
    frames = noisy(clean)
    outputs = {}
    for weight in (0.0, 5.0):
        chain = ChainConfig(warm_max_iterations=40, temporal_weight=weight, static_threshold=1.0)
        outputs[weight] = [f.image for f in restore_video(iter(frames), "denoise", config=narrow("denoise", 150), chain=chain)]
    change = {weight: (images[1] - images[0]).abs().mean().item() for weight, images in outputs.items()}
    # Measured: mean |x̂_1 − x̂_0| 0.024 without the term, 0.017 with it (the clean frames: 0.008).
    assert change[5.0] < 0.8 * change[0.0]


def test_temporal_consistency_figures() -> None:
    clean = pan("astronaut", 4)
    perfect = TemporalConsistency()
    flickering = TemporalConsistency()
    frozen = TemporalConsistency()
    generator = torch.Generator().manual_seed(0)
    for frame in clean:
        perfect.add(frame, frame)
        flickering.add((frame + 0.05 * torch.randn(frame.shape, generator=generator)).clamp(0, 1), frame)
        frozen.add(clean[0], frame)
    assert perfect.flicker == pytest.approx(1.0) and perfect.change_error == 0.0
    assert flickering.flicker > 2.0 and flickering.change_error > 0.03
    reference_change = sum((b - a).abs().mean().item() for a, b in zip(clean, clean[1:])) / (len(clean) - 1)
    assert frozen.flicker == 0.0 and frozen.change_error == pytest.approx(reference_change)  # all of the reference's own change
    assert perfect.summary()["flicker_baseline"] == "reference"
    against_input = TemporalConsistency()
    for frame in clean:
        against_input.add(frame, frame, is_reference=False)
    assert math.isnan(against_input.change_error) and against_input.summary()["flicker_baseline"] == "input"


def test_inpainting_chains_stop_their_warm_frames_by_the_tasks_own_rule() -> None:
    """A clean clip with a burnt-in caption: warm frames run until the filled caption settles and
    the given pixels come back as they were; the same clip with noise stops at the variance
    minimum and keeps nothing noisy."""
    from dip_engine.synthetic import text_mask

    clean = pan("coffee", 3)
    mask = text_mask(32, 32, torch.Generator().manual_seed(0))
    for clip, rule in ((clean * mask, "converged"), (noisy(clean) * mask, "variance")):
        frames = list(restore_video(iter(clip), "inpaint", masks=mask, config=narrow("inpaint", 300)))
        assert [f.restoration.history.rule for f in frames] == [rule] * 3
        known = mask.bool().expand_as(clean[0])
        for frame, given in zip(frames, clip):
            assert torch.equal(frame.image[known], given[known]) == (rule == "converged")
        for warm in frames[1:]:
            assert warm.restoration.iterations <= ChainConfig.for_task(get_task("inpaint")).warm_max_iterations
