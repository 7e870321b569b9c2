"""File input and output: still images, videos, and atomic writes.

* `read_image`, `probe_image`, `write_image` (PNG, JPEG, TIFF; see `pipeline.io.image` for the
  conversion rules) and `ImageReadError`, `LoadedImage`.
* `probe_video`, `iter_video_frames`, `VideoWriter` (MP4, AVI, MOV, MKV through the ffmpeg bundled
  with imageio-ffmpeg; streamed, never a whole video in memory) and `VideoReadError`, `VideoInfo`.
* `probe_sequence`, `iter_sequence`, `frame_files` and `SequenceError`, `SequenceInfo`: frame
  sequences, i.e. a video file, a folder of frame images or a printf pattern such as
  ``frames/%05d.png`` (see `pipeline.io.sequence`).
* `atomic_path`, `atomic_folder`: write through a temporary file (or folder) that is renamed
  onto the target on success.
"""

from pipeline.io.atomic import atomic_folder, atomic_path
from pipeline.io.image import (
    IMAGE_SUFFIXES,
    ImageReadError,
    LoadedImage,
    is_image_path,
    probe_image,
    read_image,
    shape_text,
    write_image,
)
from pipeline.io.sequence import (
    SequenceError,
    SequenceInfo,
    frame_files,
    is_frame_pattern,
    is_frame_sequence_path,
    iter_sequence,
    probe_sequence,
)
from pipeline.io.video import (
    VIDEO_SUFFIXES,
    VideoInfo,
    VideoReadError,
    VideoWriter,
    is_video_path,
    iter_video_frames,
    probe_video,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ImageReadError",
    "SequenceError",
    "SequenceInfo",
    "LoadedImage",
    "VideoInfo",
    "VideoReadError",
    "VideoWriter",
    "atomic_folder",
    "atomic_path",
    "frame_files",
    "is_frame_pattern",
    "is_frame_sequence_path",
    "is_image_path",
    "is_video_path",
    "iter_sequence",
    "iter_video_frames",
    "probe_image",
    "probe_sequence",
    "probe_video",
    "read_image",
    "shape_text",
    "write_image",
]
