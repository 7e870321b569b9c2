"""Archival video through pipeline.io: decoded at the source's depth, written by the codec asked for
(FFV1 bit-exact at 8 and 16 bits), and the source's other streams and tags copied unchanged.

Clips are made with the bundled ffmpeg from a photograph panned (`tests.pipeline.io.archival_clips`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.io import VideoOutput, VideoWriter, iter_video_frames, probe_sequence, probe_video
from pipeline.io.frame_timing import parse_framecrc
from pipeline.io.pixel_formats import encoder_pixel_formats
from pipeline.io.video_codecs import CODECS
from pipeline.io.video_streams import ColourTags, parse_streams, probe_streams
from tests.pipeline.io.archival_clips import FPS, HEIGHT, WIDTH, decode, deep_clip, ffmpeg, ffmpeg_info, packets, pan, samples16


def as_samples(frames: list[torch.Tensor], levels: int) -> np.ndarray:
    """Decoded float frames back to their integer samples (N×H×W×3)."""
    stacked = torch.stack(frames).double() * levels
    return stacked.round().to(torch.int64).permute(0, 2, 3, 1).numpy()


def write(path: Path, frames: torch.Tensor, **options: object) -> VideoWriter:
    with VideoWriter(path, FPS, WIDTH, HEIGHT, **options) as writer:  # type: ignore[arg-type]
        for frame in frames:
            writer.write(frame)
    return writer


# ----- decoding at the source's depth -----------------------------------------------------------


def test_a_10_bit_clip_decodes_with_its_low_bits(tmp_path: Path) -> None:
    frames = pan(4)
    clip = deep_clip(tmp_path / "reel.mkv", frames, extras=False)
    info = probe_sequence(clip)
    assert (info.bit_depth, info.pixel_format, info.frames, info.width, info.height) == ("uint16", "yuv420p10le", 4, WIDTH, HEIGHT)

    decoded = as_samples(list(iter_video_frames(clip)), 65535)
    direct = decode(clip, "rgb48le").astype(np.int64)
    assert np.array_equal(decoded, direct)  # exactly what ffmpeg makes of the 10-bit samples
    assert len(np.unique(decoded % 256)) > 4 and np.any(decoded % 257)  # not 8-bit levels stretched to 16 bits
    original = samples16(frames).astype(np.int64)
    eight_bit = decode(clip, "rgb24").astype(np.int64) * 257  # what decoding at 8 bits (as before) gave
    assert np.abs(decoded - original).mean() < 0.85 * np.abs(eight_bit - original).mean()  # measured: 298 against 399

    middle = as_samples(list(iter_video_frames(clip, 1, 3)), 65535)
    assert np.array_equal(middle, direct[1:3])


def test_an_8_bit_clip_decodes_as_before(tmp_path: Path) -> None:
    clip = deep_clip(tmp_path / "reel.mkv", pan(3), pixel_format="yuv420p", extras=False)
    assert probe_sequence(clip).bit_depth == "uint8"
    decoded = as_samples(list(iter_video_frames(clip)), 255)
    assert np.array_equal(decoded, decode(clip, "rgb24").astype(np.int64))


def test_frames_keep_their_stored_orientation(tmp_path: Path) -> None:
    clip = deep_clip(tmp_path / "reel.mkv", pan(2))  # tagged "rotate 90° for display"
    assert "rotation of 90.00 degrees" in ffmpeg_info(clip)
    info = probe_video(clip)
    frames = list(iter_video_frames(clip))
    assert (info.width, info.height) == (WIDTH, HEIGHT) and frames[0].shape == (3, HEIGHT, WIDTH)


# ----- writing: FFV1 bit-exact, deep frames into deep formats -----------------------------------


@pytest.mark.parametrize(("depth", "pixel_format", "levels"), [("uint8", "bgr0", 255), ("uint16", "gbrp16le", 65535)])
def test_ffv1_reads_back_bit_exact(tmp_path: Path, depth: str, pixel_format: str, levels: int) -> None:
    frames = pan(4)
    stored = (frames.double() * levels).round() / levels  # the frames as the segments store them
    encoding = VideoOutput("ffv1").encoding(depth, WIDTH, HEIGHT, ".mkv")
    assert encoding.pixel_format == pixel_format
    path = tmp_path / "archive.mkv"
    write(path, stored.float(), codec=encoding.encoder, crf=encoding.crf, pix_fmt=encoding.pixel_format, options=encoding.options)
    expected = (stored * levels).round().to(torch.int64).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(as_samples(list(iter_video_frames(path)), levels), expected)
    assert np.array_equal(decode(path, "rgb48le" if levels > 255 else "rgb24").astype(np.int64), expected)


def test_16_bit_frames_reach_a_10_bit_output_with_their_low_bits(tmp_path: Path) -> None:
    frames = pan(2)
    path = tmp_path / "deep.mkv"
    writer = write(path, frames, codec="ffv1", crf=None, pix_fmt="yuv444p10le")
    assert writer.samples == "uint16"  # fed to ffmpeg as rgb48le
    back = decode(path, "rgb48le").astype(np.int64)
    assert len(np.unique(back[0, :, :, 1])) > 300  # more levels than 8 bits have
    assert np.abs(back - samples16(frames)).max() < 200  # 10-bit 4:4:4 of the 16-bit frames, not of 8-bit ones


@pytest.mark.parametrize("codec", [codec.name for codec in CODECS])
def test_every_codec_writes_its_default_format(tmp_path: Path, codec: str) -> None:
    suffix = ".mkv" if codec in ("ffv1", "prores") else ".mp4"
    width = 64  # the bundled libx265 aborts on 48-pixel-wide frames
    encoding = VideoOutput(codec).encoding("uint16", width, HEIGHT, suffix)
    path = tmp_path / f"clip{suffix}"
    frames = pan(2)
    frames = torch.cat([frames, frames[..., :16]], dim=-1)
    with VideoWriter(
        path, FPS, width, HEIGHT, codec=encoding.encoder, crf=encoding.crf, pix_fmt=encoding.pixel_format, options=encoding.options
    ) as writer:
        for frame in frames:
            writer.write(frame)
    assert probe_video(path).pixel_format == encoding.pixel_format
    assert encoding.pixel_format in encoder_pixel_formats(encoding.encoder)


def test_codec_defaults_and_refusals() -> None:
    assert VideoOutput().encoding("uint16", 48, 32, ".mp4").pixel_format == "yuv420p"  # the playable default stays
    assert VideoOutput().encoding("uint8", 47, 32, ".mp4").pixel_format == "yuv444p"  # odd sizes
    assert VideoOutput("x265").encoding("uint8", 48, 32, ".mp4").options[-2:] == ("-tag:v", "hvc1")
    prores = VideoOutput("prores").encoding("uint16", 48, 32, ".mov")
    assert (prores.pixel_format, prores.options) == ("yuv422p10le", ("-profile:v", "3"))
    assert VideoOutput("prores").encoding("uint16", 47, 32, ".mov").options == ("-profile:v", "4")
    with pytest.raises(ValueError, match="x264, x265, ffv1, prores"):
        VideoOutput("h264")

    ffv1 = VideoOutput("ffv1")
    (problem,) = ffv1.problems(Path("restored/clip.mp4"), (48, 32), ())
    assert "Matroska (.mkv)" in problem and "restored/clip.mkv" in problem
    assert VideoOutput("prores").problems(Path("clip.mp4"), None, ()) != []
    assert VideoOutput("prores").problems(Path("clip.mov"), None, ()) == []
    accepted = encoder_pixel_formats("prores_ks")
    (problem,) = VideoOutput("prores", "yuv420p").problems(Path("clip.mov"), (48, 32), accepted)
    assert "yuv420p is not one prores_ks accepts" in problem and "yuv422p10le" in problem
    (problem,) = VideoOutput("x265", "yuv420p10le").problems(Path("clip.mkv"), (47, 32), encoder_pixel_formats("libx265"))
    assert "even width and height" in problem and "47x32" in problem


# ----- what ffmpeg says about a file ------------------------------------------------------------


def test_stream_lines_are_parsed() -> None:
    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'tape.mov':
  Stream group #0:0[0x3]: Track Reference:
    Stream #0:0[0x1](und): Video: prores (HQ) (apch / 0x68637061), yuv422p10le(tv, bt709/bt2020/arib-std-b67, progressive), 720x576 [SAR 16:15 DAR 4:3], 10 fps
      Side data:
        Display Matrix: rotation of -90.00 degrees
    Stream #0:2[0x3](eng): Data: none (tmcd / 0x64636D74), 0 kb/s
  Stream #0:1[0x2](und): Audio: pcm_s24le (in24 / 0x34326E69), 48000 Hz, stereo, s32 (24 bit)
  Stream #0:3: Attachment: none
    Metadata:
      filename        : font.ttf
"""
    info = parse_streams(text)
    assert info is not None
    assert [stream.label for stream in info.streams] == ["video 0: prores", "audio 1: pcm_s24le", "data 2: tmcd", "attachment 3: font.ttf"]
    assert (info.pixel_format, info.rotation, info.sample_aspect) == ("yuv422p10le", -90.0, (16, 15))
    assert info.colour == ColourTags(primaries="bt2020", transfer="arib-std-b67", space="bt709", range="tv")
    plain = parse_streams("  Stream #0:0: Video: h264 (High), yuv420p(tv, bt709, progressive), 64x48, 25 fps")
    assert plain is not None and plain.colour == ColourTags("bt709", "bt709", "bt709", "tv") and plain.rotation == 0.0
    assert parse_streams("  Stream #0:0: Audio: flac, 44100 Hz") is None


def test_frame_durations_tell_constant_from_variable_rates() -> None:
    header = "#tb 0: 1/1000\n#media_type 0: video\n"
    ntsc = header + "".join(f"0, {t}, {t}, 33, 100, 0x0\n" for t in (0, 33, 67, 100, 133, 167))  # 29.97 in ms ticks
    timing = parse_framecrc(ntsc)
    assert timing is not None and not timing.variable and timing.text() == "33.0–34.0 ms"
    reordered = header + "".join(f"0, 0, {t}, 40, 100, 0x0\n" for t in (0, 120, 40, 80, 200, 160))  # B-frames: display order differs
    timing = parse_framecrc(reordered)
    assert timing is not None and not timing.variable and timing.text() == "40.0 ms"
    dropped = header + "".join(f"0, {t}, {t}, 33, 100, 0x0\n" for t in (0, 33, 67, 133, 167, 233))
    timing = parse_framecrc(dropped)
    assert timing is not None and timing.variable and timing.text() == "33.0–66.0 ms"
    with_audio = ntsc + "#tb 1: 1/48000\n" + "1, 48000, 48000, 1024, 10, 0x0\n"
    timing = parse_framecrc(with_audio)
    assert timing is not None and timing.audio_end_s == pytest.approx(1 + 1024 / 48000) and timing.video_end_s == pytest.approx(0.2)


def test_a_variable_rate_clip_is_detected(tmp_path: Path) -> None:
    vfr = tmp_path / "vfr.mkv"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=30:duration=0.3"),
        *("-vf", "setpts='if(lt(N,4),N,4+2*(N-4))/30/TB'", "-fps_mode", "passthrough", "-c:v", "ffv1", str(vfr)),
    )
    timing = probe_sequence(vfr).timing
    assert timing is not None and timing.variable and timing.text() == "33.0–67.0 ms"
    steady = deep_clip(tmp_path / "steady.mkv", pan(3), extras=False)
    timing = probe_sequence(steady).timing
    assert timing is not None and not timing.variable


# ----- copying the source's other streams and tags ----------------------------------------------


def test_streams_tags_rotation_and_colour_are_copied_unchanged(tmp_path: Path) -> None:
    source = deep_clip(tmp_path / "in" / "reel.mkv", pan(4))
    frames = list(iter_video_frames(source))
    path = tmp_path / "out" / "reel.mkv"
    writer = write(path, torch.stack(frames), codec="ffv1", crf=None, pix_fmt="gbrp16le", streams_from=source)
    assert writer.streams is not None
    assert (writer.streams.copied, writer.streams.dropped, writer.streams.audio) == (("audio 1: aac", "subtitle 2: subrip"), (), True)
    for stream in ("0:a", "0:s"):
        assert packets(path, stream) == packets(source, stream)  # byte for byte, same timestamps
    assert probe_video(path).frames == 4 and probe_video(path).expected_frames is None  # the tone runs longer: copied whole

    info = probe_streams(path)
    assert info.rotation == 90.0 and info.colour == ColourTags("bt709", "bt709", "gbr", "pc")  # RGB: its own matrix and range
    metadata = ffmpeg("-i", str(path), "-f", "ffmetadata", "-").decode()
    for line in ("title=Harbour reel", "COMMENT=scanned 1998", "TIMECODE=01:00:00:00", "title=Opening", "title=Harbour", "END=600000000"):
        assert line in metadata
    assert not [name for name in path.parent.iterdir() if name.name.startswith(".")]  # no temporary file left


def test_a_stream_the_container_cannot_hold_is_left_out_and_named(tmp_path: Path) -> None:
    srt = tmp_path / "subtitles.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nHello\n")
    source = tmp_path / "tape.mov"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10:duration=0.3", "-f", "lavfi", "-i", "sine=duration=0.3", "-i", str(srt)),
        *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-c:s", "mov_text"),
        *("-vf", "setsar=10/11", str(source)),  # non-square pixels, as on DV tape
    )
    writer = write(tmp_path / "restored.mkv", torch.stack(list(iter_video_frames(source))), streams_from=source)
    assert writer.streams is not None and writer.streams.copied == ("audio 1: pcm_s16le",)
    (dropped,) = writer.streams.dropped
    assert dropped.startswith("subtitle 2: mov_text: Matroska (.mkv) cannot hold it (")
    assert packets(tmp_path / "restored.mkv", "0:a") != [] and "Subtitle" not in ffmpeg_info(tmp_path / "restored.mkv")
    assert probe_streams(tmp_path / "restored.mkv").sample_aspect == (10, 11)
