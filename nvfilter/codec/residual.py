"""A plane's quantised coefficients as symbols, and back.

Which 8x8 blocks have any level at all is said first, as a quadtree of flags: one per region of
4x4 blocks, then one per 2x2 blocks inside each flagged region; in a well-predicted frame most
regions are empty and cost a fraction of a bit. Then, for each block of a flagged 2x2, ``last``:
one past the zigzag position of its last non-zero level (0: none). Then the levels before each
block's last, each under the table of its context: the frame's level, grey or colour, its band
of zigzag positions, the class of its block's ``last`` (a block that goes far has larger levels
everywhere) and how many of the blocks left of and above it have levels. Last, each block's
final level, which is never 0: its sign, and its magnitude less one.

An intra frame of stream versions 1 and 2 codes each block's first level (its mean) apart, as
the difference from the block on its left (the first column: from the block above), and the
rest as above; version 3 predicts intra blocks from their neighbours (intra.py) and codes what
is left as a predicted frame's.
"""

from __future__ import annotations

import numpy as np

from nvfilter.codec.entropy import Reader, Tables, Writer, signed_bits
from nvfilter.codec.transform import COEFFICIENTS, last_coded

LEVEL_ESCAPE = 16
FINAL_ESCAPE = 16
DC_ESCAPE = 24
BAND_STARTS = (0, 1, 3, 6, 10, 15, 21, 28, 36, 45)
"""Zigzag positions where each band of coefficients starts (bands widen with frequency)."""
BAND = np.searchsorted(np.array(BAND_STARTS), np.arange(COEFFICIENTS), side="right") - 1
LAST_CLASS_STARTS = (1, 3, 7, 16, 32)
"""``last`` values where each class of blocks starts, for the levels' contexts."""
LAST_CLASSES = len(LAST_CLASS_STARTS)
NEIGHBOUR_CLASSES = 3
REGIONS = (4, 2)
"""Sides, in blocks, of the quadtree's regions, coarse to fine."""


def _last_class(last: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array(LAST_CLASS_STARTS), last, side="right") - 1


def _any(coded: np.ndarray, side: int) -> np.ndarray:
    """(rows, cols) flags -> whether any is set in each ``side`` x ``side`` region."""
    rows, cols = coded.shape
    padded = np.zeros((-(-rows // side) * side, -(-cols // side) * side), bool)
    padded[:rows, :cols] = coded
    blocks = padded.reshape(padded.shape[0] // side, side, padded.shape[1] // side, side)
    return np.asarray(blocks.any((1, 3)))


def _spread(flags: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Each region's flag given to the ``factor`` x ``factor`` cells of ``shape`` inside it."""
    return np.repeat(np.repeat(flags, factor, 0), factor, 1)[: shape[0], : shape[1]]


def _neighbours(last: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Per block, how many of the blocks left of and above it have levels (0, 1, 2)."""
    coded = (last > 0).reshape(grid)
    count = np.zeros(grid, np.int64)
    count[:, 1:] += coded[:, :-1]
    count[1:, :] += coded[:-1, :]
    return count.ravel()


def _coded(
    last: np.ndarray, start: int, grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(block, position, context) of every level before a block's last, grouped by context
    (stable: in block order within a context)."""
    positions = np.arange(COEFFICIENTS)[None, :]
    mask = (positions < last[:, None] - 1) & (positions >= start)
    block, position = np.nonzero(mask)
    per_block = _last_class(last) * NEIGHBOUR_CLASSES + _neighbours(last, grid)
    context = BAND[position] * (LAST_CLASSES * NEIGHBOUR_CLASSES) + per_block[block]
    order = np.argsort(context, kind="stable")
    return block[order], position[order], context[order]


def _groups(context: np.ndarray) -> list[np.ndarray]:
    """Runs of equal ``context`` (sorted), as index arrays."""
    bounds = np.flatnonzero(np.diff(context)) + 1
    return [group for group in np.split(np.arange(len(context)), bounds) if len(group)]


def _dpcm(means: np.ndarray) -> np.ndarray:
    """(rows, cols) -> differences from the left neighbour, the first column from above."""
    difference = means.copy()
    difference[:, 1:] -= means[:, :-1]
    difference[1:, 0] -= means[:-1, 0]
    return difference


def _undo_dpcm(difference: np.ndarray) -> np.ndarray:
    first = np.cumsum(difference[:, 0])
    rows = difference.copy()
    rows[:, 0] = first
    return np.cumsum(rows, axis=1)


def write_plane(
    writer: Writer, levels: np.ndarray, grid: tuple[int, int], level: int, colour: int, intra: bool
) -> None:
    """Code (blocks, 64) zigzag ``levels`` of a plane of ``grid`` (rows, cols) blocks."""
    start = 1 if intra else 0
    if intra:
        writer.signed(("dc", colour), DC_ESCAPE, _dpcm(levels[:, 0].reshape(grid)))
        last = last_coded(levels[:, 1:]) + 1
        last[last == 1] = 0
    else:
        last = last_coded(levels)
    coded = (last > 0).reshape(grid)
    within = np.ones((1, 1), bool)
    for depth, side in enumerate(REGIONS):
        flags = _any(coded, side)
        mask = _spread(within, 2, flags.shape) if depth else np.ones(flags.shape, bool)
        writer.symbols(("cbf", level, colour, depth), 2, flags[mask])
        within = flags
    listed = _spread(within, REGIONS[-1], grid).ravel()
    writer.symbols(("last", level, colour), COEFFICIENTS + 1, np.maximum(last - start, 0)[listed])
    block, position, context = _coded(last, start, grid)
    values = levels[block, position]
    for group in _groups(context):
        writer.signed(("level", level, colour, int(context[group[0]])), LEVEL_ESCAPE, values[group])
    ending = np.flatnonzero(last)
    finals = levels[ending, last[ending] - 1]
    writer.symbols(("sign", level, colour), 2, finals < 0)
    band = BAND[last[ending] - 1]
    order = np.argsort(band, kind="stable")
    for group in _groups(band[order]):
        chosen = order[group]
        writer.unsigned(
            ("final", level, colour, int(band[chosen[0]])), FINAL_ESCAPE, np.abs(finals[chosen]) - 1
        )


def read_plane(
    reader: Reader, grid: tuple[int, int], level: int, colour: int, intra: bool
) -> np.ndarray:
    """write_plane undone: (blocks, 64) zigzag levels."""
    count = grid[0] * grid[1]
    levels = np.zeros((count, COEFFICIENTS), np.int64)
    start = 1 if intra else 0
    if intra:
        means = reader.signed(("dc", colour), DC_ESCAPE, count).reshape(grid)
        levels[:, 0] = _undo_dpcm(means).ravel()
    within = np.ones((1, 1), bool)
    for depth, side in enumerate(REGIONS):
        shape = (-(-grid[0] // side), -(-grid[1] // side))
        mask = _spread(within, 2, shape) if depth else np.ones(shape, bool)
        flags = np.zeros(shape, bool)
        flags[mask] = reader.symbols(("cbf", level, colour, depth), 2, int(mask.sum())) > 0
        within = flags
    listed = _spread(within, REGIONS[-1], grid).ravel()
    last = np.zeros(count, np.int64)
    said = reader.symbols(("last", level, colour), COEFFICIENTS + 1, int(listed.sum()))
    last[listed] = np.where(said > 0, np.minimum(said + start, COEFFICIENTS), 0)
    block, position, context = _coded(last, start, grid)
    for group in _groups(context):
        key = ("level", level, colour, int(context[group[0]]))
        levels[block[group], position[group]] = reader.signed(key, LEVEL_ESCAPE, len(group))
    ending = np.flatnonzero(last)
    negative = reader.symbols(("sign", level, colour), 2, len(ending)) > 0
    band = BAND[last[ending] - 1]
    order = np.argsort(band, kind="stable")
    magnitudes = np.zeros(len(ending), np.int64)
    for group in _groups(band[order]):
        chosen = order[group]
        key = ("final", level, colour, int(band[chosen[0]]))
        magnitudes[chosen] = reader.unsigned(key, FINAL_ESCAPE, len(chosen)) + 1
    levels[ending, last[ending] - 1] = np.where(negative, -magnitudes, magnitudes)
    return levels


def block_bits(
    tables: Tables, levels: np.ndarray, grid: tuple[int, int], level: int, colour: int
) -> np.ndarray:
    """What each block's levels of a predicted plane would cost to code now (its ``last``, its
    levels and its final level, under the current tables; not the quadtree's flags), in bits:
    the encoder weighs them against what they put right."""
    last = last_coded(levels)
    bits = tables.bits(("last", level, colour), COEFFICIENTS + 1)[last]
    block, position, context = _coded(last, 0, grid)
    values = levels[block, position]
    for group in _groups(context):
        table = signed_bits(tables, ("level", level, colour, int(context[group[0]])), LEVEL_ESCAPE)
        clipped = np.clip(values[group], -LEVEL_ESCAPE, LEVEL_ESCAPE) + LEVEL_ESCAPE
        np.add.at(bits, block[group], table[clipped])
    ending = np.flatnonzero(last)
    if len(ending):
        finals = np.abs(levels[ending, last[ending] - 1]) - 1
        bits[ending] += tables.bits(("sign", level, colour), 2)[0]
        for band in np.unique(BAND[last[ending] - 1]):
            chosen = ending[BAND[last[ending] - 1] == band]
            table = tables.bits(("final", level, colour, int(band)), FINAL_ESCAPE + 1)
            np.add.at(
                bits,
                chosen,
                table[np.minimum(finals[BAND[last[ending] - 1] == band], FINAL_ESCAPE)],
            )
    return bits
