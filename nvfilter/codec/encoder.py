"""Frames of a part -> its coded stream: motion searched, modes chosen, residuals quantised, and
each frame reconstructed as the decoder will, to predict the next ones from and to score."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from nvfilter.codec import bitstream, intra, search
from nvfilter.codec.decoder import (
    finished,
    intra_middle,
    intra_plane,
    level_class,
    plane_grid,
    plane_steps,
    prior_field,
    reconstruct,
    relatives,
)
from nvfilter.codec.entropy import Tables, Writer
from nvfilter.codec.motion import (
    BOTH,
    FIRST,
    MODES,
    SECOND,
    blend,
    compensate,
    expected,
    grid,
    reach_of,
    write_field,
    write_modes,
)
from nvfilter.codec.planes import GREY_MID, Layout, grey_uint8, to_planes, to_rgb, to_uint8
from nvfilter.codec.ratecontrol import (
    QP_PER_HALVING,
    STEER_EVERY,
    Coded,
    Target,
    complexities,
    next_qp,
    probe_qp,
    retry_qp,
)
from nvfilter.codec.residual import block_bits, write_plane
from nvfilter.codec.structure import INTRA, CodedFrame, coding_order, regular_groups
from nvfilter.codec.transform import BLOCK, QP_MAX, forward, forward_blocks, last_coded, quantise

QP_OFFSETS = (-4, -2, 0, 1, 2, 3)
"""Quantiser offset by level (intra, anchor, then the B levels): frames others are predicted
from are coded finer, since their error carries into every frame that uses them."""
ROUNDING_INTRA = 0.45
ROUNDING_INTER = 0.33
"""The quantiser's rounding (dead zone) for intra and predicted frames."""
LAMBDA_INTRA_MODE = 0.5
"""An intra block's mode bits are weighed at this times the quantiser step against the sum of
its residual's absolute coefficients (the choice of intra.py's modes)."""
LAMBDA_MOTION = (0.4, 0.8)
"""A vector's bits are weighed at this times the quantiser step against its absolute
differences (H.264's reference encoder: the square root of the mode decision's lambda): in a
frame predicted from one reference, and in one between two, whose residual is mostly not coded
(so precise vectors buy it less; BENCHMARKS.md, codec)."""
LAMBDA_MODE = 0.15
"""A mode's bits are weighed at this times the step squared against its squared error."""
LAMBDA_TAIL = 0.1
TAIL_PASSES = 2
"""A block's final level, where it is +-1, is zeroed if it puts right less squared error than
LAMBDA_TAIL times the step squared a bit it costs, in every predicted frame, twice over (the
simplest part of a trellis quantiser, as x264's: a lone 1 far along the zigzag costs its
position and every zero before it). Fewer bits at the same PSNR on every clip measured, at a
fixed quantiser and over whole clips (BENCHMARKS.md, trailing ones trimmed); 0.05 saved less."""
LAMBDA_RESIDUAL = 0.13
"""A block's levels are dropped where they put right less squared error than this times the
step squared a bit they cost (H.264's mode lambda, about), in frames no other frame is
predicted from: elsewhere what a dropped block leaves wrong is carried into every frame
predicted from it (dropping them too cost Big Buck Bunny 18% at 40 dB; BENCHMARKS.md, codec)."""


@dataclass
class EncodedPart:
    """A part's coded bytes and how its frames came out."""

    data: bytes
    squared_errors: list[float] = field(default_factory=list)
    """Per frame (display order), the sum of squared 8-bit errors of its decoded RGB."""
    bits: list[int] = field(default_factory=list)
    """Per frame (display order), its coded size in bits."""
    qps: list[int] = field(default_factory=list)
    """Per frame (coding order), its quantiser parameter."""
    base_qp: int = 0
    """The quantiser the rate control ended on (frames' own differ by their level)."""
    edges: dict[int, np.ndarray] = field(default_factory=dict)
    """The first and last frames as decoded (uint8 RGB): what a join of parts averages."""
    spent: dict[str, int] = field(default_factory=dict)
    """Bits by what they code (``level``, ``last``, ``dc``, ``mv``, ``mode``; ``intra`` for all
    of the intra frames'), for benchmarks."""


def frame_qp(base: int, frame: CodedFrame) -> int:
    return int(np.clip(base + QP_OFFSETS[min(frame.level, len(QP_OFFSETS) - 1)], 0, QP_MAX))


def choose_modes(
    current: list[np.ndarray], predictions: list[list[np.ndarray]], layout: Layout, lam: float,
    bits: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Per 8x8 block, the mode (first, second, both) with the least squared error over the three
    planes plus ``lam`` times its bits."""
    costs = []
    for mode in (FIRST, SECOND, BOTH):
        total = None
        for plane, picture in enumerate(current):
            if mode == BOTH:
                guess = (predictions[0][plane] + predictions[1][plane]) * 0.5
            else:
                guess = predictions[mode][plane]
            down = (1, 1) if plane == 0 else layout.down
            side = (BLOCK // down[0], BLOCK // down[1])
            error = np.square(picture - guess)
            rows, cols = error.shape[0] // side[0], error.shape[1] // side[1]
            sums = error.reshape(rows, side[0], cols, side[1]).sum((1, 3))
            total = sums if total is None else total + sums
        assert total is not None
        costs.append(total + lam * bits[mode])
    return np.argmin(np.stack(costs), 0).astype(np.int32)


def drop_blocks(
    coefficients: np.ndarray, levels: np.ndarray, step: float, tables: Tables,
    grid: tuple[int, int], level: int, colour: int,
) -> np.ndarray:  # fmt: skip
    """``levels`` with every block zeroed whose levels put right less squared error than
    LAMBDA_RESIDUAL x step^2 per bit they cost (a lone small level rarely pays for its
    block's last, sign and position)."""
    coded = np.flatnonzero(levels.any(1))
    if not len(coded):
        return levels
    bits = block_bits(tables, levels, grid, level, colour)[coded]
    kept = coefficients[coded] - levels[coded] * step
    gained = np.square(coefficients[coded]).sum(1) - np.square(kept).sum(1)
    dropped = coded[gained < LAMBDA_RESIDUAL * step * step * bits]
    if len(dropped):
        levels = levels.copy()
        levels[dropped] = 0
    return levels


def trim_tails(
    coefficients: np.ndarray, levels: np.ndarray, step: float, tables: Tables,
    grid: tuple[int, int], level: int, colour: int,
) -> np.ndarray:  # fmt: skip
    """``levels`` with each block's final level zeroed where it is +-1 and puts right less
    squared error than LAMBDA_TAIL x step^2 a bit it costs (its ``last``, the zeros before it,
    its sign and size), up to TAIL_PASSES times a block."""
    for _ in range(TAIL_PASSES):
        last = last_coded(levels)
        ending = np.flatnonzero(last)
        if not len(ending):
            break
        ones = ending[np.abs(levels[ending, last[ending] - 1]) == 1]
        if not len(ones):
            break
        where = last[ones] - 1
        trial = levels.copy()
        trial[ones, where] = 0
        saved = (block_bits(tables, levels, grid, level, colour)
                 - block_bits(tables, trial, grid, level, colour))[ones]  # fmt: skip
        value = coefficients[ones, where]
        worse = np.square(value) - np.square(value - levels[ones, where] * step)
        take = worse < LAMBDA_TAIL * step * step * saved
        if not take.any():
            break
        levels = levels.copy()
        levels[ones[take], where[take]] = 0
    return levels


TRIAL_FRAMES = 16
TRIAL_EVERY = 128
"""Every TRIAL_EVERY frames the encoder codes the next TRIAL_FRAMES both ways, as groups of
GROUP (hierarchical B-frames) and as frames each predicted from the one before, and goes on
the way that did better (merit): hierarchical B-frames win where frames several apart still
predict each other (oa4_launch.webm), single steps where the picture changes a lot from frame
to frame (tour.mp4); BENCHMARKS.md, codec."""
GROUP = 8
PROBE_FRAMES = 8
"""A part coded for a PSNR or bits first codes its intra frame and the next PROBE_FRAMES (one
group) at the start's guess, and starts for real at the quantiser they say meets the target
(ratecontrol.probe_qp): so the intra frame, which every frame is predicted from, is coded at
the part's quantiser, not at a guess the control then walks away from (BENCHMARKS.md, codec)."""
DB_PER_DOUBLING = 4.0
"""How many dB twice the bits buy, about, near the operating points: what weighs a trial's
bits against its PSNR (merit)."""


@dataclass
class _State:
    """Where the coding of a part stands: its tables, the frames later ones predict from, and
    what has been written."""

    tables: Tables = field(default_factory=lambda: Tables(relatives))
    recon: dict[int, list[np.ndarray]] = field(default_factory=dict)
    greys: dict[int, np.ndarray] = field(default_factory=dict)
    fields: dict[int, tuple[int, list[np.ndarray]]] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)
    qps: list[int] = field(default_factory=list)
    words: list[np.ndarray] = field(default_factory=list)
    errors: dict[int, float] = field(default_factory=dict)
    bits: dict[int, int] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)
    edges: dict[int, np.ndarray] = field(default_factory=dict)
    steered: int = 0
    """The last frame the quantiser was steered after (ratecontrol.STEER_EVERY)."""

    def fork(self) -> _State:
        """A copy to try something on (arrays are never changed in place, so they are shared)."""
        tables = Tables(relatives)
        tables.counts = {key: counts.copy() for key, counts in self.tables.counts.items()}
        return _State(tables, dict(self.recon), dict(self.greys), dict(self.fields),
                      list(self.groups), list(self.qps), list(self.words), dict(self.errors),
                      dict(self.bits), dict(self.spent), dict(self.edges), self.steered)  # fmt: skip

    def merit(self, since: int) -> float:
        """log2 of the bits less PSNR / DB_PER_DOUBLING, over the frames after ``since`` (less
        is better: the same bits at a higher PSNR, or fewer at the same)."""
        frames = [k for k in self.errors if k > since]
        squared = max(1e-9, sum(self.errors[k] for k in frames))
        bits = max(1, sum(self.bits[k] for k in frames))
        return math.log2(bits) + math.log10(squared) * 10 / DB_PER_DOUBLING


class PartEncoder:
    """Codes the frames of one part for a ``target`` (a quantiser, a PSNR, bits: ratecontrol)."""

    def __init__(
        self, layout: Layout, target: Target | int, gop: int | None = None,
        starts: Collection[int] = (), version: int = bitstream.STREAM_VERSION,
    ) -> None:  # fmt: skip
        """``target``: a Target, or a fixed quantiser; ``gop``: anchors every ``gop`` frames;
        None: chosen by trial (TRIAL_FRAMES); ``starts``: the frames that start a new shot
        (coded intra, nothing predicted across the cut before them); ``version``: the stream
        version's tools (1 or 2: a stream as an older nvfilter wrote it, for tests)."""
        self.layout, self.gop, self.version = layout, gop, version
        self.starts = sorted(set(starts))
        self.target = Target(qp=target) if isinstance(target, int) else target
        self.qp = self.target.first_qp()

    def encode(
        self, frames: np.ndarray, on_frame: Callable[[int], None] | None = None
    ) -> EncodedPart:
        """Code uint8 frames (n, height, width, 3); ``on_frame`` is told each frame's index as
        it is done."""
        count = len(frames)
        self.starts = [start for start in self.starts if 0 < start < count]
        state = _State()
        self.complexity = complexities(frames) if self.target.qp is None else np.ones(count)
        self.units: dict[int, float] = {}
        if self.target.qp is None and count > 2 and 1 not in self.starts:
            self.qp = self._probe(frames)
        self._code(state, frames, [CodedFrame(0, (), INTRA)], on_frame)
        first = 0
        while first < count - 1:
            if first + 1 in self.starts:  # a new shot: its first frame coded intra
                self._groups(state, frames, first, [1], on_frame)
                first += 1
            else:
                end = self._shot_end(first, count)
                state = self._shot(state, frames, first, end, on_frame)
                first = end
        header = bitstream.PartHeader(self.layout.width, self.layout.height, count,
                                      self.layout.chroma, state.groups, tuple(self.starts),
                                      self.version)  # fmt: skip
        return EncodedPart(
            bitstream.pack(header, state.qps, state.words),
            [state.errors[k] for k in range(count)],
            [state.bits[k] for k in range(count)],
            list(state.qps),
            self.qp,
            state.edges,
            state.spent,
        )

    def _shot_end(self, first: int, count: int) -> int:
        """The last frame of the shot that frame ``first`` is in (within the part)."""
        return next((start - 1 for start in self.starts if start > first), count - 1)

    def _shot(
        self, state: _State, frames: np.ndarray, first: int, end: int,
        on_frame: Callable[[int], None] | None,
    ) -> _State:  # fmt: skip
        """Code the frames after ``first`` up to ``end`` (a shot's, or the part's, last), as
        regular groups of ``gop`` or in the way a trial finds better (TRIAL_EVERY); the state
        they leave."""
        if self.gop is not None:
            self._groups(state, frames, first, regular_groups(end - first + 1, self.gop), on_frame)
            return state
        while first < end:
            span = min(TRIAL_FRAMES, end - first)
            trials = {size: state.fork() for size in (GROUP, 1)}
            for size, trial in trials.items():  # at one quantiser, to compare like with like
                self._groups(trial, frames, first, regular_groups(span + 1, min(size, span)),
                             None, steer=False)  # fmt: skip
            gop = min(trials, key=lambda size: trials[size].merit(first))
            state = trials[gop]
            self._steer(state, frames, first + span)
            if on_frame is not None:
                for index in range(first + 1, first + span + 1):
                    on_frame(index)
            first += span
            rest = min(TRIAL_EVERY - TRIAL_FRAMES, end - first)
            if rest > 0:
                self._groups(
                    state, frames, first, regular_groups(rest + 1, min(gop, rest)), on_frame
                )
                first += rest
        return state

    def _probe(self, frames: np.ndarray) -> int:
        """The quantiser to start at (PROBE_FRAMES)."""
        began, span = self.qp, min(PROBE_FRAMES, self._shot_end(0, len(frames)))
        probe = _State()
        self._code(probe, frames, [CodedFrame(0, (), INTRA)], None)
        self._groups(probe, frames, 0, [span], None, steer=False)
        self.qp, self.units = began, {}
        return probe_qp(self.target, began, probe.bits[0],
                        [probe.bits[k] for k in range(1, span + 1)], sum(probe.errors.values()),
                        frames[0].size, self.complexity)  # fmt: skip

    def _groups(
        self, state: _State, frames: np.ndarray, first: int, groups: list[int],
        on_frame: Callable[[int], None] | None, steer: bool = True,
    ) -> None:  # fmt: skip
        """Code the frames after ``first`` in ``groups``, each group's frames in coding order,
        keeping only its anchor to predict from once it is done; the quantiser is steered
        every STEER_EVERY frames (not at all where ``steer`` is False: a trial)."""
        for size in groups:
            new_shot = first + size in self.starts
            order = coding_order(size + 1, [size], [size] if new_shot else [])[1:]
            shifted = [
                CodedFrame(
                    frame.index + first, tuple(r + first for r in frame.references), frame.level
                )
                for frame in order
            ]
            referenced = {reference for frame in shifted for reference in frame.references}
            self._code(state, frames, shifted, on_frame, referenced | {first + size})
            state.groups.append(size)
            for index in range(first + 1, first + size + 1):
                self.units[index] = self.complexity[index] * 2 ** (-self.qp / QP_PER_HALVING)
            first += size
            if steer and (first - state.steered >= STEER_EVERY or first == len(frames) - 1):
                self._steer(state, frames, first)
            for kept in (state.recon, state.greys, state.fields):
                for index in [index for index in kept if index != first]:
                    del kept[index]

    def _steer(self, state: _State, frames: np.ndarray, last: int) -> None:
        """The quantiser from what the frames coded since the last steer, up to ``last``, came
        to (ratecontrol.next_qp)."""
        recent = range(state.steered + 1, last + 1)
        units = {k: u for k, u in self.units.items() if k in state.bits}  # this state's
        coded = Coded(len(state.errors), sum(state.bits.values()), sum(state.errors.values()),
                      len(recent), sum(state.bits[k] for k in recent),
                      sum(state.errors[k] for k in recent), frames[0].size,
                      sum(units.values()), sum(state.bits[k] for k in units),
                      float(self.complexity[last + 1 :].sum()),
                      float(self.complexity[recent].mean()) if len(recent) else 0.0,
                      float(self.complexity[last + 1 : last + 1 + STEER_EVERY].mean())
                      if last + 1 < len(frames) else 0.0)  # fmt: skip
        self.qp = next_qp(self.target, self.qp, coded, len(frames))
        state.steered = last

    def _code(
        self, state: _State, frames: np.ndarray, order: list[CodedFrame],
        on_frame: Callable[[int], None] | None, referenced: set[int] | None = None,
    ) -> None:  # fmt: skip
        """Code ``order``'s frames; ``referenced``: those other frames are predicted from (the
        others may drop blocks, LAMBDA_RESIDUAL); None: all."""
        layout = self.layout
        for frame in order:
            qp = frame_qp(self.qp, frame)
            current = to_planes(frames[frame.index], layout)
            writer = Writer(state.tables, {} if frame.references else None)
            found: list[list[np.ndarray]] = []
            if frame.references:
                leaf = referenced is not None and frame.index not in referenced
                planes, found = self._predicted(writer, frame, qp, current, state, leaf)
            else:
                planes = self._intra(writer, frame, qp, current)
            coded = writer.finish()
            for name, used in (writer.spent or {"intra": 32 * len(coded)}).items():
                state.spent[name] = state.spent.get(name, 0) + used
            state.qps.append(qp)
            state.words.append(coded)
            decoded = to_uint8(to_rgb(planes, layout))
            state.errors[frame.index] = float(
                np.square(decoded.astype(np.float32) - frames[frame.index]).sum()
            )
            if frame.index in (0, len(frames) - 1):
                state.edges[frame.index] = decoded
            state.bits[frame.index] = 32 * len(coded) + 40
            state.recon[frame.index] = planes
            state.greys[frame.index] = grey_uint8(current[0])
            if found:
                state.fields[frame.index] = (frame.references[0], found[0])
            if on_frame is not None:
                on_frame(frame.index)

    def _intra(
        self, writer: Writer, frame: CodedFrame, qp: int, current: list[np.ndarray]
    ) -> list[np.ndarray]:
        steps = plane_steps(qp, self.layout)
        level = level_class(frame)
        planes = []
        for k, picture in enumerate(current):
            grid = plane_grid(self.layout, k)
            if self.version < bitstream.TOOLS_FROM:
                centred = picture - np.float32(GREY_MID) if k == 0 else picture
                levels = quantise(forward(centred), steps[k], ROUNDING_INTRA)
                write_plane(writer, levels, grid, level, min(k, 1), True)
                planes.append(intra_plane(levels, steps[k], self.layout, k))
                continue
            key = ("imode", level, min(k, 1))
            choose = _intra_choice(steps[k], writer.tables.bits(key, intra.MODES))
            modes, levels, decoded = intra.code_plane(
                picture, grid, steps[k], intra_middle(k), choose
            )
            writer.symbols(key, intra.MODES, modes)
            write_plane(writer, levels, grid, level, min(k, 1), False)
            planes.append(decoded)
        return finished(planes, steps, self.version)

    def _predicted(
        self, writer: Writer, frame: CodedFrame, qp: int, current: list[np.ndarray],
        state: _State, leaf: bool,
    ) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:  # fmt: skip
        layout = self.layout
        recon, greys, fields, tables = state.recon, state.greys, state.fields, state.tables
        level = level_class(frame)
        steps = plane_steps(qp, layout)
        grey = grey_uint8(current[0])
        chosen: list[list[np.ndarray]] = []
        predictions: list[list[np.ndarray]] = []
        for slot, reference in enumerate(frame.references):
            motion = search.flow(grey, greys[reference])
            prior = prior_field(frame, slot, fields, chosen)
            found = search.Search(current[0], recon[reference][0], motion, LAMBDA_MOTION[len(frame.references) - 1] * steps[0],
                                  tables, (level, slot), reach_of(layout)).run(prior)  # fmt: skip
            chosen.append(found)
            predictions.append(compensate(recon[reference], found[-1], layout))
        width, height = layout.padded
        shape = grid(height, width, BLOCK)
        modes = None
        if len(frame.references) == 2:
            mode_bits = tables.bits(("mode", level), MODES)
            modes = choose_modes(
                current, predictions, layout, LAMBDA_MODE * steps[0] ** 2, mode_bits
            )
            write_modes(writer, modes, level)
        for slot, (reference, found) in enumerate(zip(frame.references, chosen, strict=True)):
            used = np.ones(shape, bool) if modes is None else (modes == slot) | (modes == BOTH)
            prior = prior_field(frame, slot, fields, chosen[:slot])  # as the decoder will know it
            if not used.all():  # a block's unused vector is its expected one (not coded)
                guess = expected(found, prior, len(found) - 1, shape)
                found[-1] = np.where(used[..., None], found[-1], guess)
                predictions[slot] = compensate(recon[reference], found[-1], layout)
            write_field(writer, found, level, slot, used, prior)
        prediction = blend(predictions, modes, layout)
        planes = []
        for k, picture in enumerate(current):
            coefficients = forward(picture - prediction[k])
            levels = quantise(coefficients, steps[k], ROUNDING_INTER)
            levels = trim_tails(coefficients, levels, steps[k], tables, plane_grid(layout, k),
                                level, min(k, 1))  # fmt: skip
            if leaf:
                levels = drop_blocks(
                    coefficients, levels, steps[k], tables, plane_grid(layout, k), level, min(k, 1)
                )
            write_plane(writer, levels, plane_grid(layout, k), level, min(k, 1), False)
            planes.append(reconstruct(levels, steps[k], prediction[k]))
        return finished(planes, steps, self.version), chosen


def _intra_choice(step: float, mode_bits: np.ndarray) -> intra.Choose:
    """Each block's intra mode: the least sum of its residual's absolute coefficients plus
    LAMBDA_INTRA_MODE x step a bit of the mode; and its residual's levels."""

    def choose(pixels: np.ndarray, guesses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        modes, blocks = guesses.shape[:2]
        residuals = (pixels[None] - guesses).reshape(modes * blocks, -1)
        coefficients = forward_blocks(residuals).reshape(modes, blocks, -1)
        cost = np.abs(coefficients).sum(-1) + LAMBDA_INTRA_MODE * step * mode_bits[:, None]
        chosen = np.argmin(cost, 0)
        picked = coefficients[chosen, np.arange(blocks)]
        return chosen.astype(np.int32), quantise(picked, step, ROUNDING_INTRA)

    return choose


def encode_part(
    frames: np.ndarray, layout: Layout, target: Target,
    on_frame: Callable[[int], None] | None = None, starts: Collection[int] = (),
) -> EncodedPart:  # fmt: skip
    """A part coded for ``target`` (``starts``: the frames that start a new shot), coded again
    at coarser quantisers while it goes over the target's ceiling of bits (so a budget is a
    promise, not an aim)."""
    encoded = PartEncoder(layout, target, starts=starts).encode(frames, on_frame)
    while (qp := retry_qp(target, encoded.base_qp, sum(encoded.bits), len(frames))) is not None:
        encoded = PartEncoder(layout, Target(qp=qp), starts=starts).encode(frames)
    return encoded
