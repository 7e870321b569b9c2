"""Shards of a manifest: `pipeline run --shard i/N` runs every N-th row, starting at row i.

Row k of the manifest (0-based, in file order) belongs to shard k mod N, so the N shards of one
manifest cover every row exactly once, the same way on every run and every machine, and each
shard gets rows from all over the file (a long tail of big images does not land in one shard). A
video row is one unit here: all its segments and its assembly run in the row's shard.

Each shard appends to its own ledger file, ``results.shard-<i>-of-<N>.jsonl``, in the shared
output folder; reading a ledger merges every file (`pipeline.ledger.Ledger`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

Row = TypeVar("Row")

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (0-based) of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"a shard is i/N with N >= 1 and 0 <= i < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'i/N' (e.g. '0/4' .. '3/4') as a Shard; ValueError saying the expected form."""
        match = _SPEC.fullmatch(text)
        if match is None:
            raise ValueError(f"--shard takes i/N (shard i of N, counted from 0, e.g. 0/4), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @property
    def name(self) -> str:
        """The shard's part of its ledger file name: ``shard-<i>-of-<N>``."""
        return f"shard-{self.index}-of-{self.count}"

    def select(self, rows: Sequence[Row]) -> list[Row]:
        """This shard's rows: those at positions index, index + count, index + 2·count, ..."""
        return list(rows[self.index :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
