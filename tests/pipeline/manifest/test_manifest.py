"""Manifests: parsing, every kind of bad row, all problems at once, and folder manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
from skimage import data

from pipeline.manifest import (
    VALID_COLUMNS,
    ManifestError,
    ManifestProblem,
    ManifestRow,
    parse_manifest,
    validate_manifest,
    write_manifest_for_folder,
)

HEADER = "id,task,input,mask,scale,flash,reference,output,max_iterations,seed"


def rgb(size: int = 32, top: int = 100) -> np.ndarray:
    """A size×size crop of the astronaut photograph, uint8 H×W×3."""
    return np.ascontiguousarray(data.astronaut()[top : top + size, 200 : 200 + size])


def grey(size: int = 32) -> np.ndarray:
    """A size×size crop of the cameraman photograph, uint8 H×W."""
    return np.ascontiguousarray(data.camera()[100 : 100 + size, 200 : 200 + size])


def mask(size: int = 32) -> np.ndarray:
    """A binary mask (0 or 255) with a missing block in the middle."""
    pixels = np.full((size, size), 255, dtype=np.uint8)
    pixels[size // 4 : size // 2, size // 4 : size // 2] = 0
    return pixels


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, pixels)
    return path


def manifest(folder: Path, *lines: str, header: str = HEADER) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[tuple[int | None, str | None]]:
    """(row, column) of every problem parse_manifest raises for the manifest."""
    with pytest.raises(ManifestError) as caught:
        parse_manifest(path, **kwargs)
    return [(problem.row_number, problem.column) for problem in caught.value.problems]


def error_text(path: Path, **kwargs: Any) -> str:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(path, **kwargs)
    return str(caught.value)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder `images/` of small real photographs next to where manifests are written."""
    folder = tmp_path / "images"
    save(folder / "noisy.png", rgb())
    save(folder / "small.png", rgb(16))
    save(folder / "ref.png", rgb(32))
    save(folder / "ref4.png", rgb(64))
    save(folder / "photo.png", rgb())
    save(folder / "mask.png", mask())
    save(folder / "small_mask.png", mask(16))
    save(folder / "noflash.png", rgb(top=150))
    save(folder / "flash.png", rgb(top=160))
    save(folder / "grey.png", grey())
    return folder


def test_valid_mixed_manifest_parses_to_the_right_rows(tmp_path: Path, images: Path) -> None:
    elsewhere = save(tmp_path / "elsewhere" / "photo.jpg", rgb())
    path = manifest(
        tmp_path,
        "a,denoise,images/noisy.png,,,,,,,",
        "b,sr,images/small.png,,2,,images/ref.png,big/b.tif,500,7",
        f"c,inpaint,{elsewhere},images/mask.png,,,,,,",
        "d,flash,images/noflash.png,,,images/flash.png,,,,0",
        "e,sr4,images/small.png,,,,images/ref4.png,,,",
        "f,watermark,images/photo.png,images/mask.png,,,images/photo.png,out/f.png,1,",
    )
    rows = parse_manifest(path)
    assert [row.row_number for row in rows] == [2, 3, 4, 5, 6, 7]
    assert [row.id for row in rows] == ["a", "b", "c", "d", "e", "f"]
    assert [row.task for row in rows] == ["denoise", "sr", "inpaint", "flash", "sr4", "watermark"]
    assert rows[0] == ManifestRow(2, "a", "denoise", images / "noisy.png", None, None, None, None, Path("a.png"))
    assert rows[1].scale == 2 and rows[1].reference == images / "ref.png"
    assert rows[1].output == Path("big/b.tif") and rows[1].max_iterations == 500 and rows[1].seed == 7
    assert rows[2].input == elsewhere and rows[2].mask == images / "mask.png"
    assert rows[2].output == Path("c.png")  # .jpg inputs default to .png: no lossy re-encoding
    assert rows[3].flash == images / "flash.png" and rows[3].seed == 0 and rows[3].mask is None
    assert rows[4].scale == 4  # the preset's factor
    assert rows[5].output == Path("out/f.png") and rows[5].max_iterations == 1
    assert all(row.input.is_absolute() and not row.output.is_absolute() and not row.is_video for row in rows)
    assert validate_manifest(path) == []


def test_format_tolerance_bom_blank_lines_spaces_column_order_and_case(tmp_path: Path, images: Path) -> None:
    path = tmp_path / "manifest.csv"
    text = "\ufeff Input , ID ,Task,\n\n images/noisy.png , a , denoise, \n , , \n\nimages/grey.png,b,Denoise\n"
    path.write_text(text, encoding="utf-8")
    rows = parse_manifest(path)
    assert [(row.row_number, row.id, row.input.name) for row in rows] == [(3, "a", "noisy.png"), (6, "b", "grey.png")]
    assert rows[1].task == "denoise"


def test_cells_outside_the_header_columns(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,denoise,images/noisy.png,", "b,denoise,images/grey.png,4000", header="id,task,input")
    assert problems_of(path) == [(3, None)]
    assert "row 3: cells with no column name in the header: '4000'" in error_text(path)


def test_problem_str_names_the_file_row_and_column() -> None:
    problem = ManifestProblem(4, "mask", "file not found: /abs/m.png", Path("/data/manifest.csv"))
    assert str(problem) == "manifest.csv, row 4, column 'mask': file not found: /abs/m.png"
    assert str(ManifestProblem(None, None, "the manifest is empty")) == "the manifest is empty"


def test_missing_file_is_reported_with_its_absolute_path(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,denoise,images/noisy.png,,,,,,,", "b,inpaint,images/photo.png,images/nope.png,,,,,,")
    message = error_text(path)
    assert "row 3, column 'mask': file not found: " + str(images / "nope.png") in message
    assert "relative to the manifest's folder" in message


def test_corrupt_image_is_reported(tmp_path: Path, images: Path) -> None:
    (images / "broken.png").write_bytes(b"this is not a PNG file at all" * 10)
    path = manifest(tmp_path, "a,denoise,images/broken.png,,,,,,,")
    assert problems_of(path) == [(2, "input")]
    assert "row 2, column 'input'" in error_text(path) and "broken.png" in error_text(path)


def test_mask_of_the_wrong_size(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,inpaint,images/photo.png,images/small_mask.png,,,,,,")
    assert problems_of(path) == [(2, "mask")]
    assert "16x16" in error_text(path) and "32x32" in error_text(path)


def test_flash_and_reference_of_the_wrong_shape(tmp_path: Path, images: Path) -> None:
    path = manifest(
        tmp_path,
        "a,flash,images/noflash.png,,,images/grey.png,,,,",
        "b,sr,images/small.png,,2,,images/small.png,,,",
        "c,denoise,images/noisy.png,,,,images/ref4.png,,,",
    )
    assert problems_of(path) == [(2, "flash"), (3, "reference"), (4, "reference")]
    assert "3x32x32" in error_text(path)  # the size the sr reference should have


@pytest.mark.parametrize("scale", ["1", "2.5", "x", "-2"])
def test_bad_scale(tmp_path: Path, images: Path, scale: str) -> None:
    path = manifest(tmp_path, "a,denoise,images/noisy.png,,,,,,,", f"b,sr,images/small.png,,{scale},,,,,")
    assert problems_of(path) == [(3, "scale")]
    assert "row 3, column 'scale'" in error_text(path) and repr(scale) in error_text(path)


def test_scale_missing_for_sr_or_contradicting_a_fixed_preset(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,sr,images/small.png,,,,,,,", "b,sr4,images/small.png,,2,,,,,")
    assert problems_of(path) == [(2, "scale"), (3, "scale")]
    assert "fixed to scale 4" in error_text(path)


def test_duplicate_id_names_both_rows(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,denoise,images/noisy.png,,,,,,,", "b,denoise,images/grey.png,,,,,,,", "A,denoise,images/photo.png,,,,,,,")
    assert problems_of(path) == [(4, "id")]
    assert "row 4, column 'id': duplicate id 'A': already used on row 2" in error_text(path)


@pytest.mark.parametrize("output", ["../x.png", "/abs/x.png", "sub/../../x.png", "C:/x.png", "sub\\x.png", "x.txt"])
def test_output_must_stay_inside_the_output_folder(tmp_path: Path, images: Path, output: str) -> None:
    path = manifest(tmp_path, f"a,denoise,images/noisy.png,,,,,{output},,")
    assert problems_of(path, check_files=False) == [(2, "output")]
    assert "row 2, column 'output'" in error_text(path, check_files=False)


def test_two_rows_writing_the_same_output(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,denoise,images/noisy.png,,,,,,,", "b,denoise,images/grey.png,,,,,A.png,,")
    assert problems_of(path) == [(3, "output")]
    assert "also the output of row 2" in error_text(path)


def test_unknown_column_lists_the_valid_ones(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,denoise,images/noisy.png,x", header="id,task,input,strength")
    assert problems_of(path) == [(None, "strength")]
    assert all(column in error_text(path) for column in VALID_COLUMNS)


def test_unknown_task_lists_the_known_ones(tmp_path: Path, images: Path) -> None:
    path = manifest(tmp_path, "a,deblur,images/noisy.png,,,,,,,")
    assert problems_of(path) == [(2, "task")]
    assert "'deblur'" in error_text(path) and "denoise, sr, sr2, sr4, sr8, inpaint, watermark, flash" in error_text(path)


def test_a_column_the_task_does_not_use(tmp_path: Path, images: Path) -> None:
    path = manifest(
        tmp_path,
        "a,denoise,images/noisy.png,images/mask.png,,,,,,",
        "b,inpaint,images/photo.png,images/mask.png,2,,,,,",
        "c,sr2,images/small.png,,,images/flash.png,,,,",
    )
    assert problems_of(path) == [(2, "mask"), (3, "scale"), (4, "flash")]
    assert "only used by the tasks inpaint, watermark, not by task 'denoise'" in error_text(path)


def test_required_cells_and_task_specific_files_missing(tmp_path: Path, images: Path) -> None:
    path = manifest(
        tmp_path,
        ",denoise,images/noisy.png,,,,,,,",
        "b,,images/noisy.png",
        "c,inpaint,images/photo.png",
        "d,flash,images/noflash.png,,,,,,,",
    )
    assert problems_of(path) == [(2, "id"), (3, "task"), (4, "mask"), (5, "flash")]


def test_bad_ids_and_overrides(tmp_path: Path, images: Path) -> None:
    path = manifest(
        tmp_path, "a/b,denoise,images/noisy.png,,,,,,,", "c,denoise,images/grey.png,,,,,,0,-1", ".d,denoise,images/photo.png,,,,,,1e3,"
    )
    assert problems_of(path) == [(2, "id"), (3, "max_iterations"), (3, "seed"), (4, "id"), (4, "max_iterations")]


def test_every_problem_of_every_row_is_reported_together(tmp_path: Path, images: Path) -> None:
    (images / "broken.png").write_bytes(b"\x89PNG garbage")
    path = manifest(
        tmp_path,
        "a,denoise,images/noisy.png,,,,,,,",
        "b,denoise,images/missing.png,,,,,,,",
        "",
        "c,sr,images/small.png,,1,,,,,",
        "a,inpaint,images/photo.png,images/small_mask.png,,,,,,",
        "d,deblur,images/broken.png,,,,,../d.png,,",
        "e,denoise,images/noisy.png,,,,,,,",
    )
    expected = [(3, "input"), (5, "scale"), (6, "id"), (6, "mask"), (7, "task"), (7, "output"), (7, "input")]
    assert problems_of(path) == expected  # in row order
    message = error_text(path)
    assert "7 problems" in message and all(f"row {row}, column {column!r}" in message for row, column in expected)
    assert len(validate_manifest(path)) == 7


def test_check_files_false_skips_the_file_checks(tmp_path: Path) -> None:
    path = manifest(tmp_path, "a,inpaint,nowhere/a.png,nowhere/a_mask.png,,,,,,", "b,denoise,nowhere/b.mp4,,,,,,,")
    rows = parse_manifest(path, check_files=False)
    assert [row.id for row in rows] == ["a", "b"] and rows[1].is_video and rows[1].output == Path("b.mp4")
    assert problems_of(path) == [(2, "input"), (2, "mask"), (3, "input")]


VIDEO_HEADER = "id,task,input,mask,scale,reference,output,fps"


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """`clips/`: an 8-frame 32×32 video, its frames as a folder and as a pattern, and masks."""
    import torch

    from pipeline.io import VideoWriter

    folder = tmp_path / "clips"
    folder.mkdir()
    frames = [torch.from_numpy(rgb(top=100 + 4 * index)).permute(2, 0, 1).float() / 255 for index in range(8)]
    with VideoWriter(folder / "clip.mp4", 25, 32, 32) as writer:
        for frame in frames:
            writer.write(frame)
    for index in range(8):
        save(folder / "frames" / f"f{index}.png", rgb(top=100 + 4 * index))
        save(folder / "masks" / f"{index:04d}.png", mask())
        save(folder / "big" / f"{index:04d}.png", rgb(64))
    for index in range(5):
        save(folder / "few" / f"{index}.png", rgb())
    save(folder / "mixed" / "1.png", rgb())
    save(folder / "mixed" / "2.png", rgb(24))
    (folder / "empty").mkdir()
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 40)
    return folder


def test_video_rows_parse_with_their_kinds_outputs_and_fps(tmp_path: Path, clips: Path, images: Path) -> None:
    path = manifest(
        tmp_path,
        "a,denoise,clips/clip.mp4,,,,,",
        "b,denoise,clips/frames,,,clips/clip.mp4,,25",
        "c,sr2,clips/frames/f%d.png,,,clips/big/%04d.png,restored/c.mkv,30000/1001",
        "d,inpaint,clips/clip.mp4,images/mask.png,,,,",
        "e,watermark,clips/frames/,clips/masks/%04d.png,,,,12.5",
        "f,denoise,images/noisy.png,,,,,",
        header=VIDEO_HEADER,
    )
    rows = parse_manifest(path)
    assert [row.input_kind for row in rows] == ["video", "frames", "frames", "video", "frames", "image"]
    assert [row.is_video for row in rows] == [True] * 5 + [False]
    assert [row.output.as_posix() for row in rows] == ["a.mp4", "b.mp4", "restored/c.mkv", "d.mp4", "e.mp4", "f.png"]
    assert [row.fps for row in rows] == [None, 25.0, pytest.approx(29.97, abs=0.001), None, 12.5, None]
    assert rows[2].input == clips / "frames" / "f%d.png" and rows[2].scale == 2
    assert rows[3].mask == images / "mask.png" and rows[4].mask == clips / "masks" / "%04d.png"
    assert rows[0].source is not None and (rows[0].source.kind, rows[0].source.frames) == ("video", 8)
    assert rows[1].source is not None and (rows[1].source.kind, rows[1].source.frames) == ("frames", 8)
    assert rows[5].source is None
    assert validate_manifest(path) == []


def test_folder_manifest_lists_videos_too(tmp_path: Path, clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(tmp_path / "scans" / "still.png", rgb())
    (tmp_path / "scans" / "clip.mp4").write_bytes((clips / "clip.mp4").read_bytes())
    monkeypatch.chdir(tmp_path)
    text = write_manifest_for_folder(tmp_path / "scans", "denoise")
    assert text.splitlines() == ["id,task,input", "clip,denoise,scans/clip.mp4", "still,denoise,scans/still.png"]
    (tmp_path / "folder.csv").write_text(text, encoding="utf-8")
    video, still = parse_manifest(tmp_path / "folder.csv")
    assert video.is_video and video.output == Path("clip.mp4") and not still.is_video


def test_video_rows_are_checked_against_their_files(tmp_path: Path, clips: Path, images: Path) -> None:
    path = manifest(
        tmp_path,
        "ok,denoise,clips/clip.mp4,,,,,",
        "flash,flash,clips/clip.mp4,,,,,",
        "no-fps,denoise,clips/frames,,,,,",
        "file-fps,denoise,clips/clip.mp4,,,,,25",
        "image-fps,denoise,images/noisy.png,,,,,25",
        "bad-fps,denoise,clips/frames,,,,,0",
        "broken,denoise,clips/broken.mp4,,,,,",
        "empty,denoise,clips/empty,,,,,25",
        "mixed,denoise,clips/mixed,,,,,25",
        "missing,denoise,clips/nowhere/%05d.png,,,,,25",
        "small-mask,inpaint,clips/clip.mp4,images/small_mask.png,,,,",
        "few-masks,inpaint,clips/clip.mp4,clips/few,,,,",
        "few-refs,denoise,clips/clip.mp4,,,clips/few,,",
        "sr-ref,sr2,clips/frames,,,clips/clip.mp4,,25",
        "image-out,denoise,clips/clip.mp4,,,,x.png,",
        "gif,denoise,clips/clip.gif,,,,,",
        "image-ref,denoise,clips/clip.mp4,,,images/ref.png,,",
        header=VIDEO_HEADER,
    )
    expected = [
        (3, "task"),
        (4, "fps"),
        (5, "fps"),
        (6, "fps"),
        (7, "fps"),
        (8, "input"),
        (9, "input"),
        (10, "input"),
        (11, "input"),
        (12, "mask"),
        (13, "mask"),
        (14, "reference"),
        (15, "reference"),
        (16, "output"),
        (17, "input"),
        (18, "reference"),
    ]
    assert problems_of(path) == expected
    message = error_text(path)
    assert (
        "row 3, column 'task': task 'flash' cannot restore a video; the frame-wise tasks are denoise, sr, sr2, sr4, sr8, inpaint, watermark"
        in message
    )
    assert "row 4, column 'fps': frame images need the frame rate" in message
    assert "row 5, column 'fps': a video file is written at its own frame rate" in message
    assert "row 8, column 'input': cannot decode " in message and "broken.mp4" in message
    assert "row 9, column 'input': no frame images" in message
    assert "row 10, column 'input': frame 1 (2.png) is 3x24x24 but the first frame (1.png) is 3x32x32" in message
    assert "row 11, column 'input'" in message and "(paths are relative to the manifest's folder)" in message
    assert "row 12, column 'mask': the mask is 16x16 pixels (HxW) but the frames are 32x32" in message
    assert "row 13, column 'mask': there are 5 masks but 8 frames" in message
    assert "row 14, column 'reference': the reference has 5 frames but the input has 8" in message
    assert "row 15, column 'reference': the reference frames are 3x32x32 but the output frames will be 3x64x64" in message
    assert "row 16, column 'output': 'x.png' needs a video extension" in message
    assert "folder of frame images or a frame pattern such as frames/%05d.png" in message


def test_missing_empty_and_header_only_manifests(tmp_path: Path) -> None:
    assert "manifest file not found" in error_text(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("\ufeff\n\n", encoding="utf-8")
    assert "empty" in error_text(tmp_path / "empty.csv")
    assert "no rows" in error_text(manifest(tmp_path))
    assert "missing from the header" in error_text(manifest(tmp_path, header="a,denoise,images/noisy.png"))


def test_folder_manifest_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scans"
    for name in ("b.png", "a.png", "a.tif", "my photo.jpg"):
        save(folder / name, rgb())
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)
    text = write_manifest_for_folder(folder, "denoise")
    assert text.splitlines()[0] == "id,task,input"
    path = tmp_path / "manifest.csv"
    path.write_text(text, encoding="utf-8")
    rows = parse_manifest(path)
    assert [(row.id, row.input.name, row.output.as_posix()) for row in rows] == [
        ("a", "a.png", "a.png"),
        ("a-2", "a.tif", "a-2.tif"),
        ("b", "b.png", "b.png"),
        ("my_photo", "my photo.jpg", "my_photo.png"),
    ]
    assert "scans/a.png" in text  # relative to the current directory


def test_folder_manifest_for_inpainting_and_super_resolution(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    save(folder / "wall.png", rgb())
    save(folder / "wall_mask.png", mask())
    out = tmp_path / "manifests"
    out.mkdir()
    path = out / "inpaint.csv"
    path.write_text(write_manifest_for_folder(folder, "inpaint", manifest_dir=out), encoding="utf-8")
    [row] = parse_manifest(path)
    assert (row.input.name, row.mask, row.task) == ("wall.png", folder / "wall_mask.png", "inpaint")
    sr = write_manifest_for_folder(folder, "sr", scale=3, manifest_dir=out)  # masks are images too here
    assert sr.splitlines()[:2] == ["id,task,input,scale", "wall,sr,../in/wall.png,3"]
    path.write_text(sr, encoding="utf-8")
    assert [(row.id, row.scale) for row in parse_manifest(path)] == [("wall", 3), ("wall_mask", 3)]
    with pytest.raises(ValueError, match="no image"):
        write_manifest_for_folder(out, "denoise")


def test_folder_manifest_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    save(tmp_path / "a.png", rgb())
    with pytest.raises(ValueError, match="needs a scale"):
        write_manifest_for_folder(tmp_path, "sr")
    with pytest.raises(ValueError, match="a_mask.png"):
        write_manifest_for_folder(tmp_path, "inpaint")
    with pytest.raises(ValueError, match="only used by super-resolution"):
        write_manifest_for_folder(tmp_path, "denoise", scale=2)
    with pytest.raises(ValueError, match="known tasks"):
        write_manifest_for_folder(tmp_path, "deblur")
    with pytest.raises(ValueError, match="not a folder"):
        write_manifest_for_folder(tmp_path / "a.png", "denoise")
