"""pipeline.io: image and video files round-trip through real encoders, fail clearly, write atomically."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from skimage import data

import pipeline.io.image as image_module
from pipeline.io import (
    ImageReadError,
    LoadedImage,
    VideoReadError,
    VideoWriter,
    atomic_path,
    is_image_path,
    is_video_path,
    iter_video_frames,
    probe_image,
    probe_video,
    read_image,
    write_image,
)

# ----- helpers -------------------------------------------------------------------------------


def astronaut(height: int = 64, width: int = 80, *, grey: bool = False) -> torch.Tensor:
    """A crop of the astronaut photograph (face and suit: edges, flat areas) as float C×H×W."""
    pixels = data.astronaut()[40 : 40 + height, 150 : 150 + width].astype(np.float32) / 255
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    return tensor.mean(0, keepdim=True) if grey else tensor


def camera_u16(height: int = 48, width: int = 64) -> np.ndarray:
    """A 16-bit greyscale crop of the cameraman photograph with all 16 bits in use."""
    crop = data.camera()[100 : 100 + height, 200 : 200 + width].astype(np.uint16)
    return crop * 257 + np.arange(height * width, dtype=np.uint16).reshape(height, width) % 257


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def leftovers(folder: Path) -> list[str]:
    """Temporary files left in `folder` by the atomic writers."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and ".tmp" in p.name)


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", *args], check=True)


def running_ffmpeg_children() -> list[int]:
    """Process ids of live (not zombie) ffmpeg processes started by this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and name.startswith("ffmpeg"):
            found.append(int(entry.name))
    return found


# ----- images: round trips -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("bit_depth", ["uint8", "uint16"])
@pytest.mark.parametrize("grey", [True, False], ids=["grey", "colour"])
def test_lossless_round_trip_is_exact(tmp_path: Path, suffix: str, bit_depth: str, grey: bool) -> None:
    levels = 255 if bit_depth == "uint8" else 65535
    pixels = (astronaut(grey=grey) * levels).round() / levels  # exactly representable values
    path = tmp_path / f"photo{suffix}"
    write_image(path, pixels, bit_depth)
    loaded = read_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.bit_depth == bit_depth
    assert loaded.format == ("png" if suffix == ".png" else "tiff")
    assert loaded.pixels.dtype == torch.float32
    assert loaded.pixels.shape == pixels.shape
    assert torch.allclose(loaded.pixels, pixels, atol=0.25 / levels, rtol=0)
    assert probe_image(path) == tuple(pixels.shape)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("grey", [True, False], ids=["grey", "colour"])
def test_float32_tiff_round_trip_is_exact(tmp_path: Path, grey: bool) -> None:
    pixels = astronaut(grey=grey) ** 2.2  # arbitrary floats, not on an 8-bit grid
    write_image(tmp_path / "linear.tif", pixels, "float32")
    loaded = read_image(tmp_path / "linear.tif")
    assert loaded.bit_depth == "float32"
    assert torch.equal(loaded.pixels, pixels)


def test_sixteen_bit_files_keep_all_sixteen_bits(tmp_path: Path) -> None:
    grey = camera_u16()
    colour = np.stack([grey, grey[::-1], 65535 - grey], axis=-1)
    for name, samples in [("grey.png", grey), ("colour.png", colour), ("grey.tif", grey), ("colour.tif", colour)]:
        pixels = torch.from_numpy(samples.astype(np.float32) / 65535)
        pixels = pixels[None] if pixels.dim() == 2 else pixels.permute(2, 0, 1)
        write_image(tmp_path / name, pixels, "uint16")
        back = (read_image(tmp_path / name).pixels.double() * 65535).round().to(torch.int64)
        assert torch.equal(back, (pixels.double() * 65535).round().to(torch.int64)), name


@pytest.mark.parametrize("grey", [True, False], ids=["grey", "colour"])
def test_jpeg_round_trip_is_close(tmp_path: Path, grey: bool) -> None:
    pixels = astronaut(grey=grey)
    for suffix in (".jpg", ".JPEG"):
        write_image(tmp_path / f"photo{suffix}", pixels)
        loaded = read_image(tmp_path / f"photo{suffix}")
        assert (loaded.format, loaded.bit_depth) == ("jpeg", "uint8")
        assert loaded.pixels.shape == pixels.shape
        assert psnr(loaded.pixels, pixels) > 35


def test_write_rounds_to_nearest_and_clamps(tmp_path: Path) -> None:
    pixels = torch.tensor([[[0.6 / 255, 1.4 / 255, 100.5001 / 255, -0.2, 1.3]]])
    write_image(tmp_path / "levels.png", pixels)
    assert iio.imread(tmp_path / "levels.png").tolist() == [[1, 1, 101, 0, 255]]


def test_png_written_by_other_software_reads_the_same(tmp_path: Path) -> None:
    rgb = data.astronaut()[:40, :50]
    iio.imwrite(tmp_path / "plain.png", rgb)
    loaded = read_image(tmp_path / "plain.png")
    assert torch.equal(loaded.pixels, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)


# ----- images: conversion rules --------------------------------------------------------------


def test_alpha_channel_is_dropped(tmp_path: Path) -> None:
    rgb = data.astronaut()[:40, :50]
    alpha = np.full(rgb.shape[:2], 77, np.uint8)
    iio.imwrite(tmp_path / "rgba.png", np.dstack([rgb, alpha]))
    iio.imwrite(tmp_path / "grey_alpha.png", np.dstack([rgb[..., 0], alpha]), mode="LA")
    tifffile.imwrite(tmp_path / "rgba.tif", np.dstack([rgb, alpha]), photometric="rgb")

    expected = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    for name in ("rgba.png", "rgba.tif"):
        assert torch.equal(read_image(tmp_path / name).pixels, expected), name
        assert probe_image(tmp_path / name) == (3, 40, 50)
    assert torch.equal(read_image(tmp_path / "grey_alpha.png").pixels, expected[:1])
    assert probe_image(tmp_path / "grey_alpha.png") == (1, 40, 50)


def test_sixteen_bit_rgba_png_keeps_sixteen_bits_and_drops_alpha(tmp_path: Path) -> None:
    grey = camera_u16(24, 32)
    rgba = np.dstack([grey, np.roll(grey, 5, axis=1), 65535 - grey, np.full_like(grey, 1000)])
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgba64le",
         "-s", "32x24", "-i", "pipe:0", "-frames:v", "1", "-c:v", "png", "-pix_fmt", "rgba64be",
         "-update", "1", str(tmp_path / "rgba64.png")],
        input=rgba.astype("<u2").tobytes(), check=True,
    )  # fmt: skip
    loaded = read_image(tmp_path / "rgba64.png")
    assert loaded.bit_depth == "uint16"
    expected = torch.from_numpy(rgba[..., :3].astype(np.int32)).permute(2, 0, 1)
    assert torch.equal((loaded.pixels.double() * 65535).round().to(torch.int32), expected)
    assert probe_image(tmp_path / "rgba64.png") == (3, 24, 32)


def test_palette_and_one_bit_pngs(tmp_path: Path) -> None:
    photo = Image.fromarray(data.astronaut()[:40, :50])
    photo.quantize(16).save(tmp_path / "palette.png")
    Image.fromarray(data.camera()[150:190, 200:250] > 128).save(tmp_path / "bilevel.png")

    palette = read_image(tmp_path / "palette.png")
    assert palette.pixels.shape == (3, 40, 50) and palette.bit_depth == "uint8"
    assert psnr(palette.pixels, torch.from_numpy(data.astronaut()[:40, :50]).permute(2, 0, 1) / 255) > 20
    bilevel = read_image(tmp_path / "bilevel.png")
    assert bilevel.pixels.shape == (1, 40, 50)
    assert set(bilevel.pixels.unique().tolist()) == {0.0, 1.0}


def test_tiff_channels_first_and_multi_page(tmp_path: Path) -> None:
    rgb = data.astronaut()[:40, :50]
    planar = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    with_alpha = np.concatenate([planar, planar[:1]])
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "planar_rgba.tif", with_alpha, photometric="rgb", planarconfig="separate", extrasamples=["unassalpha"])
    pages = np.stack([rgb[..., 1], rgb[..., 2], rgb[..., 0]])
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")

    expected = torch.from_numpy(planar).float() / 255
    assert torch.equal(read_image(tmp_path / "planar.tif").pixels, expected)
    assert torch.equal(read_image(tmp_path / "planar_rgba.tif").pixels, expected)
    assert probe_image(tmp_path / "planar_rgba.tif") == (3, 40, 50)
    first_page = read_image(tmp_path / "pages.tif")
    assert torch.equal(first_page.pixels, expected[1:2])
    assert probe_image(tmp_path / "pages.tif") == (1, 40, 50)


def test_tiff_float_out_of_range_min_is_white_and_palette(tmp_path: Path) -> None:
    floats = np.array([[-0.5, 0.25, 1.5, np.nan]], dtype=np.float64)
    tifffile.imwrite(tmp_path / "floats.tif", floats)
    loaded = read_image(tmp_path / "floats.tif")
    assert loaded.bit_depth == "float32"
    assert loaded.pixels.tolist() == [[[0.0, 0.25, 1.0, 0.0]]]

    grey = data.camera()[:20, :30]
    tifffile.imwrite(tmp_path / "white.tif", 255 - grey, photometric="miniswhite")
    assert torch.equal(read_image(tmp_path / "white.tif").pixels, torch.from_numpy(grey)[None].float() / 255)

    colormap = (np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 9)]) * 257).astype(np.uint16)
    tifffile.imwrite(tmp_path / "palette.tif", grey, photometric="palette", colormap=colormap)
    palette = read_image(tmp_path / "palette.tif")
    assert palette.bit_depth == "uint8" and probe_image(tmp_path / "palette.tif") == (3, 20, 30)
    assert torch.equal(palette.pixels[1], (255 - torch.from_numpy(grey).float()) / 255)


def test_jpeg_exif_orientation_is_applied_by_read_and_probe(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise
    Image.fromarray(data.astronaut()[:40, :60]).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = read_image(tmp_path / "phone.jpg")
    assert loaded.pixels.shape == (3, 60, 40)
    assert probe_image(tmp_path / "phone.jpg") == (3, 60, 40)


def test_content_not_extension_picks_the_decoder(tmp_path: Path) -> None:
    write_image(tmp_path / "really_a_png.png", astronaut())
    (tmp_path / "really_a_png.png").rename(tmp_path / "misnamed.jpg")
    loaded = read_image(tmp_path / "misnamed.jpg")
    assert loaded.format == "png"
    assert torch.allclose(loaded.pixels, astronaut(), atol=0.5 / 255)


# ----- images: errors ------------------------------------------------------------------------


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scan_0042.png"
    path.write_bytes(b"this is not an image, just garbage bytes \x00\x01\x02" * 20)
    for action in (read_image, probe_image):
        with pytest.raises(ImageReadError, match="scan_0042.png") as info:
            action(path)
        assert "PNG, JPEG or TIFF" in str(info.value)
        assert info.value.path == path


def test_truncated_and_empty_files(tmp_path: Path) -> None:
    write_image(tmp_path / "whole.png", astronaut())
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:200])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        read_image(tmp_path / "empty.tif")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(ImageReadError, match="absent.tif"):
        probe_image(tmp_path / "absent.tif")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageReadError, match="not an image file"):
        read_image(tmp_path / "folder.png")


def test_unsupported_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "photo.bmp"
    Image.fromarray(data.camera()[:8, :8]).save(path)
    with pytest.raises(ImageReadError, match=r"\.bmp.*\.png.*\.jpg.*\.tif"):
        read_image(path)
    with pytest.raises(ValueError, match=r"\.bmp"):
        write_image(path, astronaut())


@pytest.mark.filterwarnings("ignore:.*zero-size:UserWarning")
def test_zero_size_image(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "nothing.tif", np.zeros((0, 0), np.uint8))
    for action in (read_image, probe_image):
        with pytest.raises(ImageReadError, match="nothing.tif.*empty"):
            action(tmp_path / "nothing.tif")


def test_unsupported_sample_type_and_channels(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "signed.tif", np.zeros((8, 8), np.int16))
    with pytest.raises(ImageReadError, match="int16"):
        read_image(tmp_path / "signed.tif")
    with pytest.raises(ImageReadError, match="int16"):
        probe_image(tmp_path / "signed.tif")
    bands = np.zeros((8, 8, 6), np.uint8)
    tifffile.imwrite(tmp_path / "bands.tif", bands, photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageReadError, match="6 samples per pixel"):
        read_image(tmp_path / "bands.tif")


def test_lzw_tiff_reads_or_asks_for_imagecodecs(tmp_path: Path) -> None:
    path = tmp_path / "scanner.tif"
    Image.fromarray(data.astronaut()[:40, :50]).save(path, compression="tiff_lzw")
    if tifffile.COMPRESSION.LZW in tifffile.TIFF.DECOMPRESSORS:  # imagecodecs is installed
        assert read_image(path).pixels.shape == (3, 40, 50)
    else:
        for action in (read_image, probe_image):
            with pytest.raises(ImageReadError, match="scanner.tif.*LZW.*imagecodecs"):
                action(path)


def test_write_rejects_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JPEG"):
        write_image(tmp_path / "a.jpg", astronaut(), "uint16")
    with pytest.raises(ValueError, match="float32"):
        write_image(tmp_path / "a.png", astronaut(), "float32")
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "a.tif", astronaut(), "uint12")
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "a.tif", torch.full((3, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="C×H×W"):
        write_image(tmp_path / "a.tif", torch.zeros(2, 4, 4))
    assert list(tmp_path.iterdir()) == []


def test_path_helpers() -> None:
    assert is_image_path("a/b.PNG") and is_image_path(Path("x.tiff")) and not is_image_path("x.mp4")
    assert is_video_path("a/b.MKV") and is_video_path("x.mov") and not is_video_path("x.png")


# ----- atomic writing ------------------------------------------------------------------------


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def half_written_then_crash(path: Path, *args: object, **kwargs: object) -> None:
        seen.append(Path(path))
        Path(path).write_bytes(b"II*\x00 half of a TIFF")
        raise OSError("disk full (simulated)")

    target = tmp_path / "out" / "restored.tif"
    monkeypatch.setattr(image_module.tifffile, "imwrite", half_written_then_crash)
    with pytest.raises(OSError, match="simulated"):
        write_image(target, astronaut())
    assert not target.exists()
    assert leftovers(target.parent) == []
    assert seen[0].parent == target.parent
    assert seen[0].name.startswith(".restored.tif.") and seen[0].name.endswith(".tmp")

    monkeypatch.undo()
    write_image(target, astronaut())
    before = target.read_bytes()
    monkeypatch.setattr(image_module.tifffile, "imwrite", half_written_then_crash)
    with pytest.raises(OSError):
        write_image(target, 1 - astronaut())
    assert target.read_bytes() == before
    assert leftovers(target.parent) == []


def test_atomic_path_contract(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "ledger.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".ledger.csv.") and tmp.name.endswith(".tmp")
        tmp.write_text("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n"

    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "a,b\n"

    with pytest.raises(FileNotFoundError):
        with atomic_path(target):
            pass  # the writer never created the temporary file
    assert target.read_text() == "a,b\n"

    with atomic_path(tmp_path / "clip.mp4", keep_suffix=True) as tmp:
        assert tmp.name.startswith(".clip.mp4.") and tmp.name.endswith(".tmp.mp4")
        tmp.write_bytes(b"x")
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []


# ----- video ---------------------------------------------------------------------------------


def pan(frames: int = 8, height: int = 48, width: int = 64) -> list[torch.Tensor]:
    """A horizontal pan across the astronaut photograph, 8 pixels a frame."""
    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    return [photo[:, 60 : 60 + height, 150 + 8 * i : 150 + 8 * i + width].contiguous() for i in range(frames)]


def write_clip(path: Path, frames: list[torch.Tensor], **options: object) -> None:
    _, height, width = frames[0].shape
    with VideoWriter(path, 10, width, height, **options) as writer:  # type: ignore[arg-type]
        for frame in frames:
            writer.write(frame)


def test_video_round_trip_default_codec(tmp_path: Path) -> None:
    frames = pan()
    path = tmp_path / "clips" / "pan.mp4"
    write_clip(path, frames)
    assert leftovers(path.parent) == []

    info = probe_video(path)
    assert (info.fps, info.width, info.height, info.frames, info.has_audio) == (10.0, 64, 48, 8, False)
    decoded = list(iter_video_frames(path))
    assert len(decoded) == 8
    assert all(f.shape == (3, 48, 64) and f.dtype == torch.float32 for f in decoded)
    errors = [float((d - f).abs().mean()) for d, f in zip(decoded, frames)]
    assert max(errors) < 0.03


def test_video_round_trip_lossless_and_ranges(tmp_path: Path) -> None:
    frames = pan()
    levels = [(f * 255).round() / 255 for f in frames]
    write_clip(tmp_path / "pan.mkv", frames, lossless=True)
    decoded = list(iter_video_frames(tmp_path / "pan.mkv"))
    assert all(torch.equal(d, f) for d, f in zip(decoded, levels, strict=True))

    middle = list(iter_video_frames(tmp_path / "pan.mkv", start=2, stop=5))
    assert len(middle) == 3 and all(torch.equal(d, f) for d, f in zip(middle, levels[2:5]))
    assert len(list(iter_video_frames(tmp_path / "pan.mkv", start=6))) == 2
    assert list(iter_video_frames(tmp_path / "pan.mkv", start=3, stop=3)) == []
    with pytest.raises(ValueError, match="stop"):
        iter_video_frames(tmp_path / "pan.mkv", start=3, stop=1)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to list child processes")
def test_closing_the_frame_generator_stops_ffmpeg(tmp_path: Path) -> None:
    write_clip(tmp_path / "pan.mp4", pan())
    frames = iter_video_frames(tmp_path / "pan.mp4")
    assert running_ffmpeg_children() == []  # lazy: nothing started yet
    first = next(frames)
    assert first.shape == (3, 48, 64)
    assert len(running_ffmpeg_children()) == 1
    frames.close()
    assert running_ffmpeg_children() == []


def test_failed_video_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "pan.mp4"
    with pytest.raises(RuntimeError, match="restoration failed"):
        with VideoWriter(path, 10, 64, 48) as writer:
            writer.write(pan(1)[0])
            raise RuntimeError("restoration failed")
    assert not path.exists() and leftovers(tmp_path) == []

    write_clip(path, pan(2))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="frame is"):
        with VideoWriter(path, 10, 64, 48) as writer:
            writer.write(torch.zeros(3, 40, 64))
    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter(path, 10, 64, 48):
            pass
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_odd_frame_size_needs_an_explicit_choice(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even width and height"):
        VideoWriter(tmp_path / "odd.mp4", 10, 63, 48)
    frames = [f[:, :47, :63] for f in pan(2)]
    write_clip(tmp_path / "odd.mp4", frames, pix_fmt="yuv444p")
    assert probe_video(tmp_path / "odd.mp4", count_frames=False).width == 63
    with pytest.raises(ValueError, match="extension"):
        VideoWriter(tmp_path / "clip.gif", 10, 64, 48)


def test_audio_is_detected_and_carried_over(tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=1",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(source),
    )
    info = probe_video(source, count_frames=False)
    assert info.has_audio and info.frames is None and (info.width, info.height) == (64, 48)

    write_clip(tmp_path / "restored.mp4", pan(), audio_from=source)
    restored = probe_video(tmp_path / "restored.mp4")
    assert restored.has_audio and restored.frames == 8


def test_corrupt_and_missing_video(tmp_path: Path) -> None:
    corrupt = tmp_path / "tape_07.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video" * 50)
    with pytest.raises(VideoReadError, match="tape_07.mp4"):
        probe_video(corrupt)
    with pytest.raises(VideoReadError, match="tape_07.mp4"):
        list(iter_video_frames(corrupt))
    with pytest.raises(VideoReadError, match="no such file"):
        probe_video(tmp_path / "absent.mkv")
    with pytest.raises(VideoReadError, match="no such file"):
        iter_video_frames(tmp_path / "absent.mkv")
    with pytest.raises(VideoReadError, match=r"\.webm"):
        probe_video(tmp_path / "clip.webm")
