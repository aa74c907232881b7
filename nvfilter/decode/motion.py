"""Motion-compensated frames between two learned frames: optical flow both ways, warped, blended.

The flow is OpenCV's DIS (dense inverse search, Kroeger et al. 2016), started where it needs it from
an exhaustive block search: DIS refines coarse to fine by gradient steps, so it misses motion much
larger than its patches (a cyclist crossing a third of the frame between two kept frames); the
block search tries every displacement up to half the frame's height on frames shrunk to
SEARCH_HEIGHT rows, and its vectors replace DIS's first answer where they match clearly better and
come back (searched both ways), and DIS runs again from there. A frame at fraction s of the way
from ``first`` to ``second`` samples each of them along the motion (bicubic), with the flows
from time s found by moving both flows forward to time s (flow reversal, Xu et al. 2019; see
SPLAT_SHARPNESS), or, where nothing lands, approximated from the two flows as in Super SloMo (Jiang
et al. 2018, eq. 4), and blends them weighted by nearness in time and by visibility: where a pixel's motion does not come back
(forward-backward check), it shows content one frame lacks, so it is taken from the other. Last, each
pixel mixes that motion-compensated value with the plain cross-fade, by which of the two the frames
agree on better around it: where the two moved samples disagree more than the two unmoved frames
do (flat or static areas, motion the flow got wrong), the cross-fade wins, so a wrong flow costs
little and a sub-pixel flow does not blur what stands still. Motion shorter than a pixel counts
as none, and so does motion under two pixels among motion under one (STILL_BELOW).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from typing import Any

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
STILL_NEIGHBOURHOOD = 2.0
"""...and so does motion shorter than STILL_NEIGHBOURHOOD x STILL_BELOW pixels where the vectors
around it (AGREEMENT_WINDOW square) are shorter than STILL_BELOW on average: DIS's noise comes in
patches a pixel or two long over a slow drift (oa4_launch.webm tilts about 0.6 pixel a kept frame
at 160x90 and DIS saw patches over a pixel), which moved alone and cost more than a cross-fade;
longer vectors count wherever they are, so a small fast object still moves. Measured on the real
kept frames (bench/motion_proxy.py, mean of four clips): 160x90 k = 2 34.91 against 34.91 dB,
k = 4 31.52 against 31.47 dB (oa4_launch.webm 37.34 -> 37.52; its cross-fade 37.55); 320x180 k =
2 32.70 against 32.61 dB (oa4_launch.webm 34.71 -> 35.07), k = 4 29.80 against 29.81 dB. Without
the bound (every vector under an average under STILL_BELOW set to none) 37.50 and 35.01 dB on
that clip; a homography fitted to the flow (RANSAC) in place of DIS's vectors near it helped it at
160x90 (37.53) but cost 0.9 dB at 320x180 k = 4, where its fit to a pixel of motion wandered."""
FLOW_MIN_HEIGHT = 256
"""Frames shorter than this are enlarged (bicubic) to at least this height for the flow search:
DIS's 8-pixel patches are coarse on small frames. Measured at 160x90 (bench/motion_proxy.py,
held-out frames, mean of four clips): 2x enlarged 33.47 against 33.01 dB unenlarged (with
splatting); 3x, as this gives, 34.45 against 34.11 dB at 2x (with this module's blend).
Frames at least twice as tall are halved (area average), and the flows are found, checked and
moved to the in-between time at half size, then enlarged (bilinear) to move the full frames
(flow_factor): DIS's medium preset stops at half the frame's size anyway (on a 1280x720 pair its
flow equals, to the last bit, the flow from the 640x360 frames searched to their own pixels), and
the rest of the work on the flows costs a quarter."""


FINEST_REFINEMENT_ITERATIONS = 2
"""DIS's variational refinement iterations on frames shrunk for their flows (the medium preset's 5
elsewhere): the refinement is 40% of a DIS run at 640x360, and 2 iterations make the run 1.2x
faster (115 -> 97 ms) with in-between frames as good (tour.mp4 and the native clip at 1280x720,
as SEARCH_GAIN: 34.823 -> 34.829 dB; at the proxy's small sizes, which keep 5, 2 moved its
means by -0.09 to +0.03 dB)."""


SEARCH_HEIGHT = 48
"""The block search runs on frames shrunk (area average) to this many rows, and tries every
displacement up to half of them (SEARCH_HEIGHT // 2 rows or columns) each way."""
SEARCH_BLOCK = 8
"""Side in (shrunk) pixels of the blocks the search matches; they overlap by half."""
SEARCHED_BELOW = 0.7
"""A searched vector replaces DIS's where its block's mean absolute difference is under this
fraction of DIS's (0.5 and 0.6 measured a little worse). With the search, on the real kept frames
(bench/motion_proxy.py, 160x90, mean of four clips): k = 2 34.70 against 34.51 dB, k = 4 31.17
against 30.66 dB; g1.avi, whose cyclist DIS misses, 29.58 -> 30.03 dB at k = 2 and 24.39 -> 26.50
dB at k = 4 (minterpolate 26.44); at 320x180 the mean gains 0.38 and 0.47 dB."""
SEARCH_CONSISTENT = 1.5
"""...and where the vector found from the second frame back to the first, at its end, returns within
this many (shrunk) pixels: a match of uncovered background or of a scene cut does not come back."""
SEARCH_BEYOND = 2.0
"""...and where it differs from DIS's by at least this many (shrunk) pixels on an axis: motion DIS
can reach is left to DIS. Without it a flame that grows (oa4_launch.webm from frame 40) matched
itself a few pixels off and k = 4 fell from 40.61 to 40.11 dB."""


SEARCH_GAIN = 2.0
"""...and where it lowers the block's mean absolute difference by at least this many grey levels
(0-255): a vector that matches better by less than that is noise, and a second DIS run for it
costs a tenth of a 1280x720 pair's work. On tour.mp4 at 1280x720 (every second frame held out,
frames 0-24 and 128-152, and the native 1280x720 clip of BENCHMARKS.md) the second runs fell
from 2.39 to 2.00 a pair and the in-between frames gained 0.001 dB; the proxy of STILL_BELOW
(four clips, 160x90 and 320x180, k = 2 and 4) moved by at most 0.01 dB on its mean (g1.avi,
whose cyclist the search is for, 30.84 -> 30.80 dB at 160x90 k = 2, the same elsewhere)."""


SPLAT_SHARPNESS = 0.1
"""The flows from time s are splatted: every pixel of each frame is moved along its flow to where
it is at time s, spread bilinearly over the four pixels around that point, and carries its flows
to both frames there, weighted by nearness in time and by exp(-SPLAT_SHARPNESS * e), e its
brightness-constancy error (mean absolute difference, 0-255, from the pixel it moves to), so that
where two pixels land together the one that stays visible wins (as softmax splatting, Niklaus and
Liu 2020, weights by a learned metric). Measured on the real kept frames (bench/motion_proxy.py,
160x90, mean of four clips), against Super SloMo's approximation alone: k = 2 34.91 against 34.70
dB, k = 4 31.47 against 31.17 dB (g1.avi 30.03 -> 30.84 and 26.50 -> 27.98 dB); 0 (plain
averaging) 34.90 and 31.36 dB."""


def gray(frame: np.ndarray) -> np.ndarray:
    """float32 (H, W) luma of a uint8 RGB (H, W, 3) frame."""
    import cv2  # imported here: only decoding with motion needs it

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)


def shrink(frame: np.ndarray) -> torch.Tensor:
    """(h, w) luma of ``frame`` shrunk (area average) to SEARCH_HEIGHT rows, if it has more."""
    import cv2

    height, width = frame.shape[:2]
    rows = min(SEARCH_HEIGHT, height)
    size = (max(1, round(width * rows / height)), rows)
    return torch.from_numpy(cv2.resize(gray(frame), size, interpolation=cv2.INTER_AREA))


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
    behind: torch.Tensor,
) -> np.ndarray | None:
    """Where to start DIS again: ``flow`` (H, W, 2, DIS's first answer) with the searched vectors
    ``ahead`` (first to second) put in where they match clearly better and come back by ``behind``
    (second to first); shrunk frames ``first``, ``second``; None where no vector is taken."""
    import cv2

    height, width = flow.shape[:2]
    rows, cols = first.shape
    scale = cols / width
    found = torch.from_numpy(cv2.resize(flow, (cols, rows), interpolation=cv2.INTER_AREA) * scale)
    image = second[None]
    found_cost = block_cost((first - warp(image, found)[0]).abs())
    ahead_cost = block_cost((first - warp(image, ahead)[0]).abs())
    back_there = warp(behind.permute(2, 0, 1), ahead).permute(1, 2, 0)
    returns = (ahead + back_there).square().sum(-1) < SEARCH_CONSISTENT**2
    take = (ahead_cost < SEARCHED_BELOW * found_cost) & returns
    take &= (ahead - found).abs().amax(-1) >= SEARCH_BEYOND
    take &= found_cost - ahead_cost >= SEARCH_GAIN
    if not bool(take.any()):
        return None
    start = torch.where(take[..., None], ahead, found).numpy()
    return cv2.resize(start, (width, height), interpolation=cv2.INTER_LINEAR) / scale


def planes(frame: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) ``frame`` as float (3, H, W) in [0, 255], laid out (H, W, 3) in memory as
    the frame is (FramePair.at moves it so, without a copy)."""
    return torch.from_numpy(frame).permute(2, 0, 1).float()


def flow_factor(height: int) -> int:
    """The factor frames ``height`` rows tall are shrunk by for their flows (FLOW_MIN_HEIGHT): 2
    from twice FLOW_MIN_HEIGHT rows, else 1."""
    return 2 if height >= 2 * FLOW_MIN_HEIGHT else 1


def shrink_by(frame: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (H, W, 3) ``frame`` area-averaged to 1 / ``factor`` of its size (rounded)."""
    import cv2

    if factor == 1:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA)


def enlarge(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 (h, w) or (h, w, channels) ``values`` resized (bilinear, pixel centres as
    torch's interpolate without corners aligned) to (height, width); unchanged at that size
    (OpenCV's resize: a third of interpolate's time for a flow at 1280x720)."""
    import cv2

    if values.shape[:2] == (height, width):
        return values
    return cv2.resize(np.ascontiguousarray(values), (width, height), interpolation=cv2.INTER_LINEAR)


_searches = threading.local()
"""Each thread's DIS searches (dis_search)."""


def dis_search(own_pixels: bool, finest: bool, started: bool) -> Any:
    """This thread's DIS search (the medium preset) for these settings, made once: a new one
    costs a fifth of a 640x360 run in its buffers (126 -> 104 ms a run, reused). ``own_pixels``:
    refine down to the frames' own pixels (finest scale 0); ``finest``: with
    FINEST_REFINEMENT_ITERATIONS; ``started``: for runs given a start. A search that has refined
    a start answers a later run without one differently from a new one, so those have their own;
    kept apart, every run gives what a new search gives, to the bit (checked on 22 pairs)."""
    import cv2

    key = (own_pixels, finest, started)
    made: dict[tuple[bool, bool, bool], Any] = _searches.__dict__.setdefault("made", {})
    if key not in made:
        search = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        if own_pixels:
            search.setFinestScale(0)
        if finest:
            search.setVariationalRefinementIterations(FINEST_REFINEMENT_ITERATIONS)
        made[key] = search
    return made[key]


def optical_flow(
    first: np.ndarray, second: np.ndarray, start: np.ndarray | None = None, finest: bool = False
) -> np.ndarray:
    """Flow (H, W, 2) float32 in pixels from ``first`` to ``second`` (uint8 RGB, H x W x 3):
    first[p] ~ second[p + flow[p]]. ``start``: a flow (H, W, 2) for DIS to refine, else zero.
    ``finest``: refine down to the frames' own pixels (frames already shrunk, flow_factor)."""
    import cv2  # imported here: only decoding with motion needs it

    height, width = first.shape[:2]
    factor = math.ceil(FLOW_MIN_HEIGHT / height) if height < FLOW_MIN_HEIGHT else 1

    def luma(frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame)
        if factor > 1:
            size = (width * factor, height * factor)
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

    search = dis_search(factor > 1 or finest, finest, start is not None)
    begin = None
    if start is not None:
        begin = start.astype(np.float32)
        if factor > 1:
            size = (width * factor, height * factor)
            begin = cv2.resize(begin, size, interpolation=cv2.INTER_LINEAR) * factor
        begin = np.ascontiguousarray(begin)
    found = search.calc(luma(first), luma(second), begin)  # type: ignore[call-overload,arg-type]
    flow = np.asarray(found)
    if factor > 1:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) / factor
    return flow.astype(np.float32)


def flows_both_ways(
    first: np.ndarray, second: np.ndarray, finest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(forward, backward) flows between two uint8 (H, W, 3) frames: DIS, started again from the
    block search's vectors where they match clearly better (searched_start); ``finest`` as
    optical_flow's."""
    flows = [optical_flow(first, second, finest=finest), optical_flow(second, first, finest=finest)]
    small = shrink(first), shrink(second)
    if min(small[0].shape) < SEARCH_BLOCK:
        return flows[0], flows[1]
    searched = block_search(small[0], small[1]), block_search(small[1], small[0])
    frames = first, second
    for way in (0, 1):
        start = searched_start(
            flows[way], small[way], small[1 - way], searched[way], searched[1 - way]
        )
        if start is not None:
            flows[way] = optical_flow(frames[way], frames[1 - way], start, finest)
    return flows[0], flows[1]


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y), each (height, width) float32: every pixel's own coordinates (made once a size;
    never written to)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    return xs, ys


def landing(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y), each (H, W): where each pixel lands when moved by ``flow`` (H, W, 2, pixels)."""
    xs, ys = pixel_grid(*flow.shape[:2])
    return xs + flow[..., 0], ys + flow[..., 1]


def splat(
    values: torch.Tensor, flow: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``values`` (C, H, W) moved by ``flow`` (H, W, 2, pixels) and spread bilinearly over the four
    pixels around where each lands, times ``weight`` (H, W): (the sum (C, H, W), the weights' sum
    (H, W)) at each pixel; what lands outside the frame is dropped.

    The sums are made in the frame with a border of one pixel, so that the four pixels around a
    point that touches the frame are all in it, a fixed step apart (points farther out are
    weighed zero), and the weights travel as one more row beside the values."""
    channels, height, width = values.shape
    x, y = landing(flow)
    left, top = x.floor(), y.floor()
    across, down = x.sub_(left), y.sub_(top)  # where in its square of four pixels each lands
    touches = (left >= -1) & (left < width) & (top >= -1) & (top < height)
    wide = width + 2  # a row of the bordered frame
    top = top.clamp_(-1, height - 1).add_(1)
    corner = top.mul_(wide).add_(left.clamp_(-1, width - 1).add_(1)).long().reshape(-1)
    flat_weight = (weight * touches).reshape(1, -1)
    carried = torch.cat((values.reshape(channels, -1) * flat_weight, flat_weight))
    summed = torch.zeros(channels + 1, (height + 2) * wide)
    stay_x, stay_y = 1 - across, 1 - down
    for step, share in (
        (0, stay_x * stay_y),
        (1, across * stay_y),
        (wide, stay_x * down),
        (wide + 1, across * down),
    ):
        summed.index_add_(1, corner + step, carried * share.reshape(1, -1))
    inside = summed.view(channels + 1, height + 2, wide)[:, 1:-1, 1:-1]
    return inside[:channels], inside[channels]


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (C, H, W) sampled at x + flow(x), edges repeated; flow (H, W, 2) in pixels;
    ``mode`` bilinear or bicubic (OpenCV's remap: a third of grid_sample's time at 1280x720)."""
    channels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    return torch.from_numpy(remap(channels, flow.numpy(), mode)).permute(2, 0, 1)


@functools.lru_cache(maxsize=4)
def pixel_places(height: int, width: int) -> np.ndarray:
    """(height, width, 2) float32: every pixel's own (x, y) (made once a size; read-only)."""
    xs, ys = pixel_grid(height, width)
    places = torch.stack((xs, ys), -1).numpy()
    places.flags.writeable = False
    return places


def remap(image: np.ndarray, flow: np.ndarray, mode: str) -> np.ndarray:
    """float32 (H, W, C) ``image`` sampled at x + flow(x) by OpenCV's remap, edges repeated;
    ``flow`` (H, W, 2) in pixels; ``mode`` bilinear or bicubic: (H, W, C)."""
    import cv2

    height, width = flow.shape[:2]
    places = flow + pixel_places(height, width)
    interpolation = cv2.INTER_CUBIC if mode == "bicubic" else cv2.INTER_LINEAR
    out = cv2.remap(image, places, None, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(height, width, -1)


def moved_along(image: np.ndarray, flow: torch.Tensor) -> np.ndarray:
    """(H, W, C) float32 ``image`` sampled (bicubic) along ``flow`` (h, w, 2, in its own pixels),
    enlarged to the image's size (scaled where it is small): (H, W, C)."""
    height, width = image.shape[:2]
    small_height, small_width = flow.shape[:2]
    scale = np.array([width / small_width, height / small_height], np.float32)
    return remap(image, enlarge(flow.numpy() * scale, height, width), "bicubic")


def on_channels(values: np.ndarray, into: np.ndarray | None = None) -> np.ndarray:
    """float32 (H, W) ``values`` repeated over three channels, (H, W, 3) (written ``into`` such
    an array if given)."""
    import cv2

    return cv2.merge([values, values, values], dst=into)


def channel_mean(values: np.ndarray) -> torch.Tensor:
    """float32 (H, W, 3) ``values`` averaged over their channels, (H, W) (OpenCV's transform: a
    seventh of torch's mean over the last axis at 1280x720)."""
    import cv2

    return torch.from_numpy(cv2.transform(values, np.full((1, 3), 1 / 3, np.float32)))


def occlusion(flow: torch.Tensor, back: torch.Tensor, pixel: float = 1.0) -> torch.Tensor:
    """(H, W): 1 where the motion ``flow`` (H, W, 2) does not come back by ``back``, else 0;
    ``pixel``: the size of the flows' pixels in the frame's (flow_factor)."""
    back_x, back_y = warp(back.permute(2, 0, 1), flow)  # where each pixel's flow ends
    flow_x, flow_y = flow.permute(2, 0, 1).contiguous()
    error = (flow_x + back_x).square_().add_((flow_y + back_y).square_())
    bound = flow_x.square().add_(flow_y.square()).add_(back_x.square()).add_(back_y.square())
    bound.mul_(CONSISTENCY_RELATIVE).add_(CONSISTENCY_ABSOLUTE / pixel**2)
    return (error > bound).to(flow.dtype)


def splat_weight(image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """(H, W): exp(-SPLAT_SHARPNESS * |image - other moved back by flow|), channels averaged."""
    error = (image - warp(other, flow)).abs().mean(0)
    return torch.exp(-SPLAT_SHARPNESS * error)


@functools.lru_cache(maxsize=4)
def window_counts(height: int, width: int) -> np.ndarray:
    """(height, width) float32: how many pixels of the AGREEMENT_WINDOW square around each pixel
    lie in the frame (made once a size)."""
    half = AGREEMENT_WINDOW // 2

    def inside(length: int) -> np.ndarray:
        at = np.arange(length)
        return np.minimum(at + half, length - 1) - np.maximum(at - half, 0) + 1

    counts = np.outer(inside(height), inside(width)).astype(np.float32)
    counts.flags.writeable = False
    return counts


def local_mean(values: torch.Tensor) -> torch.Tensor:
    """(H, W) averaged over AGREEMENT_WINDOW squares (shrunk at the edges): OpenCV's box sums
    over the frame (zeros beyond it) divided by how many of each square's pixels are in it (a
    tenth of the time of pooling at 1280x720, the same to 1e-5)."""
    import cv2

    side = AGREEMENT_WINDOW
    sums = cv2.boxFilter(
        np.ascontiguousarray(values.numpy(), dtype=np.float32),
        -1,
        (side, side),
        normalize=False,
        borderType=cv2.BORDER_CONSTANT,
    )
    return torch.from_numpy(np.divide(sums, window_counts(*values.shape), dtype=np.float32))


def mean_difference(first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    """(H, W) float32: the mean over the channels of |first - second|, uint8 (H, W, 3) frames
    (differences in 8 bits, summed by OpenCV: exact, and 14 ms -> 1 ms at 1280x720 against
    float planes)."""
    import cv2

    difference = cv2.absdiff(np.ascontiguousarray(first), np.ascontiguousarray(second))
    red, green, blue = cv2.split(difference)
    total = cv2.add(cv2.add(red, green, dtype=cv2.CV_32F), blue, dtype=cv2.CV_32F)
    return torch.from_numpy(np.divide(total, 3, dtype=np.float32))


def vector_lengths(flow: torch.Tensor) -> torch.Tensor:
    """(H, W) float32: the length of each vector of ``flow`` (H, W, 2) (OpenCV's magnitude: a
    tenth of torch's norm over the last axis)."""
    import cv2

    along_x, along_y = (np.ascontiguousarray(axis) for axis in flow.permute(2, 0, 1).numpy())
    return torch.from_numpy(cv2.magnitude(along_x, along_y))


def still_as_zero(flow: torch.Tensor, pixel: float = 1.0) -> torch.Tensor:
    """``flow`` (H, W, 2) with every vector shorter than STILL_BELOW pixels set to zero, and every
    one shorter than STILL_NEIGHBOURHOOD x STILL_BELOW among vectors shorter than STILL_BELOW on
    average (local_mean); ``pixel``: the size of the flow's pixels in the frame's."""
    length = vector_lengths(flow).mul_(pixel)
    around = local_mean(length)
    moves = (length >= STILL_BELOW) & (
        (around >= STILL_BELOW) | (length >= STILL_NEIGHBOURHOOD * STILL_BELOW)
    )
    return flow * moves[..., None]


@dataclass
class FramePair:
    """Two frames as float (3, H, W) in [0, 255]; the flows both ways, where each is occluded, and
    each pixel's weight when its flow is splatted (SPLAT_SHARPNESS), all (h, w) at the flows' size
    and in its pixels (flow_factor: (H, W) unless the frames are large); how much the two frames
    differ around each pixel (H, W), which the mix in ``at`` weighs the cross-fade by."""

    first: torch.Tensor
    second: torch.Tensor
    forward: torch.Tensor
    backward: torch.Tensor
    hidden_in_second: torch.Tensor
    hidden_in_first: torch.Tensor
    forward_weight: torch.Tensor
    backward_weight: torch.Tensor
    faded_error: torch.Tensor

    @classmethod
    def estimate(cls, first: np.ndarray, second: np.ndarray) -> FramePair:
        """The pair of uint8 (H, W, 3) frames, with its flows estimated."""
        factor = flow_factor(first.shape[0])
        near = shrink_by(first, factor), shrink_by(second, factor)
        found = [torch.from_numpy(flow) for flow in flows_both_ways(*near, finest=factor > 1)]
        pixel = first.shape[1] / near[0].shape[1]
        whole_first, whole_second = planes(first), planes(second)
        start, end = (
            (whole_first, whole_second) if factor == 1 else (planes(near[0]), planes(near[1]))
        )
        forward, backward = still_as_zero(found[0], pixel), still_as_zero(found[1], pixel)
        return cls(
            first=whole_first,
            second=whole_second,
            forward=forward,
            backward=backward,
            hidden_in_second=occlusion(found[0], found[1], pixel),  # on the flows as found
            hidden_in_first=occlusion(found[1], found[0], pixel),
            forward_weight=splat_weight(start, end, forward),
            backward_weight=splat_weight(end, start, backward),
            faded_error=local_mean(mean_difference(first, second)),
        )

    def flows_from(self, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(to_first, to_second), (h, w, 2): the flows from the frame at fraction ``s`` to each
        frame, splatted from both flows (SPLAT_SHARPNESS), Super SloMo's where nothing lands.

        A pixel moved forward by s * forward carries -s * forward to the first frame and
        (1 - s) * forward to the second; one moved back by (1 - s) * backward carries s *
        backward and -(1 - s) * backward. So each splat carries its flow alone, and where they
        land the weighted mean m of (backward - forward) gives both: s * m to the first frame,
        -(1 - s) * m to the second."""
        forward, backward = self.forward, self.backward
        ahead_sum, ahead_total = splat(
            forward.permute(2, 0, 1), s * forward, (1 - s) * self.forward_weight
        )
        behind_sum, behind_total = splat(
            backward.permute(2, 0, 1), (1 - s) * backward, s * self.backward_weight
        )
        total = ahead_total.add_(behind_total)
        landed = behind_sum.sub_(ahead_sum).div_(total.clamp_min(1e-6)).permute(1, 2, 0)
        some = (total > 1e-3)[..., None]
        to_first = -(1 - s) * s * forward + s * s * backward
        to_second = (1 - s) * (1 - s) * forward - s * (1 - s) * backward
        return (
            torch.where(some, s * landed, to_first),
            torch.where(some, -(1 - s) * landed, to_second),
        )

    def at(self, s: float) -> np.ndarray:
        """The uint8 (H, W, 3) frame at fraction ``s`` (0 < s < 1) of the way from first to second."""
        import cv2

        to_first, to_second = self.flows_from(s)
        # the first frame lacks what the second frame's source pixel shows if the first hides it
        trust_first = (1 - s) * (1 - warp(self.hidden_in_first[None], to_second)[0])
        trust_second = s * (1 - warp(self.hidden_in_second[None], to_first)[0])
        total = trust_first + trust_second
        share = torch.where(
            total < 1e-3, torch.full_like(total, 1 - s), trust_first / total.clamp_min(1e-3)
        )
        first, second = (
            np.ascontiguousarray(frame.permute(1, 2, 0).numpy())
            for frame in (self.first, self.second)
        )  # (H, W, 3): no copy, as planes() lays them out
        height, width = first.shape[:2]
        share_first = on_channels(enlarge(share.numpy(), height, width))
        from_first = moved_along(first, to_first)
        from_second = moved_along(second, to_second)
        # share * from_first + (1 - share) * from_second, then use_moved * moved + (1 -
        # use_moved) * faded, by OpenCV's elementwise calls on (H, W, 3) arrays, in place where
        # they can be: torch's products of a frame by a (H, W, 1) weight took 5.7 ms each at
        # 1280x720, OpenCV's 0.8
        moved = cv2.subtract(from_first, from_second, dst=from_first)  # the difference, for now
        moved_error = local_mean(channel_mean(np.abs(moved)))
        cv2.add(cv2.multiply(moved, share_first, dst=moved), from_second, dst=moved)
        del from_second
        faded = cv2.addWeighted(first, 1 - s, second, s, 0.0)
        faded_error = self.faded_error
        use_moved = faded_error / (moved_error + faded_error).clamp_min(1e-6)
        use_moved = torch.where(moved_error + faded_error < 1e-6, 0.5, use_moved)
        weight = on_channels(use_moved.numpy(), share_first)
        cv2.multiply(cv2.subtract(moved, faded, dst=moved), weight, dst=moved)
        frame = torch.from_numpy(cv2.add(moved, faded, dst=moved))
        return frame.round_().clamp_(0, 255).to(torch.uint8).numpy()
