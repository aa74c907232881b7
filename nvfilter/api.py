"""nvfilter from Python: open a .nvw and read it anywhere in (x, y, t), or encode and decode with
the options the command line takes (the command line is a client of these functions).

    import nvfilter
    from nvfilter import api

    video = nvfilter.open("clip.nvw")
    frame = video.frame(10)                               # frame 10 as decoded, uint8 (h, w, 3)
    slow = video.frames_at([0.5, 0.52], width=1920)       # any time in seconds, any size
    rgb = video.points([[0.0, 0.0, -0.3]])                # (x, y, t) in [-1, 1]^3 -> RGB in [0, 1]
    api.encode("in.mp4", "out.nvw", quality=70)
    api.decode("out.nvw", "slow.mp4", preset="slowmo-2x")

Coordinates are the package's own (coords.py): pixel centres in [-1, 1] on every axis, source
frame k of N at t = (2k + 1) / N - 1. ``frames_at`` takes seconds, source frame k at
``times[k]`` (k / rate unless the file keeps its frames' own times: nvfilter.timeline), as
decode places its output frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvfilter.config import DecodeOptions, EncodeOptions, TrainResult, VideoInfo
from nvfilter.coords import frame_time
from nvfilter.io import media, nvw
from nvfilter.io.inputs import open_nvw
from nvfilter.models.field import VideoField
from nvfilter.models.reads import render_frames
from nvfilter.progress import Console


@dataclasses.dataclass
class Video:
    """A .nvw opened for reading (``open``)."""

    model: VideoField
    """The network or coded stream, read at (x, y, t)."""
    info: VideoInfo
    """The video's facts: size, frames, rate, colour."""
    file: nvw.NvwFile
    """Everything the file holds (metadata, training, sound)."""

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def frames(self) -> int:
        return self.info.frames

    @property
    def frame_rate(self) -> Fraction:
        return self.info.frame_rate

    def frame(self, index: int, width: int | None = None, height: int | None = None) -> np.ndarray:
        """Source frame ``index`` as the file plays it, uint8 (height, width, 3), at the
        learned size or the one given."""
        if not 0 <= index < self.frames:
            raise IndexError(f"frame {index} of {self.frames}")
        return self._read([float(index)], width, height)[0]

    def frames_at(
        self, seconds: Sequence[float], width: int | None = None, height: int | None = None
    ) -> np.ndarray:
        """The frames at times ``seconds`` (frame k at ``times[k]``; between two frames, the
        model's own read there: for the codec, moved along the motion it keeps; across a cut,
        the nearer frame, the earlier at a tie), uint8 (n, height, width, 3); times past the last frame hold it."""
        positions = [self.info.position(float(s * self.frame_rate)) for s in seconds]
        return np.stack(self._read(positions, width, height))

    @property
    def times(self) -> list[float]:
        """Each learned frame's time in seconds from the first (k / rate where the file has no
        timeline: a constant-rate source with no cut or repeat)."""
        timeline = self.info.timeline
        periods = range(self.frames) if timeline is None else timeline.times
        return [float(t / self.frame_rate) for t in periods]

    @property
    def cuts(self) -> list[int]:
        """The learned frames that start a new shot."""
        return [] if self.info.timeline is None else list(self.info.timeline.cuts)

    def points(self, coords: Any) -> np.ndarray:
        """RGB in [0, 1] at points (x, y, t) in [-1, 1]^3 (any array of shape (..., 3))."""
        array = torch.as_tensor(np.asarray(coords, dtype=np.float32))
        with torch.inference_mode():
            rgb = self.model(array.reshape(-1, 3))
        return rgb.reshape(*array.shape[:-1], 3).numpy()

    def _read(
        self, positions: list[float], width: int | None, height: int | None
    ) -> list[np.ndarray]:
        # the learned size, or the one given (one side alone keeps the aspect ratio)
        width, height = media.training_size(self.info.width, self.info.height, width, height)
        # the file's network never changes, so its render caches (a codec file's decoded
        # frames among them) serve every read: frame(k) in a loop decodes each frame once
        times = [frame_time(position, self.frames) for position in positions]
        return list(render_frames(self.model, width, height, times))


def open(path: str | Path) -> Video:  # noqa: A001 (nvfilter.open, as the package's verb)
    """Open a .nvw (any version this nvfilter reads; '-': standard input); NvwError if it is
    not one."""
    loaded, _ = open_nvw(str(path))
    return Video(loaded.model, loaded.video, loaded)


def encode(
    source: str | Path, output: str | Path, quiet: bool = True, **options: Any
) -> TrainResult:
    """`nvfilter encode SOURCE OUTPUT` with the options as keyword arguments, named as
    EncodeOptions's fields (``model``, ``quality``, ``bitrate`` in bits a second,
    ``target_psnr``, ``width``, ...); messages on stderr unless ``quiet``."""
    from nvfilter.encode import encoder

    run = encoder.RunOptions(**{key: options.pop(key) for key in _RUN if key in options})
    return encoder.encode(str(source), str(output), EncodeOptions(**options), Console(quiet), run)


_RUN = ("outputs", "checkpoint_every", "resume", "jobs", "ray")
"""The encode options that shape the run rather than the model (encoder.RunOptions)."""


def decode(
    source: str | Path, output: str | Path, preset: str | None = None, quiet: bool = True,
    **options: Any,
) -> None:  # fmt: skip
    """`nvfilter decode SOURCE OUTPUT` with the options as keyword arguments, named as
    DecodeOptions's fields (``temporal_scale``, ``width``, ``between``, ``codec``, ...), over
    ``preset``'s."""
    from nvfilter.decode import decoder
    from nvfilter.io import presets

    settings = presets.merge(presets.load(preset) if preset else {}, options)
    decoder.decode(str(source), str(output), DecodeOptions.from_settings(settings), Console(quiet))


__all__ = ["Video", "decode", "encode", "open"]
