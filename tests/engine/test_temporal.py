"""dip_engine.temporal: the per-pair changes `TemporalConsistency.add` returns add up to its figures."""

from __future__ import annotations

import pytest
import torch

from dip_engine.synthetic import camera_clip
from dip_engine.temporal import FrameChange, TemporalConsistency
from tests.conftest import photo


def test_add_returns_each_pairs_changes_whose_sums_give_the_figures() -> None:
    clean = camera_clip(photo("astronaut", 60, 150, 64, 80), 4, 24)
    generator = torch.Generator().manual_seed(0)
    output = (clean + 0.05 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    figures = TemporalConsistency(warping=False)
    changes = [figures.add(out, ref) for out, ref in zip(output, clean)]
    assert changes[0] is None
    pairs = [change for change in changes[1:] if change is not None]
    assert len(pairs) == 3 and all(change.baseline is not None and change.flicker is not None for change in pairs)
    assert pairs[0].output == pytest.approx((output[1] - output[0]).abs().mean().item())
    assert pairs[0].baseline == pytest.approx((clean[1] - clean[0]).abs().mean().item())
    assert sum(change.output for change in pairs) / 3 == pytest.approx(figures.output_change)
    assert sum(change.output for change in pairs) / sum(change.baseline or 0 for change in pairs) == pytest.approx(figures.flicker)


def test_a_pair_without_a_changing_baseline_has_no_flicker() -> None:
    assert FrameChange(output=0.1, baseline=0.0).flicker is None and FrameChange(output=0.1).flicker is None
    assert FrameChange(output=0.1, baseline=0.2).flicker == pytest.approx(0.5)
    frozen = TemporalConsistency()
    frame = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
    frozen.add(frame)
    change = frozen.add(frame * 0.5)
    assert change is not None and change.baseline is None  # no baseline: only the output's change
    assert change.output == pytest.approx((frame * 0.5).abs().mean().item())
