"""Validation beyond the headers: masks are decoded and must be binary, `deep` decodes every image,
and outputs may not leave the output folder through a symbolic link.

Damaged files are real photographs (scikit-image) encoded with imageio and tifffile, then cut
short or overwritten in their pixel data while their headers stay intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from skimage import data

from pipeline.manifest import ManifestError, parse_manifest, validate_manifest

HEADER = "id,task,input,mask,reference,output,fps"
SIDE = 48


def photo(top: int = 100) -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[top : top + SIDE, 200 : 200 + SIDE])


def binary_mask() -> np.ndarray:
    pixels = np.full((SIDE, SIDE), 255, dtype=np.uint8)
    pixels[10:20, 12:30] = 0
    return pixels


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        tifffile.imwrite(path, pixels, photometric="rgb", compression="zlib")
    else:
        iio.imwrite(path, pixels)
    return path


def cut_jpeg(path: Path) -> Path:
    """A JPEG of the photograph with its headers intact and its entropy-coded data cut in the middle."""
    save(path, photo())
    encoded = path.read_bytes()
    start = encoded.index(b"\xff\xda")  # start of scan: everything before it is header
    path.write_bytes(encoded[: start + (len(encoded) - start) // 2])
    return path


def zeroed_tiff(path: Path) -> Path:
    """A deflate-compressed TIFF of the photograph whose strip is zeroed in the middle."""
    save(path, photo())
    with tifffile.TiffFile(path) as tif:
        (offset,), (count,) = tif.pages[0].dataoffsets, tif.pages[0].databytecounts
    damaged = bytearray(path.read_bytes())
    damaged[offset + count // 3 : offset + 2 * count // 3] = bytes(2 * count // 3 - count // 3)
    path.write_bytes(bytes(damaged))
    return path


def manifest(folder: Path, *rows: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def problems(path: Path, **options: object) -> list[str]:
    return [str(problem) for problem in validate_manifest(path, **options)]  # type: ignore[arg-type]


# ----- masks -------------------------------------------------------------------------------------


def test_a_non_binary_mask_is_refused_at_validation_with_its_grey_pixel_count(tmp_path: Path) -> None:
    save(tmp_path / "photo.png", photo())
    soft = binary_mask()
    soft[10:20, 12:30] = 128  # a soft matte: 180 grey pixels
    save(tmp_path / "soft.png", soft)
    save(tmp_path / "hard.png", binary_mask())
    path = manifest(
        tmp_path, "ok,inpaint,photo.png,hard.png,,,", "soft,inpaint,photo.png,soft.png,,,", "again,watermark,photo.png,soft.png,,,"
    )
    found = problems(path)
    assert len(found) == 2, found  # every row that uses the soft mask is told; the hard one passes
    assert found[0].startswith("manifest.csv, row 3, column 'mask': the mask ") and "soft.png is not binary: 180 of 2304 pixels" in found[0]
    assert "threshold it" in found[0]
    assert found[1].startswith("manifest.csv, row 4, column 'mask'")
    with pytest.raises(ManifestError, match="row 3"):
        parse_manifest(path)


def test_per_frame_masks_of_a_video_row_are_each_checked(tmp_path: Path) -> None:
    for index in range(4):
        save(tmp_path / "frames" / f"{index}.png", photo(100 + 3 * index))
        mask = binary_mask()
        if index >= 2:
            mask[0, :5] = 100
        save(tmp_path / "masks" / f"{index}.png", mask)
    path = manifest(tmp_path, "clip,inpaint,frames,masks,,,25")
    (found,) = problems(path)
    assert found.startswith("manifest.csv, row 2, column 'mask': 2 of 4 masks of ")
    assert "the first, 2.png: the mask " in found and "is not binary: 5 of 2304 pixels" in found


# ----- deep ----------------------------------------------------------------------------------------


def test_damaged_pixel_data_is_found_only_with_deep(tmp_path: Path) -> None:
    cut_jpeg(tmp_path / "cut.jpg")
    zeroed_tiff(tmp_path / "zeroed.tif")
    save(tmp_path / "fine.png", photo())
    path = manifest(
        tmp_path,
        "fine,denoise,fine.png,,,,",
        "jpeg,denoise,cut.jpg,,,,",
        "tiff,denoise,zeroed.tif,,,,",
        "reference,denoise,fine.png,,cut.jpg,fine-again.png,",
    )
    assert problems(path) == []  # the headers read fine
    found = problems(path, deep=True)
    assert [line.split(":")[0] for line in found] == [
        "manifest.csv, row 3, column 'input'",
        "manifest.csv, row 4, column 'input'",
        "manifest.csv, row 5, column 'reference'",
    ]
    assert "its header reads but its pixels do not: cannot decode " in found[0] and "cut.jpg" in found[0] and "truncated" in found[0]
    assert "zeroed.tif" in found[1] and "decompressing data" in found[1]
    assert all("replace it with an intact copy" in line for line in found)


def test_deep_decodes_every_frame_image_of_a_video_row(tmp_path: Path) -> None:
    for index in range(3):
        save(tmp_path / "frames" / f"{index:03d}.jpg", photo(100 + 3 * index))
    cut_jpeg(tmp_path / "frames" / "001.jpg")
    path = manifest(tmp_path, "clip,denoise,frames,,,,25")
    assert problems(path) == []
    (found,) = problems(path, deep=True)
    assert found.startswith("manifest.csv, row 2, column 'input': 1 of 3 frames of ") and "the first, 001.jpg: its header reads" in found


# ----- confinement ---------------------------------------------------------------------------------


def test_an_output_through_a_link_out_of_the_output_folder_is_refused(tmp_path: Path) -> None:
    save(tmp_path / "photo.png", photo())
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "real").mkdir(parents=True)
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "link")
    os.symlink(out / "real", out / "inner")  # a link that stays inside is fine
    path = manifest(tmp_path, "a,denoise,photo.png,,,link/x.png,", "b,denoise,photo.png,,,inner/x.png,", "c,denoise,photo.png,,,new/x.png,")
    assert problems(path) == []  # without the output folder, nothing to resolve against
    (found,) = problems(path, out_dir=out)
    assert found == (
        f"manifest.csv, row 2, column 'output': 'link/x.png' resolves to {elsewhere / 'x.png'}, outside the output folder {out} "
        "(a symbolic link in the output folder leads out of it); replace the link with a real folder, or choose another output"
    )
    linked_out = tmp_path / "linked-out"
    os.symlink(out, linked_out)  # the output folder itself may be a link
    assert [problem.row_number for problem in validate_manifest(path, out_dir=linked_out)] == [2]
    assert not list(elsewhere.iterdir())
