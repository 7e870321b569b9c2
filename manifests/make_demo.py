"""Make the demo inputs of `manifests/demo.csv` from scikit-image photographs (run once; output committed).

    python manifests/make_demo.py

Writes small 8-bit PNGs into manifests/demo/, each degradation synthetic and seeded:

- noisy-astronaut.png: σ = 25 noise on a 48×48 crop of the astronaut (reference: astronaut-clean.png)
- lowres-coffee.png: a 24×24 Lanczos-2 decimation (×2) of a 48×48 crop of the coffee photograph (the cup's rim)
  (reference: coffee-clean.png, the 48×48 crop)
- holes-chelsea.png: a 48×48 crop of Chelsea the cat with block holes (mask: holes-chelsea_mask.png,
  255 = known pixel, 0 = missing; reference: chelsea-clean.png)
- flash-pair.png / flash-pair_flash.png: a synthetic no-flash/flash pair of another 48×48 crop of
  the coffee photograph (the cup's handle) (reference: flash-pair-ambient.png, the clean ambient-lit image)

The degraded images are quantised to 8 bits, as any real archive file would be; the references too.

For `manifests/demo_video.csv`: noisy-pan.mkv, 12 frames of 48×48 at 10 fps, a camera panning 1.5 pixels
a frame over the astronaut's helmet with σ = 25 noise (reference: pan-clean.mkv); both lossless H.264, so
they decode to exactly the frames written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from skimage import data

from dip_engine import Denoising, Inpainting, SuperResolution, block_mask, synthesize_flash_pair
from dip_engine.synthetic import camera_clip
from pipeline.io import VideoWriter, write_image

SIZE = 48
HERE = Path(__file__).resolve().parent
OUT = HERE / "demo"


def crop(name: str, top: int, left: int, size: int = SIZE) -> torch.Tensor:
    """A size×size RGB crop of a scikit-image photograph as a float C×H×W tensor in [0, 1]."""
    pixels = getattr(data, name)()[top : top + size, left : left + size, :3]
    assert pixels.shape == (size, size, 3), f"crop {pixels.shape} out of {name}"
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def quantised(image: torch.Tensor) -> torch.Tensor:
    """The image as an 8-bit file would hold it (so the references match what is written)."""
    return (image.clamp(0, 1) * 255).round() / 255


def save(name: str, image: torch.Tensor) -> None:
    write_image(OUT / name, image, "uint8")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)

    astronaut = quantised(crop("astronaut", 100, 190))  # the face
    save("astronaut-clean.png", astronaut)
    save("noisy-astronaut.png", Denoising().degrade(astronaut, torch.Generator().manual_seed(1)))

    coffee = quantised(crop("coffee", 30, 200))  # the rim of the cup against the dark background
    save("coffee-clean.png", coffee)
    save("lowres-coffee.png", SuperResolution(2).degrade(coffee, torch.Generator().manual_seed(2)))

    chelsea = quantised(crop("chelsea", 60, 130))  # the cat's face
    rng = torch.Generator().manual_seed(3)
    mask = block_mask(SIZE, SIZE, rng, holes=6, size=0.12)
    save("chelsea-clean.png", chelsea)
    save("holes-chelsea.png", Inpainting(mask).degrade(chelsea, rng))
    save("holes-chelsea_mask.png", mask[None])  # 1 → 255 (known), 0 → 0 (missing)

    handle = quantised(crop("coffee", 205, 175))  # the cup's handle on the wooden table
    pair = synthesize_flash_pair(handle, torch.Generator().manual_seed(4))
    save("flash-pair.png", pair.no_flash)
    save("flash-pair_flash.png", pair.flash)
    save("flash-pair-ambient.png", pair.ambient)

    photo = torch.from_numpy(data.astronaut().astype(np.float32) / 255.0).permute(2, 0, 1)
    clean = quantised(camera_clip(photo[:, 20:140, 140:300], 12, SIZE, pan=(0.5, 1.5)))
    noisy = quantised(Denoising().degrade(clean, torch.Generator().manual_seed(5)))
    for name, frames in (("pan-clean.mkv", clean), ("noisy-pan.mkv", noisy)):
        with VideoWriter(OUT / name, 10, SIZE, SIZE, lossless=True) as writer:
            for frame in frames:
                writer.write(frame)

    for path in sorted([*OUT.glob("*.png"), *OUT.glob("*.mkv")]):
        print(f"{path.relative_to(HERE.parent)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
