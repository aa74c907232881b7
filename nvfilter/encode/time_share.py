"""--time-budget shared among the parts of a streamed encode, on the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class BudgetShare:
    """--time-budget shared among parts by frame count, on the wall clock: a part gets what is
    left of the budget (x the workers, which train at once) times its share of the frames left.
    What is left counts everything since the encode began, not only training: reading and
    starting the parts, writing them, so the run ends near its budget; time a part does not
    use goes to the rest."""

    def __init__(
        self,
        budget: float | None,
        workers: int,
        frames: int | None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.capacity = None if budget is None else budget * workers
        self.workers = workers
        self.frames_left = frames
        self.clock = clock
        self.began = clock()
        self.earlier = 0.0
        """Seconds of the parts an earlier run finished (a resumed encode keeps them)."""
        self.in_flight: dict[int, tuple[float, float]] = {}
        """part -> (seconds given, when), for parts training now."""

    def give(self, part: int, frames: int) -> float | None:
        share = None
        if self.capacity is not None:
            now = self.clock()
            spent = self.earlier + self.workers * (now - self.began)
            pending = sum(max(0.0, given - (now - when)) for given, when in self.in_flight.values())
            left = max(0.0, self.capacity - spent - pending)
            share = left * frames / max(self.frames_left or frames, frames)
            self.in_flight[part] = (share, now)
        if self.frames_left is not None:
            self.frames_left = max(0, self.frames_left - (frames - 1))
        return share

    def took(self, part: int) -> None:
        """Part ``part`` has finished (its time is in the wall clock)."""
        self.in_flight.pop(part, None)

    def kept(self, frames: int, seconds: float) -> None:
        """A part an earlier run finished, which took ``seconds``."""
        self.earlier += seconds
        if self.frames_left is not None:
            self.frames_left = max(0, self.frames_left - (frames - 1))
