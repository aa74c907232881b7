"""The in-loop deblocking filter: each decoded plane's 8x8 block edges smoothed where the step
across them is small enough to be the quantiser's, before the frame is shown or predicted from.

A coarse quantiser leaves each block a little off from its neighbours, a step along every block
edge that the eye sees as a grid and that the next frames inherit through their prediction.
H.264's loop filter (simplified, in floats): across each edge, with p1 p0 | q0 q1 the two
pixels each side, where |p0 - q0| < EDGE x step and both sides are flat (|p1 - p0| and
|q1 - q0| < FLAT x step), p0 and q0 move towards each other by
((q0 - p0) x 4 + (p1 - q1)) / 8, at most MOST x step. Vertical edges first, then horizontal
ones. Encoder and decoder run the same function on the same planes, so the decoder's frames are
the encoder's (stream version 3; BENCHMARKS.md, codec, for what it buys).
"""

from __future__ import annotations

import numpy as np

from nvfilter.codec.transform import BLOCK

EDGE = 0.5
"""The largest step across an edge (in quantiser steps) taken for the quantiser's, not the
picture's."""
FLAT = 0.5
"""The largest step between the two pixels on one side for that side to count as flat."""
MOST = 0.5
"""The most (in quantiser steps) a pixel is moved."""


def deblock(plane: np.ndarray, step: float) -> np.ndarray:
    """``plane`` (float32, whole BLOCKs on both axes) with its block edges filtered for the
    quantiser ``step`` (a new array)."""
    out = plane.copy()
    for view in (out, out.T):  # vertical edges, then horizontal ones (a view: written through)
        edges = np.arange(BLOCK, view.shape[1] - 1, BLOCK)
        p1, p0, q0, q1 = view[:, edges - 2], view[:, edges - 1], view[:, edges], view[:, edges + 1]
        smooth = (
            (np.abs(p0 - q0) < EDGE * step)
            & (np.abs(p1 - p0) < FLAT * step)
            & (np.abs(q1 - q0) < FLAT * step)
        )
        delta = np.clip(((q0 - p0) * 4 + (p1 - q1)) / 8, -MOST * step, MOST * step) * smooth
        view[:, edges - 1] = p0 + delta
        view[:, edges] = q0 - delta
    return out
