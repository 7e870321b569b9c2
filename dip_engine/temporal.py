"""Temporal consistency of a restored frame sequence, computed as the frames stream by.

Definitions (all means are over pixels, channels and consecutive frame pairs t−1 → t):

* change(x) = mean |x_t − x_{t−1}|: how much a sequence changes from frame to frame.
* flicker = change(output) / change(baseline), the baseline being the clean reference when there
  is one, else the input frames. Against a reference, 1.0 means the output changes exactly as much
  as the true scene does; more is flicker. Against a noisy input the figure is far below 1 (the
  input's noise changes every frame) and is only comparable between restorations of one input.
* change_error = mean |(out_t − out_{t−1}) − (ref_t − ref_{t−1})| (reference only): the warping
  error of the output under the reference's own motion, with the reference's change standing in
  for an optical flow. 0 is perfectly consistent; both flicker and temporal drift raise it.
* warping_error (reference only) = mean over frame pairs of mean |out_t − W(out_{t−1})| over the
  pixels the reference's motion explains: W warps by the optical flow estimated on the reference
  from t to t−1 (`dip_engine.flow`), and pixels that fail its forward-backward check (occlusions,
  mis-tracked), whose warped reference misses the reference by `match_tolerance` or more, or come
  from outside the frame are left out (the L1 form of Lai et al., 2018). Unlike change_error it
  does not grow with motion: a restoration that moves exactly like the scene scores about the
  reference's own figure (its interpolation error, small); flicker, ghosting and
  anything that stays in place while the scene moves score more. A pair where the flow explains
  less than `min_explained` of the pixels (a scene cut) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from dip_engine.flow import FlowConfig, consistent, estimate_flow, warp


@dataclass(frozen=True)
class FrameChange:
    """The change from one frame to the next: mean |x_t − x_{t−1}| of the output and of the
    baseline (None without a baseline); what `TemporalConsistency.add` sums, pair by pair."""

    output: float
    baseline: float | None = None

    @property
    def flicker(self) -> float | None:
        """This pair's change(output) / change(baseline); None without a baseline or where it does not change."""
        return self.output / self.baseline if self.baseline else None


@dataclass
class TemporalConsistency:
    """Accumulates the figures above one frame at a time (only the previous frame is kept)."""

    warping: bool = True  # measure warping_error (two flow estimates per pair with a reference)
    flow: FlowConfig = field(default_factory=FlowConfig)
    match_tolerance: float = 0.1  # mean |Δ| over channels of a pixel the reference's flow explains
    min_explained: float = 0.5  # fewer explained pixels than this fraction: a cut, the pair skipped
    pairs: int = 0
    _out_change: float = 0.0
    _base_change: float = 0.0
    _change_error: float = 0.0
    _warping_error: float = 0.0
    warped_pairs: int = 0  # the pairs that count towards warping_error
    _has_reference: bool | None = None
    _previous: tuple[Tensor, Tensor | None] | None = None

    def add(self, output: Tensor, baseline: Tensor | None = None, *, is_reference: bool = True) -> FrameChange | None:
        """The next output frame (C×H×W) and its reference (or, with is_reference=False, input)
        frame of the same size. The baseline must be given for every frame or for none.
        Returns this pair's changes (None for the first frame)."""
        if self._has_reference is None:
            self._has_reference = baseline is not None and is_reference
        output = output.detach().float().cpu()
        baseline = None if baseline is None else baseline.detach().float().cpu()
        change = None
        if self._previous is not None:
            last_out, last_base = self._previous
            out_delta = output - last_out
            change = FrameChange(output=out_delta.abs().mean().item())
            self._out_change += change.output
            if baseline is not None and last_base is not None:
                base_delta = baseline - last_base
                base_change = base_delta.abs().mean().item()
                change = FrameChange(output=change.output, baseline=base_change)
                self._base_change += base_change
                if self._has_reference:
                    self._change_error += (out_delta - base_delta).abs().mean().item()
                    if self.warping:
                        self._add_warping_error(output, last_out, baseline, last_base)
            self.pairs += 1
        self._previous = (output, baseline)
        return change

    def _add_warping_error(self, output: Tensor, last_out: Tensor, reference: Tensor, last_reference: Tensor) -> None:
        backward = estimate_flow(reference, last_reference, self.flow)  # frame t's pixels into t−1
        forward = estimate_flow(last_reference, reference, self.flow)
        explained = consistent(forward, backward)
        warped_reference, _ = warp(last_reference, backward)
        explained &= (reference - warped_reference).abs().mean(0) < self.match_tolerance
        if explained.float().mean().item() >= self.min_explained:
            warped, _ = warp(last_out, backward)
            self._warping_error += (output - warped).abs().mean(0)[explained].mean().item()
            self.warped_pairs += 1

    @property
    def output_change(self) -> float:
        return self._out_change / self.pairs if self.pairs else float("nan")

    @property
    def flicker(self) -> float:
        """change(output) / change(baseline); NaN without a baseline or with fewer than 2 frames."""
        if not self.pairs or self._base_change == 0:
            return float("nan")
        return self._out_change / self._base_change

    @property
    def change_error(self) -> float:
        """Mean |Δoutput − Δreference|; NaN without a reference."""
        if not self.pairs or not self._has_reference:
            return float("nan")
        return self._change_error / self.pairs

    @property
    def warping_error(self) -> float:
        """Mean |out_t − out_{t−1} warped by the reference's flow| over explained pixels; NaN
        without a reference, with `warping` off, or with no pair of frames the flow explains."""
        if not self.warped_pairs:
            return float("nan")
        return self._warping_error / self.warped_pairs

    def summary(self) -> dict[str, float | str | None]:
        """The figures for a results record; `flicker_baseline` says what flicker is relative to."""
        baseline = None if self._has_reference is None or not self.pairs else ("reference" if self._has_reference else "input")
        return {
            "flicker": self.flicker,
            "flicker_baseline": baseline,
            "change_error": self.change_error,
            "warping_error": self.warping_error,
            "output_change": self.output_change,
        }
