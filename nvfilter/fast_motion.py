"""Motion too fast for DIS: an exhaustive block search on frames shrunk to SEARCH_HEIGHT rows,
and where its vectors should start DIS again.

DIS refines coarse to fine by gradient steps, so it misses motion much larger than its patches
(a cyclist crossing a third of the frame between two frames); the block search tries every
displacement up to half the shrunk frame's height, and its vectors replace DIS's first answer where
they match clearly better and come back (searched both ways), for DIS to refine from there. The
decoder's searched flows (decode/motion.py) and the encoder's vectors' proposals
(codec/search.py) both start from it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from nvfilter.inbetween import warp

SEARCH_HEIGHT = 48
"""The block search runs on frames shrunk (area average) to this many rows, and tries every
displacement up to half of them (SEARCH_HEIGHT // 2 rows or columns) each way."""
SEARCH_BLOCK = 8
"""Side in (shrunk) pixels of the blocks the search matches; they overlap by half."""
SEARCHED_BELOW = 0.7
"""A searched vector replaces DIS's where its block's mean absolute difference is under this
fraction of DIS's (0.5 and 0.6 measured a little worse; the search gains most where DIS misses a
fast object, bench/motion_proxy.py, BENCHMARKS-history.md)."""
SEARCH_CONSISTENT = 1.5
"""...and where the vector found from the second frame back to the first, at its end, returns within
this many (shrunk) pixels: a match of uncovered background or of a scene cut does not come back."""
SEARCH_BEYOND = 2.0
"""...and where it differs from DIS's by at least this many (shrunk) pixels on an axis: motion DIS
can reach is left to DIS (a flame that grows matched itself a few pixels off otherwise)."""


SEARCH_GAIN = 2.0
"""...and where it lowers the block's mean absolute difference by at least this many grey levels
(0-255): a vector that matches better by less than that is noise, and a second DIS run for it
costs a tenth of a 1280x720 pair's work (BENCHMARKS-history.md, sixth session)."""


def shrink(luma: np.ndarray) -> torch.Tensor:
    """A (H, W) luma plane as float32, shrunk (area average) to SEARCH_HEIGHT rows if it has
    more."""
    height, width = luma.shape
    rows = min(SEARCH_HEIGHT, height)
    size = (max(1, round(width * rows / height)), rows)
    plane = np.ascontiguousarray(luma, np.float32)
    return torch.from_numpy(cv2.resize(plane, size, interpolation=cv2.INTER_AREA))


def block_means(cost: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) per-pixel costs averaged over SEARCH_BLOCK squares overlapping by half (edges
    shrunk): (N, 1, rows, cols), one value a block."""
    stride = SEARCH_BLOCK // 2
    return F.avg_pool2d(
        cost, SEARCH_BLOCK, stride, stride // 2, ceil_mode=True, count_include_pad=False
    )


def block_cost(cost: torch.Tensor) -> torch.Tensor:
    """(h, w) per-pixel costs averaged over their block (block_means), each block's mean given to
    every pixel it owns: (h, w)."""
    height, width = cost.shape
    pooled = block_means(cost[None, None])
    return F.interpolate(pooled, size=(height, width), mode="nearest")[0, 0]


def cells_across(length: int) -> int:
    """How many cells of SEARCH_BLOCK // 2 pixels, the first starting a quarter block before the
    frame, hold every block of a side ``length`` pixels long (block_means's blocks: a block is two
    cells, and each starts a cell after the one before)."""
    cell = SEARCH_BLOCK // 2
    blocks = max(1, math.ceil((length - cell) / cell) + 1)
    if (blocks - 1) * cell >= length + cell // 2:  # a last block would start past the frame
        blocks -= 1
    return blocks + 1


def block_search(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Flow (h, w, 2) from the shrunk luma ``first`` to ``second`` by exhaustive block matching:
    each block's displacement (whole pixels, up to h // 2 each way) with the least mean absolute
    difference, then the median of each 3 x 3 blocks (in the block grid).

    A block (block_means's) is 2 x 2 cells of SEARCH_BLOCK // 2 pixels, so each displacement's
    absolute differences are summed once per cell and each block adds up its four cells; the
    buffers are made once and filled in place (4.6x faster than pooling every block from fresh
    tensors; the same costs to float rounding). A block's pixel count is the same at every
    displacement, so the least sum is the least mean."""
    height, width = first.shape
    reach = height // 2
    side = 2 * reach + 1
    cell, edge = SEARCH_BLOCK // 2, SEARCH_BLOCK // 4
    rows, cols = cells_across(height), cells_across(width)
    pads = (edge, cols * cell - width - edge, edge, rows * cell - height - edge)
    inside = F.pad(torch.ones(height, width), pads)[:, None, :]  # pixels in the frame
    start = F.pad(first, pads)[:, None, :]
    moved = F.pad(F.pad(second[None, None], (reach,) * 4, mode="replicate")[0, 0], pads)
    across = moved.unfold(1, cols * cell, 1)  # [row, dx, x] = moved[row, x + dx]
    difference = torch.empty(rows * cell, side, cols * cell)
    column_sums = torch.empty(rows * cell, side, cols)
    cells = torch.empty(side, rows, side, cols)  # [dy, cell row, dx, cell column]
    for dy in range(side):
        torch.sub(across[dy : dy + rows * cell], start, out=difference)
        difference.abs_().mul_(inside)
        by_column = difference.view(rows * cell, side, cols, cell)
        torch.add(by_column[..., 0], by_column[..., 1], out=column_sums)
        for k in range(2, cell):
            column_sums.add_(by_column[..., k])
        by_row = column_sums.view(rows, cell, side, cols)
        torch.add(by_row[:, 0], by_row[:, 1], out=cells[dy])
        for k in range(2, cell):
            cells[dy].add_(by_row[:, k])
    blocks = cells[:, :-1] + cells[:, 1:]
    blocks = blocks[..., :-1] + blocks[..., 1:]
    best = blocks.permute(0, 2, 1, 3).reshape(side * side, rows - 1, cols - 1).argmin(0)
    flow = torch.stack([best % side, best // side]).to(torch.float32) - reach  # (2, rows, cols)
    smooth = F.pad(flow[None], (1, 1, 1, 1), mode="replicate")[0].unfold(1, 3, 1).unfold(2, 3, 1)
    flow = smooth.reshape(2, rows - 1, cols - 1, 9).median(-1).values
    return F.interpolate(flow[None], size=(height, width), mode="nearest")[0].permute(1, 2, 0)


def searched_start(
    flow: np.ndarray,
    first: torch.Tensor,
    second: torch.Tensor,
    ahead: torch.Tensor,
    behind: torch.Tensor | None,
) -> np.ndarray | None:
    """Where to start DIS again: ``flow`` (H, W, 2, DIS's first answer) with the searched vectors
    ``ahead`` (first to second) put in where they match clearly better and come back by ``behind``
    (second to first; None: the coming back left unchecked); shrunk frames ``first``,
    ``second``; None where no vector is taken."""
    height, width = flow.shape[:2]
    rows, cols = first.shape
    scale = cols / width
    found = torch.from_numpy(cv2.resize(flow, (cols, rows), interpolation=cv2.INTER_AREA) * scale)
    image = second[None]
    found_cost = block_cost((first - warp(image, found)[0]).abs())
    ahead_cost = block_cost((first - warp(image, ahead)[0]).abs())
    take = ahead_cost < SEARCHED_BELOW * found_cost
    if behind is not None:
        back_there = warp(behind.permute(2, 0, 1), ahead).permute(1, 2, 0)
        take &= (ahead + back_there).square().sum(-1) < SEARCH_CONSISTENT**2
    take &= (ahead - found).abs().amax(-1) >= SEARCH_BEYOND
    take &= found_cost - ahead_cost >= SEARCH_GAIN
    if not bool(take.any()):
        return None
    start = torch.where(take[..., None], ahead, found).numpy()
    return cv2.resize(start, (width, height), interpolation=cv2.INTER_LINEAR) / scale


def restart(flow: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray | None:
    """Where DIS's ``flow`` (H, W, 2) from the luma plane ``first`` to ``second`` (H, W) should
    start again (searched_start), or None. The search back, which only checks that a vector
    comes back, is left out where no vector would be taken anyway: most pairs move slowly
    enough for DIS, and one block search is a third of this."""
    small = shrink(first), shrink(second)
    if min(small[0].shape) < SEARCH_BLOCK:
        return None
    ahead = block_search(*small)
    if searched_start(flow, *small, ahead, None) is None:
        return None
    return searched_start(flow, *small, ahead, block_search(small[1], small[0]))
