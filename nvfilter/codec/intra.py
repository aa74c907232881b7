"""Intra prediction: each 8x8 block of an intra frame predicted from the decoded pixels just
above and left of it, and only the difference coded (stream version 3).

A block's mode (MODES) says how: the mean of the row above and the column to the left (DC),
the row above carried down (VERTICAL), the column to the left carried across (HORIZONTAL), the
two averaged (BLEND), or the column plus the row less their corner pixel (TRUE_MOTION, VP8's:
a gradient carried on). A neighbour outside the plane reads as the plane's middle value. Blocks
are coded along anti-diagonals (row + column constant, top-left first): every block of one
diagonal has its neighbours on earlier ones, so a diagonal is done at once, and encoder and
decoder do the same sums on the same blocks in the same batches, so they agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from nvfilter.codec.transform import BLOCK, COEFFICIENTS, inverse_blocks

DC, VERTICAL, HORIZONTAL, BLEND, TRUE_MOTION = range(5)
MODES = 5


def diagonals(rows: int, cols: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(block rows, block columns) of each anti-diagonal of a ``rows`` x ``cols`` grid, in
    order."""
    for total in range(rows + cols - 1):
        row = np.arange(max(0, total - cols + 1), min(rows, total + 1))
        yield row, total - row


def predictions(
    plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, middle: float
) -> np.ndarray:  # fmt: skip
    """(MODES, blocks, 64): every mode's prediction of the blocks at ``rows``, ``cols`` (raster
    pixels) from the decoded ``plane`` around them."""
    offsets = np.arange(BLOCK)
    top, left = rows * BLOCK, cols * BLOCK
    has_above, has_left = (rows > 0)[:, None], (cols > 0)[:, None]
    above = plane[np.maximum(top - 1, 0)[:, None], left[:, None] + offsets]
    beside = plane[top[:, None] + offsets, np.maximum(left - 1, 0)[:, None]]
    corner = plane[np.maximum(top - 1, 0), np.maximum(left - 1, 0)][:, None]
    above = np.where(has_above, above, np.float32(middle))
    beside = np.where(has_left, beside, np.float32(middle))
    corner = np.where(has_above & has_left, corner, np.float32(middle))
    seen = has_above.astype(np.float32) + has_left
    sums = above.sum(1, keepdims=True) * has_above + beside.sum(1, keepdims=True) * has_left
    dc = np.where(seen > 0, sums / (BLOCK * np.maximum(seen, 1)), np.float32(middle))
    count = len(rows)
    vertical = np.broadcast_to(above[:, None, :], (count, BLOCK, BLOCK))
    horizontal = np.broadcast_to(beside[:, :, None], (count, BLOCK, BLOCK))
    out = np.empty((MODES, count, BLOCK, BLOCK), np.float32)
    out[DC] = dc[:, :, None]
    out[VERTICAL] = vertical
    out[HORIZONTAL] = horizontal
    out[BLEND] = (vertical + horizontal) * np.float32(0.5)
    out[TRUE_MOTION] = vertical + horizontal - corner[:, :, None]
    return out.reshape(MODES, count, COEFFICIENTS)


def _place(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray, blocks: np.ndarray) -> None:
    """Write raster ``blocks`` (blocks, 64) into ``plane`` at block ``rows``, ``cols``."""
    offsets = np.arange(BLOCK)
    ys = (rows * BLOCK)[:, None, None] + offsets[None, :, None]
    xs = (cols * BLOCK)[:, None, None] + offsets[None, None, :]
    plane[ys, xs] = blocks.reshape(-1, BLOCK, BLOCK)


def _rebuild(
    decoded: np.ndarray, rows: np.ndarray, cols: np.ndarray, guesses: np.ndarray,
    modes: np.ndarray, levels: np.ndarray, step: float,
) -> None:  # fmt: skip
    """Write one diagonal's blocks into ``decoded``: each its ``modes`` prediction plus its
    ``levels`` dequantised (the encoder's and the decoder's one sum, so they agree exactly)."""
    guess = guesses[modes, np.arange(len(rows))]
    _place(decoded, rows, cols, guess + inverse_blocks(levels * np.float32(step)))


Choose = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(blocks' pixels, their predictions (MODES, blocks, 64)) -> (mode, zigzag levels) per block."""


def code_plane(
    picture: np.ndarray, grid: tuple[int, int], step: float, middle: float, choose: Choose
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """An intra plane coded block by block along the diagonals: (modes (blocks,), levels
    (blocks, 64) zigzag, decoded plane); ``choose`` picks each block's mode and levels."""
    rows, cols = grid
    decoded = np.zeros_like(picture, dtype=np.float32)
    modes = np.zeros(rows * cols, np.int32)
    levels = np.zeros((rows * cols, COEFFICIENTS), np.int32)
    pixels = picture.reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
    for row, col in diagonals(rows, cols):
        guesses = predictions(decoded, row, col, middle)
        chosen, found = choose(pixels[row, col].reshape(-1, COEFFICIENTS), guesses)
        index = row * cols + col
        modes[index], levels[index] = chosen, found
        _rebuild(decoded, row, col, guesses, chosen, found, step)
    return modes, levels, decoded


def decode_plane(
    modes: np.ndarray, levels: np.ndarray, grid: tuple[int, int], step: float, middle: float
) -> np.ndarray:  # fmt: skip
    """code_plane's decoded plane from its modes and levels."""
    rows, cols = grid
    decoded = np.zeros((rows * BLOCK, cols * BLOCK), np.float32)
    for row, col in diagonals(rows, cols):
        index = row * cols + col
        guesses = predictions(decoded, row, col, middle)
        _rebuild(decoded, row, col, guesses, modes[index], levels[index], step)
    return decoded
