"""File input and output: still images, videos, and atomic writes.

* `read_image`, `probe_image`, `write_image` (PNG, JPEG, TIFF; see `pipeline.io.image` for the
  conversion rules) and `ImageReadError`, `LoadedImage`.
* `probe_video`, `iter_video_frames`, `VideoWriter` (MP4, AVI, MOV, MKV through the ffmpeg bundled
  with imageio-ffmpeg; streamed, never a whole video in memory) and `VideoReadError`, `VideoInfo`.
* `atomic_path`: write through a temporary file that is renamed onto the target on success.
"""

from pipeline.io.atomic import atomic_path
from pipeline.io.image import (
    IMAGE_SUFFIXES,
    ImageReadError,
    LoadedImage,
    is_image_path,
    probe_image,
    read_image,
    write_image,
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
    "LoadedImage",
    "VideoInfo",
    "VideoReadError",
    "VideoWriter",
    "atomic_path",
    "is_image_path",
    "is_video_path",
    "iter_video_frames",
    "probe_image",
    "probe_video",
    "read_image",
    "write_image",
]
