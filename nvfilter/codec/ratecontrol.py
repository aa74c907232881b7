"""What a part is coded for, and the quantiser that steers it there frame group by frame group.

A part is coded at a fixed quantiser parameter, or for a PSNR (the quantiser moves so that the
frames coded so far, pooled, sit at the target), or for a bit budget per frame, or for a PSNR
with the budget as a ceiling (the default: encode/budget.py). A budget is shared out by how
hard each frame is to predict (``complexities``: its motion-compensated difference from the
frame before, on the frames shrunk), so that the quantiser stays about the same over the part
where the hard frames come late: a model bits = A x complexity x 2^(-qp / QP_PER_HALVING),
its A fitted to the frames coded so far, gives the quantiser that spends what is left. The
part starts where its first frames, coded once at a guess, say the target is met (probe_qp),
and the quantiser moves by at most a few steps every STEER_EVERY frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nvfilter.codec.transform import QP_MAX

DB_PER_QP = 0.6
"""About how many dB one step of the quantiser parameter moves the PSNR (0.57 to 0.73 on the
three benchmark clips)."""
QP_AT_45_DB = 28
"""About the quantiser that gives 45 dB (27 to 29 on the benchmark clips): where a PSNR target
starts."""
QP_FOR_BUDGET = 32
"""Where a bit budget without a PSNR starts."""
MOST_A_STEP = (-1, 3)
"""How far the quantiser moves at a step of the control (every STEER_EVERY frames), finer and
coarser: it backs off a budget overrun at once and spends what is left slowly, so a part ends
near its budget rather than past it; the part starts where a probe says (probe_qp)."""
ERROR_PER_COMPLEXITY = 0.5
"""A frame's squared error at one quantiser grows as about this power of its complexity: where
the coming frames are harder than the recent ones the control expects their error at the
recent one's times the complexities' ratio to this power, so it turns finer before the hard
frames rather than after (tour.mp4; BENCHMARKS.md, codec). Where they are easier it expects
no less: the error did not fall with it there."""
STEER_EVERY = 8
"""Frames between two steps of the control (a group, or as many single steps): a lone frame's
bits and error say too little to move on."""
AIM = 0.97
"""The share of a budget the control aims at..."""
SLACK = 0.01
"""...and how far past it a part may end before it is coded again (the default budget keeps
this much in hand: encode/budget.ALLOWANCE_SHARE)."""
PAST_AIM = 0.5
NO_ROOM = 0.001
"""Near the aim and past it (at these values, from 94% of the whole budget on, where this share
of what is left of the whole budget is more than what is left to the aim), the bits control
takes that share as left (never less than NO_ROOM of the budget, a floor for the logarithm):
it spends on towards the budget ever more slowly rather than stop short or run past it (a
floor of 5% of the budget took tour.mp4's default part, whose last frames are easy, 1% past
it, and coding it again at a fixed coarser quantiser left it at 0.91; no room past the aim, at
0.95)."""
QP_PER_HALVING = 6.0
"""Quantiser steps that halve a frame's bits, about (H.264's scale; the fitted A absorbs the
rest)."""
SHRINK = 4
STILL = 0.5
SMALLEST = 16
"""A frame's complexity is its mean absolute difference (grey levels) from the frame before
moved along DIS flow, on frames shrunk SHRINK times (no side below SMALLEST: OpenCV's DIS needs
12), plus STILL (a still frame's noise)."""


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
    spent_units: float = 0.0
    """Over the predicted frames coded: complexity x 2^(-base qp / QP_PER_HALVING), summed."""
    spent_bits: float = 0.0
    """...and their bits: their ratio is the model's A."""
    left_complexity: float = 0.0
    """The complexities of the frames left, summed."""
    recent_complexity: float = 0.0
    """The recent frames' mean complexity..."""
    coming_complexity: float = 0.0
    """...and the next STEER_EVERY frames' (0: not known)."""


def next_qp(target: Target, qp: int, coded: Coded, frames: int) -> int:
    """The quantiser for the next frames of a part of ``frames`` frames. For a PSNR: where the
    error of the frames since the last step (raised where the coming frames are harder:
    ERROR_PER_COMPLEXITY) says the rest must go for the part's pooled error to meet the target.
    For bits: where the complexity model (else those frames' bits) says the rest must go to
    spend what is left of the part's budget (the intra frame's bits, spent at the start, are
    then shared out over the rest). Both: the coarser of the two, while over the budget."""
    if target.qp is not None or coded.recent_frames == 0:
        return qp
    left = max(1, frames - coded.frames)
    step = 0.0
    if target.psnr is not None:
        allowed = frames * coded.samples_per_frame * 255.0**2 * 10 ** (-target.psnr / 10)
        room = max(allowed - coded.squared, 0.05 * allowed) / left  # each frame left may have
        recent = max(coded.recent_squared / coded.recent_frames, 1e-9)
        if coded.recent_complexity > 0 and coded.coming_complexity > 0:
            harder = max(1.0, coded.coming_complexity / coded.recent_complexity)
            recent *= harder**ERROR_PER_COMPLEXITY
        step = 10 * math.log10(room / recent) / DB_PER_QP  # > 0: room to spare, coarser
    if target.bits_per_frame is not None:
        budget = AIM * target.bits_per_frame * frames
        whole = target.bits_per_frame * frames
        room = max(budget - coded.bits, PAST_AIM * (whole - coded.bits), NO_ROOM * budget)
        if coded.spent_units > 0 and coded.left_complexity > 0:
            scale = coded.spent_bits / coded.spent_units  # the model's A
            wanted = QP_PER_HALVING * math.log2(scale * coded.left_complexity / room)
            by_bits = wanted - qp  # > 0: at this quantiser the rest would spend too much
        else:
            recent = max(coded.recent_bits / coded.recent_frames, 1.0)
            by_bits = QP_PER_HALVING * math.log2(recent * left / room)
        step = by_bits if target.psnr is None else max(step, by_bits)
    finer, coarser = MOST_A_STEP
    step = max(finer, min(coarser, step))
    return _clamp(qp + round(step))


def probe_qp(
    target: Target, qp: int, intra_bits: float, predicted_bits: list[float], squared: float,
    samples_per_frame: int, complexity: np.ndarray,
) -> int:  # fmt: skip
    """The quantiser a part starts at, from its intra frame and the next few frames coded at
    ``qp`` (``intra_bits``; ``predicted_bits``, each of the others'; ``squared``, the summed
    error of all of them): for a PSNR, where DB_PER_QP says the probe's error meets it; for
    bits, where the bits model (QP_PER_HALVING; the predicted frames' bits a unit of
    ``complexity``, each frame of the part's, times the part's) spends the budget; both, the
    coarser."""
    wanted = []
    if target.psnr is not None:
        mse = max(squared / ((1 + len(predicted_bits)) * samples_per_frame), 1e-9)
        allowed = 255.0**2 * 10 ** (-target.psnr / 10)
        wanted.append(qp + 10 * math.log10(allowed / mse) / DB_PER_QP)
    if target.bits_per_frame is not None and predicted_bits:
        probed = float(complexity[1 : 1 + len(predicted_bits)].sum())
        total = intra_bits + sum(predicted_bits) / probed * float(complexity[1:].sum())
        budget = AIM * target.bits_per_frame * len(complexity)
        wanted.append(qp + QP_PER_HALVING * math.log2(total / budget))
    return _clamp(round(max(wanted))) if wanted else qp


def retry_qp(target: Target, qp: int, bits: float, frames: int) -> int | None:
    """A quantiser to code the part again with when its bits went over the budget's ceiling
    (None: they did not): enough steps up for the excess, at least one."""
    ceiling = (1 + SLACK) * target.bits_per_frame * frames if target.bits_per_frame else 0.0
    if target.bits_per_frame is None or bits <= ceiling or qp >= QP_MAX:
        return None
    over = math.log2(bits / (target.bits_per_frame * frames))
    return _clamp(qp + max(1, math.ceil(QP_PER_HALVING * over)))


def complexities(frames: np.ndarray) -> np.ndarray:
    """How hard each of a part's uint8 frames (n, h, w, 3) is to predict from the one before
    (STILL and SHRINK); the first frame, coded on its own, is given the mean of the others."""
    import cv2

    count, height, width = frames.shape[:3]
    size = (max(SMALLEST, width // SHRINK), max(SMALLEST, height // SHRINK))
    greys = [cv2.resize(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY), size,
                        interpolation=cv2.INTER_AREA) for frame in frames]  # fmt: skip
    search = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    places = np.stack(np.meshgrid(np.arange(size[0], dtype=np.float32),
                                  np.arange(size[1], dtype=np.float32)), -1)  # fmt: skip
    found = np.zeros(count)
    for k in range(1, count):
        flow = search.calc(greys[k], greys[k - 1], None)  # type: ignore[call-overload]
        moved = cv2.remap(greys[k - 1], np.asarray(flow) + places, None, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        found[k] = float(cv2.absdiff(greys[k], moved).mean()) + STILL
    found[0] = found[1:].mean() if count > 1 else STILL
    return found
