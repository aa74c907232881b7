"""Motion-compensated frames between two learned frames: optical flow both ways, warped, blended.

The flow is OpenCV's DIS (dense inverse search, Kroeger et al. 2016). A frame at fraction s of the
way from ``first`` to ``second`` samples each of them along the motion (bicubic), with the flows
from time s approximated from the two flows as in Super SloMo (Jiang et al. 2018, eq. 4), and blends
them weighted by nearness in time and by visibility: where a pixel's motion does not come back
(forward-backward check), it shows content one frame lacks, so it is taken from the other. Last, each
pixel mixes that motion-compensated value with the plain cross-fade, by which of the two the frames
agree on better around it: where the two moved samples disagree more than the two unmoved frames
do (flat or static areas, motion the flow got wrong), the cross-fade wins, so a wrong flow costs
little and a sub-pixel flow does not blur what stands still. Motion shorter than a pixel counts
as none (STILL_BELOW).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
"""Forward-backward check (Sundaram et al. 2010): a pixel is occluded where
|f + b(x + f)|^2 > CONSISTENCY_RELATIVE * (|f|^2 + |b(x + f)|^2) + CONSISTENCY_ABSOLUTE (pixels^2)."""
AGREEMENT_WINDOW = 15
"""Side in pixels of the square over which the two candidates' disagreement is averaged."""
STILL_BELOW = 1.0
"""Motion shorter than this many pixels between the two frames counts as none (its flow is set to
zero): a cross-fade shows it as well, and resampling along it would soften what stands still and
the frame's compression noise. Measured on the real kept frames (bench/motion_proxy.py, 160x90):
oa4_launch.webm, which barely moves, 41.92 -> 42.18 dB at k = 2 and 36.69 -> 37.36 dB at k = 4;
the other three clips within 0.01 dB; 1.5 pixels lost 2 dB on that clip at 320x180."""
FLOW_MIN_HEIGHT = 256
"""Frames shorter than this are enlarged (bicubic) to at least this height for the flow search:
DIS's 8-pixel patches are coarse on small frames. Measured at 160x90 (bench/motion_proxy.py,
held-out frames, mean of four clips): 2x enlarged 33.47 against 33.01 dB unenlarged (with
splatting); 3x, as this gives, 34.45 against 34.11 dB at 2x (with this module's blend)."""


def optical_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) float32 in pixels from ``first`` to ``second`` (uint8 RGB, H x W x 3):
    first[p] ~ second[p + flow[p]]."""
    import cv2  # imported here: only decoding with motion needs it

    height, width = first.shape[:2]
    factor = math.ceil(FLOW_MIN_HEIGHT / height) if height < FLOW_MIN_HEIGHT else 1

    def gray(frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame)
        if factor > 1:
            size = (width * factor, height * factor)
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

    search = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if factor > 1:
        search.setFinestScale(0)
    start, end = gray(first), gray(second)
    flow = np.asarray(search.calc(start, end, None))  # type: ignore[call-overload]
    if factor > 1:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) / factor
    return flow.astype(np.float32)


def still_as_zero(flow: torch.Tensor) -> torch.Tensor:
    """``flow`` (H, W, 2) with every vector shorter than STILL_BELOW pixels set to zero."""
    return flow * (flow.square().sum(-1, keepdim=True) >= STILL_BELOW**2)


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (C, H, W) sampled at x + flow(x), edges repeated; flow (H, W, 2) in pixels."""
    _, height, width = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=flow.dtype), torch.arange(width, dtype=flow.dtype), indexing="ij"
    )
    gx = (xs + flow[..., 0]) * (2.0 / max(width - 1, 1)) - 1.0
    gy = (ys + flow[..., 1]) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None]
    return F.grid_sample(image[None], grid, mode=mode, padding_mode="border", align_corners=True)[0]


def occlusion(flow: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """(H, W): 1 where the motion ``flow`` (H, W, 2) does not come back by ``back``, else 0."""
    back_there = warp(back.permute(2, 0, 1), flow).permute(1, 2, 0)
    error = (flow + back_there).square().sum(-1)
    bound = CONSISTENCY_RELATIVE * (flow.square().sum(-1) + back_there.square().sum(-1))
    return (error > bound + CONSISTENCY_ABSOLUTE).to(flow.dtype)


def local_mean(values: torch.Tensor) -> torch.Tensor:
    """(H, W) averaged over AGREEMENT_WINDOW squares (shrunk at the edges), one axis at a time."""
    side, half = AGREEMENT_WINDOW, AGREEMENT_WINDOW // 2
    rows = F.avg_pool2d(values[None, None], (side, 1), 1, (half, 0), count_include_pad=False)
    return F.avg_pool2d(rows, (1, side), 1, (0, half), count_include_pad=False)[0, 0]


@dataclass
class FramePair:
    """Two frames as float (3, H, W) in [0, 255], the flows both ways, and where each is occluded."""

    first: torch.Tensor
    second: torch.Tensor
    forward: torch.Tensor
    backward: torch.Tensor
    hidden_in_second: torch.Tensor
    hidden_in_first: torch.Tensor

    @classmethod
    def estimate(cls, first: np.ndarray, second: np.ndarray) -> FramePair:
        """The pair of uint8 (H, W, 3) frames, with its flows estimated."""
        forward = torch.from_numpy(optical_flow(first, second))
        backward = torch.from_numpy(optical_flow(second, first))
        return cls(
            first=torch.from_numpy(first).permute(2, 0, 1).float(),
            second=torch.from_numpy(second).permute(2, 0, 1).float(),
            forward=still_as_zero(forward),
            backward=still_as_zero(backward),
            hidden_in_second=occlusion(forward, backward),  # checked on the flows as found
            hidden_in_first=occlusion(backward, forward),
        )

    def at(self, s: float) -> np.ndarray:
        """The uint8 (H, W, 3) frame at fraction ``s`` (0 < s < 1) of the way from first to second."""
        to_first = -(1 - s) * s * self.forward + s * s * self.backward
        to_second = (1 - s) * (1 - s) * self.forward - s * (1 - s) * self.backward
        from_first = warp(self.first, to_first, "bicubic")
        from_second = warp(self.second, to_second, "bicubic")
        # the first frame lacks what the second frame's source pixel shows if the first hides it
        trust_first = (1 - s) * (1 - warp(self.hidden_in_first[None], to_second)[0])
        trust_second = s * (1 - warp(self.hidden_in_second[None], to_first)[0])
        total = trust_first + trust_second
        share_first = torch.where(
            total < 1e-3, torch.full_like(total, 1 - s), trust_first / total.clamp_min(1e-3)
        )
        moved = share_first * from_first + (1 - share_first) * from_second
        faded = (1 - s) * self.first + s * self.second
        moved_error = local_mean((from_first - from_second).abs().mean(0))
        faded_error = local_mean((self.first - self.second).abs().mean(0))
        use_moved = faded_error / (moved_error + faded_error).clamp_min(1e-6)
        use_moved = torch.where(moved_error + faded_error < 1e-6, 0.5, use_moved)
        frame = use_moved * moved + (1 - use_moved) * faded
        return frame.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
