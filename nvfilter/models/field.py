"""The interface every video network implements: (x, y, t) in [-1, 1]^3 to RGB in [0, 1]."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nvfilter.coords import rows_coords

READ_BYTES = 48 << 20
"""The most bytes of float frames a read of several frames at once makes (render_images): four
1280x720 frames, two 1920x1080, one 3840x2160 (read alone). The read holds about twice that
(the product, then each frame laid out for ffmpeg)."""
READ_FRAMES = 4
"""The most frames a read makes at once: a 1280x720 frame of the tiles model took 13.6-14.0 ms
read alone and 6.7-7.0 ms in reads of four, on two threads (`python bench/real_size_bench.py
--part reads`), the same frames to the bit; reads of eight took 7.9 ms and held 0.1-0.3 GB more
in a 1280x720 encode (its part jobs read their frames back)."""


def frames_per_read(pixels: int) -> int:
    """How many RGB float frames of ``pixels`` pixels a read makes at once (READ_BYTES)."""
    return max(1, min(READ_FRAMES, READ_BYTES // (3 * 4 * pixels)))


class VideoField(nn.Module):
    """A network mapping (x, y, t) in [-1, 1]^3 to RGB in [0, 1]; what the .nvw stores."""

    kind = ""
    closed_form = False
    """True for a network that ``start_from`` fits exactly (no optimiser steps follow)."""

    def render_rows(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> torch.Tensor:
        """RGB of rows row_start:row_stop of a width x height frame at time t, (rows * width, 3).

        Models with a faster way to fill a pixel grid override this; the result must equal
        ``forward`` at the same pixel-centre coordinates.
        """
        device = next(self.parameters()).device
        return self(rows_coords(width, height, t, row_start, row_stop, device))

    def render_image(self, t: float, width: int, height: int) -> torch.Tensor | None:
        """The whole frame at time t as (3, height, width) in [0, 1], for models that make frames
        whole (faster than bands of rows: no per-band copies); None for models read by points."""
        return None

    def render_images(
        self, times: list[float], width: int, height: int
    ) -> list[torch.Tensor] | None:
        """The whole frames at several times (render_image's), made together where that is
        faster than one at a time; None for models with no such read. All are held at once:
        callers ask for at most frames_per_read(width * height)."""
        return None

    def cpu_chunk_rows(self) -> int | None:
        """Pixels per forward/backward pass when training on a CPU, gradients summed over the
        passes of a batch (the same gradient as one pass); None: the whole batch at once."""
        return None

    def training_views(self) -> int | None:
        """How many whole-frame training views the model has (``render_view``), or None: it
        is trained on random pixels through ``forward``."""
        return None

    def render_view(self, view: int) -> torch.Tensor:
        """RGB (3, height * width) of a training view at the learned size, with autograd."""
        raise NotImplementedError

    def view_frame(self, view: int) -> int:
        """The source frame a training view shows."""
        raise NotImplementedError

    def start_from(
        self, frames: torch.Tensor, progress: Callable[[int], None] | None = None,
        cuts: Sequence[int] = (),
    ) -> None:  # fmt: skip
        """Initialise from the uint8 frames (N, H, W, 3) about to be learned (none by default);
        a network fitted here in closed form may tell ``progress`` each frame it is done with.
        ``cuts``: the frames that start a new shot (encode/shots.py), for a network that
        treats them so (a coded one codes them afresh)."""

    def fit_squared_errors(self) -> list[float] | None:
        """Each frame's mean squared error (in [0, 1] units) as the fit left it, where the fit
        knows it without reading the frames back; None: read them back to score them."""
        return None

    def pair_flows(self, first: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The motion the network keeps between frames ``first`` and ``first + 1``: (forward,
        backward) flows at the learned size or a whole fraction of it (inbetween.FramePair's);
        None for a network that keeps none (its frames' flows are then searched)."""
        return None

    def forget_render_cache(self) -> None:
        """Drop what render_rows keeps between calls; every render job starts with this, since
        the weights may have changed since the last one (an optimiser step need not tell)."""

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Adam parameter groups: every weight at the same learning rate."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def architecture(self) -> dict[str, Any]:
        """Everything needed to rebuild this network (stored in the .nvw file): its type and
        its constructor's arguments, read back from its attributes of the same names (the
        constructor is the model's config); one left at a default of None is not written."""
        arguments = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        stored: dict[str, Any] = {"type": self.kind}
        for argument in arguments:
            value = getattr(self, argument.name)
            if not (value is None and argument.default is None):
                stored[argument.name] = value
        return stored


def field_device(model: nn.Module) -> torch.device:
    """The device a network computes on (a PartsField sets its own before any part is loaded)."""
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(model.parameters()).device
