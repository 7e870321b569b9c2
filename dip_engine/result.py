"""What a fit returns: the image, how it got there, and the state to continue from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class FitState:
    """Everything needed to continue a fit: how video frames warm-start from their predecessor."""

    weights: dict[str, Tensor]  # the generator's state_dict
    optimizer: dict[str, Any]  # Adam's state_dict
    code: Tensor  # the input code z, (1, channels, H_padded, W_padded)
    average: Tensor | None  # the exponential average of outputs, (1, C, H, W), or None


@dataclass
class History:
    """Per-iteration traces of one fit (all lists have one entry per iteration)."""

    loss: list[float] = field(default_factory=list)  # the data term before each step
    criterion: list[float] = field(default_factory=list)  # the stopping criterion (NaN while undefined)
    psnr: list[float] = field(default_factory=list)  # of the returned-kind image, if a reference was given
    raw_psnr: list[float] = field(default_factory=list)  # of the raw output (known pixels put back as in psnr), if a reference was given
    network_psnr: list[float] = field(
        default_factory=list
    )  # of the network's image before the known pixels are put back (only where they are)
    events: list[dict[str, Any]] = field(default_factory=list)  # rollbacks and other incidents
    rule: str = ""  # the stopping rule the fit ran: "variance" | "converged" | "fixed"
    noise_sigma: float = math.nan  # the input's estimated noise σ when the rule was chosen by it
    keep_known: bool = False  # whether the given pixels were put back into the image


@dataclass
class Restoration:
    """The result record of `dip_engine.restore`."""

    image: Tensor  # C×H×W in [0, 1] (H·t × W·t for super-resolution)
    iterations: int  # iterations run
    stop_reason: str  # "early_stop" (variance) | "converged" | "max_iterations" | "diverged"
    history: History
    seconds: float
    kept_iteration: int  # the iteration whose image was returned
    task: str = ""
    state: FitState | None = None  # the final state, for warm starts
    tiles: int = 1  # how many tiles were restored and blended into the image (`dip_engine.tiling`)
