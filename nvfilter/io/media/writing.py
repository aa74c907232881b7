"""Frames into ffmpeg: the codec, pixel format and colour tags of an output (argument lists built
with ffmpeg-python, pure), and the writer that feeds a running encoder from a thread."""

from __future__ import annotations

import dataclasses
import queue
import signal
import tempfile
import threading
from fractions import Fraction
from typing import Any

import ffmpeg
import numpy as np

from nvfilter.config import CRF_CODECS, ColorTags, VideoInfo
from nvfilter.errors import OutputError
from nvfilter.io.media.process import complaint, ffmpeg_exe, start_ffmpeg


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
        stream = _tag_colour(stream, kwargs, info.color, height, pix_fmt)
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


def _tag_colour(
    stream: Any, kwargs: dict[str, Any], source: ColorTags, height: int, pix_fmt: str | None
) -> Any:
    """The video ``stream`` converted and tagged in the source's colours: a YUV pix_fmt gets
    the matrix and range (yuv_color) it is converted with; the tags go in ``kwargs`` (encoder
    options) and on the frames too (ffmpeg 7 and later prefer the frames' own)."""
    is_yuv = pix_fmt is not None and pix_fmt.startswith(("yuv", "nv"))
    color = yuv_color(source, height) if is_yuv else source
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
    if params:
        stream = stream.filter("setparams", **params)
    return stream


class FrameWriter:
    """Feed rgb24 frames to an ffmpeg process that encodes them (see build_write_args). A thread
    writes them to ffmpeg's pipe while the caller makes the next one (at most ``QUEUED`` wait)."""

    QUEUED = 2

    def __init__(self, args: list[str], name: str | None = None) -> None:
        self._name = name
        """The output as the user named it (ffmpeg writes a hidden partial file in its place)."""
        self._target = args[-1]
        self._log = tempfile.TemporaryFile()
        self._proc = start_ffmpeg(args, feed=True, log=self._log)
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
        raise OutputError(f"{where}ffmpeg could not write the output: {complaint(text)}")
