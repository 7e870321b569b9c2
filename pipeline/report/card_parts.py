"""What the image and video cards share: finding and reading their files, and small HTML pieces.

Every text that reaches the page passes through `html.escape` here or in the card modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

import torch

from pipeline.io import read_image
from pipeline.report.values import decibels, figure, gain, number


def resolve(out_dir: Path, recorded: object) -> Path | None:
    """A recorded path: an input as the manifest resolved it (absolute), an output relative to the
    output folder. None when nothing usable is recorded."""
    if not isinstance(recorded, str) or not recorded:
        return None
    path = Path(recorded)
    return path if path.is_absolute() else out_dir / path


def read_pixels(path: Path | None, what: str) -> tuple[torch.Tensor | None, str | None]:
    """The image at `path` (float C×H×W), or None and a sentence saying why it cannot be shown."""
    if path is None:
        return None, f"no {what} file is recorded"
    try:
        return read_image(path).pixels, None
    except (OSError, ValueError) as error:
        return None, f"the {what} cannot be shown: {error}"


def quality(unit: Mapping[str, Any]) -> list[tuple[str, str]]:
    """PSNR and SSIM, input → output against the reference ("—" without one), with the gain."""
    before, after, change = number(unit, "psnr_in"), number(unit, "psnr_out"), gain(unit)
    psnr = "—" if before is None and after is None else f"{decibels(before)} → {decibels(after)}"
    if change is not None:
        psnr += f" ({'+' if change >= 0 else ''}{decibels(change)})"
    ssim_in, ssim_out = number(unit, "ssim_in"), number(unit, "ssim_out")
    ssim = "—" if ssim_in is None and ssim_out is None else f"{figure(ssim_in, 4)} → {figure(ssim_out, 4)}"
    return [("PSNR in → out", psnr), ("SSIM in → out", ssim)]


def count_text(value: int | None) -> str:
    """A count, or "—" when it is not recorded."""
    return "—" if value is None else str(value)


def figures(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list of (name, value) pairs, those without a value ("—") left out."""
    items = "".join(f"<div><dt>{escape(name)}</dt><dd>{escape(value)}</dd></div>" for name, value in pairs if value not in ("", "—"))
    return f'<dl class="figures">{items}</dl>'


def picture(uri: str, caption: str, width: int, height: int, *, css: str = "view") -> str:
    """An embedded image with its caption."""
    return (
        f'<figure class="{css}"><img src="{uri}" width="{width}" height="{height}" alt="{escape(caption)}" decoding="async">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def missing(caption: str, problem: str, width: int = 240, height: int = 160) -> str:
    """A placeholder where an image cannot be shown, saying why."""
    return (
        f'<figure class="view missing"><div class="placeholder" style="width:{width}px;height:{height}px">{escape(problem)}</div>'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def notes(lines: Iterable[str]) -> str:
    """Sentences about a card's files (what is missing, how it is shown)."""
    return "".join(f'<p class="note">{escape(line)}</p>' for line in lines)


def header(unit_id: str, anchor: str, why: str, badges: Iterable[str]) -> str:
    """A card's heading: its id (linking to itself), why it was chosen, its task and status."""
    tags = "".join(f'<span class="badge">{escape(badge)}</span>' for badge in badges if badge)
    chosen = f'<span class="why">{escape(why)}</span>' if why else ""
    return f'<header><h3><a href="#{escape(anchor)}">{escape(unit_id)}</a></h3>{tags}{chosen}</header>'


def shape(pixels: torch.Tensor) -> str:
    """ "3×480×640" for a C×H×W tensor."""
    return "×".join(str(side) for side in pixels.shape)
