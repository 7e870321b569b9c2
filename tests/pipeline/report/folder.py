"""A real small output folder for the report tests: images and a video written with pipeline.io
from scikit-image's photographs, and a ledger of synthetic lines that name them (`make_run_folder`)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline.io import VideoWriter, write_image
from tests.conftest import photo
from tests.pipeline.report.synthetic import failed_line, image_line, per_frame, segment_line, video_line, write_ledger

EVIL_ID = '<script>alert("x")</script>&"evil"'
VIDEO_FRAMES = 8


def _noisy(pixels: torch.Tensor, seed: int, sigma: float = 0.1) -> torch.Tensor:
    noise = torch.randn(pixels.shape, generator=torch.Generator().manual_seed(seed)) * sigma
    return (pixels + noise).clamp(0, 1)


def _write_video(path: Path, frames: list[torch.Tensor]) -> None:
    _, height, width = frames[0].shape
    with VideoWriter(path, fps=24, width=width, height=height) as writer:
        for frame in frames:
            writer.write(frame)


def real_images(inputs: Path, out: Path) -> list[dict[str, object]]:
    """Three real image rows, written: an 8-bit colour PNG (denoise), a 16-bit grey TIFF restored
    ×2 into a 16-bit PNG (sr2), a float TIFF without a reference; their done lines."""
    cat = photo("chelsea", 40, 120, 96, 128)
    write_image(inputs / "cat.png", _noisy(cat, 1))
    write_image(out / "cat.png", cat)
    moon = photo("camera", 100, 150, 96, 128, grey=True)
    small = F.interpolate(moon[None], scale_factor=0.5, mode="area")[0]
    write_image(inputs / "moon.tif", small, "uint16")
    write_image(out / "moon.png", moon, "uint16")
    rocket = photo("astronaut", 10, 200, 80, 120)
    write_image(inputs / "rocket.tif", _noisy(rocket, 2), "float32")
    write_image(out / "rocket.tif", rocket, "float32")
    return [
        image_line("cat", 2, input=str(inputs / "cat.png"), output="cat.png", iterations=1200, kept_iteration=850),
        image_line("moon", 3, task="sr2", input=str(inputs / "moon.tif"), output="moon.png", psnr_in=24.0, psnr_out=27.5),
        image_line("rocket", 4, input=str(inputs / "rocket.tif"), output="rocket.tif", rule=None, psnr_in=None, psnr_out=None),
    ]


def _images(inputs: Path, out: Path) -> list[dict[str, object]]:
    return real_images(inputs, out) + [
        image_line("gone", 5, input=str(inputs / "cat.png"), output="gone.png"),
        image_line(EVIL_ID, 6, input=str(inputs / "cat.png"), output="cat.png", psnr_out=18.0),
        image_line("old", 7, input=str(inputs / "cat.png"), output="cat.png", trace=None, rule=None),
        failed_line("broken", 8, "cannot decode /archive/broken.png as an image: the file is empty (0 bytes)"),
    ]


def _videos(inputs: Path, out: Path) -> list[dict[str, object]]:
    clean = [photo("coffee", 20 + 4 * index, 60 + 6 * index, 48, 64) for index in range(VIDEO_FRAMES)]
    _write_video(inputs / "clip.mp4", [_noisy(frame, 10 + index) for index, frame in enumerate(clean)])
    _write_video(out / "clip.mp4", clean)
    return [
        video_line("clip", 9, VIDEO_FRAMES, input=str(inputs / "clip.mp4"), output="clip.mp4", per_frame=per_frame(VIDEO_FRAMES)),
        segment_line("film", 0, 3, 10),
    ]


def make_run_folder(root: Path) -> Path:
    """An output folder with three real images (8-bit colour PNG; sr: 16-bit grey TIFF in, PNG out;
    float TIFF), a real video, and ledger lines for them plus a missing output, a malicious id, a
    line without a trace, a failure and a video in progress."""
    inputs, out = root / "inputs", root / "out"
    write_ledger(out, _images(inputs, out) + _videos(inputs, out))
    return out
