"""What a part is coded for, and the quantiser that steers it there frame group by frame group.

A part is coded at a fixed quantiser parameter, or for a PSNR (the quantiser moves so that the
frames coded so far, pooled, sit at the target), or for a bit budget per frame (the same, on
the bits), or for a PSNR with the budget as a ceiling (the default: encode.py's). The quantiser
moves by at most a few steps a group, since each group's error and size answer it only roughly
(a step of the quantiser is about DB_PER_QP dB and 12% of the bits, BENCHMARKS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nvfilter.codec.transform import QP_MAX

DB_PER_QP = 0.6
"""About how many dB one step of the quantiser parameter moves the PSNR (0.57 to 0.73 on the
three benchmark clips)."""
QP_AT_45_DB = 28
"""About the quantiser that gives 45 dB (27 to 29 on the benchmark clips): where a PSNR target
starts."""
QP_FOR_BUDGET = 32
"""Where a bit budget without a PSNR starts."""
MOST_A_GROUP = 3


@dataclass(frozen=True)
class Target:
    """What a part is coded for: a quantiser, or a PSNR, or bits per frame, or a PSNR within
    bits per frame."""

    qp: int | None = None
    psnr: float | None = None
    bits_per_frame: float | None = None
    """Aimed at when there is no PSNR; with one, a ceiling (the PSNR is given up to stay
    under it)."""

    def first_qp(self) -> int:
        if self.qp is not None:
            return self.qp
        if self.psnr is not None:
            return _clamp(round(QP_AT_45_DB + (45.0 - self.psnr) / DB_PER_QP))
        return QP_FOR_BUDGET


def _clamp(qp: float) -> int:
    return int(min(QP_MAX, max(0, qp)))


@dataclass(frozen=True)
class Coded:
    """What the frames coded so far came to: all of them, and the last group at the
    quantiser now in use."""

    frames: int
    bits: float
    squared: float
    """Summed squared 8-bit error of their RGB."""
    recent_frames: int
    recent_bits: float
    recent_squared: float
    samples_per_frame: int
    """Pixel values a frame has (width x height x 3)."""


def next_qp(target: Target, qp: int, coded: Coded, frames: int) -> int:
    """The quantiser for the next group of a part of ``frames`` frames. For a PSNR: where the
    last group's PSNR at this quantiser says the rest of the frames must go for the part's
    pooled error to meet the target. For bits: where the last group's bits a frame say the rest
    must go to spend what is left of the part's budget (the intra frame's bits, spent at the
    start, are then shared out over the rest). Both: the coarser of the two, while over the
    budget."""
    if target.qp is not None or coded.recent_frames == 0:
        return qp
    left = max(1, frames - coded.frames)
    step = 0.0
    if target.psnr is not None:
        allowed = frames * coded.samples_per_frame * 255.0**2 * 10 ** (-target.psnr / 10)
        room = max(allowed - coded.squared, 0.05 * allowed) / left  # each frame left may have
        recent = max(coded.recent_squared / coded.recent_frames, 1e-9)
        step = 10 * math.log10(room / recent) / DB_PER_QP  # > 0: room to spare, coarser
    if target.bits_per_frame is not None:
        budget = target.bits_per_frame * frames
        room = max(budget - coded.bits, 0.05 * budget) / left
        recent = max(coded.recent_bits / coded.recent_frames, 1.0)
        by_bits = 6 * math.log2(recent / room)  # > 0: spending too fast, coarser
        step = by_bits if target.psnr is None else max(step, by_bits)
    step = max(-MOST_A_GROUP, min(MOST_A_GROUP, step))
    return _clamp(qp + round(step))


def retry_qp(target: Target, qp: int, bits: float, frames: int) -> int | None:
    """A quantiser to code the part again with when its bits went over the budget's ceiling
    (None: they did not): enough steps up for the excess, at least one."""
    if target.bits_per_frame is None or bits <= target.bits_per_frame * frames or qp >= QP_MAX:
        return None
    over = math.log2(bits / (target.bits_per_frame * frames))
    return _clamp(qp + max(1, math.ceil(6 * over)))
