"""Which units get a card: the worst few and a sample spread evenly over the rest.

A run of 100,000 images cannot show 100,000 cards. Of the done units of one kind, the `worst`
lowest by PSNR gain (by PSNR out where no unit has a gain; none without a reference) come first,
then `sample` of the others spread evenly over the manifest's order (the first and the last
among them). A run with no more done units than that shows them all, in manifest order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.records import KIND_IMAGE, KIND_VIDEO, STATUS_DONE
from pipeline.report.summary import kind_of
from pipeline.report.values import gain, number


@dataclass(frozen=True)
class CardLimits:
    """How many cards of each kind a report shows at most."""

    images: int = 24  # spread evenly over the done images
    worst_images: int = 12  # the lowest gain (or PSNR out), before the sample
    videos: int = 6
    worst_videos: int = 3


@dataclass(frozen=True)
class Pick:
    """A unit chosen for a card, and why (shown on the card)."""

    unit: Mapping[str, Any]
    why: str  # "worst 1 by PSNR gain", "sample", or "" when every unit has a card


def spread(count: int, wanted: int) -> list[int]:
    """`wanted` indices of `count` items spread evenly, the first and the last included (all if fewer)."""
    if count <= wanted:
        return list(range(count))
    if wanted <= 0:
        return []
    if wanted == 1:
        return [0]
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def _worst_measure(pool: list[Mapping[str, Any]]) -> tuple[str, Callable[[Mapping[str, Any]], float | None]] | None:
    if any(gain(unit) is not None for unit in pool):
        return "PSNR gain", gain
    if any(number(unit, "psnr_out") is not None for unit in pool):
        return "PSNR out", lambda unit: number(unit, "psnr_out")
    return None


def pick(units: Sequence[Mapping[str, Any]], kind: str, *, sample: int, worst: int) -> list[Pick]:
    """The done units of `kind` that get a card, worst first (see the module docstring)."""
    pool = [unit for unit in units if kind_of(unit) == kind and unit.get("status") == STATUS_DONE]
    if len(pool) <= sample + worst:
        return [Pick(unit, "") for unit in pool]
    measure = _worst_measure(pool)
    chosen: list[Pick] = []
    if measure is not None and worst > 0:
        name, value = measure
        ranked = sorted((found, index) for index, unit in enumerate(pool) if (found := value(unit)) is not None)[:worst]
        chosen = [Pick(pool[index], f"worst {rank} by {name}") for rank, (_, index) in enumerate(ranked, start=1)]
    taken = {id(item.unit) for item in chosen}
    rest = [unit for unit in pool if id(unit) not in taken]
    return chosen + [Pick(rest[index], "sample") for index in spread(len(rest), sample)]


def pick_cards(units: Sequence[Mapping[str, Any]], limits: CardLimits) -> tuple[list[Pick], list[Pick]]:
    """The image cards and the video cards of a report."""
    images = pick(units, KIND_IMAGE, sample=limits.images, worst=limits.worst_images)
    videos = pick(units, KIND_VIDEO, sample=limits.videos, worst=limits.worst_videos)
    return images, videos
