"""Writes confined to the output folder: a symbolic link swapped in after validation is refused at
write time, by `atomic_path` / `atomic_folder` and the writers built on them, and by a unit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from skimage import data

from dip_engine import FitConfig, NetConfig, RestoreConfig
from pipeline.io import OutsideOutputError, VideoWriter, atomic_folder, atomic_path, check_inside, outside_of, write_image
from pipeline.manifest import ManifestRow, validate_manifest
from pipeline.work.common import UnitError
from pipeline.work.image import process_image


def photo(side: int = 24) -> torch.Tensor:
    crop = data.astronaut()[60 : 60 + side, 180 : 180 + side]
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 255


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(out, elsewhere): the output folder with a real sub-folder `sub`, and a folder outside it."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    yield out, elsewhere
    assert not list(elsewhere.iterdir()), "something was written outside the output folder"


def swap_in_link(folder: Path, target: Path) -> None:
    """Replace the real folder `folder` by a symbolic link to `target` (what a user or a script might do mid-run)."""
    folder.rename(folder.with_name(folder.name + "-moved"))
    os.symlink(target, folder)


def test_outside_of_resolves_links_and_missing_parts(folders: tuple[Path, Path]) -> None:
    out, elsewhere = folders
    assert outside_of(out / "sub" / "new" / "x.png", out) is None
    os.symlink(elsewhere, out / "link")
    os.symlink(out / "sub", out / "inner")
    os.symlink(elsewhere / "gone", out / "dangling")
    assert outside_of(out / "link" / "deeper" / "x.png", out) == elsewhere / "deeper" / "x.png"
    assert outside_of(out / "inner" / "x.png", out) is None
    assert outside_of(out / "dangling" / "x.png", out) == elsewhere / "gone" / "x.png"
    os.symlink(elsewhere / "x.png", out / "file-link.png")  # the file itself a link out
    assert outside_of(out / "file-link.png", out) == elsewhere / "x.png"
    check_inside(out / "inner" / "x.png", out)


def test_a_link_swapped_in_after_validation_is_refused_at_write_time(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    out, elsewhere = folders
    iio.imwrite(tmp_path / "photo.png", (photo().permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,task,input,output\na,denoise,photo.png,sub/a.png\n", encoding="utf-8")
    assert validate_manifest(manifest, out_dir=out) == []  # sub is a real folder now
    swap_in_link(out / "sub", elsewhere)
    with pytest.raises(OutsideOutputError) as refused:
        write_image(out / "sub" / "a.png", photo(), root=out)
    assert isinstance(refused.value, ValueError)  # a fault of the row's files, not of the file system
    assert str(refused.value) == (
        f"refused to write {out / 'sub' / 'a.png'}: it resolves to {elsewhere / 'a.png'}, outside the output folder {out} "
        "(a symbolic link leads out of it); replace the link with a real folder, or choose another output"
    )
    with pytest.raises(OutsideOutputError):
        write_image(out / "sub" / "deeper" / "a.png", photo(), root=out)  # no folder is created through the link either
    with pytest.raises(OutsideOutputError), atomic_folder(out / "sub" / "0001", root=out):
        pass
    with pytest.raises(OutsideOutputError), VideoWriter(out / "sub" / "clip.mp4", 10, 24, 24, root=out):
        pass
    write_image(out / "fine.png", photo(), root=out)  # inside: written
    assert (out / "fine.png").is_file()


def test_a_link_swapped_in_while_writing_is_refused_before_the_rename(folders: tuple[Path, Path]) -> None:
    out, elsewhere = folders
    with pytest.raises(OutsideOutputError), atomic_path(out / "sub" / "a.npy", root=out) as temporary:
        temporary.write_bytes(b"restored tiles")
        swap_in_link(out / "sub", elsewhere)
    assert not (out / "sub-moved" / "a.npy").exists()


def test_an_image_unit_refuses_to_write_through_a_link_and_names_its_row(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    out, elsewhere = folders
    iio.imwrite(tmp_path / "photo.png", (photo().permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    swap_in_link(out / "sub", elsewhere)
    row = ManifestRow(7, "a", "denoise", tmp_path / "photo.png", None, None, None, None, Path("sub/a.png"))
    tiny = RestoreConfig(net=NetConfig(channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)), fit=FitConfig(max_iterations=2))
    with pytest.raises(UnitError, match=r"^row 7 \(id a\): refused to write .*outside the output folder"):
        process_image(row, out, config_override=tiny)
