"""The plan of a run: which units run now, which are skipped as done, on how many workers, in what memory."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dip_engine import get_task
from dip_engine.tiling import TilingConfig
from dip_engine.video import ChainConfig
from pipeline.io import VideoOutput
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.records import KIND_VIDEO, is_done, row_id_of
from pipeline.run.book import Book, PartedJob
from pipeline.run.fingerprint import Fingerprint, fingerprint
from pipeline.run.memory_budget import worker_budget_bytes
from pipeline.run.options import RunOptions
from pipeline.tiles.jobs import TiledJob, plan_tiled
from pipeline.tiles.sizing import Shape, Sizing, SizingRequest, TooLarge, size_row
from pipeline.video.jobs import VideoJob, VideoPlanError, plan_video
from pipeline.work.units import SegmentUnit, TileGroupUnit, Unit


class PlanError(ValueError):
    """Rows that cannot be planned (an input that vanished, an image too large even in tiles); one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Plan:
    units: list[Unit]  # runnable now: image rows, parts of parted rows, assemblies of rows whose parts are done
    skipped: list[ManifestRow]  # rows already done according to the ledger (images and whole videos)
    workers: int
    gpus_per_worker: int
    cpus_per_worker: int
    videos: list[VideoJob] = field(default_factory=list)  # video rows to finish in this run
    tiled: list[TiledJob] = field(default_factory=list)  # image rows to finish in tiles
    sizings: dict[str, Sizing] = field(default_factory=dict)  # image rows to run, by id: how each fits a worker
    memory_per_worker: int = 0  # bytes of the budget the rows were sized for
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)  # every planned row's, by id: stamped on its lines
    changed: list[str] = field(default_factory=list)  # ids of rows done before whose fingerprint changed since: redone
    reencoded: list[str] = field(default_factory=list)  # ids of videos done before with another encoding: redone

    @property
    def parted(self) -> list[PartedJob]:
        return [*self.videos, *self.tiled]

    @property
    def unit_count(self) -> int:
        """Units this run executes: `units`, plus the assemblies that follow pending parts."""
        return len(self.units) + sum(1 for job in self.parted if job.pending_units())

    @property
    def parts_done(self) -> int:
        """Parts (segments, tile groups) of unfinished rows that an earlier run finished (skipped in this one)."""
        return sum(len(job.done) for job in self.parted)

    @property
    def images(self) -> list[ManifestRow]:
        return [unit for unit in self.units if isinstance(unit, ManifestRow)]

    @property
    def segments(self) -> list[SegmentUnit]:
        return [unit for unit in self.units if isinstance(unit, SegmentUnit)]

    @property
    def tile_groups(self) -> list[TileGroupUnit]:
        return [unit for unit in self.units if isinstance(unit, TileGroupUnit)]

    @property
    def estimated_iterations(self) -> int:
        """Upper bound on optimisation iterations (the iteration caps) of the planned units.

        A tile group counts each of its tiles at the row's cap. A segment counts its cold first
        frame at the row's cap (or, when the segment starts with warm-up frames, at the chain's
        short warm-up cold start) and every other frame of its chain (warm-up frames included) at
        the task's `ChainConfig.for_task` warm cap.
        """
        total = 0
        for unit in self.units:
            if isinstance(unit, ManifestRow):
                total += _cap(unit)
            elif isinstance(unit, TileGroupUnit):
                total += _cap(unit.row) * len(unit.tiles)
            elif isinstance(unit, SegmentUnit):
                chain = ChainConfig.for_task(get_task(unit.row.task))
                first = min(_cap(unit.row), chain.warmup_cold_iterations) if unit.segment.warmup else _cap(unit.row)
                total += first + (unit.segment.chain_frames - 1) * chain.warm_max_iterations
        return total

    def output_bytes(self) -> int:
        """An upper bound on what the planned units write, counted uncompressed: each image's
        output (its samples' bytes at the input's depth), plus the float32 arrays of its tiles
        while it is tiled; each video's frames at their stored depth (8 bits, or 16 for deeper
        sources), once kept losslessly in its segments' folders and once more in the video file
        and any --frames copy."""
        total = 0
        for sizing in self.sizings.values():
            channels, height, width = sizing.shape
            pixels = channels * height * width * sizing.scale**2
            total += pixels * 2  # 16-bit at most: float32 inputs are rare, and PNG/TIFF compress
            if sizing.tiled:
                total += pixels * 4 * 2  # the tiles' float32 arrays; overlaps repeat pixels (at most twice)
        for job in self.videos:
            scale = job.row.scale or 1
            sample_bytes = 1 if job.source.bit_depth == "uint8" else 2
            total += 2 * job.frames * 3 * job.source.height * job.source.width * scale**2 * sample_bytes
        return total

    def peaks_by_task(self) -> dict[str, int]:
        """The largest estimated peak memory of one unit, by task, over the image rows to run."""
        return self._largest_by_task(lambda sizing: sizing.peak_bytes)

    def caps_by_task(self) -> dict[str, int]:
        """The largest iteration cap of one fit (of one tile when tiled), by task, over the image rows to run."""
        return self._largest_by_task(lambda sizing: sizing.iterations)

    def _largest_by_task(self, figure: Callable[[Sizing], int]) -> dict[str, int]:
        largest: dict[str, int] = defaultdict(int)
        for row in [*self.images, *(job.row for job in self.tiled)]:
            sizing = self.sizings.get(row.id)
            if sizing is not None:
                largest[row.task] = max(largest[row.task], figure(sizing))
        return dict(largest)


def _cap(row: ManifestRow) -> int:
    return row.max_iterations or get_task(row.task).config_for(scale=row.scale).fit.max_iterations


def local_resources() -> dict[str, float]:
    """What this process may use without Ray: the CPUs of its SLURM task or its CPU affinity, and the GPUs torch sees."""
    import torch

    from pipeline.slurm.environment import SlurmEnvironment

    cpus = SlurmEnvironment.current().cpus_per_task or len(os.sched_getaffinity(0))
    return {"CPU": float(cpus), "GPU": float(torch.cuda.device_count())}


def worker_layout(options: RunOptions, resources: dict[str, float]) -> tuple[int, int, int]:
    """(workers, GPUs per worker, CPUs per worker) on `resources`: one worker per GPU, else
    `options.workers` (default one per 2 CPUs); one worker in all for an in-process run."""
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if options.in_process:
        return 1, min(gpus, 1), cpus
    if gpus > 0:
        return gpus, 1, max(1, cpus // gpus)
    workers = options.workers or max(1, cpus // 2)
    return workers, 0, max(1, cpus // workers)


def sizing_request(options: RunOptions, workers: int, *, gpu: bool) -> SizingRequest:
    """What image rows are sized for: the workers' device and memory budget, the --tile options."""
    budget = worker_budget_bytes(workers, gpu=gpu, override=options.memory_per_worker)
    return SizingRequest("cuda" if gpu else "cpu", budget, options.tile, options.tile_overlap, options.tile_batch)


def sizing_problems(rows: list[ManifestRow], options: RunOptions, resources: dict[str, float] | None = None) -> list[str]:
    """Every image row that cannot fit a worker even in tiles, as one line naming the row (what
    `pipeline validate` checks, with the options `pipeline run` would use here)."""
    workers, gpus_per_worker, _ = worker_layout(options, resources if resources is not None else local_resources())
    request = sizing_request(options, workers, gpu=gpus_per_worker > 0)
    problems = []
    for row in rows:
        if not row.is_video:
            try:
                size_row(row, request)
            except TooLarge as error:
                problems.append(str(error))
    return problems


def plan_run(rows: list[ManifestRow], options: RunOptions, *, cluster: dict[str, float] | None = None) -> Plan:
    """Which units run, which are skipped, and how they are spread over workers.

    A row whose latest ledger line is done (and whose output exists) is skipped, image or
    video. An image row is sized for a worker's memory (`pipeline.tiles.sizing.size_row`): one
    unit when it fits whole, else groups of tiles (`pipeline.tiles.jobs.plan_tiled`) of which
    those an earlier run finished are skipped. An unfinished video is cut into segments, and
    those an earlier run finished are skipped (`pipeline.video.jobs.plan_video`, which probes the
    video). A row whose parts are all done is planned as its assembly, with the run's options.
    Raises PlanError listing every row that cannot be planned: a video input that cannot be
    probed, an image too large for a worker even in tiles. With `options.shard`, only that
    shard's rows are planned (`pipeline.run.shard.Shard.select`). `cluster` is the resources to
    plan workers on (default: this machine's, `local_resources`).
    """
    if options.shard is not None:
        rows = options.shard.select(rows)
    workers, gpus_per_worker, cpus_per_worker = worker_layout(options, cluster if cluster is not None else local_resources())
    request = sizing_request(options, workers, gpu=gpus_per_worker > 0)

    ledger = Ledger(options.out_dir)
    fingerprints = {row.id: fingerprint(row) for row in rows}
    records, changed = current_records({} if options.force else ledger.load(), fingerprints)
    reencoded = sorted(
        unit_id for unit_id, record in records.items() if unit_id in fingerprints and encoded_otherwise(record, options.video)
    )
    for unit_id in reencoded:  # redone with this run's encoding (the restored frames are not kept once a video is done)
        del records[unit_id]
    done = ledger.done_ids(records)
    units: list[Unit] = []
    skipped: list[ManifestRow] = []
    videos: list[VideoJob] = []
    tiled: list[TiledJob] = []
    sizings: dict[str, Sizing] = {}
    problems: list[str] = []
    shapes: dict[Path, Shape] = {}
    cache: dict[tuple[object, ...], Sizing | None] = {}
    for row in rows:
        if row.id in done:
            skipped.append(row)
            continue
        try:
            job: PartedJob | None = None
            if row.is_video:
                job = plan_video(
                    row,
                    segment_frames=options.segment_frames,
                    overlap=options.overlap,
                    ledger=ledger,
                    records=records,
                    force=options.force,
                    frames_format=options.frames_format,
                    warping_error=options.warping_error,
                    tiling=TilingConfig(options.tile, options.tile_overlap, options.tile_batch, request.budget),
                    allow_short_video=options.allow_short_video,
                    video=options.video,
                )
                videos.append(job)
            else:
                sizing = _sized(row, request, shapes, cache)
                if sizing is None:  # its files cannot be read now: the unit fails with the reason, the run goes on
                    units.append(row)
                    continue
                sizings[row.id] = sizing
                if sizing.tiled:
                    job = plan_tiled(row, sizing, overlap=options.tile_overlap, ledger=ledger, records=records)
                    tiled.append(job)
                else:
                    units.append(row)
            if job is not None:
                units.extend(Book([job]).initial_units())
        except (VideoPlanError, TooLarge) as error:
            problems.append(str(error))
    if problems:
        raise PlanError(problems)
    return Plan(
        units, skipped, workers, gpus_per_worker, cpus_per_worker, videos, tiled, sizings, request.budget, fingerprints, changed, reencoded
    )


def encoded_otherwise(record: dict[str, Any], video: VideoOutput) -> bool:
    """Whether `record` is a done video line written with another codec than `video`'s, or
    (when `video` names one) another pixel format. Lines from before the choice existed were H.264."""
    if record.get("kind") != KIND_VIDEO or not is_done(record):
        return False
    if (record.get("codec") or "x264") != video.codec:
        return True
    return video.pixel_format is not None and record.get("pixel_format") != video.pixel_format


def current_records(
    records: dict[str, dict[str, Any]], fingerprints: dict[str, Fingerprint]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ledger's latest `records` without those a row's current fingerprint outdates (the
    row's own line and its parts' lines, ``<row id>#...``), and the ids of the rows that were done
    and are outdated (`pipeline.run.fingerprint`)."""
    kept: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    for unit_id, record in records.items():
        row_id = row_id_of(unit_id)
        current = fingerprints.get(row_id)
        if current is not None and current.outdates(record.get("fingerprint")):
            if is_done(record) and unit_id == row_id:
                changed.add(row_id)
            continue
        kept[unit_id] = record
    return kept, sorted(changed)


def _sized(
    row: ManifestRow, request: SizingRequest, shapes: dict[Path, Shape], cache: dict[tuple[object, ...], Sizing | None]
) -> Sizing | None:
    """`size_row` of `row`, once per distinct input and parameters; None when its files cannot be
    read (moved or damaged since validation). Raises TooLarge."""
    key = (row.input, row.task, row.scale, row.mask, row.max_iterations)
    if key not in cache:
        try:
            cache[key] = size_row(row, request, shapes)
        except TooLarge:
            raise
        except (OSError, ValueError):
            cache[key] = None
    return cache[key]
