"""`pipeline slurm submit`'s script: the pure render function, pinned by golden files, hostile paths included."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from pipeline.slurm.render import SBATCH_MARKER, JobRequest, render_script, time_limit_seconds
from pipeline.slurm.submit import load_template

GOLDEN = Path(__file__).parent / "golden"
HOSTILE = PurePosixPath("/data/a'; echo x")  # a folder name that breaks any unquoted script
# UPDATE_GOLDEN=1 python -m pytest tests/pipeline/slurm/test_slurm_render.py rewrites the golden files after a deliberate change.
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def request(**changes: object) -> JobRequest:
    fields: dict[str, object] = {
        "manifest": HOSTILE / "in $HOME" / "manifest.csv",
        "out": HOSTILE / "out 100%",
        "python": "/opt/venv bin/python",
        "nodes": 4,
        "gpus_per_node": 8,
        "cpus_per_node": 64,
        "time": "1-12:00:00",
        "partition": "gpu`reboot`",
        "signal_seconds": 600,
        "job_name": "films; rm -rf ~",
        "mem": "480G",
        "run_options": ("--retries", "1", "--segment-frames", "96"),
    }
    fields.update(changes)
    return JobRequest(**fields)  # type: ignore[arg-type]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; if deliberate, rerun with UPDATE_GOLDEN=1"


@pytest.mark.parametrize(
    ("name", "changes"),
    [("ray-cluster.sbatch", {}), ("array.sbatch", {"nodes": 1, "array": 16})],
)
def test_rendered_scripts_match_the_golden_files(name: str, changes: dict[str, object]) -> None:
    job = request(**changes)
    assert job.template == name
    text = render_script(job, load_template(name))
    check_golden(name, text)
    assert SBATCH_MARKER not in text and "#@SETTINGS@" not in text
    assert subprocess.run(["bash", "-n"], input=text, text=True, check=False).returncode == 0


def settings_as_bash_sees_them(text: str) -> dict[str, str]:
    """Run only the DIP_* assignments of a script in bash and read each value back."""
    lines = [line for line in text.splitlines() if line.startswith("DIP_")]
    names = [line.split("=", 1)[0] for line in lines]
    dump = [f'printf "%s=%s\\0" {name} "${{{name}[*]}}"' for name in names]
    done = subprocess.run(["bash", "-c", "\n".join(lines + dump)], capture_output=True, text=True, check=True)
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if item)


def test_every_value_reaches_the_script_as_one_word() -> None:
    job = request(nodes=1, array=3)
    values = settings_as_bash_sees_them(render_script(job, load_template(job.template)))
    assert values["DIP_MANIFEST"] == "/data/a'; echo x/in $HOME/manifest.csv"
    assert values["DIP_OUT"] == "/data/a'; echo x/out 100%"
    assert values["DIP_PYTHON"] == "/opt/venv bin/python"
    assert values["DIP_SHARDS"] == "3" and values["DIP_STOP_GRACE"] == "300"
    assert values["DIP_RUN_OPTIONS"] == "--retries 1 --segment-frames 96"


def test_each_directive_is_a_flag_and_one_shell_word() -> None:
    """sbatch unquotes directive values like a shell (the cluster tests submit a hostile folder for real)."""
    job = request()
    for line in render_script(job, load_template(job.template)).splitlines():
        if line.startswith("#SBATCH "):
            words = subprocess.run(
                ["bash", "-c", 'printf "%s\\n" ' + line.removeprefix("#SBATCH ")], capture_output=True, text=True, check=True
            ).stdout.splitlines()
            assert len(words) == 1 and words[0].startswith("--"), line


def test_percent_in_the_output_folder_is_escaped_for_slurm() -> None:
    job = request()
    text = render_script(job, load_template(job.template))
    assert "#SBATCH --output='/data/a'\"'\"'; echo x/out 100%%/slurm/%x-%j.out'" in text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 5400), ("5:30", 330), ("04:00:00", 14400), ("2-0", 172800), ("1-2:30", 95400), ("1-00:00:10", 86410)],
)
def test_time_limits_in_every_slurm_form(text: str, seconds: int) -> None:
    assert time_limit_seconds(text) == seconds


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time": "4h"}, "accepted forms: minutes"),
        ({"time": "10", "signal_seconds": 600}, "shorter than --time 10 (600 s)"),
        ({"array": 4}, "--nodes 1"),
        ({"array": 0, "nodes": 1}, "N must be >= 1"),
        ({"gpus_per_node": -1}, "--gpus-per-node >= 0"),
    ],
)
def test_bad_requests_say_what_to_change(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        request(**changes)


def test_a_template_without_its_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="#@SBATCH@ exactly once"):
        render_script(request(), "#!/bin/bash\n#@SETTINGS@\necho\n")
