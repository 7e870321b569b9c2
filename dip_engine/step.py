"""The differentiable part of a DIP training step, and a worker's cache of its compiled forms.

`step_loss` is f_θ(z) → crop → data term (+ the temporal term of video chains); `batch_step_loss`
the same for K problems stacked in one grouped generator. `fit` and `fit_batch` call them eagerly
or through `CompiledSteps`, which wraps them in `torch.compile(..., dynamic=False)`: forward,
loss and (through AOTAutograd) backward become one compiled graph pair per input shape. The Adam
update is not traced: compiling an optimizer specialises on that optimizer object, and every fit
has its own, so compiled fits use Adam's fused kernel instead (one kernel per step for all weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dip_engine.config import NetConfig, Performance
from dip_engine.operators import Operator

Crop = tuple[int, int, int, int]  # top, left, height, width of the image inside the padded output


def step_loss(
    model: nn.Module,
    net_input: Tensor,
    crop: Crop,
    operator: Operator,
    observation: Tensor,
    anchor: Tensor | None,
    anchor_weight: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(output (1, C, H, W) in float32, data term, loss = data term + temporal term)."""
    top, left, height, width = crop
    output = model(net_input)[..., top : top + height, left : left + width].float()
    data = operator.data_term(output, observation)
    loss = data if anchor is None else data + (anchor_weight * (output - anchor).square()).mean()
    return output, data, loss


def batch_step_loss(
    model: nn.Module,
    net_input: Tensor,
    crop: Crop,
    operators: Sequence[Operator],
    observations: Sequence[Tensor],
    anchors: Sequence[Tensor] | None = None,
    anchor_weights: Sequence[Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """K problems stacked in one grouped generator: (outputs (K, C, H, W) in float32, data terms
    (K,), losses (K,)). A problem's loss is its data term plus, for video chains, its own temporal
    term computed as `step_loss` computes it alone; without `anchors` the losses are the data terms.

    The caller sums the losses of the problems still fitting: a sum (not a mean) keeps each
    problem's gradient exactly what it would be alone.
    """
    top, left, height, width = crop
    problems = len(operators)
    raw = model(net_input)
    outputs = raw.reshape(problems, -1, *raw.shape[-2:])[..., top : top + height, left : left + width].float()
    data = torch.stack([op.data_term(outputs[k : k + 1], obs) for k, (op, obs) in enumerate(zip(operators, observations))])
    if anchors is None or anchor_weights is None:
        return outputs, data, data
    temporal = [(weight * (outputs[k : k + 1] - anchor).square()).mean() for k, (anchor, weight) in enumerate(zip(anchors, anchor_weights))]
    return outputs, data, data + torch.stack(temporal)


@dataclass(frozen=True)
class StepKey:
    """What a compiled step is specialised on: the same key never compiles twice."""

    net: NetConfig
    problems: int
    in_channels: int
    out_channels: int
    padded_size: tuple[int, int]
    crop: Crop
    operator: str  # the operator's class: its data term is part of the graph
    device: str
    performance: Performance
    temporal: bool  # whether the temporal term is in the loss


class CompiledSteps:
    """One worker's compiled training steps, built once per `StepKey` and reused for every later
    fit with that key: a worker restoring 1,000 frames of one size compiles once.

    Compilation is lazy (on a key's first step). `compilations` counts the keys built. Where
    compiling fails (no C compiler for Inductor, an unsupported GPU), the key runs eagerly from
    then on, after a one-line warning; the fit itself goes on.
    """

    def __init__(self, max_shapes: int = 64) -> None:
        # Dynamo keeps compiled graphs per Python function and falls back to eager after its
        # recompile limit (8): one worker may meet more shapes than that. A process-wide setting,
        # which a worker (one process per GPU) owns.
        dynamo_config = torch._dynamo.config
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, max_shapes)
        dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit, 4 * max_shapes)
        self._built: set[StepKey] = set()
        self._eager: set[StepKey] = set()
        self._compiled: dict[tuple[Callable[..., Any], str], Callable[..., Any]] = {}

    @property
    def compilations(self) -> int:
        return len(self._built)

    def get(self, function: Callable[..., Any], key: StepKey) -> Callable[..., Any]:
        """`function` compiled for `key`; it runs eagerly instead once compiling it has failed."""
        if key in self._eager:
            return function
        mode = key.performance.compile_mode
        compiled = self._compiled.get((function, mode))
        if compiled is None:
            compiled = torch.compile(function, mode=mode, dynamic=False)
            self._compiled[(function, mode)] = compiled
        if key in self._built:
            return compiled

        def first_calls(*args: Any) -> Any:  # until the key is built or has failed
            if key in self._eager:
                return function(*args)
            try:
                result = compiled(*args)
            except (torch._dynamo.exc.BackendCompilerFailed, torch._dynamo.exc.InternalTorchDynamoError, RuntimeError) as error:
                text = str(error).strip()
                reason = text.splitlines()[0][:200] if text else type(error).__name__
                warnings.warn(f"torch.compile failed here, running this step eagerly instead: {reason}", RuntimeWarning, stacklevel=2)
                self._eager.add(key)
                return function(*args)
            self._built.add(key)
            return result

        return first_calls


def set_cuda_switches(device: torch.device, performance: Performance) -> None:
    """TF32 and cuDNN's benchmark mode as `performance` asks, on CUDA devices. They are
    process-wide switches: a worker runs one fit (or one batch) at a time."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = performance.tf32
        torch.backends.cudnn.benchmark = performance.cudnn_benchmark


def autocast_dtype(device: torch.device, performance: Performance) -> torch.dtype | None:
    """The autocast dtype for `performance.amp` on `device`, or None for float32.

    bfloat16 on CUDA GPUs that have it and on CPUs with native bfloat16 (AVX-512 BF16 / AMX);
    float16 (with a GradScaler, see `fit`) on older GPUs; on a CPU without bfloat16 hardware,
    float32 after a one-line warning (emulated bfloat16 is slower than float32 there).
    """
    if not performance.amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and not _cpu_has_bf16():
        warnings.warn("AMP asked for, but this CPU has no native bfloat16: running in float32", RuntimeWarning, stacklevel=3)
        return None
    return torch.bfloat16


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def performance_for(device: torch.device | str) -> Performance:
    """The speed switches measured fastest on `device` at equal quality (benchmarks/RESULTS.md,
    "Engine speed").

    CUDA: compiled step, bfloat16 autocast and CUDA graphs (the compile is paid once per worker
    and image shape). CPU with native bfloat16: autocast and channels_last, not compiled (on a
    CPU a compile costs more than it saves for one image). Other CPUs: eager float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return Performance(compile=True, amp=True, compile_mode="reduce-overhead")
    if device.type == "cpu" and _cpu_has_bf16():
        return Performance(amp=True, channels_last=True)
    return Performance()
