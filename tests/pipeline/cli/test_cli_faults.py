"""Bad rows and a hostile output folder through the `pipeline` command: a non-binary mask, damaged
pixel data (`validate --deep`), an output that a symbolic link leads out of the output folder, and
a truncated video (`run --allow-short-video`). Runs are in-process (`--no-ray`)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import pipeline.work.segment
from dip_engine import FitConfig, NetConfig, RestoreConfig, StoppingConfig
from dip_engine.video import ChainConfig, FrameResult, restore_video
from pipeline.io import probe_sequence
from tests.pipeline.cli.test_cli import SIDE, hole_mask, invoke, ledger_lines, manifest, rgb, write
from tests.pipeline.io.test_short_video import write_truncated_clip


def cut_jpeg(path: Path) -> Path:
    """A JPEG photograph whose headers are intact and whose entropy-coded data is cut in the middle."""
    write(path, rgb(SIDE))
    encoded = path.read_bytes()
    start = encoded.index(b"\xff\xda")  # start of scan
    path.write_bytes(encoded[: start + (len(encoded) - start) // 2])
    return path


def test_validate_refuses_a_non_binary_mask(tmp_path: Path) -> None:
    write(tmp_path / "photo.png", rgb(SIDE))
    write(tmp_path / "soft_mask.png", hole_mask(SIDE, value=128))
    result = invoke("validate", manifest(tmp_path, "soft,inpaint,photo.png,soft_mask.png,,,,,,"))
    assert result.exit_code == 2, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith("manifest.csv, row 2, column 'mask': the mask ") and "is not binary: 72 of 1296 pixels are grey" in line
    assert "threshold it" in line


def test_validate_deep_decodes_every_image(tmp_path: Path) -> None:
    cut_jpeg(tmp_path / "cut.jpg")
    path = manifest(tmp_path, "cut,denoise,cut.jpg,,,,,,,")
    shallow = invoke("validate", path)
    assert shallow.exit_code == 0, shallow.output
    assert "image headers read, masks decoded whole (--deep decodes every image)" in shallow.stdout
    deep = invoke("validate", path, "--deep")
    assert deep.exit_code == 2
    (line,) = deep.stdout.splitlines()
    assert line.startswith("manifest.csv, row 2, column 'input': its header reads but its pixels do not: cannot decode ")
    assert "1 problem" in deep.stderr and "Traceback" not in deep.output


def test_an_output_a_link_leads_out_of_the_output_folder_exits_2(tmp_path: Path) -> None:
    write(tmp_path / "photo.png", rgb(SIDE))
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "link")
    path = manifest(tmp_path, "fine,denoise,photo.png,,,,,,2,", "escape,denoise,photo.png,,,,,link/x.png,2,")
    assert invoke("validate", path).exit_code == 0  # without --out there is nothing to resolve against
    expected = f"row 3, column 'output': 'link/x.png' resolves to {elsewhere / 'x.png'}, outside the output folder {out}"
    validated = invoke("validate", path, "--out", out)
    assert validated.exit_code == 2 and expected in validated.stdout
    run = invoke("run", path, "--out", out, "--no-ray")
    assert run.exit_code == 2, run.output
    assert expected in run.stderr and "replace the link with a real folder" in run.stderr
    assert not list(elsewhere.iterdir()) and not (out / "results.jsonl").exists()  # nothing ran


# ----- a truncated video ------------------------------------------------------------------------


@pytest.fixture
def cheap_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    """Video segments run in this process (`--no-ray`) fit a tiny network for a few iterations: the
    files and the ledger are under test here, not the restoration."""
    tiny = RestoreConfig(net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)), fit=FitConfig(max_iterations=3))
    chain = ChainConfig(warm_max_iterations=2, warm_stopping=StoppingConfig(window=2, patience=1, min_iterations=2))

    def cheap(*args: Any, **kwargs: Any) -> Iterator[FrameResult]:
        return restore_video(*args, **{**kwargs, "config": tiny, "chain": chain})

    monkeypatch.setattr(pipeline.work.segment, "restore_video", cheap)
    torch.set_num_threads(1)


@pytest.fixture
def truncated_clip(tmp_path: Path) -> Path:
    return write_truncated_clip(tmp_path)[1]


def test_a_truncated_video_fails_its_row_unless_allowed(tmp_path: Path, truncated_clip: Path, cheap_chains: None) -> None:
    info = probe_sequence(truncated_clip)
    assert info.expected_frames == 12 and info.frames < 11  # the header promises 12; fewer decode
    shortfall = f"decoded {info.frames} of 12 frames: file truncated?"
    path = tmp_path / "manifest.csv"
    path.write_text("id,task,input,max_iterations\nclip,denoise,clip.mp4,3\n", encoding="utf-8")
    assert invoke("validate", path).exit_code == 0  # the header and the frames that exist decode

    out = tmp_path / "out"
    refused = invoke("run", path, "--out", out, "--no-ray", "--segment-frames", "2", "-q")
    assert refused.exit_code == 1, refused.output
    lines = {record["id"]: record for record in ledger_lines(out)}
    assert sorted(lines) == ["clip", "clip#seg0000"]  # one segment ran, failed at once, and failed the video
    video = lines["clip"]
    assert video["status"] == "failed" and shortfall in video["error"] and "--allow-short-video" in video["error"]
    assert (video["frames_expected"], video["frames_decoded"]) == (12, info.frames)
    assert lines["clip#seg0000"]["iterations"] is None and not (out / "clip.mp4").exists()

    allowed = invoke("run", path, "--out", out, "--no-ray", "--segment-frames", "0", "--allow-short-video", "-q")
    assert allowed.exit_code == 0, allowed.output
    video = ledger_lines(out)[-1]
    assert video["id"] == "clip" and video["status"] == "done" and video["frames"] == info.frames
    assert (video["frames_expected"], video["frames_decoded"]) == (12, info.frames)
    assert probe_sequence(out / "clip.mp4").frames == info.frames
    with open(out / "results.csv", newline="", encoding="utf-8") as table:
        (row,) = list(csv.DictReader(table))
    assert (row["frames_expected"], row["frames_decoded"]) == ("12", str(info.frames))
    assert np.isfinite(float(row["seconds"]))
