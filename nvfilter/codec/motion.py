"""Motion in the codec: one vector per 8x8 block and reference, in quarter pixels, coded as a
pyramid, and the prediction it makes.

A frame's motion towards a reference is a field of vectors ``(rows, cols, 2)`` (x then y, whole
quarter pixels): the block's pixels are the reference's pixels that far away (bicubic between
pixels for grey, bilinear for colour, as H.264 does). A frame predicted from two references also
has a mode per block: the first, the second, or their mean.

The field is coded as a pyramid (PYRAMID): vectors per 64x64 block, then per 32x32, 16x16 and
8x8 block, each level as its difference from what is expected there (its parent's vector plus
the change a prior field makes, decoder.prior_field: the motion already known between the
frames' neighbours; at the top, differences between neighbouring blocks). Where the motion is smooth nearly every
difference is 0 and costs a small fraction of a bit; the encoder's search (search.py) weighs each
difference against what it saves. An 8x8 block's difference towards a reference its mode does
not use is not coded.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from nvfilter.codec.entropy import Reader, Writer
from nvfilter.codec.planes import Layout
from nvfilter.codec.transform import BLOCK

PYRAMID = (64, 32, 16, 8)
"""Block sides of the field's levels, coarse to fine; the last is the prediction's block."""
VECTOR_ESCAPE = 16
FIRST, SECOND, BOTH = 0, 1, 2
"""Modes of a block predicted from two references."""
MODES = 3


def grid(height: int, width: int, side: int) -> tuple[int, int]:
    """(rows, cols) of ``side`` x ``side`` blocks covering a plane."""
    return math.ceil(height / side), math.ceil(width / side)


def parent_of(vectors: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each block of the next finer level's ``shape`` gets its parent's vector."""
    rows, cols = shape
    return np.repeat(np.repeat(vectors, 2, 0), 2, 1)[:rows, :cols]


def dpcm(vectors: np.ndarray) -> np.ndarray:
    """Differences from the left neighbour, the first column from the one above."""
    difference = vectors.copy()
    difference[:, 1:] -= vectors[:, :-1]
    difference[1:, 0] -= vectors[:-1, 0]
    return difference


def undo_dpcm(difference: np.ndarray) -> np.ndarray:
    rows = difference.copy()
    rows[:, 0] = np.cumsum(difference[:, 0], axis=0)
    return np.cumsum(rows, axis=1)


def expected(
    coarser: list[np.ndarray], prior: list[np.ndarray] | None, depth: int, shape: tuple[int, int]
) -> np.ndarray:
    """What the coder predicts for level ``depth`` (``shape`` blocks) before its differences:
    the prior field's vectors (the previous frame's motion; none: 0) plus what the coarser
    level said beyond its own prior, inherited by each block from its parent."""
    guess = prior[depth].copy() if prior is not None else np.zeros((*shape, 2), np.int64)
    if depth:
        beyond = coarser[depth - 1] - (prior[depth - 1] if prior is not None else 0)
        guess += parent_of(beyond, shape)
    return guess


def write_field(
    writer: Writer, levels: list[np.ndarray], level: int, slot: int, used: np.ndarray,
    prior: list[np.ndarray] | None = None,
) -> None:  # fmt: skip
    """Code a field given at every pyramid level (``levels``: coarse to fine) against ``prior``
    (a field at every level the decoder has too, or None); ``used``: the finest blocks whose
    mode uses this reference (the others are their expected vector, not coded)."""
    for depth, vectors in enumerate(levels):
        difference = vectors - expected(levels, prior, depth, vectors.shape[:2])
        if depth == 0:
            difference = dpcm(difference)
        if depth == len(levels) - 1:
            difference = difference[used]
        for axis in (0, 1):
            writer.signed((f"mv{depth}", level, slot, axis), VECTOR_ESCAPE, difference[..., axis])


def read_field(
    reader: Reader, height: int, width: int, level: int, slot: int, used: np.ndarray, reach: int,
    prior: list[np.ndarray] | None = None,
) -> list[np.ndarray]:  # fmt: skip
    """write_field undone: the field at every level (rows, cols, 2), every vector within
    ``reach`` quarter pixels each way (a corrupt stream can say anything)."""
    levels: list[np.ndarray] = []
    for depth, side in enumerate(PYRAMID):
        shape = grid(height, width, side)
        final = depth == len(PYRAMID) - 1
        count = int(used.sum()) if final else shape[0] * shape[1]
        difference = np.stack(
            [
                reader.signed((f"mv{depth}", level, slot, axis), VECTOR_ESCAPE, count)
                for axis in (0, 1)
            ],
            -1,
        )
        vectors = expected(levels, prior, depth, shape)
        if final:
            vectors[used] += difference
        elif depth == 0:
            vectors += undo_dpcm(difference.reshape(*shape, 2))
        else:
            vectors += difference.reshape(*shape, 2)
        levels.append(np.clip(vectors, -reach, reach))
    return levels


def write_modes(writer: Writer, modes: np.ndarray, level: int) -> None:
    writer.symbols(("mode", level), MODES, modes)


def read_modes(reader: Reader, shape: tuple[int, int], level: int) -> np.ndarray:
    return reader.symbols(("mode", level), MODES, shape[0] * shape[1]).reshape(shape)


def reach_of(layout: Layout) -> int:
    """How far (quarter pixels) a vector may point: the padded frame's longer side."""
    return 4 * max(layout.padded)


@functools.lru_cache(maxsize=8)
def _places(height: int, width: int) -> np.ndarray:
    """(height, width, 2) float32: every pixel's own (x, y) (made once a size; read-only)."""
    places = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                  np.arange(height, dtype=np.float32)), -1)  # fmt: skip
    places.flags.writeable = False
    return places


@functools.lru_cache(maxsize=8)
def _overlap_weights(height: int, width: int, tall: int, wide: int) -> tuple[np.ndarray, ...]:
    """The weights of a pixel's four nearest blocks (``tall`` x ``wide`` pixels): top-left,
    top-right, bottom-left, bottom-right, each (height, width) float32, bilinear in the pixel's
    place between their centres."""
    down = ((np.arange(height) - (tall - 1) / 2) / tall % 1).astype(np.float32)[:, None]
    across = ((np.arange(width) - (wide - 1) / 2) / wide % 1).astype(np.float32)[None, :]
    weights = tuple(
        np.ascontiguousarray(wy * wx) for wy in (1 - down, down) for wx in (1 - across, across)
    )
    for weight in weights:
        weight.flags.writeable = False
    return weights


def compensate(
    reference: list[np.ndarray], vectors: np.ndarray, layout: Layout
) -> list[np.ndarray]:
    """The reference's planes moved by the block ``vectors``: the prediction of each plane.

    Overlapped (OBMC): each pixel is the mean of the reference read with the vectors of its four
    nearest blocks, weighted bilinearly by its place between their centres, so a prediction has
    no edges where neighbouring vectors differ; where they are equal it is the plain read (past
    the outer blocks' centres, the outer blocks count twice). Bicubic between pixels for grey,
    bilinear for colour, edges repeated."""
    out = []
    padded = np.pad(vectors, ((1, 1), (1, 1), (0, 0)), mode="edge").astype(np.float32)
    for plane, picture in enumerate(reference):
        rows, columns = (1, 1) if plane == 0 else layout.down
        tall, wide = BLOCK // rows, BLOCK // columns
        height, width = picture.shape
        scaled = padded * np.array([1 / (4 * columns), 1 / (4 * rows)], np.float32)
        spread = cv2.resize(scaled, (scaled.shape[1] * wide, scaled.shape[0] * tall),
                            interpolation=cv2.INTER_NEAREST)  # fmt: skip
        places = _places(height, width)
        method = cv2.INTER_CUBIC if plane == 0 else cv2.INTER_LINEAR
        weights = iter(_overlap_weights(height, width, tall, wide))
        total = np.zeros((height, width), np.float32)
        for y in (tall // 2, tall + tall // 2):
            for x in (wide // 2, wide + wide // 2):
                field = spread[y : y + height, x : x + width] + places
                read = cv2.remap(picture, field, None, method, borderMode=cv2.BORDER_REPLICATE)
                total += read * next(weights)
        out.append(total)
    return out


def blend(
    predictions: list[list[np.ndarray]], modes: np.ndarray | None, layout: Layout
) -> list[np.ndarray]:
    """One reference's prediction, or two's chosen per block by ``modes``."""
    if len(predictions) == 1:
        return predictions[0]
    assert modes is not None
    out = []
    for plane, (first, second) in enumerate(zip(*predictions, strict=True)):
        height, width = first.shape
        down = (1, 1) if plane == 0 else layout.down
        per_pixel = np.repeat(np.repeat(modes, BLOCK // down[0], 0), BLOCK // down[1], 1)[
            :height, :width
        ]
        mean = cv2.addWeighted(first, 0.5, second, 0.5, 0.0)
        out.append(np.where(per_pixel == FIRST, first, np.where(per_pixel == SECOND, second, mean)))
    return out
