"""When each learned frame is shown and where the shots change: a .nvw's timeline.

Times are in periods of the video's frame rate from its first frame (a constant-rate source's
frame k stands at k). A variable-rate source's frames keep their own presentation times; a
repeated frame left out (encode/shots.py) leaves the frames around it spread evenly over the
time they covered. A read at a time between two learned frames is made between them (the
decode's between rules), except across a cut, where it shows the nearer of the two: never a
mix of two shots. Files without a timeline (older ones, and sources with no cut, repeat or
varying rate) have their frames evenly spaced, as before.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
from dataclasses import dataclass
from typing import Any

MAX_TIMELINE_GAP = 1 << 16
"""The longest a timeline lets one frame stand, in frame periods (a lying file's guard)."""


@dataclass(frozen=True)
class Timeline:
    """Each learned frame's time, the shots' starts, and what the source's frames were."""

    times: tuple[float, ...]
    """Each learned frame's time in frame periods, rising, the first at 0."""
    played: int
    """Frames a play at the frame rate shows (the source's length at its rate)."""
    cuts: tuple[int, ...] = ()
    """The learned frames that start a new shot, rising (frame 0 is never one)."""
    variable: bool = False
    """Whether the source's frame rate varied (the times are its own timestamps)."""
    repeats: int = 0
    """Repeated source frames left out."""
    sources: tuple[int, ...] | None = None
    """The source frame (the reader's count, from 0) each learned frame is; None: frame k is
    the source's k. What `eval` scores each frame against."""

    def __post_init__(self) -> None:
        times = self.times
        if not times or times[0] != 0 or not all(math.isfinite(t) for t in times):
            raise ValueError("a timeline's times start at 0 and are finite")
        if any(b <= a or b - a > MAX_TIMELINE_GAP for a, b in zip(times, times[1:], strict=False)):
            raise ValueError("a timeline's times rise, by at most MAX_TIMELINE_GAP a frame")
        if not times[-1] < self.played <= math.floor(times[-1]) + MAX_TIMELINE_GAP:
            raise ValueError("a timeline plays past its last frame's time, not far past it")
        cuts = self.cuts
        if any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)) or (
            cuts and not 1 <= cuts[0] <= cuts[-1] < len(times)
        ):
            raise ValueError("a timeline's cuts are rising frames after the first")
        if self.repeats < 0:
            raise ValueError("a timeline's repeats are not negative")
        sources = self.sources
        if sources is not None and (
            len(sources) != len(times) or (sources and sources[0] < 0)
            or any(b <= a for a, b in zip(sources, sources[1:], strict=False))
        ):  # fmt: skip
            raise ValueError("a timeline's sources are one rising source frame a frame")

    def source_of(self, frame: int) -> int:
        """The source frame learned frame ``frame`` is."""
        return frame if self.sources is None else self.sources[frame]

    @property
    def frames(self) -> int:
        return len(self.times)

    @property
    def even(self) -> bool:
        """Whether it says nothing that evenly spaced frames do not (then it is not stored)."""
        return (
            not self.cuts and not self.variable and not self.repeats
            and self.played == self.frames and self._whole and self.sources is None
        )  # fmt: skip

    def position(self, time: float) -> float:
        """The learned-frame position (frame k plus the way to k + 1) shown at ``time`` (frame
        periods): held at the ends; across a cut, the nearer frame (at a tie the earlier: a
        shot lasts until the next one is seen)."""
        times = self.times
        if time <= 0:
            return 0.0
        k = bisect.bisect_right(times, time) - 1
        if k >= len(times) - 1:
            return float(len(times) - 1)
        way = (time - times[k]) / (times[k + 1] - times[k])
        if k + 1 in self._cut_set:
            return float(k + (way > 0.5))
        return k + way

    def far_pairs(self, periods: float) -> set[int]:
        """The pairs of neighbouring frames (by the first's index) at least ``periods`` apart."""
        times = self.times
        return {k for k in range(len(times) - 1) if times[k + 1] - times[k] >= periods}

    @property
    def _whole(self) -> bool:
        """Whether frame k stands at k (then the file stores no times: ``"times": null``)."""
        return all(t == k for k, t in enumerate(self.times))

    @functools.cached_property
    def _cut_set(self) -> frozenset[int]:
        return frozenset(self.cuts)

    def to_json(self) -> str:
        return json.dumps(
            {"times": None if self._whole else [round(t, 4) for t in self.times],
             "played": self.played,
             "cuts": list(self.cuts), "variable": self.variable, "repeats": self.repeats,
             "sources": None if self.sources is None else list(self.sources)},
            separators=(",", ":"),
        )  # fmt: skip

    @staticmethod
    def from_json(text: str, frames: int) -> Timeline:
        """The timeline a file stores for its ``frames`` learned frames; ValueError if it is
        malformed or of another length."""
        data: Any = json.loads(text)
        if not isinstance(data, dict) or set(data) != {"times", "played", "cuts", "variable",
                                                       "repeats", "sources"}:  # fmt: skip
            raise ValueError("not a timeline")
        sources = data["sources"]
        if sources is not None and not (
            isinstance(sources, list) and all(type(k) is int for k in sources)
        ):
            raise ValueError("a timeline's sources are whole numbers")
        times, cuts = data["times"], data["cuts"]
        if times is None:  # frame k at k
            times = list(range(frames))
        if not (isinstance(times, list) and isinstance(cuts, list) and len(times) == frames):
            raise ValueError(f"a timeline of {frames} frames holds {frames} times")
        if not all(type(t) in (int, float) for t in times) or not all(type(c) is int for c in cuts):
            raise ValueError("a timeline's times are numbers and its cuts whole numbers")
        if type(data["played"]) is not int or type(data["repeats"]) is not int:
            raise ValueError("a timeline's played and repeats are whole numbers")
        if type(data["variable"]) is not bool:
            raise ValueError("a timeline's variable is true or false")
        return Timeline(tuple(float(t) for t in times), data["played"], tuple(cuts),
                        data["variable"], data["repeats"],
                        None if sources is None else tuple(sources))  # fmt: skip


def evenly(frames: int) -> Timeline:
    """The timeline of ``frames`` evenly spaced frames (a file that stores none)."""
    return Timeline(tuple(float(k) for k in range(frames)), frames)
