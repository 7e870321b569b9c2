"""Manifests: the CSV file that lists what to restore, one row per image or video.

A manifest is a UTF-8 CSV file (a byte-order mark is tolerated) whose first line is a header
naming its columns, in any order (names are matched ignoring case and surrounding spaces).
Blank lines are skipped and spaces around cells are stripped:

    id,task,input,mask,scale,output
    portrait,denoise,scans/portrait.png,,,
    street,sr,small/street.tif,,4,big/street.tif
    wall,inpaint,/archive/wall.jpg,/archive/wall_mask.png,,

Columns (`VALID_COLUMNS`; an empty cell means "not given"):

- `id` (required): unique name of the row, also the default output's file stem: letters, digits,
  '-', '_' and '.', not starting with '.'. Ids are compared ignoring case (they name files).
- `task` (required): a preset of `dip_engine.task_names()`.
- `input` (required): the image or video to restore. Relative paths are relative to the
  manifest's folder; absolute paths are used as they are (so are mask, flash and reference).
  A video is a video file (.mp4 .avi .mov .mkv), a folder of frame images, or a printf pattern
  of frame images such as `frames/%05d.png` (see `pipeline.io.sequence`); any input path
  without an image or video extension is taken for a folder of frames.
- `mask` (inpaint, watermark: required): binary mask image, same height and width as the input.
  For a video: one mask image for every frame (a logo, a burnt-in timestamp), or a folder or
  pattern of mask images, one per frame.
- `scale` (super-resolution): integer >= 2; required for `sr`, optional for `sr2`/`sr4`/`sr8`
  where it must equal the preset's factor.
- `flash` (flash: required): the flash image; `input` is the no-flash one. Same C×H×W.
- `reference` (optional): a clean image of the output's C×H×W (the input's, with height and width
  times the scale for super-resolution), only used to report PSNR. For a video: a video file,
  frame folder or pattern with the same number of frames, each of the output's size.
- `output` (optional): where to write the result, relative to the output folder; it must stay
  inside it (no absolute paths, no '..'). Default `<id>.<input extension>`, except that .jpg and
  .jpeg inputs default to .png, so that the result is not degraded by lossy re-encoding, and
  frame images default to `<id>.mp4`. Images are written as images, videos as video files.
- `max_iterations` (optional, integer >= 1) and `seed` (optional, integer >= 0): per-row overrides.
  For a video, `max_iterations` caps the cold-started frames (each segment's first, and cuts).
- `fps` (frame images: required): the frame rate of the video to write, > 0 (25, 29.97 or
  30000/1001). A video file is written at its own frame rate, so `fps` is refused there.

Video rows need a frame-wise task (denoise, sr*, inpaint, watermark; not flash). Their files are
checked too: the video decodes, has frames and a constant frame rate, frame images decode with
one size, masks and references fit the frames (size, channel count, frame count). Given the run's
video encoding (`video=`: --video-codec, --video-pixel-format), every video row's output must be
writable that way (`pipeline.manifest.encoding_checks`).

Masks are decoded whole and must be binary; other images are checked from their headers, or
decoded whole with `deep=True` (`pipeline validate --deep`; `pipeline.manifest.pixel_checks`).
Given the output folder (`out_dir=`), no output may resolve outside it through a symbolic link
(`pipeline.manifest.output_checks`).

A column that the row's task does not use (a mask on a denoise row) is an error, as is a column
not in `VALID_COLUMNS`. `parse_manifest` reads every row and reports every problem at once in a
`ManifestError`; `validate_manifest` returns the problems instead; `read_manifest` returns the valid
rows and each invalid one with its reasons (`pipeline run --skip-invalid`); `write_manifest_for_folder`
writes a manifest for a folder of images (`pipeline manifest DIR --task denoise > manifest.csv`).
"""

from pipeline.manifest.folder import write_manifest_for_folder
from pipeline.manifest.parse import InvalidRow, ManifestReading, parse_manifest, read_manifest, validate_manifest
from pipeline.manifest.schema import (
    REQUIRED_COLUMNS,
    VALID_COLUMNS,
    ManifestError,
    ManifestProblem,
    ManifestRow,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "VALID_COLUMNS",
    "InvalidRow",
    "ManifestError",
    "ManifestProblem",
    "ManifestReading",
    "ManifestRow",
    "parse_manifest",
    "read_manifest",
    "validate_manifest",
    "write_manifest_for_folder",
]
