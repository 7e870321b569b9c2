"""Reading a manifest: the CSV, its header, each row's cells, and the checks across rows."""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path, PurePosixPath, PureWindowsPath

from dip_engine import Task, get_task, task_names
from dip_engine.video import FRAME_WISE_KINDS
from pipeline.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoOutput, is_frame_pattern, is_image_path, is_video_path
from pipeline.manifest.encoding_checks import check_video_encodings
from pipeline.manifest.file_checks import check_files as check_referenced_files
from pipeline.manifest.output_checks import check_outputs_inside
from pipeline.manifest.schema import (
    KIND_COLUMNS,
    REQUIRED_COLUMNS,
    VALID_COLUMNS,
    Draft,
    ManifestError,
    ManifestProblem,
    ManifestRow,
    Report,
    input_kind,
)

_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
_INT_PATTERN = re.compile(r"[+-]?[0-9]+")
_RATE_PATTERN = re.compile(r"(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(/(?P<denominator>[0-9]+(\.[0-9]*)?))?")
_FRAMES_HINT = "a folder of frame images or a frame pattern such as frames/%05d.png"
_MAX_SEED = 2**63 - 1
_LOSSY_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg")
_IMAGE_EXTENSIONS = " ".join(IMAGE_SUFFIXES)
_VIDEO_EXTENSIONS = " ".join(VIDEO_SUFFIXES)


def parse_manifest(
    path: Path, *, check_files: bool = True, deep: bool = False, out_dir: Path | None = None, video: VideoOutput | None = None
) -> list[ManifestRow]:
    """Read and validate a manifest; a ManifestError lists every problem found in it.

    Every row is read and every problem collected before raising. check_files=True also checks
    that every referenced file exists and decodes (from its header; masks are decoded whole and
    must be binary, and with `deep` every image is decoded whole: `pipeline.manifest.pixel_checks`),
    and that masks, flash images and references have the size the row's input implies; for video
    rows, that the video decodes (its frames are counted) or the frame images all have one size,
    and that masks and references have as many frames as the input
    (`pipeline.manifest.video_checks`). With `out_dir` (the output folder), no output may resolve
    outside it through a symbolic link (`pipeline.manifest.output_checks`). With `video` (the run's
    --video-codec and --video-pixel-format), every video row must be writable that way
    (`pipeline.manifest.encoding_checks`).
    """
    path = Path(path)
    report = Report(path)
    drafts = _parse(path, report, check_files=check_files, deep=deep, out_dir=out_dir, video=video)
    if report.problems:
        raise ManifestError(path, report.problems)
    return [draft.to_row() for draft in drafts]


@dataclass(frozen=True)
class InvalidRow:
    """A row of a manifest that cannot run, with every reason (`read_manifest`)."""

    row_number: int
    id: str | None  # the row's id, when it parsed and no other row has it
    task: str | None
    input: Path | None
    output: PurePosixPath | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ManifestReading:
    """A manifest read row by row: the rows that can run, and those that cannot."""

    rows: list[ManifestRow]  # the rows without a problem, in the file's order
    invalid: list[InvalidRow]  # the rows with one or more problems
    problems: list[ManifestProblem]  # every problem, those of the whole file (no row) included

    @property
    def file_problems(self) -> list[ManifestProblem]:
        """Problems of the file itself (its encoding, its header): no row of it can be run."""
        return [problem for problem in self.problems if problem.row_number is None]


def read_manifest(
    path: Path,
    *,
    check_files: bool = True,
    deep: bool = False,
    out_dir: Path | None = None,
    trusted: Callable[[ManifestRow], bool] | None = None,
    video: VideoOutput | None = None,
) -> ManifestReading:
    """Read a manifest as `parse_manifest` does, but row by row instead of all or nothing: the
    valid rows, and each invalid row with its reasons (what `pipeline run --skip-invalid` runs and
    records). A row that parses and for which `trusted(row)` is true (the ledger has it as done
    and current) keeps its rows' file checks skipped: an input moved away since it was restored
    does not make it invalid."""
    path = Path(path)
    report = Report(path)
    drafts = _parse(path, report, check_files=check_files, deep=deep, out_dir=out_dir, trusted=trusted, video=video)
    reasons: dict[int, list[str]] = {}
    for problem in report.problems:
        if problem.row_number is not None:
            column = f"column {problem.column!r}: " if problem.column else ""
            reasons.setdefault(problem.row_number, []).append(column + problem.message)
    ids = Counter(draft.id.lower() for draft in drafts if draft.id is not None)
    invalid = [
        InvalidRow(
            draft.line,
            draft.id if draft.id is not None and ids[draft.id.lower()] == 1 else None,
            draft.task.name if draft.task is not None else None,
            draft.input,
            draft.output,
            tuple(reasons[draft.line]),
        )
        for draft in drafts
        if draft.line in reasons
    ]
    whole_file = any(problem.row_number is None for problem in report.problems)  # then no row can run
    rows = [] if whole_file else [draft.to_row() for draft in drafts if draft.line not in reasons]
    return ManifestReading(rows, invalid, report.problems)


def validate_manifest(
    path: Path, *, check_files: bool = True, deep: bool = False, out_dir: Path | None = None, video: VideoOutput | None = None
) -> list[ManifestProblem]:
    """The problems `parse_manifest` would raise, without raising; an empty list if it is valid."""
    report = Report(Path(path))
    _parse(Path(path), report, check_files=check_files, deep=deep, out_dir=out_dir, video=video)
    return report.problems


def _parse(
    path: Path,
    report: Report,
    *,
    check_files: bool,
    deep: bool,
    out_dir: Path | None,
    trusted: Callable[[ManifestRow], bool] | None = None,
    video: VideoOutput | None = None,
) -> list[Draft]:
    records = _read_records(path, report)
    if not records:
        return []
    (header_line, header), rows = records[0], records[1:]
    columns = _read_header(header, report)
    if columns is None:
        return []
    if not rows:
        report.add(None, None, f"the manifest has a header (line {header_line}) but no rows; add one row per image")
    base = Path(os.path.abspath(path)).parent
    drafts = [_parse_row(line, cells, columns, base, report, video) for line, cells in rows]
    _check_unique(drafts, report)
    if out_dir is not None:
        check_outputs_inside(drafts, out_dir, report)
    if check_files:
        flawed = {problem.row_number for problem in report.problems}
        checked = [draft for draft in drafts if trusted is None or draft.line in flawed or not trusted(draft.to_row())]
        check_referenced_files(checked, report, deep=deep)
    if video is not None:  # after the file checks: they find the frames' size (unknown for trusted rows: not checked)
        check_video_encodings(drafts, video, report)  # trusted rows too: a video done with another codec is redone with this one
    report.problems.sort(key=lambda problem: problem.row_number or 0)  # stable: a row's own order kept
    return drafts


def _read_records(path: Path, report: Report) -> list[tuple[int, list[str]]]:
    """The file's non-blank CSV records, cells stripped, each with the line it starts on."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        report.add(None, None, f"manifest file not found: {os.path.abspath(path)}")
        return []
    except UnicodeDecodeError as error:
        report.add(None, None, f"the manifest is not UTF-8 text ({error.reason} at byte {error.start}); save it as 'CSV UTF-8'")
        return []
    except OSError as error:
        report.add(None, None, f"cannot read the manifest {os.path.abspath(path)}: {error.strerror or error}")
        return []
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            stripped = [cell.strip() for cell in cells]
            if any(stripped):
                records.append((start, stripped))
    except csv.Error as error:
        report.add(end + 1, None, f"not valid CSV: {error}; check the quotes from this line on")
        return []
    if not records:
        report.add(None, None, f"the manifest is empty; its first line must be a header, e.g. {','.join(REQUIRED_COLUMNS)}")
    return records


def _read_header(header: list[str], report: Report) -> list[str] | None:
    """The header's column names in lower case; None when the rows cannot be read with it."""
    names = [name.lower() for name in header]
    valid = ", ".join(VALID_COLUMNS)
    for position, name in enumerate(names):
        if not name:
            continue  # cells under it are reported by the rows that fill them
        if name not in VALID_COLUMNS:
            report.add(None, name, f"unknown column in the header; valid columns: {valid}")
        elif names.index(name) < position:
            report.add(None, name, "the header names this column twice; keep one")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if not missing:
        return names
    hint = ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        hint = "; the file seems to separate cells with ';' or tabs: save it comma-separated"
    elif not set(names) & set(VALID_COLUMNS):
        hint = f"; the first line must be the header, e.g. {','.join(REQUIRED_COLUMNS)}"
    report.add(None, None, f"required column(s) missing from the header: {', '.join(missing)}{hint}")
    return None


def _parse_row(line: int, cells: list[str], columns: list[str], base: Path, report: Report, video: VideoOutput | None) -> Draft:
    """Parse one record; each problem is reported and leaves its field None."""
    unnamed = [cell for name, cell in zip_longest(columns, cells) if not name and cell]
    if unnamed:
        values = ", ".join(repr(cell) for cell in unnamed)
        report.add(line, None, f"cells with no column name in the header: {values}; name the column, or quote cells that contain ','")
    given = {name: cell for name, cell in zip(columns, cells) if name in VALID_COLUMNS and cell}
    draft = Draft(line, given)
    for name in REQUIRED_COLUMNS:
        if name not in given:
            report.add(line, name, "required, but the cell is empty")
    if "id" in given:
        draft.id = _parse_id(given["id"], line, report)
    if "task" in given:
        draft.task = _parse_task(given["task"], line, report)
        _check_task_columns(draft, report)
    for name in ("input", "mask", "flash", "reference"):
        if name in given and (draft.task is None or _uses(draft.task, name)):
            setattr(draft, name, _parse_path(draft, name, base, report))
    _check_video_task(draft, report)
    draft.fps = _parse_fps(draft, report)
    draft.scale = _parse_scale(draft, report)
    if "max_iterations" in given:
        draft.max_iterations = _parse_int(given["max_iterations"], "max_iterations", 1, None, line, report)
    if "seed" in given:
        draft.seed = _parse_int(given["seed"], "seed", 0, _MAX_SEED, line, report)
    draft.output = _parse_output(draft, report, video)
    return draft


def _parse_id(text: str, line: int, report: Report) -> str | None:
    if _ID_PATTERN.fullmatch(text):
        return text
    report.add(
        line,
        "id",
        f"{text!r} is not a valid id: use letters, digits, '-', '_' and '.', not starting with '.' (the id names the output file)",
    )
    return None


def _parse_task(text: str, line: int, report: Report) -> Task | None:
    """The preset named in the cell, matched ignoring case."""
    names = {name.lower(): name for name in task_names()}
    if text.lower() in names:
        return get_task(names[text.lower()])
    report.add(line, "task", f"unknown task {text!r}; known tasks: {', '.join(task_names())}")
    return None


def _uses(task: Task, column: str) -> bool:
    """Whether rows of this task may fill the column."""
    return dict(KIND_COLUMNS).get(column, task.kind) == task.kind


def _check_task_columns(draft: Draft, report: Report) -> None:
    """Task-specific columns: filled where the task does not use them, empty where it needs them.

    (A flash row whose input is a video is told that flash cannot restore videos instead, by
    `_check_video_task`, rather than asked for a flash image.)"""
    task = draft.task
    if task is None:
        return
    for column, kind in KIND_COLUMNS:
        if column in draft.given and task.kind != kind:
            users = ", ".join(name for name in task_names() if get_task(name).kind == kind)
            report.add(draft.line, column, f"only used by the tasks {users}, not by task {task.name!r}; empty the cell or change the task")
    if task.kind == "inpaint" and "mask" not in draft.given:
        report.add(draft.line, "mask", f"task {task.name!r} needs a mask: a binary image, white (1) where pixels are known")
    if task.kind == "flash" and "flash" not in draft.given and input_kind(Path(draft.given.get("input", "x.png"))) == "image":
        report.add(draft.line, "flash", "task 'flash' needs the flash image here (the input is the no-flash image)")


def _parse_path(draft: Draft, column: str, base: Path, report: Report) -> Path | None:
    """A path cell made absolute (relative to the manifest's folder), its kind checked.

    An input is an image, a video file, or frame images (a folder, or a printf pattern such as
    frames/%05d.png). For a video row (video file or frame images) the reference is a video or
    frame images too, and the mask one image or frame images; for an image row both are images.
    """
    text = draft.given[column]
    if any(ord(character) < 32 for character in text):
        report.add(draft.line, column, f"{text!r} contains control characters; write the file's path")
        return None
    path = Path(os.path.abspath(base / os.path.expanduser(text)))
    if column == "input":
        if is_image_path(path) or is_video_path(path) or _names_a_folder(text, path):
            return path
        expected = f"an image ({_IMAGE_EXTENSIONS}), a video ({_VIDEO_EXTENSIONS}) or {_FRAMES_HINT}"
    elif draft.is_video and column in ("mask", "reference"):
        still = column == "mask" and is_image_path(path) and not is_frame_pattern(path)
        if still or is_frame_pattern(path) or _names_a_folder(text, path) or (column == "reference" and is_video_path(path)):
            return path
        what = "one mask image for every frame" if column == "mask" else f"a video ({_VIDEO_EXTENSIONS})"
        expected = f"{what} or {_FRAMES_HINT}, as the input is a video"
    else:
        if is_image_path(path) and not is_frame_pattern(path):
            return path
        expected = f"an image ({_IMAGE_EXTENSIONS})"
    report.add(draft.line, column, f"{text!r} is not {expected}")
    return None


def _names_a_folder(text: str, path: Path) -> bool:
    """A cell naming a folder of frames: no image or video extension, and either no extension at
    all, a trailing '/', or an existing folder."""
    if is_image_path(path) or is_video_path(path):
        return False
    return not path.suffix or text.endswith(("/", os.sep)) or path.is_dir()


def _check_video_task(draft: Draft, report: Report) -> None:
    """Video rows need a frame-wise task (not flash/no-flash, which pairs two still images)."""
    if draft.task is None or not draft.is_video or draft.task.kind in FRAME_WISE_KINDS:
        return
    names = ", ".join(name for name in task_names() if get_task(name).kind in FRAME_WISE_KINDS)
    report.add(draft.line, "task", f"task {draft.task.name!r} cannot restore a video; the frame-wise tasks are {names}")


def _parse_fps(draft: Draft, report: Report) -> float | None:
    """The frame rate of a frame-images input: required there, refused elsewhere."""
    text = draft.given.get("fps")
    kind = None if draft.input is None else input_kind(draft.input)
    if text is None:
        if kind == "frames":
            report.add(draft.line, "fps", "frame images need the frame rate of the video to write: fps, e.g. 25 or 30000/1001")
        return None
    if kind == "video":
        report.add(
            draft.line, "fps", "a video file is written at its own frame rate; empty the cell (fps is only for frame folders and patterns)"
        )
        return None
    if kind == "image":
        report.add(draft.line, "fps", "only used by video rows whose input is frame images (a folder or a pattern); empty the cell")
        return None
    match = _RATE_PATTERN.fullmatch(text)
    rate = None
    if match is not None:
        denominator = float(match["denominator"]) if match["denominator"] else 1.0
        rate = float(match["number"]) / denominator if denominator > 0 else None
    if rate is None or not 0 < rate < float("inf"):
        report.add(draft.line, "fps", f"must be a frame rate > 0 such as 25, 29.97 or 30000/1001, got {text!r}")
        return None
    return rate


def _parse_int(text: str, column: str, low: int, high: int | None, line: int, report: Report) -> int | None:
    """A whole number in [low, high]; reported otherwise."""
    if _INT_PATTERN.fullmatch(text) and low <= int(text) and (high is None or int(text) <= high):
        return int(text)
    bounds = f">= {low}" if high is None else f"between {low} and {high}"
    report.add(line, column, f"must be a whole number {bounds}, got {text!r}")
    return None


def _parse_scale(draft: Draft, report: Report) -> int | None:
    """The factor of an sr* row (the preset's when the cell is empty); None for other tasks."""
    task, text = draft.task, draft.given.get("scale")
    if task is None or task.kind != "sr":
        return None
    if text is None:
        if task.scale is None:
            report.add(draft.line, "scale", f"task {task.name!r} needs a scale: a whole number >= 2 (or use the task sr2, sr4 or sr8)")
        return task.scale
    scale = _parse_int(text, "scale", 2, None, draft.line, report)
    if scale is not None and task.scale is not None and scale != task.scale:
        report.add(draft.line, "scale", f"task {task.name!r} is fixed to scale {task.scale}, got {scale}; empty the cell or use task 'sr'")
        return None
    return scale


def _parse_output(draft: Draft, report: Report, video: VideoOutput | None) -> PurePosixPath | None:
    """The output path relative to the output folder: the cell, or `<id>.<input extension>`
    (frame images: `<id>.mp4`); a video whose default extension's container cannot hold the run's
    codec (`video`) gets the codec's own container instead (ffv1: `<id>.mkv`, prores: `<id>.mov`)."""
    text = draft.given.get("output")
    if text is None:
        if draft.id is None or draft.input is None:
            return None
        kind = input_kind(draft.input)
        suffix = ".mp4" if kind == "frames" else draft.input.suffix.lower()
        if kind != "image" and video is not None and suffix not in video.spec.suffixes:
            suffix = video.spec.suffixes[0]
        return PurePosixPath(draft.id + (".png" if suffix in _LOSSY_SUFFIXES else suffix))
    problem = _output_problem(text, draft.input)
    if problem is not None:
        report.add(draft.line, "output", problem)
        return None
    return PurePosixPath(text)


def _output_problem(text: str, input_path: Path | None) -> str | None:
    """Why an output cell cannot be used, or None."""
    path = PurePosixPath(text)
    if "\\" in text:
        return f"{text!r} contains '\\'; separate folders with '/'"
    if path.is_absolute() or PureWindowsPath(text).drive:
        return f"{text!r} is an absolute path; outputs are relative to the output folder, e.g. {path.name!r}"
    if ".." in path.parts:
        return f"{text!r} contains '..'; outputs must stay inside the output folder"
    if input_path is not None and input_kind(input_path) != "image":
        return None if is_video_path(path) else f"{text!r} needs a video extension ({_VIDEO_EXTENSIONS}): the input is a video"
    return None if is_image_path(path) else f"{text!r} needs an image extension ({_IMAGE_EXTENSIONS})"


def _check_unique(drafts: list[Draft], report: Report) -> None:
    """Ids and outputs must differ between rows, ignoring case: they name files."""
    first_id: dict[str, Draft] = {}
    first_output: dict[str, Draft] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        earlier = first_id.setdefault(draft.id.casefold(), draft)
        if earlier is not draft:
            same = "" if earlier.id == draft.id else f" as {earlier.id!r} (ids are compared ignoring case)"
            report.add(draft.line, "id", f"duplicate id {draft.id!r}: already used on row {earlier.line}{same}; ids must be unique")
            continue
        if draft.output is None:
            continue
        earlier = first_output.setdefault(draft.output.as_posix().casefold(), draft)
        if earlier is not draft:
            report.add(
                draft.line,
                "output",
                f"{draft.output.as_posix()!r} is also the output of row {earlier.line} (id {earlier.id!r}); give each row its own output",
            )
