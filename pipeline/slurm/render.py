"""The sbatch script of a submission: `render_script(request, template)`, a pure function.

A template (``slurm/ray-cluster.sbatch``, ``slurm/array.sbatch``) is a bash script with two
marker lines: ``#@SBATCH@`` becomes the ``#SBATCH`` directives and ``#@SETTINGS@`` the
``DIP_*`` variables the script body reads. Every value is quoted with `shlex.quote` (sbatch
parses quoted directive values the same way), so any path (spaces, quotes, ``;``) is one word.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import PurePath

SBATCH_MARKER = "#@SBATCH@"
SETTINGS_MARKER = "#@SETTINGS@"
TEMPLATES = {"ray": "ray-cluster.sbatch", "array": "array.sbatch"}
LOG_FOLDER = "slurm"  # inside the output folder: the rendered scripts and the jobs' logs

# SLURM's --time forms, each with the factors of its fields in seconds.
_TIME_FORMS: tuple[tuple[re.Pattern[str], tuple[int, ...]], ...] = (
    (re.compile(r"(\d+)"), (60,)),
    (re.compile(r"(\d+):(\d+)"), (60, 1)),
    (re.compile(r"(\d+):(\d+):(\d+)"), (3600, 60, 1)),
    (re.compile(r"(\d+)-(\d+)"), (86400, 3600)),
    (re.compile(r"(\d+)-(\d+):(\d+)"), (86400, 3600, 60)),
    (re.compile(r"(\d+)-(\d+):(\d+):(\d+)"), (86400, 3600, 60, 1)),
)
TIME_FORMS = "minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds"


def time_limit_seconds(text: str) -> int:
    """A SLURM --time value in seconds; ValueError listing the accepted forms."""
    for pattern, factors in _TIME_FORMS:
        match = pattern.fullmatch(text.strip())
        if match:
            return sum(int(field) * factor for field, factor in zip(match.groups(), factors, strict=True))
    raise ValueError(f"--time {text!r} is not a SLURM time limit; accepted forms: {TIME_FORMS}")


@dataclass(frozen=True)
class JobRequest:
    """What to submit. Paths should be absolute: the job may start in another folder."""

    manifest: PurePath
    out: PurePath
    python: str  # the interpreter the job runs `python -m pipeline.cli` with (same install on every node)
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_node: int = 8  # for Ray and the data loading around each GPU
    time: str = "04:00:00"
    partition: str | None = None  # None: the cluster's default partition
    array: int | None = None  # None: one Ray job over `nodes`; N: a job array of N one-node shards
    signal_seconds: int = 300  # SIGUSR1 this long before the time limit: stop, flush, requeue
    job_name: str = "dip-restore"
    mem: str | None = None  # --mem per node, e.g. "64G"; None: the cluster's default
    run_options: tuple[str, ...] = ()  # more `pipeline run` options, e.g. ("--retries", "1")

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.gpus_per_node < 0 or self.cpus_per_node < 1:
            raise ValueError(
                f"need --nodes >= 1, --gpus-per-node >= 0, --cpus-per-node >= 1; "
                f"got {self.nodes}, {self.gpus_per_node}, {self.cpus_per_node}"
            )
        if self.array is not None and (self.array < 1 or self.nodes != 1):
            raise ValueError(
                f"--array N runs N one-node tasks: N must be >= 1 and --nodes 1 (got --array {self.array}, "
                f"--nodes {self.nodes}); leave --array out to run one Ray job over several nodes"
            )
        limit = time_limit_seconds(self.time)
        if not 0 < self.signal_seconds < limit:
            raise ValueError(f"--signal-seconds {self.signal_seconds} must be > 0 and shorter than --time {self.time} ({limit} s)")

    @property
    def template(self) -> str:
        """The template's file name in the `slurm/` folder."""
        return TEMPLATES["array" if self.array is not None else "ray"]

    @property
    def stop_grace(self) -> int:
        """Seconds running units get to finish after the warning signal: half the warning."""
        return self.signal_seconds // 2


def render_script(request: JobRequest, template: str) -> str:
    """The sbatch script for `request` from the `template` text (see the module docstring)."""
    for marker in (SBATCH_MARKER, SETTINGS_MARKER):
        if template.count(f"\n{marker}\n") != 1:
            raise ValueError(f"the template needs the line {marker} exactly once")
    directives = "\n".join(_directive(flag, value) for flag, value in sbatch_options(request))
    settings = "\n".join(f"{name}={value}" for name, value in _settings(request))
    return template.replace(f"\n{SBATCH_MARKER}\n", f"\n{directives}\n").replace(f"\n{SETTINGS_MARKER}\n", f"\n{settings}\n")


def sbatch_options(request: JobRequest) -> list[tuple[str, str | None]]:
    """The #SBATCH options of `request`, in a fixed order (None: a flag without a value)."""
    log_name = "%x-%A_%a.out" if request.array is not None else "%x-%j.out"
    options: list[tuple[str, str | None]] = [
        ("job-name", request.job_name),
        ("nodes", str(request.nodes)),
        ("ntasks-per-node", "1"),
        ("cpus-per-task", str(request.cpus_per_node)),
    ]
    if request.gpus_per_node:
        options.append(("gres", f"gpu:{request.gpus_per_node}"))
    if request.mem is not None:
        options.append(("mem", request.mem))
    options.append(("time", request.time))
    if request.partition is not None:
        options.append(("partition", request.partition))
    if request.array is not None:
        options.append(("array", f"0-{request.array - 1}"))
    options += [
        ("output", f"{_escape_percent(str(request.out / LOG_FOLDER))}/{log_name}"),
        ("open-mode", "append"),  # a requeued job adds to its log instead of replacing it
        ("signal", f"B:USR1@{request.signal_seconds}"),
        ("requeue", None),
    ]
    return options


def _settings(request: JobRequest) -> list[tuple[str, str]]:
    run_options = " ".join(shlex.quote(option) for option in request.run_options)
    settings = [
        ("DIP_PYTHON", shlex.quote(request.python)),
        ("DIP_MANIFEST", shlex.quote(str(request.manifest))),
        ("DIP_OUT", shlex.quote(str(request.out))),
        ("DIP_GPUS_PER_NODE", shlex.quote(str(request.gpus_per_node))),
        ("DIP_STOP_GRACE", shlex.quote(str(request.stop_grace))),
    ]
    if request.array is not None:
        settings.append(("DIP_SHARDS", shlex.quote(str(request.array))))
    settings.append(("DIP_RUN_OPTIONS", f"({run_options})"))
    return settings


def _directive(flag: str, value: str | None) -> str:
    return f"#SBATCH --{flag}" if value is None else f"#SBATCH --{flag}={shlex.quote(value)}"


def _escape_percent(path: str) -> str:
    """SLURM expands %j, %x, ... in --output; a literal % in a folder name is written %%."""
    return path.replace("%", "%%")
