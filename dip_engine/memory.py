"""How much memory a fit needs: an analytic model of its peak, calibrated by measurement.

`estimate_fit_bytes` is what a planner asks before it sends a fit (or a batch of K problems) to a
worker: the peak a fit allocates on top of the process's baseline (torch imported, the inputs
present). It counts, from the network's configuration alone:

- the generator's weights, their gradients, Adam's two moments and, for `fit` (K = 1), the
  divergence guard's snapshot (a copy of the weights and of Adam's state, held twice for a
  moment while a new one replaces the old); K problems in one grouped generator have K× of all;
- per problem, the images the loop keeps at the output size: the windowed-variance ring buffer
  (`StoppingConfig.window` outputs, far the largest) with its float64 sums, the output average,
  the kept image and the iteration's few temporaries;
- the activations autograd saves for the backward pass, at the padded size of the network's
  input (`dip_engine.fit.padded_layout`), walked level by level as `dip_engine.nets` builds them:
  each conv saves its (padded) input, each norm and activation its input, the sigmoid its output;
  upsampling and concatenation save nothing. Under autocast they are bfloat16 (2 bytes), except
  that on the CPU reflection padding runs in float32 and saves a float32 copy of its input;
  channels_last changes their layout, not their bytes.

Three constants per device and precision carry what the count cannot. `fixed` is the first
fit's size-independent cost (library code paged in as kernels first run, the allocator's arenas;
a worker's later fits find them in place, so for those the estimate errs high).
The other two weigh the saved activations by what the allocator makes of them: next to the saved
tensors the backward pass holds gradient buffers and convolution scratch, and on the CPU glibc
serves blocks under its mmap threshold (which rises to at most 32 MiB) from its heap, where the
blocks each iteration frees leave holes that later blocks do not fit, so the resident peak there
exceeds the live bytes by more (`heap_factor`) than for blocks mapped on their own and unmapped
when freed (`mapped_factor`, for saved tensors of `mapped_from` bytes or more). The CPU constants
are fitted to the peak resident memory of short fits, each in a fresh process, of the denoising,
super-resolution and both inpainting networks, in float32 and under bfloat16 autocast with
channels_last (`performance_for("cpu")`), one to four problems (benchmarks/memory_model.py
reruns the measurements and prints measured against estimated).

The CUDA constants are not calibrated by measurement (no GPU was lent when this was written):
they are the analytic count with the caching allocator's behaviour assumed: no resident-memory
effects (`fixed` covers only cuBLAS's and cuDNN's workspaces, which it allocates), one factor for
every tensor (it rounds and caches all blocks alike; the factor carries the backward pass's
gradient buffers and convolution workspaces), and bfloat16 activations under autocast, the
padding's included. To calibrate them, run short fits per size and K on the GPU, each after
`torch.cuda.reset_peak_memory_stats()`, and compare `torch.cuda.max_memory_allocated()` minus
`torch.cuda.memory_allocated()` before the fit with the estimate, as benchmarks/memory_model.py
does for the CPU with resident memory; include `performance_for("cuda")`, whose CUDA graphs keep
a memory pool of their own. A compiled step saves no more than the eager one (its partitioner
recomputes cheap operations rather than saving them), so the eager count bounds it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from dip_engine.config import NetConfig, Performance, StoppingConfig
from dip_engine.fit import padded_layout
from dip_engine.step import autocast_dtype

FLOAT32 = 4  # bytes per element
HALF = 2  # bfloat16 or float16


@dataclass(frozen=True)
class Calibration:
    """The measured constants of one device and precision (see the module docstring)."""

    fixed: int  # bytes
    heap_factor: float  # peak / saved bytes, for saved tensors below `mapped_from`
    mapped_factor: float  # peak / saved bytes, for saved tensors of `mapped_from` bytes or more
    mapped_from: int  # bytes


GLIBC_MMAP_CEILING = 32 * 2**20  # the most glibc's dynamic mmap threshold rises to (64-bit)
# The CUDA caching allocator rounds and caches every block alike: one factor for all tensors.
CUDA = Calibration(fixed=64 * 2**20, heap_factor=1.25, mapped_factor=1.25, mapped_from=0)
# Keyed by (device type, whether activations are half precision).
CALIBRATIONS: Mapping[tuple[str, bool], Calibration] = MappingProxyType(
    {
        ("cpu", False): Calibration(fixed=98 * 2**20, heap_factor=1.75, mapped_factor=1.12, mapped_from=GLIBC_MMAP_CEILING),
        ("cpu", True): Calibration(fixed=95 * 2**20, heap_factor=1.79, mapped_factor=1.11, mapped_from=GLIBC_MMAP_CEILING),
        ("cuda", False): CUDA,
        ("cuda", True): CUDA,
    }
)

# Copies of the output image (float32, at the output size) a problem's track holds besides the
# variance window: two float64 sums (four float32 copies), the output average and its value, the
# image and the kept image, the cropped output and the data term's temporaries.
TRACK_COPIES = 10
# Copies of the weights (float32) a fit holds: the weights, gradients, Adam's two moments.
TRAINING_COPIES = 4
# The guard's snapshot (weights + Adam's moments), twice while a new one replaces the old.
SNAPSHOT_COPIES = 6


@dataclass(frozen=True)
class Precision:
    """Bytes per element of the saved activations, and of the copies reflection padding saves."""

    activation: int
    padding: int


@dataclass(frozen=True)
class LevelShape:
    """One level of the generator (`dip_engine.nets.Level`) for one problem."""

    index: int
    height: int  # of the level's input
    width: int
    c_in: int
    down: int
    up: int
    skip: int
    deep: int  # channels coming up from below


def levels(net_config: NetConfig, in_channels: int, padded: tuple[int, int]) -> Iterator[LevelShape]:
    """The levels from the top: channels as `Generator` builds them, resolution halving per level."""
    height, width = padded
    for index in range(net_config.levels):
        down = net_config.channels_down[index]
        yield LevelShape(
            index=index,
            height=height,
            width=width,
            c_in=in_channels if index == 0 else net_config.channels_down[index - 1],
            down=down,
            up=net_config.channels_up[index],
            skip=net_config.channels_skip[index],
            deep=net_config.channels_up[index + 1] if index + 1 < net_config.levels else down,
        )
        height, width = height // 2, width // 2


def _conv_parameters(c_in: int, c_out: int, kernel: int) -> int:
    return c_out * (c_in * kernel * kernel + 1)


def _norm_parameters(net_config: NetConfig, channels: int) -> int:
    return 0 if net_config.norm == "none" else 2 * channels


def parameter_count(net_config: NetConfig, in_channels: int, out_channels: int) -> tuple[int, int]:
    """(all parameters, those of convolutions) of a one-problem generator."""
    conv = norm = 0
    for level in levels(net_config, in_channels, (1, 1)):
        if level.skip:
            conv += _conv_parameters(level.c_in, level.skip, net_config.kernel_skip)
            norm += _norm_parameters(net_config, level.skip)
        conv += _conv_parameters(level.c_in, level.down, net_config.kernel_down)
        conv += _conv_parameters(level.down, level.down, net_config.kernel_down)
        norm += 2 * _norm_parameters(net_config, level.down)
        norm += _norm_parameters(net_config, level.skip + level.deep)
        conv += _conv_parameters(level.skip + level.deep, level.up, net_config.kernel_up)
        norm += _norm_parameters(net_config, level.up)
        if net_config.conv_1x1_up:
            conv += _conv_parameters(level.up, level.up, 1)
            norm += _norm_parameters(net_config, level.up)
    conv += _conv_parameters(net_config.channels_up[0], out_channels, 1)
    return conv + norm, conv


class SavedActivations:
    """The tensors autograd saves for one problem's backward pass, listed layer by layer."""

    def __init__(self, net_config: NetConfig, precision: Precision) -> None:
        self.config = net_config
        self.precision = precision
        self.tensors: list[int] = []  # the bytes of each saved tensor
        # Each conv → norm → activation block saves the conv's output for the norm and the norm's
        # output for the activation (a missing one saves nothing).
        self.block_saves = (net_config.norm != "none") + (net_config.activation != "none")

    def reflects(self, kernel: int) -> bool:
        return self.config.padding == "reflection" and kernel > 1

    def area(self, height: int, width: int, kernel: int) -> int:
        pad = (kernel - 1) if self.reflects(kernel) else 0
        return (height + pad) * (width + pad)

    def saved(self, elements: int, element_bytes: int, copies: int = 1) -> None:
        self.tensors += [elements * element_bytes] * copies

    def activations(self, elements: int, copies: int = 1) -> None:
        self.saved(elements, self.precision.activation, copies)

    def block(self, channels: int, height: int, width: int) -> None:
        self.activations(channels * height * width, self.block_saves)

    def conv_input(self, channels: int, height: int, width: int, kernels: tuple[int, ...], *, is_code: bool = False) -> None:
        """A tensor that convolutions of `kernels` read: each saves its padded copy, a reflection
        pad saves the tensor itself (float32 on the CPU under autocast), an unpadded conv too.
        The input code needs no gradient (its pads save nothing) and is float32: under autocast
        each conv reading it saves a copy of its own."""
        pixels = height * width
        for kernel in kernels:
            if self.reflects(kernel):
                self.activations(channels * self.area(height, width, kernel))
        direct_readers = sum(not self.reflects(k) for k in kernels)
        if is_code and self.precision.activation != FLOAT32:
            self.activations(channels * pixels, direct_readers)
            return
        padded = not is_code and any(self.reflects(k) for k in kernels)
        if direct_readers and (not padded or self.precision.padding == self.precision.activation):
            self.activations(channels * pixels)  # one tensor, whoever saves it
            return
        if direct_readers:
            self.activations(channels * pixels)
        if padded:
            self.saved(channels * pixels, self.precision.padding)

    def level(self, level: LevelShape) -> None:
        config, h, w = self.config, level.height, level.width
        half_h, half_w = h // 2, w // 2
        input_kernels = (config.kernel_down,) + ((config.kernel_skip,) if level.skip else ())
        self.conv_input(level.c_in, h, w, input_kernels, is_code=level.index == 0)
        if level.skip:
            self.block(level.skip, h, w)  # its activation's output goes to the concatenation: not saved
        self.block(level.down, half_h, half_w)
        self.conv_input(level.down, half_h, half_w, (config.kernel_down,))
        self.block(level.down, half_h, half_w)  # its output is the next level's input, or upsampled
        merged = level.skip + level.deep
        if config.norm != "none":
            self.activations(merged * h * w)  # the concatenation, saved by the merge norm
        self.conv_input(merged, h, w, (config.kernel_up,))
        self.block(level.up, h, w)
        if config.conv_1x1_up:
            self.conv_input(level.up, h, w, (1,))
            self.block(level.up, h, w)
        if level.index == 0:
            self.conv_input(level.up, h, w, (1,))  # read by the head; deeper levels are upsampled

    def network(self, in_channels: int, out_channels: int, padded: tuple[int, int]) -> list[int]:
        for level in levels(self.config, in_channels, padded):
            self.level(level)
        self.activations(out_channels * padded[0] * padded[1])  # the sigmoid's output
        return self.tensors


def precision_of(performance: Performance, device_type: str) -> Precision:
    """Bytes per saved element under `performance` on `device_type`: float32 without autocast (or
    on a CPU without bfloat16, where autocast falls back to float32)."""
    if not performance.amp:
        return Precision(FLOAT32, FLOAT32)
    if device_type == "cuda":
        return Precision(HALF, HALF)
    with warnings.catch_warnings():  # the fallback's warning belongs to a fit, not to an estimate
        warnings.simplefilter("ignore", RuntimeWarning)
        dtype = autocast_dtype(torch.device(device_type), performance)
    return Precision(FLOAT32, FLOAT32) if dtype is None else Precision(HALF, FLOAT32)


def saved_tensors(net_config: NetConfig, size: tuple[int, int], in_channels: int, out_channels: int, precision: Precision) -> list[int]:
    """The bytes of each tensor autograd saves for one problem's backward pass, at the padded
    size of `size` (K problems in one grouped generator save the same tensors, each K× larger)."""
    padded_h, padded_w, _, _ = padded_layout(size, net_config)
    return SavedActivations(net_config, precision).network(in_channels, out_channels, (padded_h, padded_w))


def saved_activation_bytes(net_config: NetConfig, size: tuple[int, int], in_channels: int, out_channels: int, precision: Precision) -> int:
    """What autograd saves for one problem's backward pass, at the padded size of `size`."""
    return sum(saved_tensors(net_config, size, in_channels, out_channels, precision))


def training_bytes(net_config: NetConfig, in_channels: int, out_channels: int, problems: int, precision: Precision) -> int:
    """The weights and their copies: gradients, Adam's moments, the guard's snapshots (`fit`
    alone has a guard that snapshots; a batch takes a diverging problem out instead), and under
    autocast the half-precision copies of the conv weights."""
    parameters, conv_parameters = parameter_count(net_config, in_channels, out_channels)
    copies = TRAINING_COPIES + (SNAPSHOT_COPIES if problems == 1 else 0)
    half_copies = conv_parameters * HALF if precision.activation == HALF else 0
    return problems * (parameters * copies * FLOAT32 + half_copies)


def track_bytes(size: tuple[int, int], out_channels: int, problems: int, stopping: StoppingConfig) -> int:
    """The images each problem's track holds at the output size (`dip_engine.fit.Track`)."""
    window = stopping.window if stopping.kind in ("variance", "auto") else 2  # else: the convergence rule's two images
    return problems * out_channels * size[0] * size[1] * FLOAT32 * (window + TRACK_COPIES)


def activation_bytes(saved: list[int], problems: int, calibration: Calibration) -> float:
    """The peak the saved tensors of one problem (`saved_tensors`) make for K problems: each
    tensor K× larger, weighed by its allocator's factor."""
    total = 0.0
    for size in saved:
        grouped = size * problems
        total += grouped * (calibration.mapped_factor if grouped >= calibration.mapped_from else calibration.heap_factor)
    return total


def estimate_fit_bytes(
    net_config: NetConfig,
    size: tuple[int, int],
    in_channels: int,
    out_channels: int,
    *,
    problems: int = 1,
    performance: Performance = Performance(),  # noqa: B008 - frozen, so one shared default is safe
    device_type: str = "cpu",
    stopping: StoppingConfig | None = None,
) -> int:
    """The peak bytes a fit of `problems` problems of output `size` (H, W) allocates on top of
    the process's baseline: `dip_engine.fit.fit` for one problem, `dip_engine.batch.fit_batch`
    for K. `in_channels`: the input code's channels (`net_config.input_depth`, or the guide
    image's); `out_channels`: the image's. `stopping` (the fit's `StoppingConfig`, default the
    denoising one): its window sizes the variance criterion's buffer, which the "variance" and
    "auto" rules hold. See the module docstring for what is counted and how it was calibrated.
    """
    if problems < 1:
        raise ValueError(f"problems={problems} must be >= 1")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device_type={device_type!r} must be 'cpu' or 'cuda'")
    precision = precision_of(performance, device_type)
    calibration = CALIBRATIONS[(device_type, precision.activation == HALF)]
    saved = saved_tensors(net_config, size, in_channels, out_channels, precision)
    return round(
        calibration.fixed
        + training_bytes(net_config, in_channels, out_channels, problems, precision)
        + track_bytes(size, out_channels, problems, stopping or StoppingConfig())
        + activation_bytes(saved, problems, calibration)
    )
