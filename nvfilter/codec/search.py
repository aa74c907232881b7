"""The encoder's motion search: block vectors at every level of the pyramid (motion.py), each
chosen for the least sum of absolute differences plus what its difference costs to code.

OpenCV's DIS optical flow (found once a pair, on the original frames' grey) proposes a vector per
block: the flow's mean over the block. Each level keeps, per block, the better of the block's
inherited vector (its parent's, which costs next to nothing) and the proposal, then tries the
eight neighbours of the best at one pixel, a half and a quarter (the finest level: a quarter
only). Costs: the block's absolute differences against the reconstructed reference (what the
decoder will predict from), plus ``lam`` times the bits the vector's difference costs under the
coder's current tables. The coarse levels are costed on the frames shrunk (SCALES): a 64x64
block's differences at a quarter of the size are a sixteenth of the work and rank vectors
nearly as well.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from nvfilter import fast_motion
from nvfilter.codec.entropy import Tables, signed_bits
from nvfilter.codec.motion import PYRAMID, VECTOR_ESCAPE, expected, grid, parent_of
from nvfilter.device import torch_threads

SCALES = {64: 4, 32: 2, 16: 1, 8: 1}
"""The shrink factor each level's block side is costed at."""
REFINE = {64: (4, 2, 1), 32: (2, 1), 16: (2, 1), 8: (2, 1)}
"""Each level's refinement steps, quarter pixels."""
INTERPOLATION = cv2.INTER_CUBIC
"""How a reference is moved between pixels to cost a vector."""
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
"""OpenCV's DIS preset for the vectors' proposals: the medium one found the same or 1.5% fewer
bits than the fast one for 8 to 15% more time, and motion nearer the truth for the frames
between (BENCHMARKS.md, frames between)."""
ESCAPE_BITS = 12.0
"""What a difference at or past the escape is taken to cost (its tail included)."""
ALIGN = max(PYRAMID)


def flow(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """DIS flow (H, W, 2) from the uint8 grey ``current`` to ``reference``, pixels: current[p] ~
    reference[p + flow[p]] (OpenCV's FLOW_PRESET), started again from the block search's vectors
    where the motion is too fast for DIS (fast_motion.restart): the levels' refinements move a
    vector a few pixels, so what the proposal misses the field misses, and the frames between,
    read along it, with it (BENCHMARKS.md, frames between)."""
    found = np.asarray(_dis().calc(current, reference, None))
    with torch_threads(1):  # its tensors are tiny: two threads cost more than they give
        start = fast_motion.restart(found, current, reference)
    if start is None:
        return found
    return np.asarray(_dis().calc(current, reference, np.ascontiguousarray(start, np.float32)))


def _dis() -> Any:
    """A new DIS search (FLOW_PRESET) for each run: one kept from run to run answered a test's
    frames differently after the suite's earlier runs, and an encode must not depend on what the
    process did before it."""
    return cv2.DISOpticalFlow.create(FLOW_PRESET)


def _pad(plane: np.ndarray) -> np.ndarray:
    height, width = plane.shape[:2]
    return cv2.copyMakeBorder(plane, 0, -height % ALIGN, 0, -width % ALIGN, cv2.BORDER_REPLICATE)


def _shrink(plane: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return plane
    height, width = plane.shape[:2]
    return cv2.resize(plane, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


class Search:
    """One frame's search towards one reference."""

    def __init__(
        self, current: np.ndarray, reference: np.ndarray, motion: np.ndarray, lam: float,
        tables: Tables, key: tuple[int, int], reach: int,
    ) -> None:  # fmt: skip
        self.shape = current.shape
        self.reach = reach
        self.lam, self.tables, self.key = lam, tables, key
        current, reference, motion = _pad(current), _pad(reference), _pad(motion)
        self.planes = {
            factor: (_shrink(current, factor), _shrink(reference, factor))
            for factor in set(SCALES.values())
        }
        self.places = {}
        for factor, (plane, _) in self.planes.items():
            rows, cols = plane.shape
            ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
            self.places[factor] = np.stack((xs, ys), -1)
        self.motion = motion

    def sad(self, vectors: np.ndarray, side: int) -> np.ndarray:
        """Per ``side`` block, the sum of |current - reference moved by the block's vector| (on
        the frames shrunk by SCALES[side], scaled back)."""
        factor = SCALES[side]
        current, reference = self.planes[factor]
        rows, cols = current.shape
        per_pixel = cv2.resize(
            vectors.astype(np.float32) * (0.25 / factor),
            (cols, rows),
            interpolation=cv2.INTER_NEAREST,
        )
        moved = cv2.remap(reference, per_pixel + self.places[factor], None, INTERPOLATION,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        means = cv2.resize(cv2.absdiff(current, moved), (vectors.shape[1], vectors.shape[0]),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        return means * float(side * side)

    def bits(self, difference: np.ndarray, depth: int) -> np.ndarray:
        total = np.zeros(difference.shape[:2])
        for axis in (0, 1):
            table = signed_bits(self.tables, (f"mv{depth}", *self.key, axis), VECTOR_ESCAPE)
            values = difference[..., axis]
            inside = np.abs(values) < VECTOR_ESCAPE
            clipped = np.clip(values, -VECTOR_ESCAPE, VECTOR_ESCAPE) + VECTOR_ESCAPE
            total += np.where(inside, table[clipped], ESCAPE_BITS)
        return total

    def level(
        self, depth: int, side: int, candidates: list[np.ndarray], predicted: np.ndarray
    ) -> np.ndarray:
        """The best vector per block of this level among ``candidates`` and their refinements,
        each costed as its difference from ``predicted``."""

        def cost(vectors: np.ndarray) -> np.ndarray:
            return self.sad(vectors, side) + self.lam * self.bits(vectors - predicted, depth)

        best = candidates[0].copy()
        best_cost = cost(best)
        for vectors in candidates[1:]:
            trial = cost(vectors)
            better = trial < best_cost
            best[better], best_cost = vectors[better], np.minimum(trial, best_cost)
        for step in REFINE[side]:
            centre = best.copy()
            for dy in (-step, 0, step):
                for dx in (-step, 0, step):
                    if dx or dy:
                        vectors = centre + np.array([dx, dy])
                        trial = cost(vectors)
                        better = trial < best_cost
                        best[better], best_cost = vectors[better], np.minimum(trial, best_cost)
        return best

    def smooth(
        self, vectors: np.ndarray, prior: np.ndarray, side: int, passes: int = 2
    ) -> np.ndarray:
        """The top level's vectors, each moved to the one it is coded against (its difference
        from ``prior`` equal to its left neighbour's; the first column: the one above) where
        that costs less with its bits: the search costed them against a smooth guess, not
        against the neighbour they are coded against, and they jitter from block to block."""
        for _ in range(passes):
            beyond = vectors - prior
            neighbour = beyond.copy()
            neighbour[:, 1:] = beyond[:, :-1]
            neighbour[1:, 0] = beyond[:-1, 0]
            own = self.sad(vectors, side) + self.lam * self.bits(beyond - neighbour, 0)
            moved = prior + neighbour
            taken = self.sad(moved, side) + self.lam * self.bits(np.zeros_like(vectors), 0)
            better = taken < own
            better[0, 0] = False
            vectors = np.where(better[..., None], moved, vectors)
        return vectors

    def run(self, prior: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """The field at every pyramid level, coarse to fine (grids of the unpadded plane),
        coded against ``prior`` (motion.write_field's)."""
        height, width = self.shape
        levels: list[np.ndarray] = []
        padded_prior = None
        if prior is not None:
            padded_prior = [
                _pad_grid(field, (self.motion.shape[0] // side, self.motion.shape[1] // side))
                for field, side in zip(prior, PYRAMID, strict=True)
            ]
        for depth, side in enumerate(PYRAMID):
            rows, cols = self.motion.shape[0] // side, self.motion.shape[1] // side
            proposal = cv2.resize(self.motion, (cols, rows), interpolation=cv2.INTER_AREA)
            proposal = np.rint(proposal * 4).astype(np.int64)
            predicted = expected(levels, padded_prior, depth, (rows, cols))
            if depth == 0:
                if padded_prior is None:
                    smooth = [cv2.medianBlur(np.ascontiguousarray(proposal[..., axis], np.float32), 3)
                              for axis in (0, 1)]  # fmt: skip
                    guess = np.stack(smooth, -1).astype(np.int64)
                else:
                    guess = predicted
                found = self.level(depth, side, [guess, proposal, np.zeros_like(proposal)], guess)
                found = self.smooth(found, predicted, side)
            else:
                inherited = parent_of(levels[-1], (rows, cols))
                candidates = [predicted, proposal] + (
                    [inherited] if padded_prior is not None else []
                )
                found = self.level(depth, side, candidates, predicted)
            levels.append(np.clip(found, -self.reach, self.reach))
        return [
            vectors[: grid(height, width, side)[0], : grid(height, width, side)[1]]
            for vectors, side in zip(levels, PYRAMID, strict=True)
        ]


def _pad_grid(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A block field grown to ``shape`` by repeating its last row and column."""
    rows, cols = shape
    return np.pad(
        field, ((0, rows - field.shape[0]), (0, cols - field.shape[1]), (0, 0)), mode="edge"
    )
