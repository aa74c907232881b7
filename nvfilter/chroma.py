"""The colour layout of the learned frames: the source's YCbCr matrix, and whether its colour
(chroma) is at half the width, or half the width and height, of its brightness (luma).

ffmpeg turns a 4:2:0 video (nearly every camera and web video) into RGB by repeating each chroma
sample over its 2x2 pixels, so the frames nvfilter learns carry their colour at half the size.
``detect`` finds that in the frames themselves (a test, not a guess from the container); an
upscaler that knows it enlarges the colour at its own size (decode/upscale.py), as ffmpeg's own
scaler does on a 4:2:0 video.
"""

from __future__ import annotations

import math

import torch

LAYOUTS = {"444": (1, 1), "422": (1, 2), "420": (2, 2)}
"""Chroma layout -> (rows, columns) of pixels sharing one chroma sample."""
LUMA_WEIGHTS = {
    "bt709": (0.2126, 0.0722),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}
"""(Kr, Kb) of each YCbCr matrix ffmpeg names (``colorspace``)."""
DEFAULT_MATRIX = "bt470bg"
"""The matrix ffmpeg converts with when the source does not say (ITU-R BT.601)."""


def ycbcr_matrix(matrix: str | None) -> torch.Tensor:
    """The 3 x 3 matrix taking RGB to (Y, Cb, Cr) for ffmpeg's matrix name (BT.601 when
    unknown). Full range: a limited-range video only scales the rows, the same subspaces."""
    kr, kb = LUMA_WEIGHTS.get(matrix or DEFAULT_MATRIX, LUMA_WEIGHTS[DEFAULT_MATRIX])
    kg = 1.0 - kr - kb
    return torch.tensor(
        [
            [kr, kg, kb],
            [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
            [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)],
        ]
    )


def detect(frames: torch.Tensor, matrix: str | None, sample: int = 4) -> str:
    """The chroma layout of uint8 frames (n, H, W, 3): ``420`` or ``422`` when the chroma of a
    few of them is the same over each pixel pair (the mean difference within pairs under a
    quarter of that between pairs, and under 0.6 of a level), else ``444`` (also for frames
    without colour or too small to tell). Pixels at 0 or 255 are left out: there the colour was
    clipped when ffmpeg made RGB, and differs within a pair."""
    if frames.shape[1] < 4 or frames.shape[2] < 4:
        return "444"
    step = max(1, frames.shape[0] // sample)
    rgb = frames[::step][:sample]
    clipped = ((rgb == 0) | (rgb == 255)).any(-1)  # (n, H, W)
    chroma = rgb.float() @ ycbcr_matrix(matrix)[1:].T  # (n, H, W, 2)

    def mean_step(axis: int, offset: int) -> float:
        """Mean chroma difference over unclipped pixel pairs (offset, offset + 1), (+2, +3) ..."""
        count = (chroma.shape[axis] - offset) // 2 * 2
        pairs = chroma.narrow(axis, offset, count).unfold(axis, 2, 2)
        clip = clipped.narrow(axis, offset, count).unfold(axis, 2, 2).any(-1)
        keep = ~clip
        if keep.float().mean() < 0.05:
            return math.nan
        return float((pairs[..., 0] - pairs[..., 1]).abs().sum(-1)[keep].mean())

    def shared(axis: int) -> bool:
        within, between = mean_step(axis, 0), mean_step(axis, 1)
        return within < 0.6 and within < 0.25 * between  # False when either is NaN

    if not shared(2):
        return "444"
    return "420" if shared(1) else "422"
