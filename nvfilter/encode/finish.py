"""One way to finish a fit: round the network to what the file stores, score it as decode will
read it, and make its .nvw bytes; the whole-video encode and every part of a streamed one end
here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from nvfilter import metrics
from nvfilter.config import TrainConfig, TrainResult, VideoInfo
from nvfilter.encode.train import FitResult
from nvfilter.io import nvw
from nvfilter.models.field import VideoField
from nvfilter.models.reads import frame_mses


@dataclass(frozen=True)
class Finished:
    """A finished fit: what it came to, its file, and each frame's error."""

    result: TrainResult
    data: bytes
    errors: list[float]
    """Per frame, the mean squared error (in [0, 1] units) of what decode reads."""


def finish_fit(
    model: VideoField,
    frames: torch.Tensor,
    video: VideoInfo,
    fitted: FitResult,
    config: TrainConfig,
    dtype: str,
    audio: tuple[bytes, str] | None = None,
) -> Finished:
    """The fitted ``model`` of uint8 ``frames`` (n, h, w, 3) rounded to ``dtype``, scored as it
    is stored, and serialised with ``video``'s facts and ``audio``."""
    nvw.round_to_stored(model, dtype)
    errors = frame_errors(model, frames)
    psnr = metrics.psnr_from_mse(sum(errors) / len(errors), peak=1.0)
    result = TrainResult(fitted.steps, fitted.seconds, psnr, fitted.stopped_by,
                         dataclasses.asdict(config))  # fmt: skip
    return Finished(result, nvw.to_bytes(model, video, result, dtype, audio), errors)


def frame_errors(model: VideoField, frames: torch.Tensor) -> list[float]:
    """Each frame's mean squared error (in [0, 1] units) as decode reads it: as the fit knows
    it where it does (VideoField.fit_squared_errors), else read back."""
    known = model.fit_squared_errors()
    return known if known is not None else frame_mses(model, frames)
