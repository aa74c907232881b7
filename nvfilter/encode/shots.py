"""Cuts and repeated frames found in the frames as they stream in, and the timeline they make.

Both are read off how much each frame differs from the one before (the mean absolute difference
of small grey thumbnails, on the 0-255 scale). A cut is a frame that differs from the one
before by at least CUT_LEAST and several times (``--cut-threshold``) more than the frames
around it do from theirs: a fast pan changes every frame a lot (no cut), a flash changes two
frames in a row (no cut), a dissolve a little each frame (no cut). A repeat is a frame hardly
different from the one before (at most REPEAT_MOST) while both its neighbours move several
times more, and visibly: the frame a rate conversion or telecine doubled. It is left out (unless
``--keep-repeats``), and the frames around it are given times spread evenly over what they
covered, so that the motion reads across it evenly. A still scene's frames are alike in a row:
none of them is a repeat. BENCHMARKS.md, "Cuts, repeats and variable rates", measured these.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from nvfilter.config import EncodeOptions
from nvfilter.timeline import Timeline

THUMB_WIDTH = 64
"""Width of the grey thumbnails frames are compared by."""
CUT_LEAST = 12.0
"""A cut changes the thumbnail by at least this much (within a shot, 1.8 on a typical frame of
tour.mp4 and 37 at its fastest turn; across two clips' shots, 30 to 92)."""
CUT_THRESHOLD = EncodeOptions.cut_threshold
"""The default --cut-threshold."""
REPEAT_MOST = 0.5
"""A repeat changes its thumbnail by at most this much ..."""
REPEAT_STILLER = 4.0
"""... and this many times less than both its neighbours change theirs ..."""
REPEAT_AROUND_LEAST = 0.2
"""... which change theirs by at least this much (the thumbnail's noise) ..."""
REPEAT_STILL_SHARE = 0.5
"""... among frames of which less than this share are still (as still against the motion around
as a repeat): a repeat
stands out in motion, while a still scene with a counter ticking now and then has frames alike
and frames a little off, none of them repeated (a 20-to-30 conversion: a third still)."""
REPEAT_LOOKS_BACK = 8
"""The frames before a repeat that REPEAT_STILL_SHARE counts."""
RETIME_REACH = 3
"""Frames each side whose times a left-out repeat evens out (a line fitted through them)."""


class ShotFinder:
    """Streams a source's frames through, leaving out repeats, and builds their Timeline.

    ``times``: each incoming frame's time in frame periods (a variable-rate source's own), or
    None: frame k at k. ``cut_threshold`` None finds no cuts.
    """

    def __init__(self, times: Sequence[float] | None = None, cut_threshold: float | None = CUT_THRESHOLD,
                 keep_repeats: bool = False) -> None:  # fmt: skip
        self.source_times = times
        self.cut_threshold = cut_threshold
        self.keep_repeats = keep_repeats
        self.kept_times: list[float] = []
        self.kept_sources: list[int] = []
        self.cuts: list[int] = []
        self.dropped_after: list[int] = []
        """For each left-out repeat, the kept frame it repeated."""
        self.incoming = 0

    def frames(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The frames to learn: every incoming one but the repeats left out (one frame late:
        a frame's fate waits on how the next differs)."""
        changes: list[float] = []  # each incoming frame's change from the one before
        previous: np.ndarray | None = None
        held: np.ndarray | None = None  # the last frame, its fate waiting on the next
        looks = self.cut_threshold is not None or not self.keep_repeats
        for index, frame in enumerate(frames):
            if looks:  # else every frame is kept as it is: no thumbnail to make
                thumb = _thumbnail(frame)
                changes.append(0.0 if previous is None else float(np.abs(thumb - previous).mean()))
                previous = thumb
            else:
                changes.append(0.0)
            if held is not None and self._keeps(index - 1, changes):
                yield held
            held = frame
            self.incoming = index + 1
        if held is not None and self._keeps(self.incoming - 1, changes + [np.inf]):
            yield held

    def _keeps(self, index: int, changes: list[float]) -> bool:
        """Whether incoming frame ``index`` is learned (its change and the next one's known);
        notes its time, and a cut where it starts a shot."""
        change = changes[index]
        before = changes[index - 1] if index >= 2 else np.inf  # the first frame has no change
        after = changes[index + 1]
        if index >= 1 and not self.keep_repeats and self.kept_times:
            around = min(before, after)
            earlier = changes[max(1, index - REPEAT_LOOKS_BACK) : index]
            still = sum(c * REPEAT_STILLER <= around for c in earlier) / max(1, len(earlier))
            if (change <= REPEAT_MOST and still < REPEAT_STILL_SHARE
                    and around >= max(REPEAT_STILLER * change, REPEAT_AROUND_LEAST)):  # fmt: skip
                self.dropped_after.append(len(self.kept_times) - 1)
                return False
        if self._is_cut(index, changes):
            self.cuts.append(len(self.kept_times))
        self.kept_times.append(self._time(index))
        self.kept_sources.append(index)
        return True

    def _is_cut(self, index: int, changes: list[float]) -> bool:
        """Whether incoming frame ``index`` starts a new shot (the module's rule), each change
        taken per frame period: a variable rate's long gap moves more, and is no cut for it."""
        if index < 1 or self.cut_threshold is None or changes[index] < CUT_LEAST:
            return False

        def per_period(k: int) -> float:
            return changes[k] / self._gap(k)

        before = [per_period(k) for k in range(max(1, index - 4), index)]
        after = per_period(index + 1) if np.isfinite(changes[index + 1]) else 0.0
        usual = max(float(np.median(before)) if before else 0.0, after, 1.0)
        return per_period(index) >= self.cut_threshold * usual

    def _gap(self, index: int) -> float:
        """Frame periods between incoming frames ``index - 1`` and ``index`` (1 at a constant
        rate)."""
        return max(self._time(index) - self._time(index - 1), 1e-3) if index >= 1 else 1.0

    def _time(self, index: int) -> float:
        """Incoming frame ``index``'s time (past the source's times, where the stream gave more
        frames than it listed, a period a frame after the last)."""
        times = self.source_times
        if times is None:
            return float(index)
        return float(times[index]) if index < len(times) else times[-1] + index - len(times) + 1

    def timeline(self) -> Timeline | None:
        """What the frames streamed so far make (None where it says nothing that evenly spaced
        frames do not: the file then stores none, as before)."""
        if not self.kept_times:
            return None
        evened = _evened(self.kept_times, self.dropped_after, self.cuts)
        first = evened[0]
        times = [t - first for t in evened]
        last_source = self._time(self.incoming - 1) - self.kept_times[0]
        played = max(round(last_source) + 1, int(times[-1]) + 1)
        every = len(self.kept_sources) == self.incoming
        timeline = Timeline(tuple(times), played, tuple(self.cuts),
                            variable=self.source_times is not None,
                            repeats=len(self.dropped_after),
                            sources=None if every else tuple(self.kept_sources))  # fmt: skip
        return None if timeline.even else timeline


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    """A small grey picture of an RGB frame (height, width, 3), float32."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height = max(1, round(THUMB_WIDTH * frame.shape[0] / frame.shape[1]))
    return cv2.resize(grey, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def _evened(times: list[float], dropped_after: list[int], cuts: list[int]) -> list[float]:
    """``times`` with the frames around left-out repeats put on lines: each stretch of a shot
    within RETIME_REACH frames of a repeat (stretches that touch are one) on the line fitted
    through its frames' times, so that they stand evenly (a whole clip of a rate conversion on
    one line); still rising. Frame 0 may move too (the caller starts the times at it)."""
    if not dropped_after:
        return list(times)
    evened = np.array(times, dtype=np.float64)
    bounds = [0, *cuts, len(times)]
    near = sorted({k for d in dropped_after for k in range(d - RETIME_REACH + 1,
                                                           d + RETIME_REACH + 1)
                   if 0 <= k < len(times)})  # fmt: skip
    stretches: list[list[int]] = []
    for k in near:
        same_shot = stretches and bisect.bisect_right(bounds, k) == bisect.bisect_right(
            bounds, stretches[-1][-1]
        )
        if same_shot and k == stretches[-1][-1] + 1:
            stretches[-1].append(k)
        else:
            stretches.append([k])
    for stretch in stretches:
        if len(stretch) >= 3:
            slope, offset = np.polyfit(stretch, evened[stretch], 1)
            evened[stretch] = slope * np.array(stretch) + offset
    for k in range(1, len(evened)):  # still rising, each frame after the last
        evened[k] = max(evened[k], evened[k - 1] + 1e-3)
    return [float(t) for t in evened]
