"""The error of the frames parts share, as decode plays them (the two parts' pictures averaged)."""

from __future__ import annotations

import numpy as np
import torch

from nvfilter import metrics
from nvfilter.models.reads import to_uint8


class JoinScores:
    """The 8-bit error of the frames the parts share, as decode plays them: a join's shared
    frame is the average of the two parts' pictures of it, the video's last frame the last
    part's own. Parts may finish in any order; a join is scored once both sides are in."""

    def __init__(self) -> None:
        self.squared = 0.0
        self.pixels = 0
        self.sources: dict[int, np.ndarray] = {}
        """part -> the source's uint8 picture of its last frame, until scored."""
        self.firsts: dict[int, np.ndarray] = {}
        self.lasts: dict[int, np.ndarray] = {}

    def source(self, k: int, frame: np.ndarray) -> None:
        self.sources[k] = frame

    def edges(self, k: int, first: np.ndarray | None, last: np.ndarray) -> None:
        """Part k's pictures of its first (after part 0) and last frames."""
        if first is not None:
            self.firsts[k] = first
        self.lasts[k] = last
        for join in (k - 1, k):
            if join in self.lasts and join + 1 in self.firsts and join in self.sources:
                shared = (self.lasts.pop(join) + self.firsts.pop(join + 1)) * 0.5
                self.score(shared, self.sources.pop(join))

    def close(self) -> None:
        """The end of the stream: the last part's last frame is its own picture."""
        if self.lasts:
            last = max(self.lasts)
            if last in self.sources:
                self.score(self.lasts.pop(last), self.sources.pop(last))

    def score(self, picture: np.ndarray, source: np.ndarray) -> None:
        decoded = to_uint8(torch.tensor(picture))
        self.squared += metrics.mse(decoded, torch.from_numpy(source)) / 255.0**2 * picture.size
        self.pixels += picture.size
