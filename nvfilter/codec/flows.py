"""The codec's stored motion as dense flows, for the frames between two decoded frames.

A frame's vectors towards a reference (motion.py) are one per 8x8 block; as a flow each pixel
gets them read bilinearly between the blocks' centres (so the flow is smooth where the blocks'
vectors differ a little, as the overlapped prediction is). Between two neighbouring frames the
file holds the motion one way (structure.pair_source); the other way is that flow turned round:
each pixel's vector, negated, carried to where it points (splatted), and where nothing lands,
the vector found at the same place, negated.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from nvfilter.codec.transform import BLOCK
from nvfilter.inbetween import splat

LANDED = 1e-3
"""Splatted weight under which a pixel counts as one nothing landed on."""


def block_flow(vectors: np.ndarray, height: int, width: int, factor: int = 1) -> np.ndarray:
    """(rows, cols, 2) block vectors in quarter pixels -> (height, width, 2) float32 flow in
    pixels, read bilinearly between block centres, at 1 / ``factor`` of the frame's size (in
    that size's pixels)."""
    rows, cols = vectors.shape[:2]
    scaled = vectors.astype(np.float32) * (0.25 / factor)
    size = (max(1, cols * BLOCK // factor), max(1, rows * BLOCK // factor))
    spread = cv2.resize(scaled, size, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(spread[: -(-height // factor), : -(-width // factor)])


def reversed_flow(flow: np.ndarray) -> np.ndarray:
    """The flow the other way (h, w, 2): each pixel's vector, negated, splatted to where it
    points; the negated vector at the same place where nothing lands."""
    forward = torch.from_numpy(np.ascontiguousarray(flow))
    height, width = flow.shape[:2]
    summed, weight = splat(-forward.permute(2, 0, 1), forward, torch.ones(height, width))
    landed = weight > LANDED
    turned = (summed / weight.clamp_min(LANDED)).permute(1, 2, 0)
    return torch.where(landed[..., None], turned, -forward).numpy().astype(np.float32)
