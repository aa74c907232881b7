"""The tiles model: a few frames' worth of video as small tiles, each the best low-rank fit of
its own pixels over time, fitted in closed form.

A tiles network covers ``frames`` consecutive frames of a ``width`` x ``height`` video (a streamed
encode gives each part one, encode/parts.py). The frame is cut into ``tile`` x ``tile`` squares
(the last row and column of tiles run past the edge, filled by repeating the edge pixels). Tile j
holds ``r_j`` components, each an RGB picture of the tile (``basis``, (tile, tile, 3)) and its
weight in every frame (``weights``); the tile's picture at frame position q (0 .. frames - 1,
linear between frames) is

    tile_j(q) = sum over its components c of weights[c](q) * basis[c]

and the frame at the learned size is the tiles side by side, cropped to the frame. Any other size
is that picture resized (bilinear, pixel-centre convention, coords.py), any point read samples it
the same way, so reads are continuous in (x, y, t) and frame and point reads agree.

The fit (``start_from``) is exact linear algebra: for each tile, the eigenvectors of the Gram
matrix of its frames (n x n, n the frame count) give its best rank-r fit for every r (the SVD,
Eckart-Young); the ranks are then shared out over all tiles by water-filling: the components that
explain the most squared error are kept, wherever they lie, until the stored numbers reach
``numbers_per_pixel`` per pixel of the frames the network owns (or the fit reaches
``target_psnr``). A still or flat tile keeps one component (or none: black), a busy one many, so
the numbers go where the video needs them. It stores at most one number per pixel by default,
and is not a copy of the frames: 3 x 8 x 8 = 192 values of a tile at one time become about 9
components of 192 + n numbers for n frames.

A hand-held camera moves the picture across the tiles, and a tile that sees a new picture in
every frame needs many components. Where a sample of the tiles says so (PATH_BELOW), the fit
follows the camera (nvfilter/camera.py): each frame is put at its place on a canvas (its whole-pixel
offset along the camera's path, ``places``), the canvas is tiled and fitted as above (what a frame
leaves uncovered shows the nearest frame that covers it), and frame k is the canvas's picture at
k cut at its place; between two frames the place moves between theirs (bilinear), so a pan
played slower moves instead of fading: a hand-held walk gains about a dB or two, and clips whose
camera is still or turns keep their frame (BENCHMARKS-history.md, seventh session).

Frames whose colour came at half size (``chroma="420"``: a 4:2:0 source, which ffmpeg gives as RGB
with each colour sample repeated over a 2x2 block, chroma.py; ``422``: over 1x2) hold only 6
independent values per 2x2 block (4 per 1x2), whatever the source's YCbCr matrix: a colour common
to the block, plus a grey offset per pixel (RGB = Y (1, 1, 1) + a colour term). Such a network
stores each component in those coordinates, orthonormal so that its squared error is the RGB one
(``to_shared``): per block the colour sum / sqrt(k) (3 values) and the k - 1 differences of its
grey sums (Haar for 2x2), a component of (tile / 2, tile / 2, 6) numbers for 420, half of RGB's
(tile, tile, 3). The same numbers then hold up to twice the components. Frames are never exactly
in that layout (8-bit rounding, colours clipped at 0 and 255); where what they lose by it would
outweigh the components it leaves out, the fit is made in RGB too and the better kept (sharp
frames near one number a pixel favour RGB; fewer numbers favour the layout; BENCHMARKS-history.md).
Where a sample of the tiles says so, RGB is fitted first, and the layout only if it could do
better (``TileField._fit_layout``): the same network, one decomposition fewer.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nvfilter.camera import (
    PATH_MAX_SHARE,
    camera_path,
    canvas_frames,
    canvas_pixels,
    covering,
    longest_path,
)
from nvfilter.device import torch_threads
from nvfilter.models.field import VideoField, frames_per_read
from nvfilter.models.spec import SINGLE_VERSION, ModelSpec, PartShape, register

DEFAULT_TILE = 8
"""Tile side in pixels: 8 keeps 52 dB at one number per pixel on tour.mp4 at 720x405 (16: 45 dB,
32: 38 dB; BENCHMARKS-history.md); smaller tiles pay more for their per-frame weights."""
NUMBERS_PER_PIXEL = 1.0
"""The ceiling on stored numbers per pixel of the frames a network owns (issue 17's limit)."""
MAX_TILE = 256
NEGLIGIBLE = 1e-9
"""Components explaining less squared error than this (in [0, 1] units) are not kept: on a
black or still tile they would hold nothing."""
LAYOUT_SAMPLE = 16
"""The fit guesses from every LAYOUT_SAMPLE-th tile whether to decompose RGB or the shared-colour
layout first (TileField._fit_layout). On real parts the guess is never a close call: the layout's
floor is 33 times or more what its components leave out on tour.mp4 and oa4_launch.webm (they
leave out nothing, or almost, on four parts of six), and 2 to 19 times less on the native
1280x720 clip."""
PATH_BELOW = 0.95
"""A part follows the camera's path (nvfilter/camera.py) where a sample of its tiles (PATH_SAMPLE),
fitted both ways with their share of the budget, leaves under this fraction of the squared error
on the frames' own pixels it leaves as it is. Both samples hold the same places of the scene, so
the guess errs low, on the safe side (BENCHMARKS-history.md, seventh session)."""
PATH_SAMPLE = 16
PATH_SAMPLE_MOST = 512
"""One tile in PATH_SAMPLE, and at most PATH_SAMPLE_MOST tiles, decide whether a part follows the
camera's path: fitted both ways, in the layout and in RGB, 512 tiles cost about 0.4 s on a part
of 33 frames (a 960x540 part's fit takes about 1.1 s)."""
FIT_TILES_PER_BATCH = 1024
"""Tiles converted to float and multiplied at once in the fit: 26 MB of floats for 33 frames of
8 x 8 tiles, under the size from which the C library maps fresh pages for each buffer (up to 32
MB), so the buffers are reused; 4096 took 104 MB a batch, and six 960x540 part fits spent 7 s of
12 in the kernel zeroing pages (1.6 s of 9 at 1024; 512 no better)."""


def eigh_on_threads(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.linalg.eigh of a batch of small symmetric matrices on the CPU, the batch split over
    torch's threads, one decomposition a thread: given two threads, MKL shares each small
    decomposition between them, which for 8160 matrices 33 x 33 took 1.05 s against 0.72 s on one
    thread, and 0.48 s split this way (the same LAPACK calls, one matrix at a time). The threads
    are kept for the next batch (_eigh_pool)."""
    threads = torch.get_num_threads()
    if threads == 1 or gram.device.type != "cpu" or len(gram) < 2 * threads:
        return torch.linalg.eigh(gram)
    with torch_threads(1):
        parts = list(_eigh_pool(threads).map(torch.linalg.eigh, gram.chunk(threads)))
    return torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])


@functools.cache
def _eigh_pool(threads: int) -> ThreadPoolExecutor:
    """The threads eigh_on_threads splits its batches over, made once: starting two threads for
    each batch of 1024 tiles was 8% of a 1280x720 part's fit (77 of 920 ms)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="nvfilter-eigh")


def tile_grid(width: int, height: int, tile: int) -> tuple[int, int]:
    """(rows, columns) of tiles covering a frame."""
    return math.ceil(height / tile), math.ceil(width / tile)


def own_frames(frames: int) -> int:
    """The frames a network's budget counts: all but the one it shares with the next part."""
    return max(1, frames - 1)


CHROMA_LAYOUTS = {"444": (1, 1), "422": (1, 2), "420": (2, 2)}
"""How a network stores its components: RGB, or the coordinates of pictures whose colour is
shared by each block of (rows, columns) pixels (module docstring); chroma.LAYOUTS's blocks."""


def tile_values(tile: int, chroma: str) -> int:
    """Numbers in one component's picture of a tile: per block of k pixels, 3 + k - 1."""
    rows, columns = CHROMA_LAYOUTS[chroma]
    k = rows * columns
    return 3 * tile * tile if k == 1 else tile * tile // k * (k + 2)


def component_budget(
    width: int, height: int, frames: int, tile: int, numbers_per_pixel: float,
    chroma: str = "444", canvas: tuple[int, int] | None = None,
) -> int:  # fmt: skip
    """Most components a network may keep and stay within ``numbers_per_pixel`` (each stores
    its picture and its weight per frame; every tile stores its rank): the tiles cover the
    frame, or a ``canvas`` (width, height) whose frames' places (two numbers each) count too."""
    rows, columns = tile_grid(*(canvas or (width, height)), tile)
    numbers = numbers_per_pixel * width * height * own_frames(frames) - rows * columns
    if canvas is not None:
        numbers -= 2 * frames
    return max(0, int(numbers // (tile_values(tile, chroma) + frames)))


_DETAILS = {
    2: torch.tensor([[1.0, -1.0]]) / math.sqrt(2),
    4: torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]) / 2,
}
"""Orthonormal differences of a block's k pixels (rows first): for 2x2, top - bottom, left -
right and the diagonal (Haar)."""


def to_shared(pixels: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """RGB tiles (..., tile, tile, 3) -> coordinates (..., tile/rows, tile/columns, k + 2) of
    their orthogonal projection onto the pictures whose colour each block of k = rows x columns
    pixels shares: the block's colour sum / sqrt(k) (3), then the differences of its grey sums
    (R + G + B) / sqrt(3) (k - 1)."""
    *rest, tile, _, _ = pixels.shape
    k = rows * columns
    blocks = pixels.reshape(*rest, tile // rows, rows, tile // columns, columns, 3)
    flat = blocks.transpose(-4, -3).reshape(*rest, tile // rows, tile // columns, k, 3)
    colour = flat.sum(-2) / math.sqrt(k)
    details = flat.sum(-1) @ _DETAILS[k].to(pixels).T / math.sqrt(3)
    return torch.cat((colour, details), -1)


@functools.lru_cache(maxsize=8)
def _projection(tile: int, chroma: str) -> torch.Tensor:
    """to_shared of every unit RGB tile: the matrix taking a flattened RGB tile to its
    shared-colour coordinates, (tile * tile * 3, values); orthonormal columns, so its transpose
    takes coordinates back to RGB (the render does)."""
    unit = torch.eye(3 * tile * tile, dtype=torch.float64).view(-1, tile, tile, 3)
    return to_shared(unit, *CHROMA_LAYOUTS[chroma]).reshape(3 * tile * tile, -1).float()


class TileField(VideoField):
    """Per-tile low-rank pictures over a few frames, fitted in closed form."""

    kind = "tiles"
    closed_form = True
    _cache_key: tuple[float, int, int] | None
    _cache: torch.Tensor
    basis: nn.Parameter
    weights: nn.Parameter
    ranks: nn.Parameter

    def __init__(
        self,
        width: int,
        height: int,
        frames: int,
        tile: int = DEFAULT_TILE,
        components: int = 0,
        numbers_per_pixel: float = NUMBERS_PER_PIXEL,
        target_psnr: float | None = None,
        chroma: str = "444",
        canvas_width: int | None = None,
        canvas_height: int | None = None,
    ) -> None:
        super().__init__()
        if min(width, height, frames, tile) < 1 or components < 0:
            raise ValueError("every size in the architecture must be positive")
        if (canvas_width, canvas_height) != (None, None) and not (
            canvas_width is not None
            and canvas_height is not None
            and 0 <= canvas_width - width <= longest_path(width, height)[0]
            and 0 <= canvas_height - height <= longest_path(width, height)[1]
        ):
            raise ValueError(f"canvas {canvas_width}x{canvas_height}: the frame's size, up to "
                             f"{PATH_MAX_SHARE:.0%} more on each side")  # fmt: skip
        if tile > MAX_TILE:
            raise ValueError(f"tiles of at most {MAX_TILE} pixels")
        if chroma not in CHROMA_LAYOUTS or tile % max(CHROMA_LAYOUTS[chroma]):
            raise ValueError(f"chroma {chroma!r}: 444, or 422 or 420 with an even tile")
        rows, columns = tile_grid(canvas_width or width, canvas_height or height, tile)
        if components > rows * columns * frames:
            raise ValueError(f"{components} components: at most {frames} a tile")
        if not 0 < numbers_per_pixel <= 3:
            raise ValueError(f"numbers_per_pixel {numbers_per_pixel}: above 0, at most 3")
        self.width, self.height, self.frames, self.tile = width, height, frames, tile
        self.numbers_per_pixel, self.target_psnr = numbers_per_pixel, target_psnr
        self.chroma = chroma
        self.follow_camera = True
        """Whether the fit may follow the camera's path (PATH_BELOW); not stored."""
        self._use_canvas(canvas_width, canvas_height)
        self._shape(components)
        self.register_load_state_dict_post_hook(lambda module, keys: module._check_ranks())
        self.forget_render_cache()

    def _use_canvas(self, width: int | None, height: int | None) -> None:
        """Tile a canvas of ``width`` x ``height`` whose frames each have a place (``places``,
        (frames, 2): x, y of the frame's top-left corner, whole pixels), or the frame itself
        (None, None). The tensors are made again by ``_shape``."""
        self.canvas = None if width is None or height is None else (width, height)
        self.rows, self.columns = tile_grid(*(self.canvas or (self.width, self.height)), self.tile)

    def _shape(self, components: int) -> None:
        """(Re)make the tensors for ``components`` components (zero, no components kept)."""
        self.components = components
        tile = self.tile
        rows, columns = CHROMA_LAYOUTS[self.chroma]
        shape = (tile // rows, tile // columns, 3 + rows * columns - 1 if rows * columns > 1 else 3)
        self.basis = nn.Parameter(torch.zeros(components, *shape), requires_grad=False)
        self.weights = nn.Parameter(torch.zeros(components, self.frames), requires_grad=False)
        self.ranks = nn.Parameter(torch.zeros(self.rows * self.columns), requires_grad=False)
        """Components per tile, tile rows first; stored as floats (safetensors networks are
        floating point), whole numbers checked on load."""
        if self.canvas is not None:
            self.places = nn.Parameter(torch.zeros(self.frames, 2), requires_grad=False)
            """Each frame's top-left corner on the canvas (x, y), whole pixels as floats."""
        elif "places" in self._parameters:
            del self.places
        self._layout: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def _check_ranks(self) -> None:
        """Refuse ranks that are not whole numbers from 0 to ``frames`` adding up to the
        components (raised as a RuntimeError, which the .nvw reader reports in one line)."""
        if self.ranks.device.type == "meta":
            return
        ranks = self.ranks.detach()
        whole = torch.isfinite(ranks).all() and bool((ranks == ranks.round()).all())
        if not whole or ranks.min() < 0 or ranks.max() > self.frames:
            raise RuntimeError(f"tile ranks must be whole numbers from 0 to {self.frames}")
        if int(ranks.sum()) != self.components:
            raise RuntimeError(
                f"tile ranks add up to {int(ranks.sum())}, not the {self.components} components"
            )
        if self.canvas is not None:
            places = self.places.detach()
            room = places.new_tensor([self.canvas[0] - self.width, self.canvas[1] - self.height])
            whole = torch.isfinite(places).all() and bool((places == places.round()).all())
            if not whole or places.min() < 0 or bool((places > room).any()):
                raise RuntimeError("frame places must be whole pixels inside the canvas")
        self._layout = None

    @staticmethod
    def tensor_count(architecture: dict[str, Any]) -> int:
        return 4 if "canvas_width" in architecture else 3

    # ---- reads ----------------------------------------------------------------------------

    def layout(self, count: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The compressed-sparse-row layout of the (tiles x count, components) matrix that sums
        each tile's components at ``count`` frame positions, its rows (tile, position), tile
        first: row offsets, the component of each stored value, and where each value is in the
        (count, components) weights flattened. Made once for each count."""
        if self._layout is None:
            self._layout = {}
        if count not in self._layout:
            ranks = self.ranks.detach().round().long()
            device = ranks.device
            row_lengths = ranks.repeat_interleave(count)
            offsets = torch.zeros(len(row_lengths) + 1, dtype=torch.int64, device=device)
            offsets[1:] = row_lengths.cumsum(0)
            firsts = torch.zeros(len(ranks), dtype=torch.int64, device=device)
            firsts[1:] = ranks.cumsum(0)[:-1]  # each tile's first component
            within = torch.arange(int(offsets[-1]), device=device)
            within -= offsets[:-1].repeat_interleave(row_lengths)
            columns = firsts.repeat_interleave(count).repeat_interleave(row_lengths) + within
            positions = torch.arange(count, device=device).repeat(len(ranks))
            read = positions.repeat_interleave(row_lengths) * self.components + columns
            self._layout[count] = (offsets, columns, read)
        return self._layout[count]

    def native_pictures(self, positions: list[float]) -> list[torch.Tensor]:
        """The frames (3, height, width) at frame positions (0 .. frames - 1, linear between
        frames) at the learned size, unclamped, each a view of (height, width, 3) memory, which
        the 8-bit frame for ffmpeg takes without a copy.

        One sparse product makes them all: its rows are (tile, position), so a tile's components
        are read from memory once for all the positions and from the cache after. A frame reads
        every component (139 MB of pictures for 48 frames of 1280x720), so read one at a time
        it is bound by memory (field.READ_FRAMES)."""
        n, count = self.frames, len(positions)
        weights = self.weights.detach()
        mixes, between = [], []
        for position in positions:
            position = min(max(position, 0.0), n - 1.0)
            before = min(int(math.floor(position)), max(n - 2, 0))
            frac = position - before
            if frac == 0.0 or n == 1:
                mixes.append(weights[:, before])
            else:
                mixes.append(torch.lerp(weights[:, before], weights[:, before + 1], frac))
            between.append((before, frac))
        tile, values = self.tile, tile_values(self.tile, self.chroma)
        if self.components == 0:
            tiles = self.basis.new_zeros(self.rows * self.columns * count, values)
        else:
            offsets, columns, read = self.layout(count)
            mixed = torch.stack(mixes).view(-1)[read]
            with warnings.catch_warnings():  # torch calls its sparse CSR tensors beta
                warnings.simplefilter("ignore")
                summing = torch.sparse_csr_tensor(
                    offsets, columns, mixed, size=(len(offsets) - 1, self.components)
                )
                tiles = self.basis.new_empty(len(offsets) - 1, values)
                # into itself: `summing @ basis` fills a matrix of zeros and copies it first
                torch.addmm(tiles, summing, self.basis.detach().view(-1, values), beta=0, out=tiles)
        if self.chroma != "444":
            tiles = tiles @ self.projection().T
        tiles = tiles.view(self.rows, self.columns, count, tile, tile, 3)
        shape = (self.rows * tile, self.columns * tile, 3)
        return [
            self._frame_of(tiles[:, :, k].permute(0, 2, 1, 3, 4).reshape(shape), *between[k])
            for k in range(count)
        ]

    def _frame_of(self, picture: torch.Tensor, before: int, frac: float) -> torch.Tensor:
        """The frame (3, height, width), a view of (height, width, 3) memory, cut from the
        tiles' ``picture`` (rows x tile, columns x tile, 3) at the frame position ``before`` +
        ``frac``: at its place on the canvas, between two frames' places that bilinearly (the
        canvas moves as the camera did); else at the top-left corner."""
        height, width = self.height, self.width
        if self.canvas is None:
            return picture[:height, :width].permute(2, 0, 1)
        places = self.places.detach()
        at = places[before] if frac == 0.0 else torch.lerp(places[before], places[before + 1], frac)
        x, y = (float(v) for v in at)
        left, top = math.floor(x), math.floor(y)
        across, down = x - left, y - top
        frame = picture[top : top + height, left : left + width]
        if across or down:  # the four whole-pixel cuts around the place, weighted
            frame = frame * ((1 - across) * (1 - down))
            for dx, dy, share in ((1, 0, across * (1 - down)), (0, 1, (1 - across) * down),
                                  (1, 1, across * down)):  # fmt: skip
                if share:
                    cut = picture[top + dy : top + dy + height, left + dx : left + dx + width]
                    frame.add_(cut, alpha=share)
        return frame.permute(2, 0, 1)

    def native_picture(self, position: float) -> torch.Tensor:
        """The frame (3, height, width) at a frame position at the learned size, unclamped
        (native_pictures)."""
        return self.native_pictures([position])[0]

    def pictures(self, positions: list[float], width: int, height: int) -> list[torch.Tensor]:
        """The frames (3, height, width) at frame positions, resized from the learned size,
        unclamped; read frames_per_read at a time."""
        learned = math.prod(self.canvas or (self.width, self.height))
        at_once = frames_per_read(max(learned, width * height))
        pictures = []
        for first in range(0, len(positions), at_once):
            for picture in self.native_pictures(positions[first : first + at_once]):
                if (height, width) != (self.height, self.width):
                    picture = F.interpolate(
                        picture.unsqueeze(0), size=(height, width), mode="bilinear",
                        align_corners=False,
                    )[0]  # fmt: skip
                pictures.append(picture)
        return pictures

    def render_images(self, times: list[float], width: int, height: int) -> list[torch.Tensor]:
        """The frames at times ``times``, (3, height, width) in [0, 1], read together; the
        last is kept as render_image's."""
        positions = [(t + 1) * 0.5 * self.frames - 0.5 for t in times]
        images = [picture.clamp_(0, 1) for picture in self.pictures(positions, width, height)]
        self._cache_key, self._cache = (times[-1], width, height), images[-1]
        return images

    def render_image(self, t: float, width: int, height: int) -> torch.Tensor:
        """The frame at time t, (3, height, width) in [0, 1]; kept until the next (t, size)."""
        if self._cache_key != (t, width, height):
            self.render_images([t], width, height)
        return self._cache

    def render_rows(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> torch.Tensor:
        return self.render_image(t, width, height)[:, row_start:row_stop].reshape(3, -1).T

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3) at points (B, 3): the picture at each distinct time, sampled at the
        points (bilinear, as frame reads resize it)."""
        x, y, t = coords.unbind(-1)
        out = coords.new_zeros(coords.shape[0], 3)
        for time in t.unique().tolist():
            index = (t == time).nonzero().squeeze(1)
            position = (time + 1) * 0.5 * self.frames - 0.5
            grid = torch.stack((x[index], y[index]), -1).view(1, 1, -1, 2)
            rgb = F.grid_sample(
                self.native_picture(position).unsqueeze(0),
                grid,
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )[0, :, 0]
            out[index] = rgb.T
        return out.clamp(0, 1)

    def forget_render_cache(self) -> None:
        self._cache_key = None
        self._cache = torch.empty(0)

    # ---- the fit --------------------------------------------------------------------------

    def _tiles(self, frames: torch.Tensor, places: np.ndarray | None = None) -> torch.Tensor:
        """uint8 frames (n, H, W, 3), laid on the canvas at ``places`` if given
        (camera.canvas_frames), as tiles (tiles, n, tile * tile * 3), tile rows first, the edge
        pixels repeated to whole tiles (one uint8 copy of the frames)."""
        if places is not None:
            frames = torch.from_numpy(canvas_frames(frames.numpy(), places))
        n, height, width = frames.shape[:3]
        tile = self.tile
        padded_h, padded_w = self.rows * tile, self.columns * tile
        if (padded_h, padded_w) != (height, width):
            padded = frames.new_empty(n, padded_h, padded_w, 3)
            padded[:, :height, :width] = frames
            padded[:, height:, :width] = frames[:, -1:]
            padded[:, :, width:] = padded[:, :, width - 1 : width]
            frames = padded
        view = frames.view(n, self.rows, tile, self.columns, tile, 3).permute(1, 3, 0, 2, 4, 5)
        return view.reshape(self.rows * self.columns, n, 3 * tile * tile)

    def _coords(self, pixels: torch.Tensor) -> torch.Tensor:
        """RGB tiles (count, n, tile * tile * 3) in [0, 1] as the floats the components are
        made of: themselves, or their shared-colour coordinates (count, n, values)."""
        return pixels if self.chroma == "444" else pixels @ self.projection()

    def projection(self) -> torch.Tensor:
        """(tile * tile * 3, values): RGB tile -> shared-colour coordinates (to_shared as one
        matrix; its transpose takes them back, the projection being orthonormal)."""
        return _projection(self.tile, self.chroma).to(self.basis.device)

    @torch.no_grad()
    def start_from(
        self, frames: torch.Tensor, progress: Callable[[int], None] | None = None,
        cuts: Sequence[int] = (),
    ) -> None:  # fmt: skip
        """Fit the network to uint8 frames (n, H, W, 3) at the learned size: every tile's
        eigen-decomposition, the components shared out by water-filling, their pictures and
        weights. Replaces the tensors (their count is the fit's)."""
        if tuple(frames.shape) != (self.frames, self.height, self.width, 3):
            raise ValueError("the frames are not the network's")
        n = self.frames
        self._use_canvas(None, None)
        tiles = self._tiles(frames)
        moved = self._along_camera(frames, tiles)
        places = None if moved is None else moved[1]
        if moved is not None:
            tiles = moved[0]
        count = self.rows * self.columns
        eigenvalues, vectors, ranks = self._fit_layout(tiles)
        values = tile_values(self.tile, self.chroma)
        kept = int(ranks.sum())
        self._shape(kept)
        self.ranks.copy_(ranks.float())
        if places is not None:
            self.places.copy_(torch.from_numpy(places).float())
        scale = math.sqrt(n)
        done = 0
        for first in range(0, count, FIT_TILES_PER_BATCH):
            last = min(count, first + FIT_TILES_PER_BATCH)
            rank = ranks[first:last]
            widest = int(rank.max()) if len(rank) else 0
            if widest == 0:
                continue
            pixels = self._coords(tiles[first:last].float().div_(255.0))
            directions = vectors[first:last, :, :widest]  # (tiles, n, widest)
            pictures = torch.bmm(directions.transpose(1, 2), pixels) / scale
            keep = torch.arange(widest)[None, :] < rank[:, None]  # (tiles, widest)
            total = int(keep.sum())
            self.basis.view(kept, values)[done : done + total] = pictures[keep]
            self.weights[done : done + total] = directions.transpose(1, 2)[keep] * scale
            done += total
        self.forget_render_cache()

    def _along_camera(
        self, frames: torch.Tensor, tiles: torch.Tensor
    ) -> tuple[torch.Tensor, np.ndarray] | None:
        """The tiles of the frames laid along the camera's path (nvfilter/camera.py) and their
        places, where a sample of the tiles says that pays (PATH_BELOW), the canvas then in use;
        else None, the frame itself in use. The sample is fitted in the network's layout and in
        RGB, and each way is judged by the better of the two, as the fit then keeps the better
        (_fit_layout): RGB alone would follow a path where the layout, which wins, gains nothing
        (a rocket's launch), and the layout alone one where RGB, which wins, loses (tour.mp4)."""
        if not self.follow_camera:
            return None
        places = camera_path(frames.numpy(), max(CHROMA_LAYOUTS[self.chroma]))
        if places is None:
            return None
        index = self._sample(len(tiles))
        as_is = self._best_sampled_error(tiles[index], index, np.zeros_like(places), len(tiles))
        rows, columns = index // self.columns, index % self.columns
        right, bottom = (int(v) for v in places.max(0))
        self._use_canvas(self.width + right, self.height + bottom)
        count = self.rows * self.columns
        index = self._same_places(rows, columns, places[self.frames // 2])
        moved = self._canvas_tiles(frames, places, index)
        if self._best_sampled_error(moved, index, places, count) < PATH_BELOW * as_is:
            return self._tiles(frames, places), places
        self._use_canvas(None, None)
        return None

    def _best_sampled_error(
        self, sample: torch.Tensor, index: torch.Tensor, places: np.ndarray, count: int
    ) -> float:
        """_sampled_error in the network's layout or in RGB, whichever is less."""
        layout, errors = self.chroma, []
        try:
            for chroma in dict.fromkeys((layout, "444")):
                self.chroma = chroma
                errors.append(self._sampled_error(sample, index, places, count))
        finally:
            self.chroma = layout
        return min(errors)

    def _same_places(
        self, rows: torch.Tensor, columns: torch.Tensor, place: np.ndarray
    ) -> torch.Tensor:
        """The canvas tiles (in order, once each) that hold what the frame's tiles at ``rows``,
        ``columns`` show in the middle frame, which sits at ``place`` on the canvas: so the two
        samples see the same scene, and their errors differ by the path, not by the draw."""
        tile = self.tile
        down = ((rows * tile + int(place[1])) // tile).clamp(max=self.rows - 1)
        across = ((columns * tile + int(place[0])) // tile).clamp(max=self.columns - 1)
        return torch.unique(down * self.columns + across)

    @staticmethod
    def _sample(count: int) -> torch.Tensor:
        """One in PATH_SAMPLE of ``count`` tiles (at most PATH_SAMPLE_MOST), picked at random
        with a fixed seed, in order: every PATH_SAMPLE-th tile would be a few fixed columns where
        the columns are a multiple of it."""
        chosen = torch.Generator().manual_seed(0)
        size = min(-(-count // PATH_SAMPLE), PATH_SAMPLE_MOST)
        return torch.randperm(count, generator=chosen)[:size].sort().values

    def _tile_pixels(self, index: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The (rows, columns) on the tiles' grid of every pixel of tiles ``index``, tile by
        tile, each tile's rows first (as _tiles lays a tile's values out)."""
        tile, count = self.tile, len(index)
        steps = torch.arange(tile)
        ys = (index // self.columns)[:, None] * tile + steps  # (tiles, tile)
        xs = (index % self.columns)[:, None] * tile + steps
        rows = ys[:, :, None].expand(count, tile, tile).reshape(-1)
        columns = xs[:, None, :].expand(count, tile, tile).reshape(-1)
        return rows.numpy(), columns.numpy()

    def _canvas_tiles(
        self, frames: torch.Tensor, places: np.ndarray, index: torch.Tensor
    ) -> torch.Tensor:
        """Tiles ``index`` of the canvas of the frames at ``places`` (as _tiles lays them out,
        edge pixels repeated past the canvas), made without laying out the rest."""
        assert self.canvas is not None
        rows, columns = self._tile_pixels(index)
        rows, columns = rows.clip(max=self.canvas[1] - 1), columns.clip(max=self.canvas[0] - 1)
        shown = torch.from_numpy(canvas_pixels(frames.numpy(), places, rows, columns))
        return shown.view(self.frames, len(index), -1).transpose(0, 1)

    def _sampled_error(
        self, sample: torch.Tensor, index: torch.Tensor, places: np.ndarray, count: int
    ) -> float:
        """The mean squared error over the frames' own pixels (each frame at its place on the
        tiles' canvas) that a fit of the ``sample`` of tiles (``index`` of ``count``) leaves
        with its share of the budget, in the network's layout: a canvas's pixels that no frame
        shows cost nothing."""
        pixels = sample.float().div_(255.0)
        coords, eigenvalues, vectors, floor = self._decompose_batch(pixels)
        ranks = self._share_out(eigenvalues, floor, len(index) / count)
        widest = max(1, int(ranks.max()))
        kept = vectors[:, :, :widest] * (torch.arange(widest) < ranks[:, None])[:, None, :]
        fitted = torch.bmm(kept, torch.bmm(kept.transpose(1, 2), coords))
        if self.chroma != "444":
            fitted = fitted @ self.projection().T
        shown = self._shown(index, places)
        return float((pixels - fitted).square_().mul_(shown).sum()) / max(1, int(shown.sum()))

    def _shown(self, index: torch.Tensor, places: np.ndarray) -> torch.Tensor:
        """(tiles, frames, tile * tile * 3) float: 1 where tile ``index``'s pixel in a frame is
        one of that frame's own, the frame at ``places`` (frames, 2) on the tiles' grid."""
        covers = covering(places, self.height, self.width, *self._tile_pixels(index))
        shown = torch.from_numpy(covers).view(self.frames, len(index), -1, 1).expand(-1, -1, -1, 3)
        return shown.reshape(self.frames, len(index), -1).transpose(0, 1).float()

    def _fit_layout(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every tile's eigenvalues, eigenvectors and rank in the network's layout, or in RGB
        where that fits better (the module docstring); sets ``chroma`` to the one kept.

        The shared-colour layout is decomposed first, and RGB too where the layout's own error
        (its floor) outweighs what its components leave out, or misses the target PSNR; the
        better of the two is kept. Where a sample of the tiles says RGB will be tried (and no
        target is set), RGB goes first: if what it leaves out is under the layout's floor, the
        layout cannot do better and is never decomposed (on tour.mp4 at 960x540, a third of the
        fit); else the layout is decomposed too and the better kept, as before."""
        layout, rgb = self.chroma, None
        if layout != "444" and self.target_psnr is None and self._rgb_likely(tiles):
            rgb = self._fit_rgb(tiles)
            if rgb[3] < self._floor(tiles):  # the layout's error is larger, whatever it holds
                self.chroma = "444"
                return rgb[:3]
        eigenvalues, vectors, floor = self._decompose(tiles)
        ranks = self._share_out(eigenvalues, floor)
        error = floor + self._dropped(eigenvalues, ranks)
        if (
            rgb is None
            and layout != "444"
            and (
                floor > error - floor  # the layout's own error outweighs what it leaves out
                if self.target_psnr is None
                else floor >= self._allowed()  # it alone misses the target
            )
        ):  # then RGB too, and the better of the two
            rgb = self._fit_rgb(tiles)
        if rgb is not None and rgb[3] < error:
            self.chroma = "444"
            return rgb[:3]
        return eigenvalues, vectors, ranks

    def _fit_rgb(
        self, tiles: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """Every tile's eigenvalues, eigenvectors and rank in RGB, and the squared error the
        components left out leave (``chroma`` is left as it was)."""
        layout, self.chroma = self.chroma, "444"
        try:
            eigenvalues, vectors, _ = self._decompose(tiles)
            ranks = self._share_out(eigenvalues)
            return eigenvalues, vectors, ranks, self._dropped(eigenvalues, ranks)
        finally:
            self.chroma = layout

    def _rgb_likely(self, tiles: torch.Tensor) -> bool:
        """Whether the layout's floor outweighs what its components leave out on every
        LAYOUT_SAMPLE-th tile (with that share of the budget): what decides whether RGB is
        tried, guessed at a sixteenth of a decomposition's cost."""
        sample = tiles[::LAYOUT_SAMPLE]
        eigenvalues, _, floor = self._decompose(sample)
        ranks = self._share_out(eigenvalues, floor, len(sample) / len(tiles))
        return floor > self._dropped(eigenvalues, ranks)

    def _floor(self, tiles: torch.Tensor) -> float:
        """The squared error of the frames off the network's layout (0 for RGB)."""
        floor = 0.0
        for first in range(0, len(tiles), FIT_TILES_PER_BATCH):
            pixels = tiles[first : first + FIT_TILES_PER_BATCH].float().div_(255.0)
            floor += float(pixels.square().sum()) - float(self._coords(pixels).square().sum())
        return floor

    def _decompose(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Every tile's eigenvalues (tiles, n, descending) and eigenvectors (tiles, n, n) of its
        frames' Gram matrix in the network's layout, and the squared error of the frames off
        that layout (0 for RGB)."""
        count, n = tiles.shape[:2]
        eigenvalues = torch.empty(count, n, dtype=torch.float64)
        vectors = torch.empty(count, n, n)
        floor = 0.0
        for first in range(0, count, FIT_TILES_PER_BATCH):
            last = min(count, first + FIT_TILES_PER_BATCH)
            _, found, directions, dropped = self._decompose_batch(
                tiles[first:last].float().div_(255.0)
            )
            eigenvalues[first:last], vectors[first:last] = found, directions
            floor += dropped
        return eigenvalues, vectors, floor

    def _decompose_batch(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """Float tiles (tiles, n, tile * tile * 3) in [0, 1]: their coordinates in the network's
        layout, the eigenvalues (descending) and eigenvectors of their Gram matrices there, and
        the squared error of the tiles off the layout (0 for RGB)."""
        coords = self._coords(pixels)
        gram = torch.bmm(coords, coords.transpose(1, 2)).double()
        floor = 0.0
        if self.chroma != "444":  # what the projection drops
            floor = float(pixels.square().sum()) - float(gram.diagonal(0, 1, 2).sum())
        found, directions = eigh_on_threads(gram)  # ascending
        return coords, found.flip(1).clamp_min(0), directions.flip(2).float(), floor

    @staticmethod
    def _dropped(eigenvalues: torch.Tensor, ranks: torch.Tensor) -> float:
        """Squared error the components left out leave."""
        left_out = torch.arange(eigenvalues.shape[1])[None, :] >= ranks[:, None]
        return float(eigenvalues[left_out].sum())

    def _allowed(self) -> float:
        """The squared error (in [0, 1] units, summed) the target PSNR allows."""
        assert self.target_psnr is not None
        return 10 ** (-self.target_psnr / 10) * self.frames * self.height * self.width * 3

    def _share_out(
        self, eigenvalues: torch.Tensor, floor: float = 0.0, fraction: float = 1.0
    ) -> torch.Tensor:
        """Ranks per tile: the components that explain the most squared error, kept in that
        order up to the budget of numbers (``fraction`` of it, for a sample of the tiles), or
        until the error (with ``floor``, the layout's own) is under the target PSNR's."""
        budget = component_budget(
            self.width, self.height, self.frames, self.tile, self.numbers_per_pixel, self.chroma,
            self.canvas,
        )  # fmt: skip
        budget = int(budget * fraction)
        order = eigenvalues.flatten().sort(descending=True)
        useful = int((order.values > NEGLIGIBLE).sum())  # a black tile needs no component
        keep = min(budget, useful)
        if self.target_psnr is not None:
            allowed = self._allowed() - floor
            left = order.values.sum() - order.values.cumsum(0)  # error after each component
            enough = int(torch.searchsorted(-left, torch.tensor([-allowed], dtype=left.dtype)))
            keep = min(keep, enough + 1)
        chosen = torch.zeros(eigenvalues.numel(), dtype=torch.bool)
        chosen[order.indices[:keep]] = True
        return chosen.view_as(eigenvalues).sum(1)

    # ---- storage --------------------------------------------------------------------------

    @property
    def canvas_width(self) -> int | None:
        """The canvas's width where the fit follows the camera (stored), else None."""
        return None if self.canvas is None else self.canvas[0]

    @property
    def canvas_height(self) -> int | None:
        """The canvas's height where the fit follows the camera (stored), else None."""
        return None if self.canvas is None else self.canvas[1]


TILES_VERSION = SINGLE_VERSION + 2
CANVAS_VERSION = TILES_VERSION + 1
"""The .nvw versions of files holding tiles networks (5), and one that follows the camera (6:
older readers refuse its places in one line)."""


def format_version(architecture: dict[str, Any]) -> int:
    return CANVAS_VERSION if "canvas_width" in architecture else TILES_VERSION


def part_architecture(part: PartShape) -> dict[str, Any]:
    """A part's network before its fit (its components are the fit's; it stores them in the
    frames' ``chroma`` layout)."""
    return {"type": "tiles", "width": part.width, "height": part.height, "frames": part.frames,
            "tile": DEFAULT_TILE, "components": 0, "numbers_per_pixel": NUMBERS_PER_PIXEL,
            "target_psnr": part.settings["target_psnr"], "chroma": part.chroma}  # fmt: skip


def describe_parts(part: PartShape, count: str) -> str:
    target = part.settings["target_psnr"]
    stop = f", or fewer once {target:g} dB is reached" if target is not None else ""
    return (
        f"tiles in {count} of {part.part_frames} frames (+1 shared), {DEFAULT_TILE}x"
        f"{DEFAULT_TILE} tiles, each fitted in closed form (its best low-rank fit over time), "
        f"at most {NUMBERS_PER_PIXEL:g} stored number a pixel{stop}"
    )


def stored_bytes(settings: Mapping[str, Any], width: int, height: int, frames: int) -> int | None:
    """With no PSNR target the fit stores close to NUMBERS_PER_PIXEL numbers a pixel (0.99 on
    tour.mp4) in the stored dtype."""
    if settings["target_psnr"] is not None:
        return None
    size = 2 if settings["dtype"] == "float16" else 4
    return int(NUMBERS_PER_PIXEL * width * height * frames * size)


SPEC = register(
    ModelSpec(
        name="tiles",
        network=TileField,
        help="each 8x8 tile of each part the best low-rank fit of its pixels over time, found "
        "in closed form, in seconds; about one float16 number a pixel",
        # parts of 32 frames + 1 shared, as the segments model's
        defaults={"segment_frames": 32},
        streamed=True,
        # its pictures and weights are fitted in closed form and sit near 1: in float16 the
        # file is half the size for 0.02 dB (Big Buck Bunny at 1280x720: 56.59 -> 56.57 dB)
        dtype="float16",
        refuses=("footprint", "hidden_features", "hidden_layers", "channels", "levels"),
        refuse_reason="it is fitted in closed form, tile by tile",
        # the frames laid out as tiles (3 bytes), the float32 components (4 at one number a
        # pixel) and the tiles' eigenvectors (2 a colour layout, both tried: 4); measured 9.9 a
        # pixel at 3840x2160 (a part that follows the camera tiles up to 1.56 times the frame)
        fit_bytes_per_pixel=12,
        format_version=format_version,
        part_architecture=part_architecture,
        describe_parts=describe_parts,
        stored_bytes=stored_bytes,
    )
)
