"""Pixels between the learned ones: Lanczos upscaling corrected by back-projection, with the
colour enlarged at its own size.

A pixel of a downscaled video is the average of the picture over its square (ffmpeg's area
filter), not the picture at its centre. Bicubic interpolation treats it as the latter, so its
result, averaged back over each learned pixel, is a blurred copy of the learned frame. Iterative
back-projection (Irani and Peleg 1991) corrects that: it upscales the difference between the
learned frame and the result's own area averages (bicubically) and adds it, until the result's
averages give back the learned frame. What bicubic makes between the learned pixels stays; only
what contradicts them is taken out (ahead of ffmpeg's bicubic and lanczos on every clip of
bench/upscale_proxy.py; BENCHMARKS-history.md).

A frame whose colour came at half its size (a 4:2:0 source, chroma.py) is enlarged as ffmpeg's
scaler enlarges such a video: the brightness (luma) at full size, the colour (chroma) at its own
half size, each back-projected, then the colour repeated over each 2x2 block as ffmpeg does when it
makes RGB. Back-projecting the repeated colour at full size would instead enforce averages the
colour never had (1.3 dB worse on tour.mp4; BENCHMARKS-history.md).

The colour at its own size is the average over the pixels that share it, leaving out those that
ffmpeg clipped to black or white when it made RGB (within ``CLIPPED_MARGIN`` of 0 or 255): their
colour was lost there, and averaging it in pulls the samples around dark and bright areas towards
grey (BENCHMARKS-history.md).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from nvfilter.chroma import LAYOUTS, ycbcr_matrix

BACKPROJECT_STEPS = 5
"""Corrections applied: past 5, what more steps gain is under 0.01 dB (bench/upscale_proxy.py)."""


def enlarges(size: tuple[int, int], learned: tuple[int, int]) -> bool:
    """True when ``size`` (width, height) is at least ``learned`` on both axes and larger on one."""
    return size != learned and size[0] >= learned[0] and size[1] >= learned[1]


LANCZOS_LOBES = 3
CLIPPED_MARGIN = 2
"""Levels from 0 or 255 within which a channel counts as clipped (the learned frames are within a
level or two of the source's)."""


@functools.lru_cache(maxsize=16)
def lanczos_weights(inputs: int, outputs: int, lobes: int = LANCZOS_LOBES) -> torch.Tensor:
    """(outputs, inputs) weights enlarging one axis with the Lanczos kernel (``lobes`` lobes) at
    the pixel-centre convention (coords.py), the edge pixel repeated beyond the border; rows sum
    to 1."""
    centres = (torch.arange(outputs, dtype=torch.float64) + 0.5) * inputs / outputs - 0.5
    taps = torch.floor(centres)[:, None] + torch.arange(1 - lobes, lobes + 1)[None, :]
    distance = centres[:, None] - taps
    kernel = torch.sinc(distance) * torch.sinc(distance / lobes)
    weights = torch.zeros(outputs, inputs, dtype=torch.float64)
    weights.scatter_add_(1, taps.clamp(0, inputs - 1).long(), kernel)
    return (weights / weights.sum(1, keepdim=True)).float()


def lanczos_enlarge(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Planes (..., h, w) enlarged to ``size`` (height, width) by the Lanczos kernel."""
    down = lanczos_weights(image.shape[-2], size[0])
    across = lanczos_weights(image.shape[-1], size[1]).T
    return down @ image @ across


def _backprojected(small: torch.Tensor, size: tuple[int, int], steps: int) -> torch.Tensor:
    """Planes (1, C, h, w) enlarged to ``size`` (height, width): Lanczos, then ``steps``
    corrections so that the average over each small pixel's area is that pixel (a non-integer
    ratio averages over the output pixels each small pixel overlaps)."""
    learned = (int(small.shape[2]), int(small.shape[3]))
    large = lanczos_enlarge(small, size)
    for _ in range(steps):
        large += lanczos_enlarge(small - F.adaptive_avg_pool2d(large, learned), size)
    return large


def _unclipped_colour(
    rgb: torch.Tensor, chroma: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """``chroma`` (1, 2, H, W) averaged down to ``size``, over the pixels whose ``rgb`` (1, 3, H,
    W) has no clipped channel; a sample whose pixels are all clipped takes the plain average."""
    kept = ((rgb > CLIPPED_MARGIN) & (rgb < 255 - CLIPPED_MARGIN)).all(1, keepdim=True).float()
    plain = F.adaptive_avg_pool2d(chroma, size)
    share = F.adaptive_avg_pool2d(kept, size)
    weighted = F.adaptive_avg_pool2d(chroma * kept, size) / share.clamp_min(1e-6)
    return torch.where(share > 0, weighted, plain)


def backproject(
    frame: np.ndarray,
    width: int,
    height: int,
    steps: int = BACKPROJECT_STEPS,
    chroma: str = "444",
    matrix: str | None = None,
) -> np.ndarray:
    """``frame`` (uint8, H x W x 3) upscaled to ``width`` x ``height`` (at least its size on both
    axes) by back-projection; with ``chroma`` ``420`` or ``422`` (and the source's YCbCr
    ``matrix``) the luma at full size and the chroma at its own size (module docstring)."""
    small = torch.tensor(frame, dtype=torch.float32).permute(2, 0, 1)[None]
    rows, columns = LAYOUTS.get(chroma, (1, 1))
    if (rows, columns) == (1, 1):
        large = _backprojected(small, (height, width), steps)
    else:
        to_ycbcr = ycbcr_matrix(matrix)
        ycbcr = torch.einsum("ij,njhw->nihw", to_ycbcr, small)
        luma = _backprojected(ycbcr[:, :1], (height, width), steps)
        h, w = frame.shape[:2]
        colour = _unclipped_colour(
            small, ycbcr[:, 1:], (math.ceil(h / rows), math.ceil(w / columns))
        )
        colour = _backprojected(
            colour, (math.ceil(height / rows), math.ceil(width / columns)), steps
        )
        colour = colour.repeat_interleave(rows, 2).repeat_interleave(columns, 3)
        ycbcr = torch.cat((luma, colour[:, :, :height, :width]), 1)
        large = torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_ycbcr), ycbcr)
    out = large[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8)
    return out.numpy()
