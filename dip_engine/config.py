"""Frozen configuration dataclasses for the generator and the fit loop.

Every field has the published Deep Image Prior value as its default (the denoising notebook of
Ulyanov, Vedaldi and Lempitsky, "Deep Image Prior", CVPR 2018); the task presets in
`dip_engine.tasks` change what their published configuration changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

UpsampleMode = Literal["nearest", "bilinear"]
Activation = Literal["leaky_relu", "relu", "elu", "none"]
Norm = Literal["batch", "instance", "none"]
Padding = Literal["reflection", "zero"]
InputKind = Literal["noise", "meshgrid"]
StoppingKind = Literal["variance", "converged", "auto", "fixed"]


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; expected one of {', '.join(map(repr, choices))}")


@dataclass(frozen=True)
class NetConfig:
    """The encoder-decoder generator of the DIP paper (its `skip` network).

    One entry per level in `channels_down`, `channels_up` and `channels_skip`; a skip width of 0
    at every level gives the plain hourglass. Inputs are padded to a multiple of 2**levels.
    """

    channels_down: tuple[int, ...] = (128, 128, 128, 128, 128)  # encoder width per level
    channels_up: tuple[int, ...] = (128, 128, 128, 128, 128)  # decoder width per level
    channels_skip: tuple[int, ...] = (4, 4, 4, 4, 4)  # skip-connection width per level; 0 = none
    kernel_down: int = 3
    kernel_up: int = 3
    kernel_skip: int = 1
    upsample: UpsampleMode = "bilinear"
    activation: Activation = "leaky_relu"  # LeakyReLU(0.2), as published
    norm: Norm = "batch"
    padding: Padding = "reflection"
    conv_1x1_up: bool = True  # the extra 1x1 conv after each decoder block
    input_depth: int = 32  # channels of the input code z (ignored for a guide image input)
    input_kind: InputKind = "noise"
    input_scale: float = 0.1  # z ~ U[0, 1) * input_scale, as the published `get_noise(var=1/10)`

    def __post_init__(self) -> None:
        levels = len(self.channels_down)
        if levels == 0 or len(self.channels_up) != levels or len(self.channels_skip) != levels:
            raise ValueError(
                "channels_down, channels_up and channels_skip must be non-empty and of equal length, got "
                f"{len(self.channels_down)}, {len(self.channels_up)}, {len(self.channels_skip)}"
            )
        if min(self.channels_down + self.channels_up) < 1 or min(self.channels_skip) < 0:
            raise ValueError("channel widths must be >= 1 (skip widths >= 0)")
        for name in ("kernel_down", "kernel_up", "kernel_skip"):
            kernel = getattr(self, name)
            if kernel < 1 or kernel % 2 == 0:
                raise ValueError(f"{name}={kernel} must be an odd integer >= 1")
        _check_choice("upsample", self.upsample, ("nearest", "bilinear"))
        _check_choice("activation", self.activation, ("leaky_relu", "relu", "elu", "none"))
        _check_choice("norm", self.norm, ("batch", "instance", "none"))
        _check_choice("padding", self.padding, ("reflection", "zero"))
        _check_choice("input_kind", self.input_kind, ("noise", "meshgrid"))
        if self.input_depth < 1:
            raise ValueError(f"input_depth={self.input_depth} must be >= 1")

    @property
    def levels(self) -> int:
        return len(self.channels_down)

    @property
    def size_multiple(self) -> int:
        """Height and width of the network's input must be multiples of this."""
        return 2**self.levels


@dataclass(frozen=True)
class StoppingConfig:
    """When to stop fitting.

    `variance` is the ES-WMV criterion (Wang et al., "Early stopping for deep image prior", 2023):
    the mean per-pixel variance of the last `window` raw outputs; the fit stops when it has not
    reached a new minimum for `patience` iterations, and the image kept is the one at that minimum.
    It finds the moment a fit turns from the image to the noise, so it is the rule of tasks whose
    input is noisy (denoising). The variance minimum marks where the raw outputs are best; the
    exponential average of outputs lags them, so the averaged image is kept `lag` iterations after
    the minimum (by default 2/(1 − average)).

    `converged` is the rule of inputs without noise to over-fit (inpainting, super-resolution and
    flash/no-flash of a clean input), whose image only gets better the longer the fit runs: every
    `converge_every` iterations the returned image (over the pixels the fit restores) is compared
    with the one `converge_every` iterations earlier, and the fit stops once the RMS change has
    stayed below `converge_tolerance` for `converge_checks` comparisons in a row; the last image is
    kept. It never stops at a variance minimum.

    `auto` picks one of the two per input: `variance` when the observation's estimated noise level
    (`dip_engine.noise.estimate_noise_sigma`, on its known pixels) is above `noise_threshold`, else
    `converged`. `fixed` runs to `max_iterations`. The measurements behind the defaults are in
    benchmarks/RESULTS.md.
    """

    kind: StoppingKind = "variance"
    window: int = 100
    patience: int = 200
    min_iterations: int = 0  # no stop before this many iterations
    lag: int | None = None  # None: 2/(1 − average) when the average is returned, else 0
    converge_every: int = 100  # iterations between two compared images (converged)
    converge_tolerance: float = 1e-3  # RMS change of the restored pixels (in [0, 1] units) that counts as still
    converge_checks: int = 3  # comparisons in a row below the tolerance before stopping
    noise_threshold: float = 0.05  # auto: noise σ (in [0, 1] units) above which the input is noisy

    def __post_init__(self) -> None:
        _check_choice("stopping kind", self.kind, ("variance", "converged", "auto", "fixed"))
        if self.window < 2 or self.patience < 1 or self.min_iterations < 0:
            raise ValueError("stopping needs window >= 2, patience >= 1 and min_iterations >= 0")
        if self.lag is not None and self.lag < 0:
            raise ValueError(f"lag={self.lag} must be >= 0")
        if self.converge_every < 1 or self.converge_checks < 1 or self.converge_tolerance <= 0 or self.noise_threshold < 0:
            raise ValueError("stopping needs converge_every, converge_checks >= 1, converge_tolerance > 0 and noise_threshold >= 0")


@dataclass(frozen=True)
class GuardConfig:
    """Divergence guard: roll back to the last good weights on a NaN or a sudden loss spike."""

    enabled: bool = True
    spike_factor: float = 4.0  # a loss above spike_factor x the last good loss is a spike
    snapshot_every: int = 20  # iterations between snapshots of the last good state
    lr_decay: float = 0.5  # the step size is multiplied by this after each rollback
    max_rollbacks: int = 8  # then the fit ends with stop_reason "diverged"

    def __post_init__(self) -> None:
        if self.spike_factor <= 1 or self.snapshot_every < 1 or not 0 < self.lr_decay <= 1:
            raise ValueError("guard needs spike_factor > 1, snapshot_every >= 1 and 0 < lr_decay <= 1")


@dataclass(frozen=True)
class Performance:
    """Speed switches for the hot loop; all off by default, so CPU runs are plain eager fp32."""

    compile: bool = False  # torch.compile the generator
    amp: bool = False  # autocast to bfloat16 (float16 with a GradScaler on GPUs without bf16)
    channels_last: bool = False  # NHWC memory format for the convolutions
    compile_mode: str = "default"  # torch.compile's mode; "reduce-overhead" adds CUDA graphs
    tf32: bool = True  # CUDA only: TensorFloat-32 convolutions and matrix products
    cudnn_benchmark: bool = False  # CUDA only: let cuDNN time its algorithms once per shape

    def __post_init__(self) -> None:
        _check_choice("compile_mode", self.compile_mode, ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"))


@dataclass(frozen=True)
class FitConfig:
    """The optimisation loop: Adam on the generator's weights, as published."""

    learning_rate: float = 0.01
    max_iterations: int = 3000  # the cap; early stopping usually ends well before it
    reg_noise_std: float = 1.0 / 30.0  # std of the fresh noise added to z at each iteration
    average: float = 0.99  # exponential averaging weight of the outputs; 0 disables it
    return_average: bool = True  # return the averaged output (else the raw one)
    # Inpainting of a clean input: return the given pixels where the mask is 1 and the restoration
    # only where it is 0 (not applied when the stopping rule judged the input noisy).
    keep_known: bool = False
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    performance: Performance = field(default_factory=Performance)

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.max_iterations < 1 or self.reg_noise_std < 0:
            raise ValueError("fit needs learning_rate > 0, max_iterations >= 1 and reg_noise_std >= 0")
        if not 0 <= self.average < 1:
            raise ValueError(f"average={self.average} must be in [0, 1)")

    @property
    def keep_lag(self) -> int:
        """Iterations between the criterion's optimum and the image kept for it."""
        if self.stopping.lag is not None:
            return self.stopping.lag
        if self.return_average and self.average > 0:
            return round(2.0 / (1.0 - self.average))
        return 0


@dataclass(frozen=True)
class RestoreConfig:
    """Everything `dip_engine.restore` needs besides the images: network and fit loop."""

    net: NetConfig = field(default_factory=NetConfig)
    fit: FitConfig = field(default_factory=FitConfig)
