"""A coded part back to frames: each frame's prediction from its references along its stored
motion, plus its coded residual. The encoder (encoder.py) reconstructs with the same functions,
so what it scores is what is decoded."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

import numpy as np

from nvfilter.codec import bitstream, intra
from nvfilter.codec.entropy import CorruptStream, Reader, Tables
from nvfilter.codec.loopfilter import deblock
from nvfilter.codec.motion import BOTH, blend, compensate, grid, reach_of, read_field, read_modes
from nvfilter.codec.planes import GREY_MID, Layout
from nvfilter.codec.residual import read_plane
from nvfilter.codec.structure import CodedFrame, coding_order, last_use
from nvfilter.codec.transform import BLOCK, inverse, step_of

LEVEL_CLASSES = 6
"""Frames of deeper levels share the last level's tables."""


def level_class(frame: CodedFrame) -> int:
    return min(frame.level, LEVEL_CLASSES - 1)


def relatives(key: Hashable) -> Iterator[Hashable]:
    """The tables a context's table starts from when first used (entropy.Tables): the same
    context at the nearest other predicted level (a new B level starts from the level above it),
    and a second reference's motion from the first's."""
    if isinstance(key, tuple) and len(key) == 2 and key[1] == "tail":
        yield from ((inner, "tail") for inner in relatives(key[0]))
        return
    if not (isinstance(key, tuple) and len(key) > 1 and isinstance(key[1], int)):
        return
    name, level, rest = key[0], key[1], key[2:]
    if isinstance(name, str) and name.startswith("mv") and rest and rest[0] == 1:
        yield (name, level, 0, *rest[1:])
    for other in sorted(range(1, LEVEL_CLASSES), key=lambda other: (abs(other - level), other)):
        if other != level and level != 0:
            yield (name, other, *rest)


def plane_steps(qp: int, layout: Layout) -> list[float]:
    """The quantiser step of each plane: a colour sample of a 4:2:0 video stands for four
    pixels, so its squared error counts four times and its step is half (the steps that spend
    bits where they lower the RGB error most)."""
    step = step_of(qp)
    colour = step / math.sqrt(layout.down[0] * layout.down[1])
    return [step, colour, colour]


def reconstruct(levels: np.ndarray, step: float, prediction: np.ndarray) -> np.ndarray:
    """A predicted plane from its zigzag levels (blocks, 64) and its prediction."""
    return prediction + inverse(levels * step, *prediction.shape)


def finished(planes: list[np.ndarray], steps: list[float], version: int) -> list[np.ndarray]:
    """A frame's planes as shown and predicted from: deblocked from version TOOLS_FROM on."""
    if version < bitstream.TOOLS_FROM:
        return planes
    return [deblock(plane, step) for plane, step in zip(planes, steps, strict=True)]


def intra_middle(plane: int) -> float:
    """The value a plane's intra prediction takes outside the frame: mid-grey, no colour."""
    return GREY_MID if plane == 0 else 0.0


def read_intra(
    reader: Reader, layout: Layout, steps: list[float], level: int, version: int
) -> list[np.ndarray]:  # fmt: skip
    """An intra frame's planes: from TOOLS_FROM on, each plane's block modes and then its
    coefficients, predicted along the diagonals (intra.py); before, DCT blocks alone."""
    planes = []
    for k in range(3):
        rows, cols = plane_grid(layout, k)
        if version < bitstream.TOOLS_FROM:
            levels = read_plane(reader, (rows, cols), level, min(k, 1), True)
            planes.append(intra_plane(levels, steps[k], layout, k))
            continue
        modes = reader.symbols(("imode", level, min(k, 1)), intra.MODES, rows * cols)
        levels = read_plane(reader, (rows, cols), level, min(k, 1), False)
        planes.append(intra.decode_plane(modes, levels, (rows, cols), steps[k], intra_middle(k)))
    return planes


def plane_grid(layout: Layout, plane: int) -> tuple[int, int]:
    width, height = layout.plane_size(plane)
    return height // BLOCK, width // BLOCK


def intra_plane(levels: np.ndarray, step: float, layout: Layout, plane: int) -> np.ndarray:
    """An intra plane from its zigzag levels (grey is coded less GREY_MID)."""
    width, height = layout.plane_size(plane)
    picture = inverse(levels * step, height, width)
    if plane == 0:
        picture += np.float32(GREY_MID)
    return picture


@dataclass
class DecodedFrame:
    """A frame as decoded: its planes, and the motion that predicted it."""

    frame: CodedFrame
    planes: list[np.ndarray]
    fields: list[list[np.ndarray]]
    """Per reference, its field at every pyramid level (rows, cols, 2), quarter grey pixels."""
    modes: np.ndarray | None

    @property
    def vectors(self) -> list[np.ndarray]:
        """Per reference, the 8x8 blocks' vectors: what predicted the frame."""
        return [levels[-1] for levels in self.fields]


def prior_field(
    frame: CodedFrame, slot: int, fields: dict[int, tuple[int, list[np.ndarray]]],
    earlier: list[list[np.ndarray]],
) -> list[np.ndarray] | None:  # fmt: skip
    """What a frame's field towards its ``slot``-th reference is coded against (motion that
    carries on steadily costs next to nothing):

    - the second reference of a frame between two: the first field, turned round and scaled by
      the two distances (the same motion, seen from the other side);
    - else, where the second reference's motion towards the first is known, that scaled (the
      frame lies on its way); else the reference's own motion, scaled;
    - None (no prior) where there is none, as for the frame after an intra frame."""
    reference = frame.references[slot]
    if slot == 1 and earlier:
        ratio = (frame.index - reference) / (frame.index - frame.references[0])
        return _scaled(earlier[0], ratio)
    if len(frame.references) == 2:
        after = frame.references[1]
        if after in fields and fields[after][0] == reference:
            return _scaled(fields[after][1], (frame.index - reference) / (after - reference))
    if reference in fields:
        its_reference, levels = fields[reference]
        return _scaled(levels, (frame.index - reference) / (reference - its_reference))
    return None


def _scaled(levels: list[np.ndarray], ratio: float) -> list[np.ndarray]:
    if ratio == 1:
        return levels
    return [np.rint(field * ratio).astype(np.int64) for field in levels]


def read_frame(
    reader: Reader, frame: CodedFrame, qp: int, layout: Layout,
    references: dict[int, list[np.ndarray]], fields: dict[int, tuple[int, list[np.ndarray]]],
    version: int,
) -> DecodedFrame:  # fmt: skip
    """One frame from its words, as stream ``version`` codes them."""
    level = level_class(frame)
    steps = plane_steps(qp, layout)
    width, height = layout.padded
    if not frame.references:
        planes = read_intra(reader, layout, steps, level, version)
        return DecodedFrame(frame, finished(planes, steps, version), [], None)
    shape = grid(height, width, BLOCK)
    modes = read_modes(reader, shape, level) if len(frame.references) == 2 else None
    found: list[list[np.ndarray]] = []
    for slot in range(len(frame.references)):
        used = np.ones(shape, bool) if modes is None else (modes == slot) | (modes == BOTH)
        prior = prior_field(frame, slot, fields, found)
        found.append(read_field(reader, height, width, level, slot, used, reach_of(layout), prior))
    predictions = [
        compensate(references[reference], levels[-1], layout)
        for reference, levels in zip(frame.references, found, strict=True)
    ]
    prediction = blend(predictions, modes, layout)
    planes = [
        reconstruct(
            read_plane(reader, plane_grid(layout, k), level, min(k, 1), False),
            steps[k],
            prediction[k],
        )
        for k in range(3)
    ]
    return DecodedFrame(frame, finished(planes, steps, version), found, modes)


class PartDecoder:
    """A part's frames, decoded in coding order (``frames``), each reference kept until its
    last use."""

    def __init__(self, data: bytes, layout: Layout, frames: int) -> None:
        header, self.qps, self.words = bitstream.unpack(data)
        if (header.width, header.height, header.frames, header.chroma) != (
            layout.width, layout.height, frames, layout.chroma,
        ):  # fmt: skip
            raise CorruptStream(
                f"the coded stream holds {header.frames} frames of {header.width}x{header.height} "
                f"({header.chroma}), its network {frames} of {layout.width}x{layout.height} ({layout.chroma})"
            )
        self.layout, self.version = layout, header.version
        self.order = coding_order(frames, header.groups, header.starts)

    def frames(self) -> Iterator[DecodedFrame]:
        tables = Tables(relatives)
        references: dict[int, list[np.ndarray]] = {}
        fields: dict[int, tuple[int, list[np.ndarray]]] = {}
        last = last_use(self.order)
        for position, frame in enumerate(self.order):
            reader = Reader(tables, self.words[position])
            decoded = read_frame(reader, frame, int(self.qps[position]), self.layout, references,
                                 fields, self.version)  # fmt: skip
            if frame.index in last:
                references[frame.index] = decoded.planes
                if decoded.fields:
                    fields[frame.index] = (frame.references[0], decoded.fields[0])
            for reference in frame.references:
                if last[reference] == position:
                    del references[reference]
                    fields.pop(reference, None)
            yield decoded
