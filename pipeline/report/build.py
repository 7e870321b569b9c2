"""Build ``<out>/report.html`` from the output folder's ledger, and write it atomically.

`make_report` loads the ledger (every shard file, a half-written last line skipped, so it can
run while a run or a SLURM job still appends), picks the units that get a card, draws them and
writes the page through `pipeline.io.atomic_path` (a reader sees the old page or the new one).
A card that cannot be drawn (a damaged file the readers did not foresee) says so; it never
stops the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from pipeline.io import atomic_path
from pipeline.ledger import RESULTS_JSONL, Ledger
from pipeline.records import KIND_IMAGE, KIND_VIDEO, STATUS_DONE
from pipeline.report.html import page
from pipeline.report.image_card import image_card
from pipeline.report.sample import CardLimits, Pick, pick_cards
from pipeline.report.sections import Source, cards_section, failures_section, summary_section, table_section
from pipeline.report.summary import Summary, kind_of, summarize, units_of
from pipeline.report.table import table_data
from pipeline.report.video_card import video_card

REPORT_HTML = "report.html"

Card = Callable[..., str]


class NoLedgerError(ValueError):
    """The folder holds no ledger: it is not (yet) the output folder of a run."""


@dataclass(frozen=True)
class Report:
    """A written report: where, what it summarises, how many cards, how long it took."""

    path: Path
    summary: Summary
    image_cards: int
    video_cards: int
    seconds: float
    bytes: int


def _cards(picks: list[Pick], draw: Card, out_dir: Path, first: int) -> tuple[list[str], dict[str, str]]:
    """The cards of `picks` (anchors card-<first>, card-<first + 1>, ...) and id -> anchor."""
    cards: list[str] = []
    anchors: dict[str, str] = {}
    for number, chosen in enumerate(picks, start=first):
        anchor = f"card-{number}"
        unit_id = str(chosen.unit.get("id"))
        try:
            cards.append(draw(chosen.unit, out_dir, anchor=anchor, why=chosen.why))
        except Exception as error:  # noqa: BLE001 - one damaged file must not cost the whole report
            cards.append(
                f'<article class="card" id="{anchor}"><header><h3>{escape(unit_id)}</h3></header>'
                f'<p class="placeholder">this card could not be drawn: {escape(type(error).__name__)}: {escape(str(error))}</p></article>'
            )
        anchors.setdefault(unit_id, anchor)
    return cards, anchors


def render(out_dir: Path, records: Mapping[str, Mapping[str, Any]], source: Source, limits: CardLimits) -> tuple[str, Summary, int, int]:
    """The page for the ledger's latest `records`, its summary and its card counts."""
    units = units_of(records)
    summary = summarize(units)
    image_picks, video_picks = pick_cards(units, limits)
    images, image_anchors = _cards(image_picks, image_card, out_dir, 1)
    videos, video_anchors = _cards(video_picks, video_card, out_dir, len(images) + 1)
    done = {
        kind: sum(1 for unit in units if kind_of(unit) == kind and unit.get("status") == STATUS_DONE) for kind in (KIND_IMAGE, KIND_VIDEO)
    }
    how = "the worst by PSNR gain first (where there are references), then a sample spread evenly over the manifest"
    sections = [
        summary_section(summary, source),
        failures_section(summary),
        table_section(len(units)),
        cards_section("Images", "images", images, done[KIND_IMAGE], how),
        cards_section("Videos", "videos", videos, done[KIND_VIDEO], how),
    ]
    title = f"Restoration report: {out_dir.resolve().name or out_dir}"
    html = page(title, sections, table_data(units, {**image_anchors, **video_anchors}))
    return html, summary, len(images), len(videos)


def make_report(out_dir: Path | str, *, limits: CardLimits | None = None) -> Report:
    """Build and write ``out_dir/report.html``; raises NoLedgerError when there is no ledger, and
    `pipeline.io.write_errors.OutputWriteError` when the folder refuses the file."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    ledger = Ledger(out_dir)
    files = ledger.files()
    if not files:
        raise NoLedgerError(
            f"{out_dir} has no ledger ({RESULTS_JSONL} or results.<shard>.jsonl): give the output folder of a run "
            "(`pipeline run MANIFEST --out OUT`), or wait until its first unit has finished"
        )
    records = ledger.load()
    source = Source(str(out_dir), len(files), len(ledger.skipped_lines), datetime.now(timezone.utc).isoformat(timespec="seconds"))
    html, summary, images, videos = render(out_dir, records, source, limits or CardLimits())
    path = out_dir / REPORT_HTML
    data = html.encode("utf-8")
    with atomic_path(path, root=out_dir) as tmp:
        tmp.write_bytes(data)
    return Report(path, summary, images, videos, time.perf_counter() - started, len(data))


def write_report(out_dir: Path | str) -> Path:
    """Write ``out_dir/report.html`` from the folder's ledger (see `make_report`); its path."""
    return make_report(out_dir).path
