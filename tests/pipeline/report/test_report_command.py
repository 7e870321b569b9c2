"""`pipeline report OUT`, and the report `pipeline run` writes when it ends (also on resume)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from pipeline.cli import report_command as report_module
from pipeline.cli.app import app
from pipeline.io import write_image
from tests.conftest import photo


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the command crashed:\n{result.output}") from result.exception
    return result


def test_report_rebuilds_the_page_and_prints_its_path_and_counts(run_folder: Path) -> None:
    result = invoke("report", run_folder)
    assert result.exit_code == 0, result.output
    assert (run_folder / "report.html").is_file()
    text = " ".join(result.output.split())
    assert "report.html" in text and "9 units (7 images, 2 videos): 7 done, 1 failed, 1 running" in text
    assert "6 image cards, 1 video card" in text


def test_a_folder_without_a_ledger_exits_2(tmp_path: Path) -> None:
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "no ledger" in result.output and not (tmp_path / "report.html").exists()
    missing = invoke("report", tmp_path / "nowhere")
    assert missing.exit_code == 2 and "is not a folder" in missing.output


def test_a_report_that_cannot_be_written_warns_and_lets_the_run_stand(
    run_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(out: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "make_report", refuse)
    report_module.write_report_after_run(run_folder, Console())
    err = " ".join(capsys.readouterr().err.split())
    assert "warning" in err and "No space left on device" in err and f"pipeline report {run_folder}" in err


def test_a_run_writes_the_report_and_a_resumed_run_rewrites_it(tmp_path: Path) -> None:
    write_image(tmp_path / "in" / "cat.png", photo("chelsea", 50, 150, 36, 36))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,task,input,max_iterations\ncat,denoise,in/cat.png,5\n", encoding="utf-8")
    out = tmp_path / "out"
    first = invoke("run", manifest, "--out", out, "--no-ray")
    assert first.exit_code == 0, first.output
    page = out / "report.html"
    assert page.is_file() and "report: " in first.output
    html = page.read_text(encoding="utf-8")
    assert 'id="card-1"' in html and "data:image/png;base64," in html
    page.unlink()
    resumed = invoke("run", manifest, "--out", out, "--no-ray")  # nothing to do: the report is still rewritten
    assert resumed.exit_code == 0, resumed.output
    assert "nothing to do" in resumed.output and page.is_file()
