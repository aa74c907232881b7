"""Everything that talks to ffmpeg: build argument lists (pure), probe, read frames, write frames.

The ffmpeg binary is the one imageio-ffmpeg bundles (``NVFILTER_FFMPEG`` overrides it), so nothing
has to be installed beside pip. There is no ffprobe in that bundle: a probe decodes the first frame
through ffmpeg's ``showinfo`` filter and reads what it logs. Argument lists are built with
ffmpeg-python and returned as plain lists, so they can be tested without running anything.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Generator
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import ffmpeg
import numpy as np
import torch

from nvfilter.config import CRF_CODECS, ColorTags, SourceInfo, VideoInfo
from nvfilter.errors import OutputError, VideoError


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $NVFILTER_FFMPEG, else the one bundled with imageio-ffmpeg."""
    override = os.environ.get("NVFILTER_FFMPEG")
    if override:
        return override
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


# --------------------------------------------------------------------------------------------
# probe


def run_ffmpeg(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run one ffmpeg command to its end (``args`` start with ffmpeg_exe()), output captured:
    with FrameWriter and read_frames, the only places nvfilter starts ffmpeg."""
    return subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL)


def ffmpeg_version() -> str:
    """The first line of ``ffmpeg -version`` (for run records)."""
    lines = run_ffmpeg([ffmpeg_exe(), "-version"]).stdout.decode(errors="replace").splitlines()
    return lines[0] if lines else "unknown"


def build_probe_args(path: str) -> list[str]:
    """Decode the first frame of the first video stream, logging its properties with showinfo."""
    stream = ffmpeg.input(path).video.filter("showinfo")
    out = ffmpeg.output(stream, "-", format="null", **{"frames:v": 1})
    return list(out.global_args("-hide_banner", "-nostdin").compile(cmd=ffmpeg_exe()))


_RATE = re.compile(r"config in time_base: \S+, frame_rate: (\d+)/(\d+)")
_FRAME = re.compile(r"n:\s*0 .*?fmt:(\S+) .*?sar:(\d+)/(\d+) s:(\d+)x(\d+)")
_COLOR = re.compile(r"color_range:(\S+) color_space:(\S+) color_primaries:(\S+) color_trc:(\S+)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_LINE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+)")
_AUDIO_LINE = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")
_TBR = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr")


def _tag(value: str) -> str | None:
    return None if value in ("unknown", "unspecified", "reserved") else value


def _stream_color(line: str) -> ColorTags:
    """Colour tags from a stream line: 'yuv420p(tv, bt709/bt2020/smpte2084, progressive)'."""
    match = re.search(r"Video: [^,]+, \w+\(([^)]*)\)", line)
    if not match:
        return ColorTags()
    rng = None
    matrix = primaries = trc = None
    for item in (part.strip() for part in match.group(1).split(",")):
        if item in ("tv", "pc"):
            rng = item
        elif "/" in item:
            matrix, primaries, trc = (_tag(v) for v in (item.split("/") + ["", ""])[:3])
        elif item not in (
            "progressive",
            "top first",
            "bottom first",
            "top coded first",
            "bottom coded first",
        ) and re.fullmatch(r"[\w-]+", item):
            matrix = primaries = trc = _tag(item)
    return ColorTags(range=rng, primaries=primaries, transfer=trc, matrix=matrix)


def parse_probe(log: str) -> SourceInfo:
    """Read a probe's ffmpeg log into a SourceInfo; raises VideoError when a part is missing."""
    video_line = _VIDEO_LINE.search(log)
    frame = _FRAME.search(log)
    if video_line is None:
        raise VideoError("no video stream")
    if frame is None:
        raise VideoError("the video stream has no frames")
    pix_fmt, sar_num, sar_den, width, height = frame.groups()
    rate = Fraction(0)
    rate_match = _RATE.search(log)
    if rate_match and int(rate_match.group(2)) > 0:
        rate = Fraction(int(rate_match.group(1)), int(rate_match.group(2)))
    if rate <= 0:
        tbr = _TBR.search(log)
        if tbr:
            rate = Fraction(tbr.group(1)).limit_denominator(1001) * (1000 if tbr.group(2) else 1)
    if rate <= 0:
        rate = Fraction(25)
    duration = None
    dur = _DURATION.search(log)
    if dur:
        hours, minutes, seconds = dur.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    color = _stream_color(log[video_line.start() :].split("\n", 1)[0])
    col = _COLOR.search(log)
    if col:  # the decoded frame's own tags win where it has them
        rng, matrix, primaries, trc = (_tag(v) for v in col.groups())
        color = ColorTags(
            range=rng or color.range,
            primaries=primaries or color.primaries,
            transfer=trc or color.transfer,
            matrix=matrix or color.matrix,
        )
    sar = Fraction(int(sar_num), int(sar_den)) if int(sar_num) > 0 else Fraction(1)
    return SourceInfo(
        width=int(width),
        height=int(height),
        frame_rate=rate,
        duration=duration,
        sample_aspect_ratio=sar,
        color=color,
        codec=video_line.group(1),
        pix_fmt=pix_fmt,
        audio_codec=audio_line.group(1) if (audio_line := _AUDIO_LINE.search(log)) else None,
    )


def _ffmpeg_complaint(log: str) -> str:
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


def probe(path: str, label: str | None = None) -> SourceInfo:
    """Probe a video file; raises VideoError with one clear line when it is not a usable video.

    ``label`` names the input in messages (``-`` for standard input spooled to ``path``).
    """
    label = label or path
    result = subprocess.run(
        build_probe_args(path), capture_output=True, text=True, errors="replace"
    )
    log = result.stderr
    if result.returncode != 0 and "Video:" not in log:
        if "matches no streams" in log or "does not contain any stream" in log:
            raise VideoError(f"{label}: no video stream")
        if "End of file" in log:
            raise VideoError(f"{label}: empty or cut short: no frames could be read")
        raise VideoError(f"{label}: not a video ffmpeg can read ({_ffmpeg_complaint(log)})")
    try:
        return parse_probe(log)
    except VideoError as err:
        raise VideoError(f"{label}: {err}") from None


# --------------------------------------------------------------------------------------------
# read


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
    path: str, src: SourceInfo, width: int, height: int, max_read: int | None
) -> list[str]:
    """Decode the first video stream to raw rgb24 frames on stdout at the source's constant rate.

    Variable-frame-rate input is resampled to ``src.frame_rate`` by ffmpeg (frames duplicated or
    dropped), so frame k always stands at time k / frame_rate.
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
    frames = torch.empty((-(-estimate // frame_step) + 1, height, width, 3), dtype=torch.uint8)
    kept = 0
    for frame in iter_frames(path, src, width, height, frame_step, max_frames, label):
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
) -> Generator[np.ndarray, None, None]:
    """The frames one at a time as uint8 arrays (height, width, 3), every frame_step-th: a
    stream that holds one raw frame, whatever the video's length. Raises VideoError when ffmpeg
    cannot decode the file or it has no frames."""
    max_read = None if max_frames is None else max_frames * frame_step
    scratch = np.empty(width * height * 3, dtype=np.uint8)
    kept = 0
    args = build_read_args(path, src, width, height, max_read)
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    log = _drain(proc.stderr)
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
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        code = proc.wait()
        log.join()
    label = label or path
    if code not in (0, -9) and kept == 0:
        raise VideoError(f"{label}: ffmpeg could not decode it ({_ffmpeg_complaint(log.text)})")
    if kept == 0:
        raise VideoError(f"{label}: the video stream has no frames")


class _drain(threading.Thread):
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


# --------------------------------------------------------------------------------------------
# write


def default_codec(container: str | None) -> str:
    """The video encoder for a container when --codec is not given: VP9 for WebM, else x264."""
    return "libvpx-vp9" if container == "webm" else "libx264"


def default_pix_fmt(codec: str) -> str | None:
    """yuv420p for the usual delivery codecs (plays everywhere); None lets ffmpeg choose."""
    if codec in (
        "libx264",
        "libx265",
        "libvpx",
        "libvpx-vp9",
        "libaom-av1",
        "libsvtav1",
        "mpeg4",
        "mpeg2video",
    ):
        return "yuv420p"
    if codec == "png":
        return "rgb24"
    return None


def even_size(width: int, height: int, pix_fmt: str | None) -> tuple[int, int]:
    """Smallest size at least width x height that a chroma-subsampled pix_fmt can hold."""
    if pix_fmt is None:
        return width, height
    if "420" in pix_fmt or pix_fmt.startswith(("nv12", "nv21", "yuvj420")):
        return width + width % 2, height + height % 2
    if "422" in pix_fmt or "411" in pix_fmt:
        return width + width % 2, height
    return width, height


RGB_MATRICES = frozenset({"gbr", "rgb"})
"""Matrix tags of an RGB source (PNG, FFV1 or x264 in RGB): no RGB -> YUV matrix at all."""


def yuv_color(color: ColorTags, height: int) -> ColorTags:
    """The tags for a YUV output: the source's matrix where it is a YUV one; for an RGB source,
    the matrix players assume for the size (BT.709 from 720 lines, BT.601 below) in TV range."""
    if color.matrix not in RGB_MATRICES:
        return color
    matrix = "bt709" if height >= 720 else "smpte170m"
    return dataclasses.replace(color, matrix=matrix, range="tv")


def build_write_args(
    target: str,
    width: int,
    height: int,
    fps: Fraction,
    info: VideoInfo,
    codec: str,
    crf: int | None,
    pix_fmt: str | None,
    container: str | None,
    image_sequence: bool = False,
    audio: tuple[Any, dict[str, Any]] | None = None,
) -> list[str]:
    """Raw rgb24 frames on stdin -> encoded video (or numbered PNGs) at ``target``.

    ``audio``: an ffmpeg-python audio stream and its output options, muxed beside the video.

    The source's colour tags are written (and used as the RGB -> YUV matrix and range), and its
    sample aspect ratio too. A size a subsampled pix_fmt cannot hold is padded by one row/column
    that repeats the edge.
    """
    stream = ffmpeg.input(
        "pipe:",
        format="rawvideo",
        pix_fmt="rgb24",
        s=f"{width}x{height}",
        framerate=str(fps),
    ).video
    kwargs: dict[str, Any] = {}
    if image_sequence:
        kwargs.update({"c:v": "png", "pix_fmt": "rgb24", "start_number": 0})
    else:
        pix_fmt = pix_fmt or default_pix_fmt(codec)
        padded = even_size(width, height, pix_fmt)
        if padded != (width, height):
            right, bottom = padded[0] - width, padded[1] - height
            stream = stream.filter("pad", padded[0], padded[1], 0, 0).filter(
                "fillborders", right=right, bottom=bottom, mode="smear"
            )
        is_yuv = pix_fmt is not None and pix_fmt.startswith(("yuv", "nv"))
        color = yuv_color(info.color, height) if is_yuv else info.color
        if is_yuv:
            scale_args: dict[str, str] = {}
            if color.matrix:
                scale_args["out_color_matrix"] = color.matrix
            scale_args["out_range"] = color.range or "tv"
            stream = stream.filter("scale", **scale_args)
            if color.range:
                kwargs["color_range"] = color.range
            if color.matrix:
                kwargs["colorspace"] = color.matrix
        if color.primaries:
            kwargs["color_primaries"] = color.primaries
        if color.transfer:
            kwargs["color_trc"] = color.transfer
        params = {
            "range": kwargs.get("color_range"),
            "colorspace": kwargs.get("colorspace"),
            "color_primaries": color.primaries,
            "color_trc": color.transfer,
        }
        params = {k: v for k, v in params.items() if v}
        if params:  # frame properties win over encoder options in ffmpeg >= 7: tag the frames
            stream = stream.filter("setparams", **params)
        kwargs["c:v"] = codec
        if pix_fmt:
            kwargs["pix_fmt"] = pix_fmt
        if crf is not None and codec in CRF_CODECS:
            kwargs["crf"] = crf
        if container:
            kwargs["format"] = container
        if target == "pipe:" and container in ("mp4", "mov", "ipod", "ismv"):
            kwargs["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
    sar = info.sample_aspect_ratio
    stream = stream.filter("setsar", f"{sar.numerator}/{sar.denominator}")
    streams = [stream]
    if audio is not None and not image_sequence:
        streams.append(audio[0])
        kwargs.update(audio[1])
    out = ffmpeg.output(*streams, target, **kwargs)
    return list(
        out.global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-y").compile(
            cmd=ffmpeg_exe()
        )
    )


class FrameWriter:
    """Feed rgb24 frames to an ffmpeg process that encodes them (see build_write_args). A thread
    writes them to ffmpeg's pipe while the caller makes the next one (at most ``QUEUED`` wait)."""

    QUEUED = 2

    def __init__(self, args: list[str], name: str | None = None) -> None:
        self._name = name
        """The output as the user named it (ffmpeg writes a hidden partial file in its place)."""
        self._target = args[-1]
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=self._log)
        self._frames: queue.Queue[bytes | None] = queue.Queue(self.QUEUED)
        self._broken = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        """The writing thread: frames to ffmpeg's stdin until None, or until the pipe breaks."""
        assert self._proc.stdin is not None
        while (data := self._frames.get()) is not None:
            if self._broken.is_set():
                continue  # keep taking frames so that the caller never blocks on a dead pipe
            try:
                self._proc.stdin.write(data)
            except (BrokenPipeError, OSError):
                self._broken.set()

    def write(self, frame: np.ndarray) -> None:
        """Queue one (height, width, 3) uint8 frame."""
        if self._broken.is_set():
            self._stop_thread()
            self._fail()
        self._frames.put(np.ascontiguousarray(frame).tobytes())

    def _stop_thread(self) -> None:
        self._frames.put(None)
        self._thread.join()

    def close(self) -> None:
        """Finish the stream; raises OutputError with ffmpeg's complaint if it failed."""
        self._stop_thread()
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self._broken.is_set() or self._proc.wait() != 0:
            self._fail()
        self._log.close()

    def abort(self) -> None:
        """Stop ffmpeg without finishing the output."""
        self._proc.kill()
        self._broken.set()
        if self._thread.is_alive():
            self._stop_thread()
        self._proc.wait()
        self._log.close()

    def _fail(self) -> None:
        status = self._proc.wait()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        self._log.close()
        if self._name:
            text = text.replace(self._target, self._name)
        if status < 0 and not text.strip():  # killed: a file size limit (SIGXFSZ), out of memory
            text = f"ffmpeg was stopped by {signal.Signals(-status).name}"
        where = f"{self._name}: " if self._name and self._name != "-" else ""
        raise OutputError(f"{where}ffmpeg could not write the output: {_ffmpeg_complaint(text)}")


def spool_stdin(stream: IO[bytes], suffix: str = "") -> Path:
    """Copy a stream (standard input) to a temporary file so that it can be probed and read."""
    fd, name = tempfile.mkstemp(prefix="nvfilter-stdin-", suffix=suffix)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(1 << 20):
            out.write(chunk)
    return Path(name)
