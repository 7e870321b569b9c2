"""File input and output: still images, videos, and atomic writes.

* `read_image`, `probe_image`, `write_image` (PNG, JPEG, TIFF; see `pipeline.io.image` for the
  conversion rules) and `ImageReadError`, `LoadedImage`.
* `probe_video`, `iter_video_frames`, `VideoWriter` (MP4, AVI, MOV, MKV through the ffmpeg bundled
  with imageio-ffmpeg; streamed, never a whole video in memory, at the source's bit depth) and
  `VideoReadError`, `VideoInfo`, `FrameTiming`; `VideoOutput`, `VideoCodecName` (the encoders a
  restored video is written with: `pipeline.io.video_codecs`) and `StreamCopy` (what a restored
  video copied from its source: `pipeline.io.stream_copy`).
* `probe_sequence`, `iter_sequence`, `frame_files` and `SequenceError`, `SequenceInfo`: frame
  sequences, i.e. a video file, a folder of frame images or a printf pattern such as
  ``frames/%05d.png`` (see `pipeline.io.sequence`).
* `atomic_path`, `atomic_folder`: write through a temporary file (or folder) that is renamed
  onto the target on success; given the output folder, refuse a target that resolves outside it
  (`check_inside`, `OutsideOutputError`: see `pipeline.io.confine`).
"""

from pipeline.io.atomic import atomic_folder, atomic_path
from pipeline.io.confine import OutsideOutputError, check_inside, outside_of
from pipeline.io.frame_timing import FrameTiming
from pipeline.io.image import (
    IMAGE_SUFFIXES,
    ImageReadError,
    LoadedImage,
    is_image_path,
    probe_bit_depth,
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
from pipeline.io.stream_copy import StreamCopy
from pipeline.io.video import (
    VIDEO_SUFFIXES,
    VideoInfo,
    VideoReadError,
    VideoWriter,
    is_video_path,
    iter_video_frames,
    probe_video,
)
from pipeline.io.video_codecs import VideoCodecName, VideoOutput

__all__ = [
    "FrameTiming",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ImageReadError",
    "SequenceError",
    "SequenceInfo",
    "StreamCopy",
    "LoadedImage",
    "OutsideOutputError",
    "VideoCodecName",
    "VideoInfo",
    "VideoOutput",
    "VideoReadError",
    "VideoWriter",
    "atomic_folder",
    "atomic_path",
    "check_inside",
    "frame_files",
    "is_frame_pattern",
    "is_frame_sequence_path",
    "is_image_path",
    "is_video_path",
    "iter_sequence",
    "iter_video_frames",
    "outside_of",
    "probe_bit_depth",
    "probe_image",
    "probe_sequence",
    "probe_video",
    "read_image",
    "shape_text",
    "write_image",
]
