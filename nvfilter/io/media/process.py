"""The one place nvfilter starts ffmpeg: the binary (imageio-ffmpeg's, or $NVFILTER_FFMPEG), a
command run to its end or started as a process, and the most telling line of its complaints."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from typing import IO


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $NVFILTER_FFMPEG, else the one bundled with imageio-ffmpeg."""
    override = os.environ.get("NVFILTER_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run one ffmpeg command to its end (``args`` start with ffmpeg_exe()), output captured."""
    return subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL)


def start_ffmpeg(
    args: list[str], feed: bool = False, output: bool = False, log: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start one ffmpeg command (``args`` start with ffmpeg_exe()) that streams: ``feed``, its
    stdin a pipe (else nothing); ``output``, its stdout a pipe (else ours); its stderr to ``log``
    (None: a pipe)."""
    return subprocess.Popen(
        args,
        stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
        stdout=subprocess.PIPE if output else None,
        stderr=subprocess.PIPE if log is None else log,
    )


def wait_briefly(process: subprocess.Popen[bytes], seconds: float) -> None:
    """Let a process finish on its own for up to ``seconds``."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


def ffmpeg_version() -> str:
    """The first line of ``ffmpeg -version`` (for run records)."""
    lines = run_ffmpeg([ffmpeg_exe(), "-version"]).stdout.decode(errors="replace").splitlines()
    return lines[0] if lines else "unknown"


def complaint(log: str) -> str:
    """The most telling line of an ffmpeg error log, for a one-line message."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for needle in (
        "Invalid data",
        "No such file",
        "matches no streams",
        "Unknown encoder",
        "does not contain any stream",
        "Permission denied",
        "Error",
        "error",
    ):
        for line in lines:
            if needle in line:
                return re.sub(r"^\[[^\]]*\] ", "", line)
    return lines[-1] if lines else "ffmpeg failed"


class Drain(threading.Thread):
    """Collect a pipe (ffmpeg's stderr) in the background so that ffmpeg never blocks on it."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self._chunks: list[bytes] = []
        self.start()

    def run(self) -> None:
        if self._pipe is not None:
            self._chunks.append(self._pipe.read())

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")
