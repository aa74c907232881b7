"""The hybrid model: multi-resolution factorized space-time planes read by bilinear interpolation,
fed to a small MLP head (K-Planes, Fridovich-Keil et al. 2023, applied to (x, y, t)).

At each of ``levels`` resolutions (full, 1/2, 1/4, ... of the video's width and height; full frame
count in time) there are three planes of ``channels`` features: xy (width x height), xt (width x
frames) and yt (height x frames). A point (x, y, t) reads each plane by bilinear interpolation at
pixel-centre convention (align_corners=False, clamped at the border, as coords.py), multiplies the
three reads of a level channel by channel, concatenates the levels and maps the result through
``Linear -> ReLU`` x head_layers ``-> Linear -> Sigmoid`` to RGB. (x, y, t) stays continuous, so
any frame rate and size can be decoded.

With ``footprint`` (``--footprint``) the full-resolution planes are instead read, along x and y,
as the average of their linear interpolant over the pixel the point stands for (a learned pixel
in training, an output pixel in decoding; ``pixel`` in forward): each pixel is learned as an
area, so a larger output shows the sharper picture under it (BENCHMARKS-history.md, issue 5).

All planes live in one parameter ``table`` of shape (rows, channels), so one gather reads them
all: level by level, planes in the order xy, xt, yt, each plane's cells in row-major order of
(second axis, first axis), i.e. cell (i, j) of a plane of size (a, b) is row offset + j * a + i.

A ReLU head measured better than a SIREN head (w0 = 30, the paper's initialisation), and a
32-wide head at 3x the learning rate as well as a 64-wide one at a third of the decoding cost, so
it is the default (BENCHMARKS-history.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nvfilter.models.field import VideoField
from nvfilter.models.spec import ModelSpec, register

HEAD_CHUNK = 8192
"""Pixels per head evaluation when filling a grid on a CPU: keeps the activations in cache (a
GPU takes the whole band at once)."""
XY_CACHE_BYTES = 256 * 2**20
"""Largest resampled xy feature image kept between frames while decoding (1080p with 24 channels)."""
GRID_LR_SCALE = 10.0
"""The planes learn at this multiple of the head's learning rate (Adam)."""


def plane_shapes(width: int, height: int, frames: int, levels: int) -> list[tuple[int, int]]:
    """(first axis, second axis) sizes of every plane, level by level: xy, xt, yt."""
    shapes = []
    for level in range(levels):
        w = max(2, width >> level)
        h = max(2, height >> level)
        t = max(2, frames)
        shapes += [(w, h), (w, t), (h, t)]
    return shapes


def auto_channels(width: int, height: int, frames: int) -> int:
    """Channels per plane for a video of this size: 16, or 8 where the planes get large."""
    rows = sum(a * b for a, b in plane_shapes(width, height, frames, 3))
    return 16 if rows <= 400_000 else 8


def _axis_lerp(
    size: int, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neighbour indices and weight of the upper one for continuous cell positions on an axis."""
    pos = positions.clamp(0, size - 1)
    lower = pos.floor().clamp(max=max(size - 2, 0))
    upper = (lower + 1).clamp(max=size - 1)
    return lower.long(), upper.long(), pos - lower


def _resample(values: torch.Tensor, dim: int, size_out: int, start: int, stop: int) -> torch.Tensor:
    """Linear interpolation of ``values`` along ``dim`` at cells start:stop of a size_out axis."""
    size_in = values.shape[dim]
    centres = torch.arange(start, stop, dtype=torch.float32, device=values.device) + 0.5
    lower, upper, frac = _axis_lerp(size_in, centres * (size_in / size_out) - 0.5)
    shape = [1] * values.dim()
    shape[dim] = -1
    frac = frac.view(shape)
    return values.index_select(dim, lower) * (1 - frac) + values.index_select(dim, upper) * frac


def _hat_integral(u: torch.Tensor) -> torch.Tensor:
    """Integral of the unit hat function (linear interpolation's kernel) from -inf to u."""
    u = u.clamp(-1, 1)
    return torch.where(u < 0, 0.5 * (u + 1) ** 2, 1 - 0.5 * (1 - u) ** 2)


def _footprint_taps(
    size: int, positions: torch.Tensor, width: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells and weights (..., 3) that give the average, over a pixel ``width`` cells wide
    centred at each position, of the axis's linear interpolant (edge cells repeated outward).

    The average of the hat-interpolant over a box is the box convolved with the hat, whose
    support for a width of at most one cell spans the three cells nearest the position; wider
    pixels (a smaller output than the learned size) are read as one cell wide.
    """
    width = min(max(width, 1e-2), 1.0)
    pos = positions.clamp(0, size - 1)
    cells = pos.round().unsqueeze(-1) + torch.tensor([-1.0, 0.0, 1.0], device=pos.device)
    offset = pos.unsqueeze(-1) - cells
    weights = (_hat_integral(offset + width / 2) - _hat_integral(offset - width / 2)) / width
    return cells.clamp(0, size - 1).long(), weights


def _resample_footprint(
    values: torch.Tensor, dim: int, size_out: int, start: int, stop: int
) -> torch.Tensor:
    """Like _resample, each output cell the average of the linear interpolant over its extent."""
    size_in = values.shape[dim]
    centres = torch.arange(start, stop, dtype=torch.float32, device=values.device) + 0.5
    cells, weights = _footprint_taps(
        size_in, centres * (size_in / size_out) - 0.5, size_in / size_out
    )
    shape = [1] * values.dim()
    shape[dim] = -1
    return sum(values.index_select(dim, cells[:, k]) * weights[:, k].view(shape) for k in range(3))  # type: ignore[return-value]


class PlaneField(VideoField):
    """Factorized multi-resolution space-time planes with an MLP head."""

    kind = "hybrid"
    offsets: torch.Tensor
    sizes: torch.Tensor
    strides: torch.Tensor

    def __init__(
        self,
        width: int,
        height: int,
        frames: int,
        channels: int = 16,
        levels: int = 3,
        head_features: int = 32,
        head_layers: int = 2,
        footprint: bool = False,
    ) -> None:
        super().__init__()
        self.width, self.height, self.frames = width, height, frames
        self.footprint = footprint
        """Read the full-resolution planes as the average over each pixel's extent (training:
        one learned pixel; decoding: one output pixel), not at its centre."""
        self.channels, self.levels = channels, levels
        self.head_features, self.head_layers = head_features, head_layers
        shapes = plane_shapes(width, height, frames, levels)
        self.shapes = shapes
        sizes = [a * b for a, b in shapes]
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        self.register_buffer("offsets", torch.tensor(starts), persistent=False)
        self.register_buffer("sizes", torch.tensor(shapes, dtype=torch.float32), persistent=False)
        self.register_buffer("strides", torch.tensor([a for a, _ in shapes]), persistent=False)
        table = torch.empty(sum(sizes), channels)
        for k, (offset, size) in enumerate(zip(starts, sizes, strict=True)):
            if k % 3 == 0:  # xy planes start as features, time planes as a neutral 1
                table[offset : offset + size].uniform_(0.1, 0.5)
            else:
                table[offset : offset + size].fill_(1.0)
        self.table = nn.Parameter(table)
        dims = [levels * channels] + [head_features] * head_layers
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], 3))
        self.head = nn.Sequential(*layers)
        self.forget_render_cache()

    def features(
        self, coords: torch.Tensor, pixel: tuple[float, float] = (1.0, 1.0)
    ) -> torch.Tensor:
        """Concatenated per-level plane products at coords (B, 3) -> (B, levels * channels).

        ``pixel``: the width and height, in learned pixels, of the pixel each point stands for
        (1 when training; learned size / output size when decoding): with ``footprint``, the
        full-resolution planes are read as their average over that pixel.
        """
        batch = coords.shape[0]
        x, y, t = coords.unbind(-1)
        pairs = torch.stack(
            (torch.stack((x, y), -1), torch.stack((x, t), -1), torch.stack((y, t), -1)), 1
        ).repeat(1, self.levels, 1)  # (B, planes, 2)
        # continuous cell position, pixel-centre convention, clamped to the border
        pos = ((pairs + 1) * 0.5 * self.sizes - 0.5).clamp(min=0)
        pos = torch.minimum(pos, self.sizes - 1)
        start = torch.minimum(pos.floor(), (self.sizes - 2).clamp(min=0))
        frac = pos - start
        start = start.long()
        corner = self.offsets + start[..., 1] * self.strides + start[..., 0]  # (B, planes)
        index = torch.stack(
            (corner, corner + 1, corner + self.strides, corner + self.strides + 1), -1
        )
        fx, fy = frac.unbind(-1)
        weight = torch.stack(((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy), -1)
        if not self.footprint:
            rows = self.table.index_select(0, index.reshape(-1))
            reads = (rows.view(batch, -1, 4, self.channels) * weight.unsqueeze(-1)).sum(2)
        else:
            reads = self._footprint_reads(pos, pixel, index, weight)
        products = reads.view(batch, self.levels, 3, self.channels).prod(2)
        return products.reshape(batch, self.levels * self.channels)

    def _footprint_reads(
        self,
        pos: torch.Tensor,
        pixel: tuple[float, float],
        index: torch.Tensor,
        weight: torch.Tensor,
    ) -> torch.Tensor:
        """Plane reads (B, planes, C): level 0 averaged over the pixel (3 taps along x and y,
        linear in t), the coarser levels bilinear (``index``/``weight``), in one gather."""
        batch = pos.shape[0]
        (width, height), (_, frames) = self.shapes[0], self.shapes[1]
        off_xy, off_xt, off_yt = self.offsets[:3]
        cols, col_w = _footprint_taps(width, pos[:, 0, 0], pixel[0])  # (B, 3)
        rows_, row_w = _footprint_taps(height, pos[:, 0, 1], pixel[1])
        before, after, t_frac = _axis_lerp(frames, pos[:, 1, 1])
        times = torch.stack((before, after), -1)  # (B, 2)
        time_w = torch.stack((1 - t_frac, t_frac), -1)
        taps = [
            (off_xy + rows_.unsqueeze(-1) * width + cols.unsqueeze(-2), row_w.unsqueeze(-1) * col_w.unsqueeze(-2)),
            (off_xt + times.unsqueeze(-1) * width + cols.unsqueeze(-2), time_w.unsqueeze(-1) * col_w.unsqueeze(-2)),
            (off_yt + times.unsqueeze(-1) * height + rows_.unsqueeze(-2), time_w.unsqueeze(-1) * row_w.unsqueeze(-2)),
        ]  # fmt: skip
        all_index = torch.cat(
            [i.reshape(batch, -1) for i, _ in taps] + [index[:, 3:].reshape(batch, -1)], 1
        )
        all_weight = torch.cat(
            [w.reshape(batch, -1) for _, w in taps] + [weight[:, 3:].reshape(batch, -1)], 1
        )
        rows = self.table.index_select(0, all_index.reshape(-1)).view(batch, -1, self.channels)
        rows = rows * all_weight.unsqueeze(-1)
        level0 = torch.stack((rows[:, :9].sum(1), rows[:, 9:15].sum(1), rows[:, 15:21].sum(1)), 1)
        coarser = rows[:, 21:].reshape(batch, -1, 4, self.channels).sum(2)
        return torch.cat((level0, coarser), 1)

    def forward(
        self, coords: torch.Tensor, pixel: tuple[float, float] = (1.0, 1.0)
    ) -> torch.Tensor:
        return torch.sigmoid(self.head(self.features(coords, pixel)))

    def render_rows(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> torch.Tensor:
        """Fill a pixel grid by separable interpolation of whole planes (no per-pixel gather).

        The xy planes resampled to the output size do not depend on t: when decoding (inference
        mode) they are computed once per size and kept until forget_render_cache(), if that takes
        at most XY_CACHE_BYTES.
        The products and the head then run a few rows at a time, so they stay in cache.
        """
        xy = self._xy_rows(width, height, row_start, row_stop)  # (rows, width, L*C)
        across, down = self._time_lines(t, width, height, row_start, row_stop)
        rows = row_stop - row_start
        step = max(1, HEAD_CHUNK // width) if self.table.device.type == "cpu" else rows
        pieces = []
        for row in range(0, rows, step):
            part = xy[row : row + step] * across * down[row : row + step].unsqueeze(1)
            pieces.append(torch.sigmoid(self.head(part.reshape(-1, part.shape[-1]))))
        return torch.cat(pieces)

    def forget_render_cache(self) -> None:
        self._xy_cache_key: tuple[int, int, torch.device] | None = None
        self._xy_cache = torch.empty(0)

    def _planes(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int, int]]:
        """Per level: xy (h, w, C), xt (frames, w, C), yt (frames, h, C) views and w, h, frames."""
        tables = self.table.split([int(a * b) for a, b in self.sizes.tolist()])
        levels = []
        for level in range(self.levels):
            (w, h), (_, frames) = (
                tuple(int(v) for v in self.sizes[3 * level + k]) for k in range(2)
            )
            xy, xt, yt = tables[3 * level : 3 * level + 3]
            levels.append(
                (xy.view(h, w, -1), xt.view(frames, w, -1), yt.view(frames, h, -1), w, h, frames)
            )
        return levels

    def _xy_rows(self, width: int, height: int, row_start: int, row_stop: int) -> torch.Tensor:
        """The xy planes of every level resampled to rows row_start:row_stop of the output size."""
        if (
            torch.is_inference_mode_enabled()
            and height * width * self.levels * self.channels * 4 <= XY_CACHE_BYTES
        ):
            key = (width, height, self.table.device)
            if self._xy_cache_key != key:
                self._xy_cache = self._xy_resampled(width, height, 0, height)
                self._xy_cache_key = key
            return self._xy_cache[row_start:row_stop]
        return self._xy_resampled(width, height, row_start, row_stop)

    def _xy_resampled(self, width: int, height: int, row_start: int, row_stop: int) -> torch.Tensor:
        planes = []
        for level, (xy, *_) in enumerate(self._planes()):
            resample = self._resampler(level)
            planes.append(
                resample(resample(xy, 0, height, row_start, row_stop), 1, width, 0, width)
            )
        return torch.cat(planes, -1)

    def _resampler(self, level: int) -> Any:
        """How a level's planes are resampled along x and y to an output size."""
        return _resample_footprint if self.footprint and level == 0 else _resample

    def _time_lines(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """xt read at time t along the output columns (width, L*C), yt along the rows (rows, L*C)."""
        across, down = [], []
        for level, (_, xt, yt, _, _, frames) in enumerate(self._planes()):
            resample = self._resampler(level)
            time_pos = torch.tensor([(t + 1) * 0.5 * frames - 0.5], device=xt.device)
            before, after, frac = (v[0] for v in _axis_lerp(frames, time_pos))
            across.append(resample(torch.lerp(xt[before], xt[after], frac), 0, width, 0, width))
            down.append(
                resample(torch.lerp(yt[before], yt[after], frac), 0, height, row_start, row_stop)
            )
        return torch.cat(across, -1), torch.cat(down, -1)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Adam groups: the planes at GRID_LR_SCALE x lr, the head at lr."""
        return [
            {"params": [self.table], "lr": lr * GRID_LR_SCALE},
            {"params": list(self.head.parameters()), "lr": lr},
        ]


def build(
    settings: Mapping[str, Any], width: int, height: int, frames: int
) -> tuple[PlaneField, str]:
    """The network for a video: its planes' channels picked from its size unless given."""
    channels = settings["channels"] or auto_channels(width, height, frames)
    footprint = bool(settings["footprint"])
    model = PlaneField(width, height, frames, channels, settings["levels"],
                       settings["hidden_features"], settings["hidden_layers"],
                       footprint=footprint)  # fmt: skip
    picked = " (picked for this video size)" if settings["channels"] is None else ""
    return model, (
        f"hybrid planes: {model.levels} levels x {channels} channels{picked}, "
        f"head {model.head_features} x {model.head_layers}"
        + (", footprint reads" if footprint else "")
    )


SPEC = register(
    ModelSpec(
        name="hybrid",
        network=PlaneField,
        help="one set of feature planes and a small head, learned from random pixels",
        # the best quality per CPU second measured (BENCHMARKS-history.md)
        defaults={
            "epochs": 100,
            "batch_size": 4096,
            "lr": 3e-3,
            "lr_schedule": "cosine",
            "hidden_features": 32,
            "hidden_layers": 2,
            "levels": 3,
        },  # fmt: skip
        # a batch of 4096 leaves a GPU idle: 65536 learns far more per second there (36.5
        # against 32.1 dB in 30 s on a 720x405 clip, H100; BENCHMARKS-history.md), and 1600 epochs of
        # it are the same number of steps as the CPU's 100 epochs of 4096
        gpu_defaults={"epochs": 1600, "batch_size": 65536},
        footprint=True,
        build=build,
    )
)
