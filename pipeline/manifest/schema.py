"""The manifest's columns, its validated rows, and its problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dip_engine import Task
from pipeline.io import is_video_path

VALID_COLUMNS: tuple[str, ...] = (
    "id",
    "task",
    "input",
    "mask",
    "scale",
    "flash",
    "reference",
    "output",
    "max_iterations",
    "seed",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "task", "input")
# Columns only some task kinds use: (column, the task kind that uses it).
KIND_COLUMNS: tuple[tuple[str, str], ...] = (("mask", "inpaint"), ("flash", "flash"), ("scale", "sr"))
PATH_COLUMNS: tuple[str, ...] = ("input", "mask", "flash", "reference")


@dataclass(frozen=True)
class ManifestRow:
    """One validated row. Paths are absolute, except `output`: relative to the output folder.

    `row_number` is the row's line in the file (header = line 1). `scale` is the super-resolution
    factor of every sr* row (the preset's own for sr2/sr4/sr8 when the cell is empty) and None
    for the other tasks.
    """

    row_number: int
    id: str
    task: str
    input: Path
    mask: Path | None
    flash: Path | None
    reference: Path | None
    scale: int | None
    output: Path
    max_iterations: int | None = None
    seed: int | None = None

    @property
    def is_video(self) -> bool:
        """Whether the input is a video (restored frame by frame)."""
        return is_video_path(self.input)


@dataclass(frozen=True)
class ManifestProblem:
    """One thing wrong with a manifest.

    row_number: the row's line in the file (header = 1), None for problems of the whole file or
    of its header. column: the column at fault, if one is. manifest: only used to name the file.
    """

    row_number: int | None
    column: str | None
    message: str
    manifest: Path | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = [self.manifest.name] if self.manifest is not None else []
        if self.row_number is not None:
            where.append(f"row {self.row_number}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ManifestError(ValueError):
    """A manifest that cannot be used; `problems` lists everything wrong with it."""

    def __init__(self, path: Path, problems: list[ManifestProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        count = f"{len(self.problems)} problem" + ("" if len(self.problems) == 1 else "s")
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"manifest {path} cannot be used, {count}:\n{lines}")


@dataclass
class Report:
    """Collects the problems found in one manifest."""

    manifest: Path
    problems: list[ManifestProblem] = field(default_factory=list)

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(ManifestProblem(row, column, message, self.manifest))


@dataclass
class Draft:
    """A row being validated: its non-empty cells, and each field once parsed (None if wrong)."""

    line: int
    given: dict[str, str]
    id: str | None = None
    task: Task | None = None
    input: Path | None = None
    mask: Path | None = None
    flash: Path | None = None
    reference: Path | None = None
    scale: int | None = None
    output: PurePosixPath | None = None
    max_iterations: int | None = None
    seed: int | None = None

    def to_row(self) -> ManifestRow:
        """The validated row (only called when the manifest had no problem)."""
        if self.id is None or self.task is None or self.input is None or self.output is None:
            raise AssertionError(f"row {self.line} has problems; it cannot become a ManifestRow")
        return ManifestRow(
            row_number=self.line,
            id=self.id,
            task=self.task.name,
            input=self.input,
            mask=self.mask,
            flash=self.flash,
            reference=self.reference,
            scale=self.scale,
            output=Path(self.output),
            max_iterations=self.max_iterations,
            seed=self.seed,
        )
