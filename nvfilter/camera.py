"""The camera's path through a few frames, and the canvas those frames fill when moved along it.

A hand-held camera shakes and turns, so the same piece of the scene crosses the frame: a tile that
stays where it is in the frame then sees a different picture in every frame, and a low-rank fit of
it over time needs many components. Moved along the camera's path (each frame put where the camera
pointed), the piece stays in one place: ``camera_path`` finds each frame's whole-pixel offset
(OpenCV's phase correlation of neighbouring frames, chained; Kuglin and Hines 1975), and
``canvas_frames`` lays the frames on a canvas covering every offset, where a frame leaves the
canvas uncovered showing the nearest frame in time that covers it, else its own edge.

Following the path gains on a hand-held walk and loses on a turn (near and far moving
differently) or a still camera with a character moving (whose "path" is the character)
(``python bench/real_size_bench.py --part aligned``, BENCHMARKS-history.md), so the tiles fit
follows it only where a sample of its tiles says it pays (TileField._along_camera).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

PATH_MAX_SHARE = 0.25
"""A path is followed only while it stays within this share of the frame's side each way (the
canvas is then at most 1.25 times the frame on each side): farther moves are a new scene or a
wrong match, and a larger canvas costs its reads."""
PATH_MAX_PIXELS = 2048
"""...and within this many pixels: offsets are stored as floats, and float16 holds every whole
number up to 2048 exactly."""
PATH_MIN_HEIGHT = 512
"""Frames at least this tall are correlated at half size (area average): a quarter of the pixels
to transform, and the shift found still to a fraction of a pixel there, so to about a pixel at
full size, the 4:2:0 colour block the path moves in."""


def longest_path(width: int, height: int) -> tuple[float, float]:
    """The longest path (x, y, pixels) followed for frames of ``width`` x ``height``: the canvas
    is at most this much larger than the frame (PATH_MAX_SHARE, PATH_MAX_PIXELS)."""
    return min(width * PATH_MAX_SHARE, PATH_MAX_PIXELS), min(
        height * PATH_MAX_SHARE, PATH_MAX_PIXELS
    )


def camera_path(frames: np.ndarray, step: int = 1) -> np.ndarray | None:
    """Each uint8 frame's (n, H, W, 3) place on the canvas, (n, 2) whole pixels (x, y) from the
    canvas's top-left corner, multiples of ``step`` (a colour block's side, so that blocks stay
    aligned); None where the camera stands still or the path leaves PATH_MAX_SHARE."""
    import cv2  # imported here: only a fit needs it

    count, height, width = frames.shape[:3]
    if count < 2 or min(height, width) < 16:
        return None
    shrink = 2 if height >= PATH_MIN_HEIGHT else 1
    size = (width // shrink, height // shrink)

    def luma(frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if shrink > 1:
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey.astype(np.float32)

    window = cv2.createHanningWindow(size, cv2.CV_32F)
    path = np.zeros((count, 2))
    before = luma(frames[0])
    for k in range(1, count):
        now = luma(frames[k])
        (dx, dy), _ = cv2.phaseCorrelate(before, now, window)
        path[k] = path[k - 1] + (dx * shrink, dy * shrink)  # the scene moved by (dx, dy)
        before = now
    places = np.round((path.max(0) - path) / step).astype(np.int64) * step
    span = places.max(0)
    if not span.any() or (span > np.array(longest_path(width, height))).any():
        return None
    return places


def canvas_frames(frames: np.ndarray, places: np.ndarray) -> np.ndarray:
    """uint8 frames (n, H, W, 3) laid on the canvas at ``places`` (camera_path): (n, H + span y,
    W + span x, 3). Frame k shows itself at its place; where it leaves the canvas uncovered, the
    nearest frame in time that covers it (the earlier on a tie), else its own edge repeated."""
    count, height, width = frames.shape[:3]
    right, bottom = (int(v) for v in places.max(0))
    canvas = np.empty((count, height + bottom, width + right, 3), np.uint8)
    for k in range(count):
        x, y = (int(v) for v in places[k])
        canvas[k, y : y + height, x : x + width] = frames[k]
        uncovered = np.ones(canvas.shape[1:3], bool)
        uncovered[y : y + height, x : x + width] = False
        rows, columns = np.nonzero(uncovered)
        canvas[k, rows, columns] = _shown_at(frames, places, rows, columns, [k])[0]
    return canvas


def canvas_pixels(
    frames: np.ndarray, places: np.ndarray, rows: np.ndarray, columns: np.ndarray
) -> np.ndarray:
    """The canvas of ``frames`` at ``places`` (canvas_frames) at the pixels (``rows``,
    ``columns``) alone: (n, pixels, 3) uint8, without laying out the rest."""
    return _shown_at(frames, places, rows, columns, range(len(frames)))


def _shown_at(
    frames: np.ndarray,
    places: np.ndarray,
    rows: np.ndarray,
    columns: np.ndarray,
    wanted: Iterable[int],
) -> np.ndarray:
    """What the canvas shows at frames ``wanted`` and pixels (rows, columns): (wanted, pixels,
    3), each pixel from the nearest frame in time whose place covers it (the earlier on a tie),
    else from the wanted frame's own edge."""
    count, height, width = frames.shape[:3]
    covers = covering(places, height, width, rows, columns)
    shown = []
    for k in wanted:
        nearest = np.full(len(rows), k)
        open_ = np.ones(len(rows), bool)
        for j in sorted(range(count), key=lambda j: (abs(j - k), j)):
            found = open_ & covers[j]
            nearest[found] = j
            open_ &= ~found
            if not open_.any():
                break
        source_rows = np.clip(rows - places[nearest, 1], 0, height - 1)
        source_columns = np.clip(columns - places[nearest, 0], 0, width - 1)
        shown.append(frames[nearest, source_rows, source_columns])
    return np.stack(shown)


def covering(
    places: np.ndarray, height: int, width: int, rows: np.ndarray, columns: np.ndarray
) -> np.ndarray:
    """(frames, pixels) bool: whether each frame of ``height`` x ``width``, at its place, covers
    each canvas pixel (``rows``, ``columns``)."""
    tops, lefts = places[:, 1:], places[:, :1]
    covers = (rows >= tops) & (rows < tops + height) & (columns >= lefts)
    covers &= columns < lefts + width
    return covers
