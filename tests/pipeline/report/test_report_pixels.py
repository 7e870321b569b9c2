"""The report's images: data: URIs that decode, display sizes, and an aligned zoomed crop."""

from __future__ import annotations

import base64

import imageio.v3 as iio
import pytest
import torch
import torch.nn.functional as F

from pipeline.report.thumbnails import Region, aligned_crops, data_uri, differing_region, display_size, integer_scale, resized
from tests.conftest import photo


def decode(uri: str) -> torch.Tensor:
    header, payload = uri.split(",", 1)
    assert header in ("data:image/png;base64", "data:image/jpeg;base64")
    return torch.from_numpy(iio.imread(base64.b64decode(payload)))


@pytest.mark.parametrize("grey", [False, True])
def test_data_uris_decode_to_the_pixels(grey: bool) -> None:
    pixels = photo("astronaut", 30, 40, 37, 31, grey=grey)
    png = decode(data_uri(pixels, fmt="png"))
    assert tuple(png.shape) == ((37, 31) if grey else (37, 31, 3))
    expected = (pixels * 255).round().to(torch.uint8).permute(1, 2, 0).squeeze(-1)
    assert torch.equal(png, expected)
    assert decode(data_uri(pixels)).shape[:2] == (37, 31)  # jpeg


def test_display_sizes_shrink_but_never_enlarge() -> None:
    assert display_size(1080, 1920) == (202, 360)
    assert display_size(48, 64) == (48, 64)
    assert tuple(resized(torch.rand(3, 1080, 1920), 202, 360).shape) == (3, 202, 360)


def test_a_planted_difference_is_where_the_crop_goes() -> None:
    output = photo("camera", 0, 0, 200, 300, grey=True)
    source = output.clone()
    source[:, 120:150, 210:250] = 0.0  # the input differs here only
    region = differing_region(source, output, 64)
    assert region.side == 64
    assert region.top <= 120 and region.top + 64 >= 150 and region.left <= 210 and region.left + 64 >= 250


def test_super_resolution_crops_are_aligned_with_the_upsampled_input() -> None:
    output = photo("chelsea", 10, 20, 96, 128)
    source = F.interpolate(output[None], scale_factor=0.25, mode="area")[0]  # 24×32, ×4
    assert integer_scale(source, output) == 4 and integer_scale(output, source) is None
    whole = F.interpolate(source[None], size=(96, 128), mode="bicubic", align_corners=False)[0].clamp(0, 1)
    for region in (Region(0, 0, 64), Region(32, 64, 64), Region(28, 48, 40)):
        before, after = aligned_crops(source, output, region)
        window = (slice(None), slice(region.top, region.top + region.side), slice(region.left, region.left + region.side))
        assert torch.allclose(before, whole[window], atol=1e-6)  # the same pixels as upsampling the whole input
        assert torch.equal(after, output[window])
    chosen = differing_region(source, output, 64)
    assert chosen.top % 4 == 0 and chosen.left % 4 == 0 and chosen.top + 64 <= 96 and chosen.left + 64 <= 128


def test_crops_of_same_size_and_odd_scale_images() -> None:
    output = photo("coffee", 0, 0, 50, 70)
    same = aligned_crops(output, output, Region(5, 6, 32))
    assert torch.equal(same[0], same[1])
    odd = F.interpolate(output[None], size=(33, 47), mode="area")[0]  # not an integer factor
    assert integer_scale(odd, output) is None
    region = differing_region(odd, output, 64)
    assert region == Region(0, 10, 50)  # centred, as large as fits
    before, after = aligned_crops(odd, output, region)
    assert before.shape == after.shape == (3, 50, 50)
