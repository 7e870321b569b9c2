"""The plan of a run: which units run now, which are skipped as done, and on how many workers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dip_engine import get_task
from dip_engine.video import ChainConfig
from pipeline.ledger import Ledger
from pipeline.manifest import ManifestRow
from pipeline.run.options import RunOptions
from pipeline.video.book import VideoBook, VideoJob, plan_video
from pipeline.work.units import AssemblyUnit, SegmentUnit, Unit


@dataclass(frozen=True)
class Plan:
    units: list[Unit]  # runnable now: image rows, video segments, assemblies of videos whose segments are done
    skipped: list[ManifestRow]  # rows already done according to the ledger (images and whole videos)
    workers: int
    gpus_per_worker: int
    cpus_per_worker: int
    videos: list[VideoJob] = field(default_factory=list)  # video rows to finish in this run

    @property
    def unit_count(self) -> int:
        """Units this run executes: `units`, plus the assemblies that follow pending segments."""
        return len(self.units) + sum(1 for job in self.videos if job.pending)

    @property
    def segments_done(self) -> int:
        """Segments of unfinished videos that an earlier run finished (skipped in this one)."""
        return sum(len(job.done) for job in self.videos)

    @property
    def images(self) -> list[ManifestRow]:
        return [unit for unit in self.units if isinstance(unit, ManifestRow)]

    @property
    def segments(self) -> list[SegmentUnit]:
        return [unit for unit in self.units if isinstance(unit, SegmentUnit)]

    @property
    def estimated_iterations(self) -> int:
        """Upper bound on optimisation iterations (the iteration caps) of the planned units.

        A segment counts its cold first frame at the row's cap (or, when the segment starts with
        warm-up frames, at the chain's short warm-up cold start) and every other frame of its
        chain (warm-up frames included) at the task's `ChainConfig.for_task` warm cap.
        """
        total = 0
        for unit in self.units:
            if isinstance(unit, AssemblyUnit):
                continue
            row = unit if isinstance(unit, ManifestRow) else unit.row
            task = get_task(row.task)
            cap = row.max_iterations or task.config_for(scale=row.scale).fit.max_iterations
            if isinstance(unit, ManifestRow):
                total += cap
                continue
            chain = ChainConfig.for_task(task)
            first = min(cap, chain.warmup_cold_iterations) if unit.segment.warmup else cap
            total += first + (unit.segment.chain_frames - 1) * chain.warm_max_iterations
        return total


def local_resources() -> dict[str, float]:
    """What this process may use without Ray: the CPUs of its SLURM task or its CPU affinity, and the GPUs torch sees."""
    import torch

    from pipeline.slurm.environment import SlurmEnvironment

    cpus = SlurmEnvironment.current().cpus_per_task or len(os.sched_getaffinity(0))
    return {"CPU": float(cpus), "GPU": float(torch.cuda.device_count())}


def plan_run(rows: list[ManifestRow], options: RunOptions, *, cluster: dict[str, float] | None = None) -> Plan:
    """Which units run, which are skipped, and how they are sharded over workers.

    A row whose latest ledger line is done (and whose output exists) is skipped, image or
    video. An unfinished video is cut into segments, and those an earlier run finished are
    skipped (`pipeline.video.book.plan_video`, which probes the video: frame count, frame rate);
    a video whose segments are all done is planned as its assembly, with the run's options.
    Raises `pipeline.video.book.VideoPlanError` for a video input that cannot be probed.
    With `options.shard`, only that shard's rows are planned (`pipeline.run.shard.Shard.select`).
    `cluster` is the resources to plan workers on (default: this machine's, `local_resources`).
    """
    if options.shard is not None:
        rows = options.shard.select(rows)
    ledger = Ledger(options.out_dir)
    records = {} if options.force else ledger.load()
    done = ledger.done_ids(records)
    units: list[Unit] = []
    skipped: list[ManifestRow] = []
    videos: list[VideoJob] = []
    for row in rows:
        if row.id in done:
            skipped.append(row)
        elif not row.is_video:
            units.append(row)
        else:
            job = plan_video(
                row, segment_frames=options.segment_frames, overlap=options.overlap, ledger=ledger, records=records, force=options.force
            )
            videos.append(job)
            units.extend(video_book([job], options).initial_units())
    resources = cluster if cluster is not None else local_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if options.in_process:
        return Plan(units, skipped, workers=1, gpus_per_worker=min(gpus, 1), cpus_per_worker=cpus, videos=videos)
    if gpus > 0:
        return Plan(units, skipped, workers=gpus, gpus_per_worker=1, cpus_per_worker=max(1, cpus // gpus), videos=videos)
    workers = options.workers or max(1, cpus // 2)
    return Plan(units, skipped, workers=workers, gpus_per_worker=0, cpus_per_worker=max(1, cpus // workers), videos=videos)


def video_book(videos: list[VideoJob], options: RunOptions) -> VideoBook:
    """The book of a run's videos, with the run's assembly options (the plan's and the run's alike)."""
    return VideoBook(videos, frames_format=options.frames_format, warping_error=options.warping_error)
