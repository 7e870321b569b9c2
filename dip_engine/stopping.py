"""Early-stopping criteria: when the fit has reached its best image and should stop.

Each criterion observes every iteration's raw output and the image the fit would return (the
output average, with the known pixels put back where the fit keeps them), and says whether to
stop and which image to keep. `choose_rule` resolves a config's kind for one problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dip_engine.config import FitConfig, StoppingConfig
from dip_engine.noise import estimate_noise_sigma


class WindowedVariance:
    """ES-WMV: the mean per-pixel variance of the last `window` raw outputs, and its minimum.

    The window is a ring buffer on the outputs' device; its sums are kept in float64 and updated
    incrementally, so each iteration costs O(pixels), not O(window × pixels). The image to keep
    for a minimum at iteration t is the one at t + `lag` (see `StoppingConfig`).
    """

    def __init__(self, config: StoppingConfig, lag: int = 0) -> None:
        self.config = config
        self.lag = lag
        self._buffer: Tensor | None = None
        self._sum: Tensor | None = None
        self._sum_sq: Tensor | None = None
        self._seen = 0
        self.best_variance = math.inf
        self.best_iteration = 0
        self.iteration = 0

    def observe(self, raw: Tensor, image: Tensor) -> float:
        """Add the raw output of the current iteration; return the variance (NaN until the window fills)."""
        self.iteration += 1
        window = self.config.window
        sample = raw.detach().to(torch.float32)
        if self._buffer is None:
            self._buffer = torch.zeros((window, *sample.shape), dtype=torch.float32, device=sample.device)
            self._sum = torch.zeros(sample.shape, dtype=torch.float64, device=sample.device)
            self._sum_sq = torch.zeros_like(self._sum)
        assert self._sum is not None and self._sum_sq is not None
        slot = self._seen % window
        if self._seen >= window:
            old = self._buffer[slot].double()
            self._sum -= old
            self._sum_sq -= old * old
        self._buffer[slot] = sample
        new = sample.double()
        self._sum += new
        self._sum_sq += new * new
        self._seen += 1
        if self._seen < window:
            return math.nan
        variance = ((self._sum_sq - self._sum * self._sum / window) / (window - 1)).clamp_min(0).mean().item()
        if variance < self.best_variance:
            self.best_variance = variance
            self.best_iteration = self.iteration
        return variance

    @property
    def keep_now(self) -> bool:
        """Whether the current iteration's image is the one to keep for the best minimum so far."""
        return self.best_iteration > 0 and self.iteration == self.best_iteration + self.lag

    @property
    def keep_pending(self) -> bool:
        """Whether the image for the best minimum is still to come (the fit ended too soon)."""
        return self.best_iteration > 0 and self.iteration < self.best_iteration + self.lag

    def should_stop(self) -> bool:
        if self.iteration < self.config.min_iterations or self._seen < self.config.window:
            return False
        return self.iteration - self.best_iteration >= max(self.config.patience, self.lag)


class Convergence:
    """Stops once the returned image has stopped changing; keeps the last image.

    Every `converge_every` iterations the image is compared with the one taken `converge_every`
    iterations earlier: the RMS of the difference over `region` (1 = a pixel the fit restores; the
    whole image when None). The fit stops after `converge_checks` comparisons in a row below
    `converge_tolerance`, not before `min_iterations`. The trace holds the latest RMS change.
    """

    keep_now = False
    keep_pending = True

    def __init__(self, config: StoppingConfig, region: Tensor | None = None) -> None:
        self.config = config
        self.region = region
        self.iteration = 0
        self.change = math.nan
        self._previous: Tensor | None = None
        self._quiet = 0

    def observe(self, raw: Tensor, image: Tensor) -> float:
        self.iteration += 1
        if self.iteration % self.config.converge_every:
            return self.change
        current = image.detach().to(torch.float32)
        if self._previous is not None:
            squared = (current - self._previous).square()
            if self.region is None:
                self.change = squared.mean().sqrt().item()
            else:
                weight = self.region.to(squared.device, torch.float32).expand_as(squared)
                self.change = (squared * weight).sum().div(weight.sum().clamp_min(1.0)).sqrt().item()
            self._quiet = self._quiet + 1 if self.change < self.config.converge_tolerance else 0
        self._previous = current.clone()
        return self.change

    def should_stop(self) -> bool:
        return self.iteration >= self.config.min_iterations and self._quiet >= self.config.converge_checks


class FixedBudget:
    """Never stops early: the fit runs to its iteration cap and keeps its last image."""

    keep_now = False
    keep_pending = True

    def observe(self, raw: Tensor, image: Tensor) -> float:
        return math.nan

    def should_stop(self) -> bool:
        return False


Criterion = WindowedVariance | Convergence | FixedBudget


@dataclass(frozen=True)
class Rule:
    """How one fit stops, resolved for its input: the criterion's kind, whether the known pixels
    are put back, and the noise level that decided (NaN when nothing was estimated)."""

    kind: str  # "variance" | "converged" | "fixed"
    keep_known: bool
    noise_sigma: float = math.nan

    @property
    def stop_reason(self) -> str:
        """The stop reason of a fit this rule ended before its cap."""
        return "converged" if self.kind == "converged" else "early_stop"

    def criterion(self, config: FitConfig, known: Tensor | None) -> Criterion:
        """A fresh criterion of this rule. `known`: the operator's given pixels (1); where they are
        put back, the convergence test looks only at the others, the pixels the fit restores."""
        if self.kind == "variance":
            return WindowedVariance(config.stopping, config.keep_lag)
        if self.kind == "converged":
            return Convergence(config.stopping, 1 - known if self.keep_known and known is not None else None)
        return FixedBudget()


def choose_rule(config: FitConfig, observation: Tensor, known: Tensor | None) -> Rule:
    """The rule for a fit of `observation` (known: its mask of known pixels, or None).

    `auto` estimates the observation's noise on its known pixels: above the threshold the input
    is noisy, so the fit stops at the variance minimum and the (noisy) known pixels are not put
    back; else it runs until converged. Known pixels are put back only where the config keeps
    them and the operator has them (inpainting)."""
    kind, sigma = config.stopping.kind, math.nan
    if kind == "auto":
        sigma = estimate_noise_sigma(observation, known)
        kind = "variance" if sigma > config.stopping.noise_threshold else "converged"
    judged_noisy = config.stopping.kind == "auto" and kind == "variance"
    keep = config.keep_known and known is not None and not judged_noisy
    return Rule(kind, keep, sigma)
