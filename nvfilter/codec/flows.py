"""The codec's stored motion as dense flows, for the frames between two decoded frames.

A frame's vectors towards a reference (motion.py) are one per 8x8 block; read bilinearly between
the blocks' centres, they make a flow that is smooth where the blocks' vectors differ a little.
Between two neighbouring frames the file holds the motion one way (structure.pair_source); the
other way is that flow turned round: each pixel's vector, negated, carried to where it points
(splatted), and where nothing lands, the vector found at the same place, negated.

A block's vector is right for the block as a whole; where an object's edge crosses it, part of
it moves with a neighbouring block. So each pixel of the flow takes the vector of its own block
or of one of the eight around it, or the vectors read between the centres, whichever moves the
reference onto the frame best around it (the two frames are decoded already): the blocks' edges
follow the objects', and every vector is one the file holds; nothing is searched
(BENCHMARKS.md, frames between).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from nvfilter.codec.transform import BLOCK
from nvfilter.inbetween import pixel_places, splat

CHOICE_WINDOW = 5
"""Side in pixels (of the flow's size) of the square over which a pixel's candidate vectors are
compared (the mean absolute grey difference they leave)."""
LANDED = 1e-3
"""Splatted weight under which a pixel counts as one nothing landed on."""


def chosen_flow(
    vectors: np.ndarray, frame: np.ndarray, reference: np.ndarray, factor: int = 1
) -> np.ndarray:
    """The flow (height, width, 2), float32 pixels, at 1 / ``factor`` of the frame's size (in
    that size's pixels) from the uint8 RGB ``frame`` to ``reference``, its block ``vectors``
    in quarter pixels: each pixel's vector chosen among its block's, its neighbours' and the
    read between centres (the module's docstring)."""
    rows, cols = vectors.shape[:2]
    height, width = frame.shape[:2]
    size = (-(-width // factor), -(-height // factor))
    scaled = vectors.astype(np.float32) * (0.25 / factor)
    grown = (max(1, cols * BLOCK // factor), max(1, rows * BLOCK // factor))

    def spread(field: np.ndarray, interpolation: int) -> np.ndarray:
        return cv2.resize(field, grown, interpolation=interpolation)[: size[1], : size[0]]

    def grey(picture: np.ndarray) -> np.ndarray:
        small = cv2.resize(picture, size, interpolation=cv2.INTER_AREA) if factor > 1 else picture
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)

    target, source = grey(frame), grey(reference)
    places = pixel_places(size[1], size[0])

    def error(flow: np.ndarray) -> np.ndarray:
        moved = cv2.remap(source, places + flow, None, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        return cv2.blur(cv2.absdiff(target, moved), (CHOICE_WINDOW, CHOICE_WINDOW))

    best = np.ascontiguousarray(spread(scaled, cv2.INTER_LINEAR))
    least = error(best)
    around = np.pad(scaled, ((1, 1), (1, 1), (0, 0)), mode="edge")
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            flow = spread(np.ascontiguousarray(around[1 + dy : 1 + dy + rows, 1 + dx : 1 + dx + cols]),
                          cv2.INTER_NEAREST)  # fmt: skip
            trial = error(flow)
            better = trial < least
            cv2.copyTo(flow, better.view(np.uint8), best)  # a tenth of best[better] = ...'s time
            np.minimum(trial, least, out=least)
    return best


def reversed_flow(flow: np.ndarray) -> np.ndarray:
    """The flow the other way (h, w, 2): each pixel's vector, negated, splatted to where it
    points; the negated vector at the same place where nothing lands."""
    forward = torch.from_numpy(np.ascontiguousarray(flow))
    height, width = flow.shape[:2]
    summed, weight = splat(-forward.permute(2, 0, 1), forward, torch.ones(height, width))
    landed = weight > LANDED
    turned = (summed / weight.clamp_min(LANDED)).permute(1, 2, 0)
    return torch.where(landed[..., None], turned, -forward).numpy().astype(np.float32)
