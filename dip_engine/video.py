"""Video restoration: chains of frames with temporal warm-starting.

Frame 0 of a chain is restored from a fresh network with the task's full, early-stopped budget.
Frame t starts from frame t−1's final state (weights, Adam state, input code) and runs a much
shorter budget with its own, freshly reset stopping criterion: the network already explains
almost all of frame t, so it needs tens of iterations instead of hundreds, and consecutive
outputs come from nearly the same network, which is what keeps them from flickering.

A chain restarts cold (a fresh network, the full budget) on its first frame, every
`keyframe_interval` frames if that is set, and at a scene cut, found before any fitting by
`scene_cut`: the previous restoration, seen through the task's forward map, explains the new
observation far worse than its own (a jump in the data term) and leaves most of the new frame's
variance unexplained.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from dip_engine.config import FitConfig, RestoreConfig, StoppingConfig
from dip_engine.fit import Problem, fit
from dip_engine.restore import check_image, prepare, resolve_device
from dip_engine.result import FitState, Restoration
from dip_engine.step import CompiledSteps
from dip_engine.tasks import Task, get_task
from dip_engine.tiling import Tile, TilingConfig, blend_tiles, check_reference, summarise, tile_grid

FRAME_WISE_KINDS = ("denoise", "sr", "inpaint")
INPAINT_WARM_TOLERANCE = 1e-3  # RMS change over 10 iterations below which a warm inpainting frame has settled


@dataclass(frozen=True)
class ChainConfig:
    """How the frames after a chain's first are restored.

    A warm frame starts from the previous frame's weights, so its output is already close: its
    output average is short (0.9; the cold 0.99 would lag a short fit by hundreds of iterations),
    and it peaks a few dozen iterations into the frame, after which the raw output over-fits the
    new noise. The windowed variance of the last raw outputs reaches its minimum shortly before
    that peak, so the criterion is reset per frame with a short window and patience and keeps
    the image a few iterations after the minimum. A small pan raises a warm frame's first data
    term a little above the previous frame's final one; a scene cut raises it far more (see
    `scene_cut`). The temporal term ties static pixels to the previous restoration: it raises
    quality and lowers flicker for a few more iterations, while a much stronger weight freezes
    the output. The output average is not carried over: a long average drags the previous
    frame's content into a moving scene.

    The cap of a warm frame's iterations is set where quality stops improving: the criterion
    then stops few frames before it, so every frame costs about the same, which keeps parallel
    segments even; a lower cap makes a chain starting mid-clip catch up more slowly. A segment
    that starts with warm-up frames (`restore_video(warmup=...)`) begins with a short, fixed cold
    start of `warmup_cold_iterations`, which with a few warm-up frames gives the seam's first
    kept frames the quality of a long chain.

    These defaults are the denoising chain's; `for_task` gives each task kind its own. The
    measurements behind every value are in benchmarks/RESULTS.md ("Video" and "Calibrations
    behind the engine's defaults").
    """

    warm_max_iterations: int = 75  # cap for a warm-started frame
    warm_stopping: StoppingConfig = field(default_factory=lambda: StoppingConfig(window=10, patience=20, min_iterations=20, lag=10))
    warm_learning_rate: float | None = None  # None: the task's learning rate
    warm_average: float | None = 0.9  # output averaging of warm frames; None: the task's
    carry_average: bool = False  # start frame t's output average from frame t−1's
    temporal_weight: float = 1.0  # strength of the term tying x_t to x̂_{t−1} on static pixels; 0 = off
    static_threshold: float = 0.03  # mean |Δ| of the blurred observations below which a pixel is static
    keyframe_interval: int = 0  # restart cold every this many frames; 0 = only at cuts
    warmup_cold_iterations: int = 200  # the short cold start of a chain whose first frames are warm-up only
    cut_ratio: float = 3.0  # a cut needs the data-term jump above this (see scene_cut); 0 = never cut
    cut_unexplained: float = 1.5  # ... and the residual above this × the new frame's variance

    def __post_init__(self) -> None:
        if (
            self.warm_max_iterations < 1
            or self.warmup_cold_iterations < 1
            or self.keyframe_interval < 0
            or self.cut_ratio < 0
            or self.cut_unexplained < 0
        ):
            raise ValueError(
                "chain needs warm_max_iterations, warmup_cold_iterations >= 1 and keyframe_interval, cut_ratio, cut_unexplained >= 0"
            )
        if self.temporal_weight < 0 or self.static_threshold < 0:
            raise ValueError("temporal_weight and static_threshold must be >= 0")
        if self.warm_average is not None and not 0 <= self.warm_average < 1:
            raise ValueError(f"warm_average={self.warm_average} must be in [0, 1)")

    @classmethod
    def for_task(cls, task: Task) -> ChainConfig:
        """The chain settings measured for `task`'s kind (benchmarks/chain_tuning.py, RESULTS.md).

        Super-resolution has no noise to over-fit and gains detail for as long as it runs: its
        warm frames run a fixed number of iterations with the task's long output average and no
        temporal term (which would tie moving detail to where it was). That matched cold starts
        in a fraction of their iterations, where the denoising chain's early stop lost detail.
        Measured at ×2, used for every factor.

        Inpainting warm frames stop by the task's own rule (`auto`): on a clean clip they run
        until the image settles (compared every 10 iterations, two quiet comparisons in a row),
        on a noisy one at the variance minimum with the denoising chain's window. Denoising and
        the other kinds use the defaults.
        """
        if task.kind == "sr":
            return cls(
                warm_max_iterations=250,
                warm_stopping=StoppingConfig(kind="fixed"),
                warm_average=None,
                temporal_weight=0.0,
                warmup_cold_iterations=300,
            )
        if task.kind == "inpaint":
            denoising = cls().warm_stopping
            rule = replace(denoising, kind="auto", converge_every=10, converge_checks=2, converge_tolerance=INPAINT_WARM_TOLERANCE)
            return cls(warm_max_iterations=150, warm_stopping=rule)
        return cls()

    def warm_fit(self, cold: FitConfig) -> FitConfig:
        """The fit configuration of a warm frame, derived from the task's cold one."""
        return replace(
            cold,
            max_iterations=self.warm_max_iterations,
            stopping=self.warm_stopping,
            learning_rate=self.warm_learning_rate or cold.learning_rate,
            average=cold.average if self.warm_average is None else self.warm_average,
        )

    def warmup_cold_fit(self, cold: FitConfig) -> FitConfig:
        """The cold start of a chain whose first frames only warm it up (a segment's overlap):
        a fixed `warmup_cold_iterations` budget, since its image is thrown away."""
        return replace(cold, max_iterations=min(cold.max_iterations, self.warmup_cold_iterations), stopping=StoppingConfig(kind="fixed"))


@dataclass
class FrameResult:
    """One restored frame of a chain."""

    index: int  # the frame's position in the chain, from 0
    restoration: Restoration
    cold: bool  # restored from a fresh network
    reason: str  # "first" | "keyframe" | "cut" | "warm"

    @property
    def image(self) -> Tensor:
        return self.restoration.image


def _per_frame(value: Tensor | Iterable[Tensor] | None) -> Iterator[Tensor | None]:
    """The same tensor (or None) for every frame, or the items of an iterable in turn."""
    if value is None or isinstance(value, Tensor):
        while True:
            yield value
    else:
        yield from value
        raise ValueError("fewer masks or references than frames")


def static_weight(previous: Tensor, current: Tensor, size: tuple[int, int], threshold: float) -> Tensor:
    """(1, 1, H, W): 1 where the scene looks static between two observations, else 0.

    The signed frame difference, averaged over channels and a 5×5 box, is compared with
    `threshold`; blurring the signed difference first cancels most of the observation noise.
    Computed at the observations' size and resized (nearest) to the output's `size`.
    """
    change = (current - previous).mean(dim=1, keepdim=True)
    smooth = F.avg_pool2d(change, 5, stride=1, padding=2, count_include_pad=False).abs()
    static = (smooth < threshold).float()
    return static if static.shape[-2:] == size else F.interpolate(static, size=size, mode="nearest")


def scene_cut(previous: Problem, previous_image: Tensor, current: Problem, ratio: float, unexplained: float) -> bool:
    """Whether `current` starts a new scene, judged by how well the previous frame's restoration
    x̂ (C×H×W) explains it through the task's forward map A.

    jump = ‖A(x̂) − y_t‖² / ‖A(x̂) − y_{t−1}‖²: the new frame's residual against the one x̂ left on
    its own frame. A pan or zoom of a few pixels keeps it near 1–2 (mostly the observation noise
    in both); a cut multiplies it. Without noise (a clean super-resolution input) the own
    residual is tiny and motion alone makes a large jump, so a cut must also leave more than
    residual above `unexplained` times the new frame's variance about its mean colour:
    ‖A(x̂) − y_t‖² > unexplained · ‖A(ȳ_t) − y_t‖², with ȳ_t a flat image of y_t's mean colour.

    The defaults (a jump of 3, an unexplained fraction of 1.5) lie between what pans and cuts
    between photographs gave (benchmarks/RESULTS.md, "Calibrations behind the engine's
    defaults"; pinned by tests/engine/test_video_engine.py).
    """
    if ratio <= 0:
        return False
    observation = current.observation.float()
    image = previous_image.unsqueeze(0).float().to(observation.device)
    new_residual = current.operator.data_term(image, observation).item()
    own_residual = previous.operator.data_term(image, previous.observation.float()).item()
    flat = observation.mean(dim=(-2, -1), keepdim=True).expand(*observation.shape[:2], *current.size)
    spread = current.operator.data_term(flat, observation).item()
    return new_residual > ratio * own_residual and new_residual > unexplained * spread


def restore_video(
    frames: Iterable[Tensor],
    task: str | Task,
    *,
    masks: Tensor | Iterable[Tensor] | None = None,
    scale: int | None = None,
    config: RestoreConfig | None = None,
    chain: ChainConfig | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    references: Iterable[Tensor] | None = None,
    steps: CompiledSteps | None = None,
    warmup: int = 0,
    tiling: TilingConfig | None = None,
) -> Iterator[FrameResult]:
    """Restore consecutive frames as one warm-started chain; yields each frame as it is done.

    frames: C×H×W float tensors in [0, 1], all of one shape, consumed lazily (a generator
    reading a video keeps only the current frame in memory). task: a frame-wise preset
    (denoise, sr*, inpaint, watermark). masks: one mask for every frame (a logo, a timestamp)
    or an iterable with one per frame. references: optional clean frames, only for the PSNR
    trace in each frame's history. config: the cold-start configuration (default: the task's for
    the scale and the first frame's mask, `Task.config_for`).
    chain: the warm frames' settings (default: `ChainConfig.for_task` of the task).
    steps: a worker's compiled training steps (see `dip_engine.step`), shared by every frame.
    warmup: how many of the first frames only warm the chain up (the caller drops them, like a
    segment's overlap); with warmup > 0 the first cold start runs `warmup_cold_iterations` only.
    tiling: frames larger than its tile (`dip_engine.tiling.TilingConfig`, resolved on the first
    frame) are restored in tiles, each tile position its own warm-started chain over its crops
    of the frames (see `_tiled_chains`); None, or a tiling resolving to one tile, is one chain.
    Raises ValueError for a task that is not frame-wise or a frame that `restore` would reject.
    """
    spec = get_task(task) if isinstance(task, str) else task
    if spec.kind not in FRAME_WISE_KINDS:
        raise ValueError(f"task {spec.name!r} cannot restore video; frame-wise kinds are {', '.join(FRAME_WISE_KINDS)}")
    if tiling is not None:
        yield from _tiled_video(
            frames,
            spec,
            tiling,
            masks=masks,
            scale=scale,
            config=config,
            chain=chain,
            seed=seed,
            device=device,
            references=references,
            steps=steps,
            warmup=warmup,
        )
        return
    settings = chain if chain is not None else ChainConfig.for_task(spec)
    target = resolve_device(device)
    mask_stream, reference_stream = _per_frame(masks), _per_frame(references)

    state: FitState | None = None
    previous: tuple[Problem, Restoration] | None = None
    since_cold = 0
    for index, frame in enumerate(frames):
        mask, reference = next(mask_stream), next(reference_stream)
        if index == 0:  # the first frame's mask chooses the inpainting network of the chain
            cold_config = config if config is not None else spec.config_for(scale=scale, mask=mask)
            warm_fit = settings.warm_fit(cold_config.fit)
        _, problem = prepare(frame, spec, mask=mask, scale=scale if spec.kind == "sr" else None)
        if previous is not None and frame.shape != previous[0].observation.shape[1:]:
            raise ValueError(
                f"frame {index} has shape {tuple(frame.shape)}; the chain's frames are {tuple(previous[0].observation.shape[1:])}"
            )
        ref = None if reference is None else check_image("reference", reference).unsqueeze(0).float().to(target)

        keyframe_due = settings.keyframe_interval > 0 and since_cold >= settings.keyframe_interval
        cold_reason: str | None = None
        if previous is None or state is None:
            cold_reason = "first"
        elif keyframe_due:
            cold_reason = "keyframe"
        elif scene_cut(previous[0], previous[1].image, problem, settings.cut_ratio, settings.cut_unexplained):
            cold_reason = "cut"
        if cold_reason is not None:
            short = cold_reason == "first" and warmup > 0
            fit_config = settings.warmup_cold_fit(cold_config.fit) if short else cold_config.fit
            result = fit(problem, cold_config.net, fit_config, seed=seed, device=target, reference=ref, steps=steps)
            outcome = FrameResult(index, result, cold=True, reason=cold_reason)
        else:
            assert previous is not None and state is not None
            last_problem, last_result = previous
            if settings.temporal_weight > 0:
                weight = static_weight(last_problem.observation, problem.observation, problem.size, settings.static_threshold)
                anchor = last_result.image.unsqueeze(0)
                problem = replace(problem, anchor=anchor, anchor_weight=settings.temporal_weight * weight)
            result = fit(
                problem,
                cold_config.net,
                warm_fit,
                seed=seed + index,
                device=target,
                initial_state=state if settings.carry_average else replace(state, average=None),
                reference=ref,
                steps=steps,
            )
            outcome = FrameResult(index, result, cold=False, reason="warm")
        since_cold = 1 if outcome.cold else since_cold + 1
        state = outcome.restoration.state
        outcome.restoration.image = outcome.restoration.image.to(frame.device)
        outcome.restoration.task = spec.name
        previous = (problem, outcome.restoration)
        yield outcome


# Starts one untiled chain over (frames, masks, references, seed): the tiled video's chain per tile.
ChainStarter = Callable[[Iterable[Tensor], Tensor | Iterable[Tensor] | None, Iterable[Tensor] | None, int], Iterator[FrameResult]]


def _fed(queue: deque[Tensor]) -> Iterator[Tensor]:
    """The items put into `queue`, taken as a chain asks for them (the tiled chains' frames)."""
    while queue:
        yield queue.popleft()


def _peek_mask(masks: Tensor | Iterable[Tensor] | None) -> tuple[Tensor | None, Tensor | Iterable[Tensor] | None]:
    """(the first frame's mask, the masks to give on: the same, with the peeked one put back)."""
    if masks is None or isinstance(masks, Tensor):
        return masks, masks
    stream = iter(masks)
    first = next(stream, None)
    if first is None:
        raise ValueError("fewer masks or references than frames")
    return first, itertools.chain([first], stream)


def _tiled_video(
    frames: Iterable[Tensor],
    spec: Task,
    tiling: TilingConfig,
    *,
    masks: Tensor | Iterable[Tensor] | None,
    scale: int | None,
    config: RestoreConfig | None,
    chain: ChainConfig | None,
    seed: int,
    device: torch.device | str | None,
    references: Iterable[Tensor] | None,
    steps: CompiledSteps | None,
    warmup: int,
) -> Iterator[FrameResult]:
    """`restore_video` with a tiling: the plan is made on the first frame (the configuration
    chosen for its whole mask, as untiled); one tile covering the frame leaves one chain."""
    stream = iter(frames)
    first = next(stream, None)
    if first is None:
        return
    first_mask, again = _peek_mask(masks)
    sr_scale = scale if spec.kind == "sr" else None
    _, problem = prepare(first, spec, mask=first_mask, scale=sr_scale)
    cold_config = config if config is not None else spec.config_for(scale=scale, mask=first_mask)
    factor = problem.size[0] // first.shape[-2]
    shape = (first.shape[0], first.shape[1], first.shape[2])
    plan = tiling.plan(spec, cold_config, shape, scale=factor, mask=first_mask, device_type=resolve_device(device).type)
    frames = itertools.chain([first], stream)

    def chain_over(
        frames: Iterable[Tensor], masks: Tensor | Iterable[Tensor] | None, references: Iterable[Tensor] | None, seed: int
    ) -> Iterator[FrameResult]:
        """One untiled chain with this call's settings (the configuration chosen for the first frame's whole mask)."""
        return restore_video(
            frames,
            spec,
            masks=masks,
            scale=scale,
            config=cold_config,
            chain=chain,
            seed=seed,
            device=device,
            references=references,
            steps=steps,
            warmup=warmup,
        )

    if plan is None:
        yield from chain_over(frames, again, references, seed)
        return
    grid = tile_grid(shape[1], shape[2], plan[0], tiling.overlap)
    yield from _tiled_chains(frames, spec, grid, tiling.overlap, factor, again, references, seed, chain_over)


def _tiled_chains(
    frames: Iterable[Tensor],
    spec: Task,
    grid: list[Tile],
    overlap: int,
    scale: int,
    masks: Tensor | Iterable[Tensor] | None,
    references: Iterable[Tensor] | None,
    seed: int,
    chain_over: ChainStarter,
) -> Iterator[FrameResult]:
    """Tiled frames: one warm-started chain per tile position (`chain_over(its crops of the frames,
    of the masks, of the references, seed + its index)`), advanced in lockstep: each frame's crops
    are handed to every chain, each chain restores its crop (warm from the same tile of the
    previous frame), and the frame is blended from them. The tiles of a frame are fitted one after
    the other, not batched through `fit_batch`, which has no warm starts. Each tile's chain decides
    its own cold starts (a scene cut is judged per tile); the frame is cold when any tile is, with
    the most common reason among its cold tiles. Every frame is checked whole, as `restore` would,
    and every tile must see a known pixel of the mask."""
    feeds: list[deque[Tensor]] = [deque() for _ in grid]
    mask_feeds: list[deque[Tensor]] | None = None if masks is None or isinstance(masks, Tensor) else [deque() for _ in grid]
    reference_feeds: list[deque[Tensor]] | None = None if references is None else [deque() for _ in grid]
    chains = []
    for k, tile in enumerate(grid):
        tile_masks = tile.crop(masks) if isinstance(masks, Tensor) else None if mask_feeds is None else _fed(mask_feeds[k])
        tile_references = None if reference_feeds is None else _fed(reference_feeds[k])
        chains.append(chain_over(_fed(feeds[k]), tile_masks, tile_references, seed + k))
    mask_stream, reference_stream = _per_frame(masks), _per_frame(references)
    shape: torch.Size | None = None
    for index, frame in enumerate(frames):
        started = time.perf_counter()
        mask, reference = next(mask_stream), next(reference_stream)
        _, whole = prepare(frame, spec, mask=mask, scale=scale if spec.kind == "sr" else None)
        if shape is not None and frame.shape != shape:
            raise ValueError(f"frame {index} has shape {tuple(frame.shape)}; the chain's frames are {tuple(shape)}")
        shape = frame.shape
        if reference is not None:
            reference = check_reference(reference, frame.shape[0], whole.size)
        for k, tile in enumerate(grid):
            if mask is not None and not bool((tile.crop(mask) != 0).any()):
                raise ValueError(f"frame {index}: {tile} has no known pixel in the mask; tiles must see known pixels (use larger tiles)")
            feeds[k].append(tile.crop(frame).clone())  # a copy: a chain keeps its last crop, not the whole frame
            if mask_feeds is not None and mask is not None:
                mask_feeds[k].append(tile.crop(mask).clone())
            if reference_feeds is not None and reference is not None:
                reference_feeds[k].append(tile.scaled(scale).crop(reference).clone())
        outcomes = [next(tile_chain) for tile_chain in chains]
        restorations = [outcome.restoration for outcome in outcomes]
        image = blend_tiles(restorations, grid, scale, whole.size, overlap).to(frame.device)
        cold = [outcome.reason for outcome in outcomes if outcome.cold]
        combined = summarise(restorations, image, spec.name, time.perf_counter() - started)
        yield FrameResult(index, combined, cold=bool(cold), reason=Counter(cold).most_common(1)[0][0] if cold else "warm")
