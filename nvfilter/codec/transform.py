"""The residual's transform and quantiser: 8x8 orthonormal DCT-II, coefficients in zigzag order,
a uniform quantiser with a dead zone.

The 2-D transform of a block is one 64 x 64 matrix (the DCT's Kronecker square with the zigzag
order folded in), so a whole plane is one matrix product. Orthonormal: a squared error in the
coefficients is the same squared error in the pixels. Steps come from a quantiser parameter
``qp`` as in H.264: the step doubles every 6.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK = 8
COEFFICIENTS = BLOCK * BLOCK
QP_MAX = 96
"""Largest quantiser parameter a stream may carry (a step of about 34,000: every coefficient 0)."""


def _dct_matrix(n: int) -> np.ndarray:
    rows = [[math.cos(math.pi * (2 * x + 1) * u / (2 * n)) for x in range(n)] for u in range(n)]
    matrix = np.array(rows) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix


def _zigzag(n: int) -> np.ndarray:
    """Raster index of each zigzag position (JPEG's order)."""
    order = sorted((x + y, y if (x + y) % 2 else x, y * n + x) for y in range(n) for x in range(n))
    return np.array([index for _, _, index in order])


ZIGZAG = _zigzag(BLOCK)
_FORWARD = np.kron(_dct_matrix(BLOCK), _dct_matrix(BLOCK))[ZIGZAG].T.astype(np.float32)
"""(64 raster pixels) -> (64 zigzag coefficients): flat blocks @ _FORWARD."""
_INVERSE = np.ascontiguousarray(_FORWARD.T)


def step_of(qp: int) -> float:
    """The quantiser step of ``qp`` (grey-plane units, 0..441): 0.5 at 0, doubling every 6."""
    return 0.5 * 2.0 ** (qp / 6)


def to_blocks(plane: np.ndarray) -> np.ndarray:
    """(H, W) -> (H/8 * W/8, 64): each 8x8 block's pixels in raster order, blocks row by row."""
    height, width = plane.shape
    grid = plane.reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK).transpose(0, 2, 1, 3)
    return grid.reshape(-1, COEFFICIENTS)


def from_blocks(blocks: np.ndarray, height: int, width: int) -> np.ndarray:
    """to_blocks undone."""
    grid = blocks.reshape(height // BLOCK, width // BLOCK, BLOCK, BLOCK).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(grid.reshape(height, width))


def forward(plane: np.ndarray) -> np.ndarray:
    """(H, W) float32 -> (blocks, 64) coefficients in zigzag order."""
    return forward_blocks(to_blocks(plane))


def inverse(coefficients: np.ndarray, height: int, width: int) -> np.ndarray:
    """(blocks, 64) zigzag coefficients -> (H, W) float32."""
    return from_blocks(inverse_blocks(coefficients), height, width)


def quantise(coefficients: np.ndarray, step: float, rounding: float) -> np.ndarray:
    """Levels: sign(c) floor(|c| / step + rounding), int32 (a rounding under 0.5 is the dead
    zone that leaves small coefficients at 0, where they cost more than they give)."""
    levels = np.floor(np.abs(coefficients) * (1.0 / step) + rounding)
    return (np.sign(coefficients) * levels).astype(np.int32)


def last_coded(levels: np.ndarray) -> np.ndarray:
    """Per block, 1 + the zigzag position of its last non-zero level (0: none)."""
    nonzero = levels != 0
    width = levels.shape[1]
    return np.where(nonzero.any(1), width - np.argmax(nonzero[:, ::-1], 1), 0).astype(np.int32)


def forward_blocks(blocks: np.ndarray) -> np.ndarray:
    """(blocks, 64) raster pixels -> (blocks, 64) zigzag coefficients."""
    return np.asarray(blocks, np.float32) @ _FORWARD


def inverse_blocks(coefficients: np.ndarray) -> np.ndarray:
    """(blocks, 64) zigzag coefficients -> (blocks, 64) raster pixels, float32."""
    return coefficients.astype(np.float32) @ _INVERSE
