"""What the pipeline costs on top of the restorations themselves. Prints tables; not a timed test.

    python benchmarks/pipeline_overhead.py                     # both parts, defaults below
    python benchmarks/pipeline_overhead.py --cost 2 --units 8 --rows 100000 --done 20000

(a) Orchestration: the engine is replaced by a stand-in processor that sleeps a fixed time
    (--cost seconds) and writes a tiny PNG, so everything else is the runner's own work: Ray
    actors, the queue, ledger appends (fsync'd), partial-file cleanup, results.csv. N and 2N
    units run through `pipeline.run.execute.execute` at 1 and 2 workers on a local Ray with 2 CPUs.
    Reported per run: overhead per unit = wall × workers / units − cost (pool start-up
    included, so it shrinks as runs grow), and per worker count the marginal overhead of one
    more unit, from the difference between the N- and 2N-unit runs (start-up excluded), in ms
    and as a share of a 10-second unit (a 48×48 restoration of ~100 iterations on a CPU).
(b) Planning a large manifest: a --rows-row denoise manifest pointing at one small image is
    parsed (with the file checks) and planned (`plan_run`, the ledger holding --done finished
    units whose outputs exist). Reported: seconds, and peak memory as the growth of the
    process's maximum resident set and as tracemalloc's peak of Python allocations (a second,
    slower pass). Targets: under 10 s and under 1 GiB for 100,000 rows.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import ray
import torch

from pipeline.io import write_image
from pipeline.manifest import ManifestRow, parse_manifest
from pipeline.records import STATUS_DONE, ImageRecord
from pipeline.run.execute import execute
from pipeline.run.options import RunOptions
from pipeline.run.plan import plan_run
from pipeline.work.processors import Processors

TEN_SECONDS_MS = 10_000.0


def fixed_cost_processor(
    row: ManifestRow, out_dir: Path, *, device: str, worker: str, attempt: int, steps: object = None, seconds: float = 1.0
) -> dict[str, Any]:
    """process_image's stand-in: sleep `seconds`, write a tiny image, return a "done" record."""
    started = time.perf_counter()
    time.sleep(seconds)
    target = Path(out_dir) / row.output
    write_image(target, torch.full((1, 8, 8), 0.5), "uint8")
    return ImageRecord.of(
        row,
        row.output.as_posix(),
        iterations=0,
        stop_reason="max_iterations",
        kept_iteration=0,
        bit_depth="uint8",
        seconds=time.perf_counter() - started,
        engine_seconds=seconds,
        worker=worker,
        attempt=attempt,
    ).to_dict()


def machine() -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (load average {load}), "
        f"Python {platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}, {platform.system()}"
    )


def rows_for(folder: Path, count: int, image: Path) -> list[ManifestRow]:
    return [
        ManifestRow(
            row_number=index + 2,
            id=f"unit-{index:06d}",
            task="denoise",
            input=image,
            mask=None,
            flash=None,
            reference=None,
            scale=None,
            output=Path(f"unit-{index:06d}.png"),
        )
        for index in range(count)
    ]


def small_image(folder: Path) -> Path:
    path = folder / "input.png"
    write_image(path, torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(0)), "uint8")
    return path


# ----- (a) orchestration -----------------------------------------------------------------------


def orchestration(units: int, cost: float, worker_counts: list[int]) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    processor = functools.partial(fixed_cost_processor, seconds=cost)
    print(f"\n## (a) orchestration overhead: stand-in units of {cost:g} s, local Ray with 2 CPUs\n")
    print("| workers | units | wall s | ideal s | overhead per unit ms | % of a 10 s unit |")
    print("|---|---|---|---|---|---|")
    walls: dict[tuple[int, int], float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        image = small_image(Path(scratch))
        for workers in worker_counts:
            for count in (units, 2 * units):
                out = Path(scratch) / f"out-{workers}-{count}"
                options = RunOptions(out_dir=out, workers=workers, processors=Processors(image=processor))
                plan = plan_run(rows_for(out, count, image), options, cluster=ray.cluster_resources())
                assert plan.workers == workers, plan
                started = time.perf_counter()
                summary = execute(plan, options)
                wall = time.perf_counter() - started
                assert summary.succeeded and summary.state.done == count, summary.state
                walls[workers, count] = wall
                per_unit_ms = (wall * workers / count - cost) * 1000
                print(
                    f"| {workers} | {count} | {wall:.2f} | {count * cost / workers:.2f} | {per_unit_ms:.0f} |"
                    f" {per_unit_ms / TEN_SECONDS_MS:.1%} |",
                    flush=True,
                )
    ray.shutdown()
    print("\nmarginal cost of one more unit (2N-unit run minus N-unit run; pool start-up cancels out):\n")
    print("| workers | marginal overhead per unit ms | % of a 10 s unit | fixed start-up s (N-unit run) |")
    print("|---|---|---|---|")
    for workers in worker_counts:
        small, large = walls[workers, units], walls[workers, 2 * units]
        marginal_ms = ((large - small) * workers / units - cost) * 1000
        startup = small - units * cost / workers - units * marginal_ms / 1000 / workers
        print(f"| {workers} | {marginal_ms:.0f} | {marginal_ms / TEN_SECONDS_MS:.2%} | {startup:.2f} |")


# ----- (b) planning ----------------------------------------------------------------------------


def write_big_manifest(folder: Path, rows: int) -> Path:
    path = folder / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "task", "input"])
        writer.writerows([f"unit-{index:06d}", "denoise", "input.png"] for index in range(rows))
    return path


def write_done_ledger(out: Path, done: int) -> None:
    """A ledger with `done` finished units whose (empty) output files exist."""
    out.mkdir(parents=True)
    lines = []
    for index in range(done):
        name = f"unit-{index:06d}.png"
        (out / name).touch()
        lines.append(
            json.dumps(ImageRecord(id=f"unit-{index:06d}", status=STATUS_DONE, task="denoise", input="input.png", output=name).to_dict())
        )
    (out / "results.jsonl").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def planning(rows: int, done: int) -> None:
    print(f"\n## (b) planning a {rows:,}-row manifest ({done:,} units already done in the ledger)\n")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        small_image(folder)
        manifest = write_big_manifest(folder, rows)
        out = folder / "out"
        write_done_ledger(out, done)
        options = RunOptions(out_dir=out)
        cluster = {"CPU": 2.0}

        rss_before = max_rss_mib()
        started = time.perf_counter()
        parsed = parse_manifest(manifest)
        parsed_at = time.perf_counter()
        plan = plan_run(parsed, options, cluster=cluster)
        planned_at = time.perf_counter()
        estimated = plan.estimated_iterations
        estimated_at = time.perf_counter()
        rss_growth = max_rss_mib() - rss_before
        assert len(plan.units) == rows - done and len(plan.skipped) == done, (len(plan.units), len(plan.skipped))
        del parsed, plan

        tracemalloc.start()
        plan = plan_run(parse_manifest(manifest), options, cluster=cluster)
        _ = plan.estimated_iterations
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    total = estimated_at - started
    print("| step | seconds |")
    print("|---|---|")
    print(f"| parse_manifest (with file checks) | {parsed_at - started:.2f} |")
    print(f"| plan_run (ledger: {done:,} done) | {planned_at - parsed_at:.2f} |")
    print(f"| Plan.estimated_iterations | {estimated_at - planned_at:.2f} |")
    print(f"| **total** (target < 10 s) | **{total:.2f}** |")
    print(
        f"\npeak memory (target < 1 GiB): max RSS grew by {rss_growth:.0f} MiB; tracemalloc peak of Python "
        f"allocations {traced_peak / 2**20:.0f} MiB ({traced_peak / rows:.0f} bytes per row); "
        f"estimated iterations {estimated:,}"
    )
    verdict = "met" if total < 10 and max(rss_growth, traced_peak / 2**20) < 1024 else "NOT met"
    print(f"targets {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cost", type=float, default=1.0, help="seconds each stand-in unit sleeps (default 1.0)")
    parser.add_argument("--units", type=int, default=8, help="N: runs of N and 2N units per worker count (default 8)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the planning manifest (default 100000)")
    parser.add_argument("--done", type=int, default=20_000, help="of them already done in the ledger (default 20000)")
    parser.add_argument("--skip-orchestration", action="store_true")
    parser.add_argument("--skip-planning", action="store_true")
    args = parser.parse_args()
    print(machine())
    if not args.skip_planning:  # first: before Ray and its threads grow the process
        planning(args.rows, min(args.done, args.rows))
    if not args.skip_orchestration:
        orchestration(args.units, args.cost, args.workers)


if __name__ == "__main__":
    main()
