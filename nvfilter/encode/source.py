"""The source video: probed once, its learned size picked, its frames read whole or streamed,
its sound kept; and the memory check that refuses raw frames that would not fit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from nvfilter import chroma
from nvfilter.config import MAX_SIDE, EncodeOptions, SourceInfo, VideoInfo
from nvfilter.device import available_memory
from nvfilter.encode.shots import ShotFinder
from nvfilter.errors import OptionError, VideoError
from nvfilter.io import audio, media
from nvfilter.io.inputs import input_path
from nvfilter.progress import Console, human_bytes
from nvfilter.timeline import Timeline

MEMORY_MARGIN = 600 * 2**20
"""Memory kept free for the network, its activations and Python beside the raw frames."""


@dataclass
class Source:
    """The frames to learn and what goes with them."""

    frames: torch.Tensor
    video: VideoInfo
    audio: tuple[bytes, str] | None
    """(stored stream, codec) of the source's first audio stream."""


@dataclass
class OpenedSource:
    """A probed input and the size its frames are learned at."""

    path: str
    """What ffmpeg reads (standard input spooled to a file)."""
    src: SourceInfo
    width: int
    height: int
    times: list[float] | None = None
    """A variable-rate source's frames' own times in seconds (None: a constant rate)."""
    shots: ShotFinder | None = None
    """What found the cuts and repeats in the frames read (``frames``), once they are read."""

    def kept_estimate(self, options: EncodeOptions) -> int | None:
        """Frames the encode will learn, from the probe (None when the container does not say)."""
        estimate = self.src.estimated_frames
        if estimate is None:
            return options.max_frames
        kept = -(-estimate // options.frame_step)
        return min(kept, options.max_frames) if options.max_frames is not None else kept

    def video(self, frames: int, options: EncodeOptions, chroma: str = "444") -> VideoInfo:
        """The learned video's facts once its frame count (and the frames' chroma layout,
        chroma.detect) is known."""
        src, width, height = self.src, self.width, self.height
        return VideoInfo(
            width=width,
            height=height,
            frames=frames,
            frame_rate=src.frame_rate / options.frame_step,
            sample_aspect_ratio=src.sample_aspect_ratio
            * Fraction(height * src.width, width * src.height),
            color=src.color,
            chroma=chroma,
            timeline=self._timeline(frames),
        )

    def _timeline(self, frames: int) -> Timeline | None:
        """The timeline of the frames read, where they are the ``frames`` learned."""
        timeline = None if self.shots is None else self.shots.timeline()
        return timeline if timeline is not None and timeline.frames == frames else None

    def frames(self, options: EncodeOptions, label: str) -> Iterator[np.ndarray]:
        """The learned frames one at a time, at the learned size: the source's, every
        --frame-step-th, repeats left out (encode/shots.py), which note the cuts."""
        periods = None
        if self.times is not None:  # a variable rate: the frames' own times, in frame periods
            rate = self.src.frame_rate / options.frame_step
            periods = [t * float(rate) for t in self.times[:: options.frame_step]]
        self.shots = ShotFinder(periods, options.cut_threshold if options.cuts else None,
                                options.keep_repeats)  # fmt: skip
        return self.shots.frames(media.iter_frames(
            self.path, self.src, self.width, self.height, options.frame_step, options.max_frames,
            label=label, constant_rate=self.times is None,
        ))  # fmt: skip


def open_source(source: str, options: EncodeOptions, stack: ExitStack) -> OpenedSource:
    """Probe ``source`` (``-``: stdin, spooled until ``stack`` closes) and pick the learned size."""
    path = input_path(source, stack)
    src = media.probe(path, label=source)
    width, height = media.training_size(src.width, src.height, options.width, options.height)
    if width > MAX_SIDE or height > MAX_SIDE:
        raise OptionError(f"training size {width}x{height} is too large")
    return OpenedSource(path, src, width, height, variable_times(path, src.frame_rate))


VARIABLE_BY = 0.5
"""A source's rate varies where two of its frames stand more than this many frame periods
closer or further apart than one period (a constant-rate file's are within rounding of it)."""


def variable_times(path: str, rate: Fraction) -> list[float] | None:
    """The frames' own times in seconds where the source's rate varies, else None (its frames
    are read at the constant rate, as ever; so too where the timestamps are missing, or most
    frames do not stand a period of ``rate`` apart: then they tell nothing of the rate)."""
    times = media.frame_times(path)
    if times is None or len(times) < 2:
        return None
    steps = np.diff(np.array(times)) * float(rate)
    if abs(float(np.median(steps)) - 1) > VARIABLE_BY:  # not this rate's frames: no guide
        return None
    return times if bool(np.any(np.abs(steps - 1) > VARIABLE_BY)) else None


def check_raw_memory(source: str, frames: int, width: int, height: int, options: EncodeOptions,
                     what: str = "", working: int = 0) -> None:  # fmt: skip
    """Refuse raw frames that would not fit in the memory available (or --max-memory), with
    ``working`` bytes that the work on them holds besides (a tiles part's fit)."""
    need = frames * width * height * 3 + working
    limit = options.max_memory or max(0, available_memory() - MEMORY_MARGIN)
    if need > limit:
        raise VideoError(
            f"{source}: {frames} frames{what} at {width}x{height} need about "
            f"{human_bytes(need)} of memory{' with their fit' if working else ''} but only "
            f"{human_bytes(limit)} is available; make it smaller with --width, --max-frames or "
            "--frame-step"
        )


def read_audio(path: str, src: SourceInfo, video: VideoInfo, options: EncodeOptions,
               console: Console) -> tuple[bytes, str] | None:  # fmt: skip
    """The source's first audio stream over the learned video's duration, if it is kept."""
    if not (options.audio and src.audio_codec):
        return None
    data, why = audio.extract(path, video.duration, src.audio_codec)
    if data is None:
        console.message(f"note: the {src.audio_codec} audio is not kept ({why})")
        return None
    return data, src.audio_codec


def read_source(
    opened: OpenedSource, source: str, options: EncodeOptions, console: Console
) -> Source:
    """Read every frame of an opened source at the options' size, step and frame limit."""
    kept = opened.kept_estimate(options) or 0
    check_raw_memory(source, kept, opened.width, opened.height, options)
    frames = media.collect_frames(opened.frames(options, source), kept, opened.width,
                                  opened.height)  # fmt: skip
    video = opened.video(frames.shape[0], options, chroma.detect(frames, opened.src.color.matrix))
    sound = read_audio(opened.path, opened.src, video, options, console)
    return Source(frames, video, sound)
