"""Reading a network into frames, and scoring what it reads: used alike by encode (to score a
fit), decode (to play it) and eval, so it lives below all three.

A read is in bands of rows (bounded memory whatever the frame size) or, for a network that
makes whole frames, whole frames several at a time (field.frames_per_read).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from nvfilter import metrics
from nvfilter.coords import frame_time
from nvfilter.models.field import VideoField, field_device, frames_per_read

DEFAULT_POINTS_PER_BATCH = 1 << 17
"""Coordinates per forward pass: bounds activation memory whatever the frame size."""
GPU_POINTS_PER_BATCH = 1 << 20
"""The same on a GPU, where small passes leave it idle: a 1280x720 frame in one pass (SIREN
256x5 needs 1 GB of activations a layer for it)."""


@torch.inference_mode()
def render_frame(
    model: VideoField,
    width: int,
    height: int,
    t: float,
    points_per_batch: int | None = None,
) -> np.ndarray:
    """One uint8 (height, width, 3) frame at normalised time t, rendered a band of rows at a time
    (bands of ``points_per_batch`` points; by default sized for the model's device)."""
    image = model.render_image(t, width, height)
    if image is not None:  # a model that makes whole frames: one conversion, no bands
        return frame_of(image)
    frame = np.empty((height, width, 3), dtype=np.uint8)
    if points_per_batch is None:
        on_cpu = field_device(model).type == "cpu"
        points_per_batch = DEFAULT_POINTS_PER_BATCH if on_cpu else GPU_POINTS_PER_BATCH
    rows_per_batch = max(1, points_per_batch // width)
    for row in range(0, height, rows_per_batch):
        stop = min(height, row + rows_per_batch)
        rgb = model.render_rows(t, width, height, row, stop)
        frame[row:stop] = to_uint8(rgb).reshape(stop - row, width, 3).cpu().numpy()
    return frame


def render_frames(
    model: VideoField, width: int, height: int, times: list[float]
) -> Iterator[np.ndarray]:
    """uint8 (height, width, 3) frames at normalised times, in order: frames_per_read of them
    made together where the network reads several at once (VideoField.render_images), else one
    by one. Each is made in inference mode and handed out after it: a generator suspended inside
    the mode would leave it on in the caller's thread (gradients off for the rest of the process
    when the caller stops early, as eval does on an original that ends short)."""
    at_once = frames_per_read(width * height)
    for first in range(0, len(times), at_once):
        chunk = times[first : first + at_once]
        with torch.inference_mode():
            images = model.render_images(chunk, width, height)
            frames = None if images is None else [frame_of(image) for image in images]
        if frames is None:
            for t in chunk:
                yield render_frame(model, width, height, t)
        else:
            yield from frames


def frame_of(image: torch.Tensor) -> np.ndarray:
    """A (3, height, width) [0, 1] frame as uint8 (height, width, 3); no copy beyond the
    conversion where the frame is a view of (height, width, 3) memory."""
    return to_uint8(image).permute(1, 2, 0).contiguous().cpu().numpy()


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats to 8-bit values, rounding to nearest."""
    return (rgb * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def reconstruct(
    model: VideoField, width: int, height: int, num_frames: int
) -> Iterator[np.ndarray]:
    """The 8-bit reconstruction of source frames 0..num_frames-1 at width x height, in order
    (render_frames: each handed out outside inference mode)."""
    model.forget_render_cache()
    yield from render_frames(
        model, width, height, [frame_time(k, num_frames) for k in range(num_frames)]
    )


def frame_mses(model: VideoField, frames: torch.Tensor) -> list[float]:
    """Each frame's mean squared error in [0, 1] of its 8-bit reconstruction."""
    num_frames, height, width, _ = frames.shape
    return [
        metrics.mse(torch.from_numpy(recon), frames[k]) / (255.0 * 255.0)
        for k, recon in enumerate(reconstruct(model, width, height, num_frames))
    ]


def reconstruction_mse(model: VideoField, frames: torch.Tensor) -> float:
    """Mean squared error in [0, 1] of the 8-bit reconstruction of every frame, all pixels pooled."""
    errors = frame_mses(model, frames)
    return sum(errors) / len(errors)
