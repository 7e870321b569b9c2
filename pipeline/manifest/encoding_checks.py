"""The manifest's check of video rows against the run's video encoding (--video-codec, --video-pixel-format).

Given the run's `pipeline.io.VideoOutput`, every video row must be writable that way before any
frame is restored: its output's container must hold the codec (FFV1 only in .mkv, ProRes in
.mov or .mkv, HEVC not in .avi), the pixel format must be one the real encoder accepts (as the
bundled ffmpeg lists it), and a chroma-subsampled pixel format needs an even output size. Each
problem is reported at the row's output column, saying what to change.
"""

from __future__ import annotations

from pipeline.io import VideoOutput
from pipeline.io.pixel_formats import encoder_pixel_formats
from pipeline.manifest.schema import Draft, Report


def check_video_encodings(drafts: list[Draft], video: VideoOutput, report: Report) -> None:
    """Report every video row that cannot be written with `video` (see the module docstring)."""
    rows = [draft for draft in drafts if draft.is_video and draft.output is not None]
    if not rows:
        return
    accepted = encoder_pixel_formats(video.spec.encoder) if video.pixel_format is not None else ()
    for draft in rows:
        assert draft.output is not None
        size = None
        if draft.source is not None:
            factor = draft.scale or 1
            size = (draft.source.width * factor, draft.source.height * factor)
        for problem in video.problems(draft.output, size, accepted):
            report.add(draft.line, "output", problem)
