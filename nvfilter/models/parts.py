"""A long video as consecutive parts, each its own network, read one part at a time.

A streamed encode (encode/parts.py) learns a video part by part: part k covers source frames
``first_k .. first_k + frames_k - 1`` and the next part starts on its last frame (neighbours share
their boundary frame, which both learn, so a join does not jump). ``PartsField`` plays such a
video: a read at source frame position p goes to the last part whose first frame is before p (a
boundary frame is played by both parts, their reads averaged), at its own position p - first. Parts are loaded on demand through ``load_part`` (the .nvw
reader hands one that reads that part's tensors from the file) and at most ``KEEP_PARTS`` are kept,
so memory stays flat for any length.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nvfilter.coords import frame_time
from nvfilter.models.field import VideoField

KEEP_PARTS = 2
"""Parts kept loaded: the one being read and its neighbour (frames between at a join read both)."""


@dataclass(frozen=True)
class PartSpan:
    """Where a part lies in the video and what network it is."""

    first: int
    """Source frame of its first frame."""
    frames: int
    architecture: dict[str, Any]


def longest_part(part_frames: int) -> int:
    """Frames in the longest part: ``part_frames`` and the next part's first, with a tail
    shorter than half a part joined to it."""
    return part_frames + 1 + part_frames // 2


def part_spans(frames: int, part_frames: int) -> list[tuple[int, int]]:
    """(first, count) of the parts a stream of ``frames`` frames is cut into: ``part_frames``
    apart, neighbours sharing their boundary frame, a last part shorter than half of
    ``part_frames`` joined to the one before (what the streamed reader does)."""
    if frames <= 1:
        return [(0, 1)]
    spans = []
    first = 0
    while True:
        left = frames - first
        if left <= longest_part(part_frames):
            spans.append((first, left))
            return spans
        spans.append((first, part_frames + 1))
        first += part_frames


class PartsField(VideoField):
    """Consecutive parts, each a VideoField of its own frames, loaded when read."""

    kind = "parts"

    def __init__(
        self, frames: int, spans: list[PartSpan], load_part: Callable[[int], VideoField]
    ) -> None:
        super().__init__()
        self.frames = frames
        self.spans = spans
        self.firsts = [span.first for span in spans]
        self.load_part = load_part
        self.loaded: OrderedDict[int, VideoField] = OrderedDict()
        self.device = torch.device("cpu")

    def to(self, device: Any) -> PartsField:  # type: ignore[override]
        """Parts are made on ``device`` when loaded (the ones loaded move there now)."""
        self.device = torch.device(device)
        for part in self.loaded.values():
            part.to(self.device)
        return self

    def part(self, k: int) -> VideoField:
        """Part k's network (loaded now unless it is one of the last KEEP_PARTS read)."""
        if k in self.loaded:
            self.loaded.move_to_end(k)
            return self.loaded[k]
        network = self.load_part(k).to(self.device).eval()
        self.loaded[k] = network
        while len(self.loaded) > KEEP_PARTS:
            self.loaded.popitem(last=False)
        return network

    def part_at(self, t: float) -> tuple[int, float]:
        """(part, its own normalised time) of a normalised time t of the video."""
        position = min(max((t + 1) * 0.5 * self.frames - 0.5, 0.0), self.frames - 1.0)
        k = max(0, bisect.bisect_left(self.firsts, position) - 1)
        span = self.spans[k]
        return k, frame_time(position - span.first, span.frames)

    def reads_at(self, t: float) -> list[tuple[int, float]]:
        """(part, its own normalised time) of each read a time t of the video averages: one, or
        at a join's shared frame both parts' (their two fits of that frame, averaged, split the
        step between the parts' fits into two halves, and are closer to the frame than either)."""
        position = (t + 1) * 0.5 * self.frames - 0.5
        nearest = round(position)
        following = bisect.bisect_left(self.firsts, nearest)
        if 0 < following < len(self.spans) and self.firsts[following] == nearest:
            if abs(position - nearest) < 1e-6:
                ending = self.spans[following - 1]
                return [
                    (following - 1, frame_time(ending.frames - 1, ending.frames)),
                    (following, frame_time(0, self.spans[following].frames)),
                ]
        return [self.part_at(t)]

    def render_rows(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> torch.Tensor:
        reads = [
            self.part(k).render_rows(local, width, height, row_start, row_stop)
            for k, local in self.reads_at(t)
        ]
        return reads[0] if len(reads) == 1 else (reads[0] + reads[1]) * 0.5

    def render_image(self, t: float, width: int, height: int) -> torch.Tensor | None:
        reads = [self.part(k).render_image(local, width, height) for k, local in self.reads_at(t)]
        if len(reads) == 1 or reads[0] is None or reads[1] is None:
            return reads[0]
        return (reads[0] + reads[1]) * 0.5

    def render_images(
        self, times: list[float], width: int, height: int
    ) -> list[torch.Tensor] | None:
        """Each part's frames read together, then averaged at a join as render_image does."""
        reads = [self.reads_at(t) for t in times]
        wanted: dict[int, list[float]] = {}  # part -> its own times, in order
        for read in reads:
            for k, local in read:
                wanted.setdefault(k, []).append(local)
        made: dict[tuple[int, float], torch.Tensor] = {}
        for k, locals_ in wanted.items():
            images = self.part(k).render_images(locals_, width, height)
            if images is None:
                return None
            made.update(zip(((k, local) for local in locals_), images, strict=True))
        pictures = [[made[k, local] for k, local in read] for read in reads]
        return [both[0] if len(both) == 1 else (both[0] + both[1]) * 0.5 for both in pictures]

    def pair_flows(self, first: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The motion between frames ``first`` and ``first + 1``, from the part that holds both
        (every part holds its last frame, which the next part starts on)."""
        k = max(0, bisect.bisect_right(self.firsts, first) - 1)
        return self.part(k).pair_flows(first - self.spans[k].first)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3) at points (B, 3), each read from the part its time falls in (both parts,
        averaged, at a join's shared frame)."""
        out = coords.new_zeros(coords.shape[0], 3)
        times = coords[:, 2]
        for time in times.unique().tolist():
            index = (times == time).nonzero().squeeze(1)
            reads = self.reads_at(time)
            for k, local in reads:
                points = coords[index].clone()
                points[:, 2] = local
                out[index] += self.part(k)(points) / len(reads)
        return out

    def forget_render_cache(self) -> None:
        for part in self.loaded.values():
            part.forget_render_cache()

    def architecture(self) -> dict[str, Any]:
        return {"type": self.kind, "frames": self.frames, "parts": len(self.spans)}
