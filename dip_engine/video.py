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

A tiled video (`restore_video(..., tiling=...)`) runs one such chain per tile position: the tile
at frame t starts from the same tile at frame t−1, and each tile decides its own cold starts (a
scene cut is judged on its crop). The tiles of a frame are fitted together: its cold tiles in one
`fit_batch`, its warm ones in another that starts each from its tile's state.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from dip_engine.batch import fit_batch
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


@dataclass
class _Chain:
    """What one chain carries from a frame to the next, and its choice for the next frame: a cold
    start (and why) or a warm one (from which state, with which temporal term). An untiled video
    is one chain; a tiled one is a chain per tile position, advanced in lockstep."""

    settings: ChainConfig
    warmup: int  # the chain's first frames that only warm it up (see `restore_video`)
    state: FitState | None = None  # the last frame's final state
    previous: Problem | None = None  # the last frame's problem
    image: Tensor | None = None  # ... and its restoration, C×H×W
    since_cold: int = 0  # frames since the last cold start, that one included

    def cold_reason(self, problem: Problem) -> str | None:
        """Why the frame of `problem` starts cold ("first", "keyframe" or "cut"), or None: warm."""
        settings = self.settings
        if self.previous is None or self.image is None or self.state is None:
            return "first"
        if settings.keyframe_interval > 0 and self.since_cold >= settings.keyframe_interval:
            return "keyframe"
        if scene_cut(self.previous, self.image, problem, settings.cut_ratio, settings.cut_unexplained):
            return "cut"
        return None

    def cold_fit(self, cold: FitConfig, reason: str) -> FitConfig:
        """A cold start's fit configuration: the task's, or the short one of a chain's first frame
        when its first frames only warm it up."""
        return self.settings.warmup_cold_fit(cold) if reason == "first" and self.warmup > 0 else cold

    def warm(self, problem: Problem) -> tuple[Problem, FitState]:
        """A warm frame's problem, with the temporal term tying its static pixels to the previous
        restoration when `temporal_weight` > 0, and the state it starts from (the previous one,
        with its output average only under `carry_average`)."""
        assert self.previous is not None and self.image is not None and self.state is not None
        settings = self.settings
        if settings.temporal_weight > 0:
            weight = static_weight(self.previous.observation, problem.observation, problem.size, settings.static_threshold)
            problem = replace(problem, anchor=self.image.unsqueeze(0), anchor_weight=settings.temporal_weight * weight)
        return problem, self.state if settings.carry_average else replace(self.state, average=None)

    def advance(self, problem: Problem, restoration: Restoration, cold: bool) -> None:
        """Take in the frame just restored: its problem (as fitted) and its restoration."""
        self.since_cold = 1 if cold else self.since_cold + 1
        self.state, self.previous, self.image = restoration.state, problem, restoration.image


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
    of the frames, the tiles of a frame fitted together through `fit_batch` (see
    `_tiled_chains`); None, or a tiling resolving to one tile, is one chain.
    Raises ValueError for a task that is not frame-wise or a frame that `restore` would reject.
    """
    spec = get_task(task) if isinstance(task, str) else task
    if spec.kind not in FRAME_WISE_KINDS:
        raise ValueError(f"task {spec.name!r} cannot restore video; frame-wise kinds are {', '.join(FRAME_WISE_KINDS)}")
    settings = chain if chain is not None else ChainConfig.for_task(spec)
    if tiling is not None:
        yield from _tiled_video(
            frames,
            spec,
            tiling,
            masks=masks,
            scale=scale,
            config=config,
            settings=settings,
            seed=seed,
            device=device,
            references=references,
            steps=steps,
            warmup=warmup,
        )
        return
    target = resolve_device(device)
    mask_stream, reference_stream = _per_frame(masks), _per_frame(references)
    line = _Chain(settings, warmup)
    for index, frame in enumerate(frames):
        mask, reference = next(mask_stream), next(reference_stream)
        if index == 0:  # the first frame's mask chooses the inpainting network of the chain
            cold_config = config if config is not None else spec.config_for(scale=scale, mask=mask)
            warm_fit = settings.warm_fit(cold_config.fit)
        _, problem = prepare(frame, spec, mask=mask, scale=scale if spec.kind == "sr" else None)
        if line.previous is not None and frame.shape != line.previous.observation.shape[1:]:
            raise ValueError(
                f"frame {index} has shape {tuple(frame.shape)}; the chain's frames are {tuple(line.previous.observation.shape[1:])}"
            )
        ref = None if reference is None else check_image("reference", reference).unsqueeze(0).float().to(target)
        reason = line.cold_reason(problem)
        if reason is not None:
            fit_config = line.cold_fit(cold_config.fit, reason)
            result = fit(problem, cold_config.net, fit_config, seed=seed, device=target, reference=ref, steps=steps)
        else:
            problem, start = line.warm(problem)
            result = fit(
                problem, cold_config.net, warm_fit, seed=seed + index, device=target, initial_state=start, reference=ref, steps=steps
            )
        result.image = result.image.to(frame.device)
        result.task = spec.name
        line.advance(problem, result, cold=reason is not None)
        yield FrameResult(index, result, cold=reason is not None, reason=reason or "warm")


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
    settings: ChainConfig,
    seed: int,
    device: torch.device | str | None,
    references: Iterable[Tensor] | None,
    steps: CompiledSteps | None,
    warmup: int,
) -> Iterator[FrameResult]:
    """`restore_video` with a tiling: the layout (tile and batch) is chosen on the first frame (the
    configuration chosen for its whole mask, as untiled); one tile covering the frame leaves one chain."""
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
    target = resolve_device(device)
    cut = tiling.layout(spec, cold_config, shape, scale=factor, mask=first_mask, device_type=target.type)
    frames = itertools.chain([first], stream)
    if cut.tile is None:
        yield from restore_video(
            frames,
            spec,
            masks=again,
            scale=scale,
            config=cold_config,
            chain=settings,
            seed=seed,
            device=target,
            references=references,
            steps=steps,
            warmup=warmup,
        )
        return
    grid = tile_grid(shape[1], shape[2], cut.tile, tiling.overlap)
    chains = [_Chain(settings, warmup) for _ in grid]
    fits = _TileFits(spec, cold_config, settings.warm_fit(cold_config.fit), seed, target, steps, cut.batch)
    yield from _tiled_chains(frames, grid, chains, fits, overlap=tiling.overlap, scale=factor, masks=again, references=references)


@dataclass(frozen=True)
class _TileFits:
    """How a tiled video fits the tiles of a frame: `batch` at most per `fit_batch`, tile k of the
    grid seeded seed + k (seed + k + t for its warm frame t, as its chain alone would be)."""

    spec: Task
    config: RestoreConfig  # the cold starts' (the task's for the first frame's whole mask)
    warm_fit: FitConfig
    seed: int
    device: torch.device
    steps: CompiledSteps | None
    batch: int

    def run(
        self,
        tiles: list[int],
        problems: list[Problem],
        references: list[Tensor | None],
        fit_config: FitConfig,
        starts: dict[int, FitState] | None = None,
        frame: int = 0,
    ) -> dict[int, Restoration]:
        """The restorations of the `tiles` (grid indices) of a frame's `problems` (one per grid
        tile), fresh or each from `starts[k]` (warm frame `frame`), with the states they stopped
        at; `batch` tiles at most per `fit_batch`."""
        results: dict[int, Restoration] = {}
        for begin in range(0, len(tiles), self.batch):
            group = tiles[begin : begin + self.batch]
            fitted = fit_batch(
                [problems[k] for k in group],
                self.config.net,
                fit_config,
                seeds=[self.seed + k + frame for k in group],
                device=self.device,
                references=[references[k] for k in group],
                steps=self.steps,
                initial_states=None if starts is None else [starts[k] for k in group],
                keep_states=True,
            )
            results.update(zip(group, fitted))
        return results


def _tile_problem(spec: Task, frame: Tensor, mask: Tensor | None, tile: Tile, scale: int, index: int) -> Problem:
    """The problem of one tile of frame `index`: the task's operator on the tile's crops (copies:
    a chain keeps its last problem, not the whole frame)."""
    if mask is not None and not bool((tile.crop(mask) != 0).any()):
        raise ValueError(f"frame {index}: {tile} has no known pixel in the mask; tiles must see known pixels (use larger tiles)")
    crop_mask = None if mask is None else tile.crop(mask).clone()
    _, problem = prepare(tile.crop(frame).clone(), spec, mask=crop_mask, scale=scale if spec.kind == "sr" else None)
    return problem


def _tiled_chains(
    frames: Iterable[Tensor],
    grid: list[Tile],
    chains: list[_Chain],
    fits: _TileFits,
    *,
    overlap: int,
    scale: int,
    masks: Tensor | Iterable[Tensor] | None,
    references: Iterable[Tensor] | None,
) -> Iterator[FrameResult]:
    """Tiled frames: one warm-started chain per tile position (`chains[k]` for `grid[k]`),
    advanced in lockstep. For each frame every tile's chain decides, on its crop, whether the
    tile starts cold (its first frame, a keyframe, a scene cut judged on the tile) or warm from
    the same tile of the previous frame (with its own temporal term); then the frame's cold
    tiles are fitted together in one `fit_batch` (fresh, tile k seeded seed + k) and its warm
    tiles in another, each from its tile's state (seeded seed + k + the frame's index), at most
    `fits.batch` tiles per batch; each batch hands back the state every tile stopped at. The
    frame is blended from its tiles; it is cold when any tile is, with the most common reason
    among its cold tiles. Every frame is checked whole, as `restore` would, and every tile must
    see a known pixel of the mask."""
    spec = fits.spec
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
        problems = [_tile_problem(spec, frame, mask, tile, scale, index) for tile in grid]
        crops = [None if reference is None else tile.scaled(scale).crop(reference).unsqueeze(0).float().contiguous() for tile in grid]
        reasons = [line.cold_reason(problem) for line, problem in zip(chains, problems)]

        results: dict[int, Restoration] = {}
        by_config: dict[FitConfig, list[int]] = {}  # the cold tiles (all or none a chain's short first start)
        for k, reason in enumerate(reasons):
            if reason is not None:
                by_config.setdefault(chains[k].cold_fit(fits.config.fit, reason), []).append(k)
        for fit_config, cold in by_config.items():
            results.update(fits.run(cold, problems, crops, fit_config))
        warm = [k for k, reason in enumerate(reasons) if reason is None]
        starts: dict[int, FitState] = {}
        for k in warm:
            problems[k], starts[k] = chains[k].warm(problems[k])
        if warm:
            results.update(fits.run(warm, problems, crops, fits.warm_fit, starts, frame=index))

        restorations = [results[k] for k in range(len(grid))]
        for k, (line, result) in enumerate(zip(chains, restorations)):
            result.image = result.image.to(frame.device)
            result.task = spec.name
            line.advance(problems[k], result, cold=reasons[k] is not None)
        image = blend_tiles(restorations, grid, scale, whole.size, overlap).to(frame.device)
        cold_reasons = [reason for reason in reasons if reason is not None]
        combined = summarise(restorations, image, spec.name, time.perf_counter() - started)
        reason = Counter(cold_reasons).most_common(1)[0][0] if cold_reasons else "warm"
        yield FrameResult(index, combined, cold=bool(cold_reasons), reason=reason)
