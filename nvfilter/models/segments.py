"""The segments model: time cut into segments (groups of pictures), each with its own
multi-resolution xy/xt/yt feature planes, decoded linearly as a picture pyramid; it starts from a
principal-component fit of its frames and is refined on whole frames.

A segment covers about ``segment_frames`` consecutive source frames (segment_spans: evenly
spread; neighbours share their boundary frame, which both learn, so a join does not jump). At each
of ``levels`` sizes (full, 1/2, 1/4, ... of the width and height) a segment holds three planes of
C features, channel-first: xy (C, h, w), and the time planes xt (C, n, w / time_shrink) and yt (C,
n, h / time_shrink), n its frame count. A level's picture at frame position q is

    RGB_l = W_l (xy_l * xt_l(q) * yt_l(q)) (+ bias on level 0)

at the level's own size, the time planes read at q (linear between frames) and resized across
(linear) to the level's width and height, ``*`` channel by channel with xt broadcast down the
rows and yt along them, W_l a 3 x C matrix; the frame is the sum of the levels' pictures, each
resized (bilinear) to the output size, clamped to [0, 1]. Every resize is F.interpolate at the
pixel-centre convention (coords.py: align_corners=False, clamped at the border), so the pictures
are continuous in (x, y, t) and any size and frame rate decode.

It is the K-Planes factorisation (Fridovich-Keil et al. 2023) with its linear decoder, per segment
(as D2GV, GSVR and C3 give each group of pictures its own features), as a Laplacian-like pyramid:
``start_from`` fills each level with the mean and leading principal components (PCA) of what the
finer levels leave of the segment's frames, at that level's size, so training starts from the best
such linear fit (32.3 dB at 0.9 numbers per pixel on tour.mp4 at 720x405) instead of from noise.
Training renders whole frames (``render_view``): interpolate, broadcast and small matmuls, no
gathers. Point reads (``forward``) render the level pictures at each point's time and sample them,
so they agree with frame reads.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from nvfilter.models.field import VideoField
from nvfilter.models.spec import ModelSpec, PartShape, register

DEFAULT_CHANNELS = (21, 27)
"""Channels of the level-0 and of each coarser level's planes for segments of 32 frames: the
mean and 6 principal pictures at full size, the mean and 8 at each coarser size (measured on
tour.mp4 at 720x405: BENCHMARKS-history.md)."""
TIME_SHRINK = 16
"""The time planes (xt, yt) are this many times coarser across than their level's xy plane:
they carry each picture's weight per frame, which varies slowly over the picture."""
BAND_VALUES = 1 << 19
"""Features per band of rows when decoding (2 MB of float32: stays in cache)."""
MAX_SEGMENTS = 100_000
MAX_LEVELS = 8
"""Bounds on an architecture (a .nvw is refused past them before anything is built)."""


def segment_count(frames: int, segment_frames: int) -> int:
    """How many segments ``segment_spans`` makes (found without listing them)."""
    return max(1, round((frames - 1) / segment_frames))


def segment_spans(frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """(first frame, frame count) of every segment: about ``segment_frames`` apart, evenly
    spread; neighbours share their boundary frame."""
    if frames <= 1:
        return [(0, 1)]
    count = segment_count(frames, segment_frames)
    bounds = [round(g * (frames - 1) / count) for g in range(count + 1)]
    return [(bounds[g], bounds[g + 1] - bounds[g] + 1) for g in range(count)]


def parameter_count(
    width: int, height: int, frames: int, segment_frames: int, level_channels: list[int],
    time_shrink: int,
) -> int:  # fmt: skip
    """Numbers a SegmentField of this architecture stores (without building it)."""
    total = 0
    for _, count in segment_spans(frames, segment_frames):
        for level, channels in enumerate(level_channels):
            w, h = level_size(width, height, level)
            across = max(2, w // time_shrink) + max(2, h // time_shrink)
            total += channels * (w * h + max(2, count) * across)
    return total + 3 * sum(level_channels) + 3


def auto_channels(
    width: int, height: int, frames: int, segment_frames: int, levels: int, time_shrink: int,
    own_frames: int | None = None,
) -> tuple[int, int]:  # fmt: skip
    """(level-0, coarser-level) channels for a video: DEFAULT_CHANNELS for segments of
    ``segment_frames``, fewer (in threes) for shorter segments, and fewer still until the
    network stores at most one number per pixel of the video (of its ``own_frames``, when it
    shares frames with a neighbour: a part of a longer video)."""
    shortest = min(count for _, count in segment_spans(frames, segment_frames)) - 1
    scale = min(1.0, max(shortest, 1) / segment_frames)
    fine, coarse = (max(3, 3 * int(c * scale / 3)) for c in DEFAULT_CHANNELS)
    while fine > 3 or coarse > 3:
        count = parameter_count(width, height, frames, segment_frames,
                                [fine] + [coarse] * (levels - 1), time_shrink)  # fmt: skip
        if count <= width * height * (own_frames or frames):
            break
        if coarse > 3 and (coarse >= fine or fine <= 3):
            coarse -= 3
        else:
            fine -= 3
    return fine, coarse


def level_size(width: int, height: int, level: int) -> tuple[int, int]:
    """(w, h) of a level's xy plane."""
    return max(2, width >> level), max(2, height >> level)


def _resize(plane: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """A channel-first plane (C, *axes) linearly resampled to ``size`` at the pixel-centre
    convention (itself when the size is its own)."""
    if tuple(plane.shape[1:]) == tuple(size):
        return plane
    mode = "linear" if len(size) == 1 else "bilinear"
    return F.interpolate(plane.unsqueeze(0), size=size, mode=mode, align_corners=False)[0]


def _time_row(plane: torch.Tensor, position: float) -> torch.Tensor:
    """A time plane (C, n, a) read at a frame position in [0, n - 1]: (C, a)."""
    n = plane.shape[1]
    position = min(max(position, 0.0), n - 1.0)
    before = min(int(math.floor(position)), n - 2) if n > 1 else 0
    frac = position - before
    if frac == 0.0 or n == 1:
        return plane[:, before]
    return torch.lerp(plane[:, before], plane[:, before + 1], frac)


def _principal_pictures(video: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean picture and the ``groups - 1`` leading principal pictures of frames (n, 3, h,
    w), (1 + K, 3, h, w), with each frame's weights (n, K): frame i ~ mean + sum_k w_ik P_k.
    The frames are never copied: the centred Gram matrix and the pictures are found from the
    frames themselves and their mean (a 1080p segment's centred copy alone would be 0.8 GB)."""
    count = video.shape[0]
    flat = video.reshape(count, -1)
    mean = flat.mean(0)
    components = min(groups - 1, count - 1)
    projected = flat @ mean  # (n,): each frame's product with the mean
    gram = flat @ flat.T - projected[:, None] - projected[None, :] + mean.dot(mean)
    _, vectors = torch.linalg.eigh(gram)  # eigenvalues ascending
    weights = vectors[:, count - components :].flip(1) * math.sqrt(count)
    pictures = torch.cat(
        (mean[None], (weights.T @ flat - torch.outer(weights.sum(0), mean)) / count)
    )
    return pictures.view(-1, *video.shape[1:]), weights


class _Segment(nn.Module):
    """One segment's planes: ``xy``, ``xt``, ``yt`` lists, one tensor per level."""

    xy: nn.ParameterList
    xt: nn.ParameterList
    yt: nn.ParameterList

    def __init__(
        self, width: int, height: int, frames: int, channels: list[int], time_shrink: int
    ) -> None:
        super().__init__()
        time = max(2, frames)
        sizes = [level_size(width, height, level) for level in range(len(channels))]
        across = [(max(2, w // time_shrink), max(2, h // time_shrink)) for w, h in sizes]
        self.xy = nn.ParameterList(
            [
                nn.Parameter(torch.full((c, h, w), 0.1))
                for c, (w, h) in zip(channels, sizes, strict=True)
            ]
        )
        self.xt = nn.ParameterList(
            [
                nn.Parameter(torch.ones(c, time, w))
                for c, (w, _) in zip(channels, across, strict=True)
            ]
        )
        self.yt = nn.ParameterList(
            [
                nn.Parameter(torch.ones(c, time, h))
                for c, (_, h) in zip(channels, across, strict=True)
            ]
        )


class SegmentField(VideoField):
    """Per-segment factorized space-time planes, decoded linearly as a picture pyramid."""

    kind = "segments"
    _cache_key: tuple[float, int, int] | None
    _cache: torch.Tensor

    def __init__(
        self,
        width: int,
        height: int,
        frames: int,
        segment_frames: int = 32,
        channels: int = 21,
        coarse_channels: int = 27,
        levels: int = 4,
        time_shrink: int = TIME_SHRINK,
    ) -> None:
        super().__init__()
        if min(width, height, frames, segment_frames, channels, coarse_channels, levels,
               time_shrink) < 1:  # fmt: skip
            raise ValueError("every size in the architecture must be positive")
        if levels > MAX_LEVELS:
            raise ValueError(f"at most {MAX_LEVELS} levels")
        if segment_count(frames, segment_frames) > MAX_SEGMENTS:
            raise ValueError(f"more than {MAX_SEGMENTS} segments")
        self.width, self.height, self.frames = width, height, frames
        self.segment_frames, self.levels = segment_frames, levels
        self.channels, self.coarse_channels = channels, coarse_channels
        self.time_shrink = time_shrink
        self.level_channels = [channels] + [coarse_channels] * (levels - 1)
        self.spans = segment_spans(frames, segment_frames)
        self.starts = [first for first, _ in self.spans]
        self.segments = nn.ModuleList(
            [_Segment(width, height, n, self.level_channels, time_shrink) for _, n in self.spans]
        )
        self.decoders = nn.ModuleList(
            [nn.Linear(c, 3, bias=level == 0) for level, c in enumerate(self.level_channels)]
        )
        """W_l: each level's features to RGB (level 0 with the bias)."""
        self.views = [(g, q) for g, (_, n) in enumerate(self.spans) for q in range(n)]
        """Training views: (segment, frame within it); a boundary frame is one view per side."""
        self.forget_render_cache()

    @staticmethod
    def tensor_count(architecture: dict[str, Any]) -> int:
        """Tensors a file of this architecture holds, found without building anything (a .nvw
        whose count differs is refused before its network is made)."""
        levels = int(architecture.get("levels", 4))
        count = segment_count(int(architecture["frames"]), int(architecture["segment_frames"]))
        if count > MAX_SEGMENTS:
            raise ValueError(f"more than {MAX_SEGMENTS} segments")
        return count * 3 * levels + levels + 1

    # ---- reads ----------------------------------------------------------------------------

    def segment_at(self, position: float) -> tuple[int, float]:
        """(segment, frame position within it) of a source frame position."""
        position = min(max(position, 0.0), self.frames - 1.0)
        g = bisect.bisect_right(self.starts, position) - 1
        return g, position - self.spans[g][0]

    def level_picture(self, g: int, level: int, q: float) -> torch.Tensor:
        """Segment g's level picture RGB_l (3, h_l, w_l) at frame position q, with autograd."""
        segment = self.segment(g)
        xy = segment.xy[level]
        h, w = xy.shape[1:]
        across = _resize(_time_row(segment.xt[level], q), (w,)).unsqueeze(1)
        down = _resize(_time_row(segment.yt[level], q), (h,)).unsqueeze(2)
        decoder = self.decoder(level)
        if torch.is_grad_enabled():
            return self._decode(decoder, xy * across * down).view(3, h, w)
        rgb = xy.new_empty(3, h, w)  # a band of rows at a time, in cache (4x faster at 720p)
        rows = max(1, BAND_VALUES // (xy.shape[0] * w))
        for start in range(0, h, rows):
            band = xy[:, start : start + rows] * across
            band *= down[:, start : start + rows]
            rgb[:, start : start + rows] = self._decode(decoder, band).view(3, -1, w)
        return rgb

    @staticmethod
    def _decode(decoder: nn.Linear, features: torch.Tensor) -> torch.Tensor:
        """A decoder W_l (+ bias) on channel-first features (C, ...) -> (3, cells)."""
        flat = features.reshape(features.shape[0], -1)
        if decoder.bias is not None:
            return torch.addmm(decoder.bias.unsqueeze(1), decoder.weight, flat)
        return decoder.weight @ flat

    def picture(self, g: int, q: float, width: int, height: int) -> torch.Tensor:
        """The frame (3, height, width) of segment g at frame position q, unclamped."""
        total = _resize(self.level_picture(g, 0, q), (height, width))
        for level in range(1, self.levels):
            part = _resize(self.level_picture(g, level, q), (height, width))
            total = total + part if torch.is_grad_enabled() else total.add_(part)
        return total

    def render_view(self, view: int) -> torch.Tensor:
        """RGB (3, height * width) of a training view at the learned size, with autograd."""
        g, q = self.views[view]
        return self.picture(g, q, self.width, self.height).reshape(3, -1)

    def view_frame(self, view: int) -> int:
        """The source frame a training view shows."""
        g, q = self.views[view]
        return self.spans[g][0] + q

    def render_rows(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> torch.Tensor:
        """Rows of the frame at time t; the whole frame is made once per (t, size) and kept
        until the next one (render_frame reads it whole, through render_image)."""
        return self.render_image(t, width, height)[:, row_start:row_stop].reshape(3, -1).T

    def render_image(self, t: float, width: int, height: int) -> torch.Tensor:
        """The frame at time t, (3, height, width) in [0, 1]; kept until the next (t, size)."""
        key = (t, width, height)
        if self._cache_key != key:
            position = (t + 1) * 0.5 * self.frames - 0.5
            g, q = self.segment_at(position)
            self._cache = self.picture(g, q, width, height).clamp_(0, 1)
            self._cache_key = key
        return self._cache

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3) at points (B, 3): the level pictures at each distinct time, sampled at
        the points (bilinear, as frame reads resize them)."""
        x, y, t = coords.unbind(-1)
        out = coords.new_zeros(coords.shape[0], 3)
        for time in t.unique().tolist():
            index = (t == time).nonzero().squeeze(1)
            position = (time + 1) * 0.5 * self.frames - 0.5
            g, q = self.segment_at(position)
            grid = torch.stack((x[index], y[index]), -1).view(1, 1, -1, 2)
            rgb = sum(
                F.grid_sample(
                    self.level_picture(g, level, q).unsqueeze(0),
                    grid,
                    mode="bilinear",
                    padding_mode="border",
                    align_corners=False,
                )[0, :, 0]
                for level in range(self.levels)
            )
            out = out.index_put((index,), rgb.T)  # type: ignore[union-attr]
        return out.clamp(0, 1)

    def forget_render_cache(self) -> None:
        self._cache_key = None
        self._cache = torch.empty(0)

    def segment(self, g: int) -> _Segment:
        """Segment g's planes."""
        return cast(_Segment, self.segments[g])

    def decoder(self, level: int) -> nn.Linear:
        """W_l of a level."""
        return cast(nn.Linear, self.decoders[level])

    # ---- training and storage -------------------------------------------------------------

    @torch.no_grad()
    def start_from(
        self, frames: torch.Tensor, progress: Callable[[int], None] | None = None,
        cuts: Sequence[int] = (),
    ) -> None:  # fmt: skip
        """Start each segment as the best linear fit of its frames that its planes hold, level
        by level: a level's xy channels, three to a picture, hold the mean and the principal
        components (PCA over the segment's frames) of what the finer levels leave, at that
        level's size, and its xt planes each component's weight per frame; each decoder sums
        its level's pictures to RGB, so the first output is that fit and training refines it.
        ``frames``: uint8 (N, H, W, 3) at the learned size."""
        if tuple(frames.shape[1:3]) != (self.height, self.width) or min(self.level_channels) < 3:
            return
        for g, (first, count) in enumerate(self.spans):
            segment = self.segment(g)
            video = (
                frames[first : first + count].permute(0, 3, 1, 2).contiguous().float().div_(255.0)
            )
            left = video  # what the levels so far do not explain, (n, 3, H, W)
            for level in range(self.levels):
                xy, xt, yt = segment.xy[level], segment.xt[level], segment.yt[level]
                h, w = xy.shape[1:]
                target = left if (h, w) == left.shape[2:] else F.adaptive_avg_pool2d(left, (h, w))
                pictures, weights = _principal_pictures(target, xy.shape[0] // 3)
                xy.zero_()
                xy[: 3 * len(pictures)] = pictures.reshape(-1, h, w)
                xt.fill_(1.0)
                yt.fill_(1.0)
                for k in range(1, len(pictures)):
                    xt[3 * k : 3 * k + 3, :count] = weights[:, k - 1].view(1, count, 1)
                every = torch.cat((torch.ones(count, 1), weights), 1)
                for i in range(count):  # what this level explains, taken off frame by frame
                    fitted = torch.einsum("k,kchw->chw", every[i], pictures)
                    left[i] -= _resize(fitted, (self.height, self.width))
        for level in range(self.levels):
            decoder = self.decoder(level)
            decoder.weight.zero_()
            for group in range(decoder.weight.shape[1] // 3):
                decoder.weight[:, 3 * group : 3 * group + 3] = torch.eye(3)
            if decoder.bias is not None:
                decoder.bias.zero_()

    def training_views(self) -> int:
        return len(self.views)


def _channels(settings: Mapping[str, Any], width: int, height: int, frames: int,
              segment_frames: int, own_frames: int | None = None) -> tuple[int, int]:  # fmt: skip
    """(level-0, coarser) channels: as given, else auto_channels."""
    if settings["channels"]:
        return settings["channels"], settings["channels"]
    return auto_channels(width, height, frames, segment_frames, settings["levels"], TIME_SHRINK,
                         own_frames=own_frames)  # fmt: skip


def build(
    settings: Mapping[str, Any], width: int, height: int, frames: int
) -> tuple[SegmentField, str]:
    """The network for a whole video (a streamed encode builds one a part: part_architecture)."""
    segment_frames, levels = settings["segment_frames"], settings["levels"]
    fine, coarse = _channels(settings, width, height, frames, segment_frames)
    model = SegmentField(width, height, frames, segment_frames, fine, coarse, levels)
    picked = " (picked for this video size)" if settings["channels"] is None else ""
    return model, (
        f"segments: {len(model.spans)} of about {model.segment_frames} frames, "
        f"{model.levels} levels x {fine}/{coarse} channels{picked}, linear pyramid"
    )


def part_architecture(part: PartShape) -> dict[str, Any]:
    """A part's network: one segment of the part's frames."""
    fine, coarse = _channels(part.settings, part.width, part.height, part.frames,
                             part.part_frames, own_frames=max(1, part.frames - 1))  # fmt: skip
    return {"type": "segments", "width": part.width, "height": part.height,
            "frames": part.frames, "segment_frames": part.part_frames, "channels": fine,
            "coarse_channels": coarse, "levels": part.settings["levels"],
            "time_shrink": TIME_SHRINK}  # fmt: skip


def describe_parts(part: PartShape, count: str) -> str:
    arch = part_architecture(part)
    numbers = parameter_count(
        part.width, part.height, part.frames, part.part_frames,
        [arch["channels"]] + [arch["coarse_channels"]] * (arch["levels"] - 1), TIME_SHRINK,
    )  # fmt: skip
    return (
        f"segments in {count} of {part.part_frames} frames (+1 shared), {arch['levels']} "
        f"levels x {arch['channels']}/{arch['coarse_channels']} channels, linear pyramid, "
        f"{numbers:,} parameters a part"
    )


SPEC = register(
    ModelSpec(
        name="segments",
        network=SegmentField,
        help="per-segment feature planes started from a principal-component fit, refined on "
        "whole frames",
        # per-segment planes started from a principal-component fit, refined on whole frames
        # (BENCHMARKS-history.md, real sizes): one frame a step, small steps that keep the fit
        defaults={
            "epochs": 3,
            "batch_size": 1,
            "lr": 2e-4,
            "lr_schedule": "cosine",
            "levels": 4,
            "segment_frames": 32,
        },  # fmt: skip
        # a few frames a step keep a GPU busy (unmeasured beyond the CPU's recipe)
        gpu_defaults={"batch_size": 1 << 21},
        streamed=True,
        refuses=("footprint", "hidden_features", "hidden_layers"),
        refuse_reason="its decoder is linear",
        trains_until_budget=True,
        build=build,
        part_architecture=part_architecture,
        describe_parts=describe_parts,
    )
)
