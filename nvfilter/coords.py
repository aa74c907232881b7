"""Pixel-centre coordinates in [-1, 1] for any size, frame count and time.

Convention (the same for x, y and t): an axis of ``n`` cells maps cell ``i`` to its centre
``(2 i + 1) / n - 1``. A 2x finer grid therefore covers exactly the same extent, its pixels ``2i``
and ``2i+1`` lying symmetrically around coarse pixel ``i``; source frame ``k`` of ``N`` sits at
``t = (2 k + 1) / N - 1`` and a fractional frame position ``p`` at ``(2 p + 1) / N - 1``.
Coordinates are made per batch from integer indices, never stored per pixel.
"""

from __future__ import annotations

import torch


def cell_centres(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``n`` cell centres of [-1, 1], float32."""
    return (torch.arange(n, device=device, dtype=torch.float32) * 2 + 1) / n - 1


def frame_time(position: float, num_frames: int) -> float:
    """Normalised t of a (possibly fractional) source frame position."""
    return (2 * position + 1) / num_frames - 1


def index_coords(index: torch.Tensor, width: int, height: int, num_frames: int) -> torch.Tensor:
    """(x, y, t) of flat pixel indices into a (frames, height, width) video, shape (len, 3)."""
    per_frame = width * height
    frame = torch.div(index, per_frame, rounding_mode="floor")
    rest = index - frame * per_frame
    row = torch.div(rest, width, rounding_mode="floor")
    col = rest - row * width
    x = (col.to(torch.float32) * 2 + 1) / width - 1
    y = (row.to(torch.float32) * 2 + 1) / height - 1
    t = (frame.to(torch.float32) * 2 + 1) / num_frames - 1
    return torch.stack((x, y, t), dim=-1)


def rows_coords(
    width: int,
    height: int,
    t: float,
    row_start: int,
    row_stop: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(x, y, t) for rows ``row_start:row_stop`` of a ``width`` x ``height`` frame at time ``t``.

    Shape ((row_stop - row_start) * width, 3), rows in raster order.
    """
    xs = cell_centres(width, device)
    ys = cell_centres(height, device)[row_start:row_stop]
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid_t = torch.full_like(grid_x, t)
    return torch.stack((grid_x, grid_y, grid_t), dim=-1).reshape(-1, 3)
