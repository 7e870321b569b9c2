"""The ffmpeg binary bundled with imageio-ffmpeg: how to name files for it and run it once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg


def ffmpeg_url(path: Path) -> str:
    """An absolute 'file:' URL, so ffmpeg never mistakes a file name for an option or a protocol."""
    return "file:" + str(Path(path).resolve())


def run_ffmpeg(args: list[str], stdin: bytes | None = None) -> bytes:
    """Run the bundled ffmpeg with `args`; its stdout, or RuntimeError with the end of its stderr."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *args]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()[-500:]
        raise RuntimeError(f"ffmpeg failed (exit code {result.returncode}): {message}")
    return result.stdout
