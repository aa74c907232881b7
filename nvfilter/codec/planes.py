"""Frames as the planes the codec codes: grey at full size and two colour differences at the
size the source's colour came at (chroma.py), an orthonormal change of RGB.

grey = (R + G + B) / sqrt(3), red-blue = (R - B) / sqrt(2), green = (R - 2G + B) / sqrt(6):
orthonormal, so a squared error in the planes is the same squared error in RGB. ffmpeg makes RGB
from a 4:2:0 video by repeating each colour sample over 2x2 pixels, so within such a block RGB
moves only along grey: the two colour planes are then exactly their 2x2 averages, coded at half
the width and height and repeated back, as ffmpeg does. A plane holds the frame padded (edges
repeated) to whole macroblocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from nvfilter.chroma import LAYOUTS

MACROBLOCK = 16
"""Frames are padded to a multiple of this on both axes: the motion pyramid's middle level."""
GREY_MID = 128 * math.sqrt(3)
"""The grey plane's middle value (an intra frame codes grey less this)."""
TO_PLANES = np.array(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
        [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)],
    ],
    dtype=np.float32,
)
"""RGB -> (grey, red-blue, green); orthonormal rows, so its transpose takes planes back."""


@dataclass(frozen=True)
class Layout:
    """The planes of a ``width`` x ``height`` video whose colour comes at 1 / ``down`` (rows,
    columns) of its size."""

    width: int
    height: int
    chroma: str = "420"

    @property
    def down(self) -> tuple[int, int]:
        return LAYOUTS[self.chroma]

    @property
    def padded(self) -> tuple[int, int]:
        """(width, height) of the grey plane: whole macroblocks."""
        return _whole(self.width), _whole(self.height)

    def plane_size(self, plane: int) -> tuple[int, int]:
        """(width, height) of plane 0 (grey) or 1, 2 (colour)."""
        width, height = self.padded
        if plane == 0:
            return width, height
        rows, columns = self.down
        return width // columns, height // rows


def _whole(length: int) -> int:
    return -(-length // MACROBLOCK) * MACROBLOCK


def to_planes(frame: np.ndarray, layout: Layout) -> list[np.ndarray]:
    """uint8 (height, width, 3) RGB -> [grey, red-blue, green] float32, padded, the colour
    planes averaged over the layout's blocks."""
    width, height = layout.padded
    padded = cv2.copyMakeBorder(
        np.ascontiguousarray(frame),
        0,
        height - layout.height,
        0,
        width - layout.width,
        cv2.BORDER_REPLICATE,
    )
    mixed = cv2.transform(padded.astype(np.float32), TO_PLANES)
    planes = [np.ascontiguousarray(mixed[..., 0])]
    for k in (1, 2):
        colour = np.ascontiguousarray(mixed[..., k])
        if layout.chroma != "444":
            colour = cv2.resize(colour, layout.plane_size(k), interpolation=cv2.INTER_AREA)
        planes.append(colour)
    return planes


def to_rgb(planes: list[np.ndarray], layout: Layout) -> np.ndarray:
    """[grey, red-blue, green] -> float32 (height, width, 3) RGB in 0..255 units (unclipped),
    the colour repeated over its blocks as ffmpeg repeats it, cropped to the frame."""
    width, height = layout.padded
    colour = [
        plane
        if plane.shape == (height, width)
        else cv2.resize(plane, (width, height), interpolation=cv2.INTER_NEAREST)
        for plane in planes[1:]
    ]
    mixed = cv2.merge([planes[0], *colour])
    rgb = cv2.transform(mixed, np.ascontiguousarray(TO_PLANES.T))
    return rgb[: layout.height, : layout.width]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """float RGB in 0..255 units -> uint8, rounded to nearest and clipped."""
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def grey_uint8(plane: np.ndarray) -> np.ndarray:
    """The grey plane as 8-bit brightness (the mean of R, G and B), for the flow search."""
    return np.clip(plane * (1 / math.sqrt(3)), 0, 255).astype(np.uint8)
