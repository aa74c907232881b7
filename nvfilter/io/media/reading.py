"""Frames out of ffmpeg as raw RGB at the source's constant rate, whole or one at a time, and
standard input spooled to a file so that it can be probed and read."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

import ffmpeg
import numpy as np
import torch

from nvfilter.config import SourceInfo
from nvfilter.errors import VideoError
from nvfilter.io.media.process import Drain, complaint, ffmpeg_exe, start_ffmpeg, wait_briefly


def training_size(
    src_width: int, src_height: int, width: int | None, height: int | None
) -> tuple[int, int]:
    """Size to learn at: as given; one of them given keeps the picture's aspect ratio."""
    if width and height:
        return width, height
    if width:
        return width, max(1, round(width * src_height / src_width))
    if height:
        return max(1, round(height * src_width / src_height)), height
    return src_width, src_height


def build_read_args(
    path: str, src: SourceInfo, width: int, height: int, max_read: int | None,
    constant_rate: bool = True,
) -> list[str]:  # fmt: skip
    """Decode the first video stream to raw rgb24 frames on stdout at the source's constant rate.

    Variable-frame-rate input is resampled to ``src.frame_rate`` by ffmpeg (frames duplicated or
    dropped), so frame k always stands at time k / frame_rate; unless not ``constant_rate``:
    then every frame the stream has comes out once (its time is the caller's: frame_times).
    """
    stream = ffmpeg.input(path).video
    if (width, height) != (src.width, src.height):
        downscale = width * height < src.width * src.height
        stream = stream.filter("scale", width, height, flags="area" if downscale else "bicubic")
    stream = stream.filter("format", "rgb24")
    kwargs: dict[str, Any] = {
        "format": "rawvideo",
        "pix_fmt": "rgb24",
        "fps_mode": "cfr",
        "r": str(src.frame_rate),
    }
    if not constant_rate:
        kwargs.update({"fps_mode": "passthrough"})
        del kwargs["r"]
    if max_read is not None:
        kwargs["frames:v"] = max_read
    out = ffmpeg.output(stream, "pipe:", **kwargs)
    return list(
        out.global_args("-hide_banner", "-nostdin", "-loglevel", "error").compile(cmd=ffmpeg_exe())
    )


def read_frames(
    path: str,
    src: SourceInfo,
    width: int,
    height: int,
    frame_step: int = 1,
    max_frames: int | None = None,
    label: str | None = None,
) -> torch.Tensor:
    """Read frames as a uint8 tensor (frames, height, width, 3), keeping every frame_step-th.

    Memory is one raw frame per kept frame (the array is preallocated from the probe's estimate
    and grown only if the estimate was short).
    """
    estimate = src.estimated_frames or 64
    if max_frames is not None:
        estimate = min(estimate, max_frames * frame_step)
    frames = iter_frames(path, src, width, height, frame_step, max_frames, label)
    return collect_frames(frames, -(-estimate // frame_step), width, height)


def collect_frames(
    stream: Iterator[np.ndarray], estimate: int, width: int, height: int
) -> torch.Tensor:
    """A stream's uint8 frames (height, width, 3) as one tensor (frames, height, width, 3),
    preallocated for ``estimate`` of them and grown only if that was short."""
    frames = torch.empty((estimate + 1, height, width, 3), dtype=torch.uint8)
    kept = 0
    for frame in stream:
        if kept == frames.shape[0]:
            grown = torch.empty((kept + kept // 2 + 8, height, width, 3), dtype=torch.uint8)
            grown[:kept] = frames
            frames = grown
        frames[kept] = torch.from_numpy(frame)
        kept += 1
    return frames[:kept]


def iter_frames(
    path: str,
    src: SourceInfo,
    width: int,
    height: int,
    frame_step: int = 1,
    max_frames: int | None = None,
    label: str | None = None,
    constant_rate: bool = True,
) -> Generator[np.ndarray, None, None]:
    """The frames one at a time as uint8 arrays (height, width, 3), every frame_step-th: a
    stream that holds one raw frame, whatever the video's length. Raises VideoError when ffmpeg
    cannot decode the file or it has no frames. ``constant_rate``: build_read_args's."""
    max_read = None if max_frames is None else max_frames * frame_step
    scratch = np.empty(width * height * 3, dtype=np.uint8)
    kept = 0
    args = build_read_args(path, src, width, height, max_read, constant_rate)
    proc = start_ffmpeg(args, output=True)
    log = Drain(proc.stderr)
    assert proc.stdout is not None
    finished = False
    try:
        for index in itertools.count():
            if index % frame_step:
                if _fill(proc.stdout, scratch) < scratch.size:
                    break
                continue
            frame = np.empty((height, width, 3), dtype=np.uint8)
            if _fill(proc.stdout, frame.reshape(-1)) < scratch.size:
                break
            kept += 1
            yield frame
            if max_frames is not None and kept >= max_frames:
                break
        finished = True
    finally:
        proc.stdout.close()
        if finished and (max_frames is None or kept < max_frames):  # at the end of the stream
            wait_briefly(proc, 30)
        proc.kill()
        code = proc.wait()
        log.join()
    label = label or path
    if code not in (0, -9) and kept == 0:
        raise VideoError(f"{label}: ffmpeg could not decode it ({complaint(log.text)})")
    if kept == 0:
        raise VideoError(f"{label}: the video stream has no frames")


def _fill(stream: IO[bytes], target: np.ndarray) -> int:
    """Fill target from stream completely (a short pipe read is retried); returns bytes filled."""
    view = memoryview(target.data.cast("B"))
    filled = 0
    while filled < len(view):
        got = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            break
        filled += got
    return filled


def spool_stdin(stream: IO[bytes], suffix: str = "") -> Path:
    """Copy a stream (standard input) to a temporary file so that it can be probed and read."""
    fd, name = tempfile.mkstemp(prefix="nvfilter-stdin-", suffix=suffix)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    return Path(name)
