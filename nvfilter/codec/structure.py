"""The order a part's frames are coded in and what each is predicted from.

A part starts with an intra frame (level 0). Every ``gop``-th frame after it (an anchor, level 1)
is predicted from the anchor before it; the frames between two anchors are predicted from both
sides, the middle one first (level 2), then the middles of each half (level 3), and so on: the
hierarchical B-frames of H.264 and HEVC's random-access configuration. A part's last frame is
always an anchor, so no frame is predicted from beyond the part.

A frame that starts a new shot inside the part (a cut: encode/shots.py) is an anchor coded
intra, as a part's first frame is: nothing is predicted across the cut, either way.

Every two neighbouring frames end up with one of them predicted directly from the other (a
middle always takes the ends of its interval as references, and intervals are split until
neighbours are ends): the motion between any two neighbours is in the file, which is what
reads between frames move along; the one exception is the pair across a cut (pair_source).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass

INTRA, ANCHOR = 0, 1
"""Levels: the intra frame, the anchors; the frames between anchors are 2 and up."""
DEFAULT_GOP = 8
"""Frames from one anchor to the next (BENCHMARKS.md, codec: 4, 8 and 16 within 2%)."""
MAX_GOP = 64


@dataclass(frozen=True)
class CodedFrame:
    """A frame of a part as the coder sees it."""

    index: int
    """Its place in the part (0 ..)."""
    references: tuple[int, ...]
    """The frames it is predicted from: none (intra), one (an anchor) or two (before, after)."""
    level: int


def regular_groups(frames: int, gop: int = DEFAULT_GOP) -> list[int]:
    """Groups of ``gop`` frames (the last shorter) covering frames 1 .. frames - 1."""
    if frames < 1 or not 1 <= gop <= MAX_GOP:
        raise ValueError(f"a part of {frames} frames with anchors every {gop}")
    whole, rest = divmod(frames - 1, gop)
    return [gop] * whole + ([rest] if rest else [])


def coding_order(frames: int, groups: list[int], starts: Collection[int] = ()) -> list[CodedFrame]:
    """Every frame of a part of ``frames`` frames, in the order they are coded (and decoded):
    after the intra frame, each group of ``groups[k]`` frames (their sum is ``frames - 1``)
    ends on an anchor predicted from the anchor before (coded intra where it is one of
    ``starts``, the frames that start a new shot), with the frames between coded as
    hierarchical B-frames."""
    if frames < 1 or sum(groups) != frames - 1 or not all(1 <= g <= MAX_GOP for g in groups):
        raise ValueError(f"groups {groups[:8]}... do not cover a part of {frames} frames")
    anchors = set(itertools.accumulate(groups))
    if not set(starts) <= anchors:
        raise ValueError(f"a new shot at frames {sorted(set(starts) - anchors)[:8]} is no anchor")
    order = [CodedFrame(0, (), INTRA)]

    def between(first: int, last: int, level: int) -> None:
        if last - first < 2:
            return
        middle = (first + last) // 2
        order.append(CodedFrame(middle, (first, last), level))
        between(first, middle, level + 1)
        between(middle, last, level + 1)

    first = 0
    for size in groups:
        last = first + size
        order.append(
            CodedFrame(last, (), INTRA) if last in starts else CodedFrame(last, (first,), ANCHOR)
        )
        between(first, last, ANCHOR + 1)
        first = last
    return order


def last_use(order: list[CodedFrame]) -> dict[int, int]:
    """For each frame used as a reference, the position in ``order`` of the last frame that
    uses it (after which it can be let go)."""
    last: dict[int, int] = {}
    for position, frame in enumerate(order):
        for reference in frame.references:
            last[reference] = position
    return last


def pair_source(order: list[CodedFrame], first: int) -> tuple[int, int] | None:
    """(the frame, its reference) that holds the motion between frames ``first`` and ``first +
    1``: one of the two is predicted from the other; None across a cut (the second frame starts
    a new shot, coded intra), where there is no motion to hold."""
    for frame in order:
        if frame.index in (first, first + 1) and (2 * first + 1 - frame.index) in frame.references:
            return frame.index, 2 * first + 1 - frame.index
    if any(frame.index == first + 1 and not frame.references for frame in order):
        return None
    raise ValueError(f"no motion between frames {first} and {first + 1}")
