"""The optical flow between two learned frames, searched: OpenCV's DIS (dense inverse search,
Kroeger et al. 2016), started again where it needs it from an exhaustive block search
(nvfilter/fast_motion.py: motion too fast for DIS), for the frames between them
(nvfilter/inbetween.py moves and blends).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import cv2
import numpy as np

from nvfilter import inbetween
from nvfilter.fast_motion import SEARCH_BLOCK, block_search, searched_start, shrink
from nvfilter.inbetween import shrink_by

FLOW_MIN_HEIGHT = 256
"""Frames shorter than this are enlarged (bicubic) to at least this height for the flow search:
DIS's 8-pixel patches are coarse on small frames. Frames at least twice as tall are halved
(area average), and the flows are found, checked and moved to the in-between time at half size,
then enlarged (bilinear) to move the full frames (flow_factor): DIS's medium preset stops at half
the frame's size anyway, and the rest of the work on the flows costs a quarter
(bench/motion_proxy.py; BENCHMARKS-history.md)."""


FINEST_REFINEMENT_ITERATIONS = 2
"""DIS's variational refinement iterations on frames shrunk for their flows (the medium preset's 5
elsewhere): the refinement is 40% of a DIS run at 640x360, and 2 iterations make the run 1.2x
faster with in-between frames as good (BENCHMARKS-history.md, fifth session)."""


def gray(frame: np.ndarray) -> np.ndarray:
    """float32 (H, W) luma of a uint8 RGB (H, W, 3) frame."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)


def flow_factor(height: int) -> int:
    """The factor frames ``height`` rows tall are shrunk by for their flows (FLOW_MIN_HEIGHT): 2
    from twice FLOW_MIN_HEIGHT rows, else 1."""
    return 2 if height >= 2 * FLOW_MIN_HEIGHT else 1


_searches = threading.local()
"""Each thread's DIS searches (dis_search)."""


def dis_search(own_pixels: bool, finest: bool, started: bool) -> Any:
    """This thread's DIS search (the medium preset) for these settings, made once: a new one
    costs a fifth of a 640x360 run in its buffers (126 -> 104 ms a run, reused). ``own_pixels``:
    refine down to the frames' own pixels (finest scale 0); ``finest``: with
    FINEST_REFINEMENT_ITERATIONS; ``started``: for runs given a start. A search that has refined
    a start answers a later run without one differently from a new one (and crashes OpenCV
    4.x where that run is at another size), so those have their own; kept apart, every run
    gives what a new search gives, to the bit, whatever sizes came before (checked on 22 pairs,
    and on 30 of three clips' sizes in turn)."""
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
    small = shrink(gray(first)), shrink(gray(second))
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


class FramePair(inbetween.FramePair):
    """inbetween.FramePair with its flows searched on the two frames."""

    @classmethod
    def estimate(cls, first: np.ndarray, second: np.ndarray) -> inbetween.FramePair:
        """The pair of uint8 (H, W, 3) frames, with its flows estimated (at half their size
        from twice FLOW_MIN_HEIGHT rows, flow_factor)."""
        factor = flow_factor(first.shape[0])
        near = shrink_by(first, factor), shrink_by(second, factor)
        forward, backward = flows_both_ways(*near, finest=factor > 1)
        return cls.from_flows(first, second, forward, backward)
