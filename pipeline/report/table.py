"""The table of every unit, as the compact JSON the page's script pages, sorts and filters.

Shape (`table_data`)::

    {"columns": [{"key": "id", "label": "id", "type": "text"}, ...],
     "vocab": {"1": ["image", "video"], ...},      # column index -> its values (categorical columns)
     "rows": [["cat-001", 0, 2, 0, 20.12, 28.5, 8.38, 900, 1, 12.3, 0], ...],
     "cards": {"cat-001": "card-3", ...}}         # ids that have a card -> the card's anchor

Categorical columns (kind, task, status, stop reason, error) hold an index into their
vocabulary, so 100,000 rows cost a few megabytes. Numbers are rounded for display; a
non-finite number is the string "inf" or "-inf" (JSON has no infinity), None is null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.records import STATUS_FAILED
from pipeline.report.summary import STATUS_RUNNING, error_text, kind_of
from pipeline.report.values import gain, integer, number, text


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    type: str  # "text" | "number" | "category"
    value: Callable[[Mapping[str, Any]], Any]


def _rounded(digits: int, read: Callable[[Mapping[str, Any]], float | None]) -> Callable[[Mapping[str, Any]], Any]:
    def value(unit: Mapping[str, Any]) -> Any:
        found = read(unit)
        if found is None or math.isfinite(found):
            return None if found is None else round(found, digits)
        return "inf" if found > 0 else "-inf"

    return value


def _note(unit: Mapping[str, Any]) -> str | None:
    """The error of a failed unit, the progress of a running one."""
    if unit.get("status") == STATUS_FAILED:
        return error_text(unit)
    return text(unit, "progress") if unit.get("status") == STATUS_RUNNING else None


COLUMNS: tuple[Column, ...] = (
    Column("id", "id", "text", lambda unit: str(unit.get("id"))),
    Column("kind", "kind", "category", kind_of),
    Column("task", "task", "category", lambda unit: text(unit, "task")),
    Column("status", "status", "category", lambda unit: text(unit, "status")),
    Column("psnr_in", "PSNR in", "number", _rounded(2, lambda unit: number(unit, "psnr_in"))),
    Column("psnr_out", "PSNR out", "number", _rounded(2, lambda unit: number(unit, "psnr_out"))),
    Column("gain", "gain dB", "number", _rounded(2, gain)),
    Column("iterations", "iterations", "number", lambda unit: integer(unit, "iterations")),
    Column("stop_reason", "stop reason", "category", lambda unit: text(unit, "stop_reason")),
    Column("seconds", "seconds", "number", _rounded(2, lambda unit: number(unit, "seconds"))),
    Column("error", "error / progress", "category", _note),
)


def table_data(units: Sequence[Mapping[str, Any]], cards: Mapping[str, str]) -> dict[str, Any]:
    """Every unit as one row of the page's table (see the module docstring); `cards` maps the
    ids that have a card to its anchor."""
    vocab: dict[int, dict[Any, int]] = {index: {} for index, column in enumerate(COLUMNS) if column.type == "category"}
    rows = []
    for unit in units:
        row = []
        for index, column in enumerate(COLUMNS):
            value = column.value(unit)
            if index in vocab and value is not None:
                value = vocab[index].setdefault(value, len(vocab[index]))
            row.append(value)
        rows.append(row)
    return {
        "columns": [{"key": column.key, "label": column.label, "type": column.type} for column in COLUMNS],
        "vocab": {str(index): list(values) for index, values in vocab.items()},
        "rows": rows,
        "cards": dict(cards),
    }
