"""`submit_job`: render a template for a request, write the script next to the output, sbatch it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.io import atomic_path
from pipeline.slurm.commands import SlurmCommands
from pipeline.slurm.render import LOG_FOLDER, JobRequest, render_script


@dataclass(frozen=True)
class Submission:
    script: Path  # the rendered script, in <out>/slurm/
    job_id: str


def template_folder() -> Path:
    """The repository's `slurm/` folder, which holds the templates."""
    return Path(__file__).resolve().parents[2] / "slurm"


def load_template(name: str) -> str:
    """The text of template `name` (e.g. 'ray-cluster.sbatch')."""
    path = template_folder() / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the sbatch template {path} is missing; `pipeline slurm` needs the project's checkout "
            "(install it with `pip install -e .` from the repository)"
        ) from None


def script_text(request: JobRequest) -> str:
    """The sbatch script for `request` (what --dry-run prints)."""
    return render_script(request, load_template(request.template))


def write_script(request: JobRequest, text: str, now: datetime) -> Path:
    """Write `text` as <out>/slurm/<template stem>-<UTC time>.sbatch; its path."""
    stem = Path(request.template).stem
    path = Path(request.out) / LOG_FOLDER / f"{stem}-{now.astimezone(timezone.utc):%Y%m%dT%H%M%S%fZ}.sbatch"
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def submit_job(request: JobRequest, commands: SlurmCommands, now: datetime | None = None) -> Submission:
    """Render, write and sbatch `request`; raises `SlurmError` if sbatch refuses it."""
    script = write_script(request, script_text(request), now or datetime.now(timezone.utc))
    return Submission(script=script, job_id=commands.sbatch(script))
