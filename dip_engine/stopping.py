"""Early-stopping criteria: when the fit has reached its best image and should stop."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dip_engine.config import StoppingConfig


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

    def observe(self, output: Tensor) -> float:
        """Add the raw output of the current iteration; return the variance (NaN until the window fills)."""
        self.iteration += 1
        window = self.config.window
        sample = output.detach().to(torch.float32)
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


class FixedBudget:
    """Never stops early: the fit runs to its iteration cap and keeps its last image."""

    keep_now = False
    keep_pending = True

    def observe(self, output: Tensor) -> float:
        return math.nan

    def should_stop(self) -> bool:
        return False


def make_criterion(config: StoppingConfig, lag: int = 0) -> WindowedVariance | FixedBudget:
    return WindowedVariance(config, lag) if config.kind == "variance" else FixedBudget()
