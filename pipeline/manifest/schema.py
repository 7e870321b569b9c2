"""The manifest's columns, its validated rows, and its problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from dip_engine import Task
from pipeline.io import SequenceInfo, is_frame_sequence_path, is_video_path

InputKind = Literal["image", "video", "frames"]

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
    "fps",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "task", "input")
# Columns only some task kinds use: (column, the task kind that uses it).
KIND_COLUMNS: tuple[tuple[str, str], ...] = (("mask", "inpaint"), ("flash", "flash"), ("scale", "sr"))
PATH_COLUMNS: tuple[str, ...] = ("input", "mask", "flash", "reference")
MIN_SIDE = 4  # the smallest image or frame side the engine restores
RELATIVE_HINT = " (paths are relative to the manifest's folder)"
Shape = tuple[int, int, int]  # C×H×W


def input_kind(path: Path | PurePosixPath) -> InputKind:
    """What an input path names: a video file, frame images (a folder or a printf pattern such as
    frames/%05d.png: any path without an image or video extension is taken for a folder), or an image."""
    if is_video_path(path):
        return "video"
    return "frames" if is_frame_sequence_path(path) else "image"


@dataclass(frozen=True)
class ManifestRow:
    """One validated row. Paths are absolute, except `output`: relative to the output folder.

    `row_number` is the row's line in the file (header = line 1). `scale` is the super-resolution
    factor of every sr* row (the preset's own for sr2/sr4/sr8 when the cell is empty) and None
    for the other tasks. `fps` is the frame rate of a row whose input is frame images (a folder
    or a pattern); None otherwise (a video file keeps its own rate). `source` is what validating
    a video row's files found out about its input (frame count, size), so that planning need not
    decode the video again; None for images and when files were not checked.
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
    fps: float | None = None
    source: SequenceInfo | None = field(default=None, compare=False, repr=False)

    @property
    def input_kind(self) -> InputKind:
        """ "image", "video" (a video file) or "frames" (a folder or a printf pattern of frame images)."""
        return input_kind(self.input)

    @property
    def is_video(self) -> bool:
        """Whether the row is a video (a video file or frame images), restored as frame chains."""
        return self.input_kind != "image"


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
    fps: float | None = None
    source: SequenceInfo | None = None  # a video row's input as its file check probed it

    @property
    def is_video(self) -> bool:
        """Whether the input parsed as a video file or frame images (False while it is unknown)."""
        return self.input is not None and input_kind(self.input) != "image"

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
            fps=self.fps,
            source=self.source,
        )


def output_shape(draft: Draft, channels: int, height: int, width: int) -> tuple[Shape, str] | None:
    """The C×H×W of the row's output for an input of this shape, and how it follows from the
    input (for messages); None while the task or the scale is unknown (reported elsewhere)."""
    if draft.task is None or (draft.task.kind == "sr" and draft.scale is None):
        return None
    factor = draft.scale or 1
    why = f"the input's {height}x{width} times scale {factor}" if factor > 1 else "the input's size"
    return (channels, height * factor, width * factor), why
