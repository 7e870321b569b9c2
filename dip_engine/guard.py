"""Divergence guard: keep the last good weights and go back to them after a NaN or a loss spike."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dip_engine.config import GuardConfig


def is_bad_loss(loss: float, last_good_loss: float, spike_factor: float) -> bool:
    """Whether `loss` shows divergence: it is not finite, or it exceeds `spike_factor` × the last
    good loss (math.inf: only a non-finite loss is bad)."""
    return not math.isfinite(loss) or loss > spike_factor * last_good_loss


@dataclass
class _Snapshot:
    weights: dict[str, Tensor]
    optimizer: dict[str, Any]
    loss: float
    iteration: int


class DivergenceGuard:
    """Watches each iteration's loss before the step is taken.

    A loss is bad when it is not finite or exceeds `spike_factor` × the last good loss. On a bad
    loss the network and the optimiser go back to the last snapshot and the step size shrinks.
    """

    def __init__(self, config: GuardConfig, net: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.config = config
        self.net = net
        self.optimizer = optimizer
        self.last_good_loss = math.inf
        self.rollbacks = 0
        self._base_rates = [group["lr"] for group in optimizer.param_groups]
        self._snapshot: _Snapshot | None = None

    def is_bad(self, loss: float) -> bool:
        """Whether `loss` is bad (`is_bad_loss`); never while the guard is off."""
        return self.config.enabled and is_bad_loss(loss, self.last_good_loss, self.config.spike_factor)

    def accept(self, loss: float, iteration: int) -> None:
        """Record a good loss; snapshot the state (before this iteration's step) now and then."""
        self.last_good_loss = loss
        if self.config.enabled and (self._snapshot is None or iteration % self.config.snapshot_every == 0):
            self._snapshot = _Snapshot(
                weights={k: v.detach().clone() for k, v in self.net.state_dict().items()},
                optimizer=copy.deepcopy(self.optimizer.state_dict()),
                loss=loss,
                iteration=iteration,
            )

    @property
    def exhausted(self) -> bool:
        return self.rollbacks >= self.config.max_rollbacks or self._snapshot is None

    def roll_back(self) -> dict[str, float | int]:
        """Restore the last snapshot and lower the step size; return a record of the event."""
        assert self._snapshot is not None
        self.net.load_state_dict(self._snapshot.weights)
        self.optimizer.load_state_dict(self._snapshot.optimizer)
        self.rollbacks += 1
        decay = self.config.lr_decay**self.rollbacks
        for group, base in zip(self.optimizer.param_groups, self._base_rates):
            group["lr"] = base * decay
        learning_rate = self.optimizer.param_groups[0]["lr"]
        self.last_good_loss = self._snapshot.loss
        return {"to_iteration": self._snapshot.iteration, "learning_rate": learning_rate}
