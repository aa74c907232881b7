"""Progress and messages on stderr, like ffmpeg: a one-line bar that rewrites itself on a terminal."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import TextIO


@dataclass(frozen=True)
class Progress:
    """One report from the loop, for a progress bar."""

    step: int
    total_steps: int
    loss: float
    psnr: float
    """Running PSNR estimate in dB from recent batches."""
    elapsed: float
    time_budget: float | None
    lr: float = 0.0
    """Learning rate of the first parameter group now (the hybrid's planes, at 10x its head's)."""
    started: float = 0.0
    """Seconds of ``elapsed`` spent before the first step (the model's start from the frames)."""


def human_bytes(count: float) -> str:
    """A byte count as 12 B, 3.4 KB, 5.6 MB or 7.8 GB (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def rate_text(rate: Fraction) -> str:
    """A frame rate as 25, or 29.970 (30000/1001)."""
    return f"{rate.numerator}" if rate.denominator == 1 else f"{float(rate):.3f} ({rate})"


def clock(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Console:
    """Messages and progress to stderr; quiet keeps only errors (printed by the CLI)."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._open_line = False
        self._last_plain = time.monotonic()

    def message(self, text: str) -> None:
        if self.quiet:
            return
        self._end_line()
        print(text, file=self.stream, flush=True)

    def status(self, text: str) -> None:
        """A progress line: rewritten in place on a terminal, every 10 s as a line otherwise."""
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r" + text + "\033[K")
            self.stream.flush()
            self._open_line = True
        elif time.monotonic() - self._last_plain >= 10:
            self._last_plain = time.monotonic()
            print(text, file=self.stream, flush=True)

    def training(self, p: Progress) -> None:
        """Step, loss, PSNR and ETA (whichever of the step count and time budget ends first)."""
        stepping = p.elapsed - p.started
        rate = p.step / stepping if stepping > 0 else 0.0
        eta = (p.total_steps - p.step) / rate if rate > 0 else float("inf")
        if p.time_budget is not None:
            eta = min(eta, max(0.0, p.time_budget - p.elapsed))
        eta_text = clock(eta) if eta != float("inf") else "?"
        total = f"/{p.total_steps}" if p.total_steps < 10**6 else ""
        self.status(
            f"step {p.step}{total}  loss {p.loss:.3e}  PSNR {p.psnr:5.2f} dB  "
            f"{rate:.1f} steps/s  elapsed {clock(p.elapsed)}  ETA {eta_text}"
        )

    def _end_line(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False

    def done(self) -> None:
        self._end_line()
