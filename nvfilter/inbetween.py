"""Frames between two frames, moved along the motion between them, and blended.

A frame at fraction s of the way from ``first`` to ``second`` samples each of them along the
motion (bicubic), with the flows from time s found by moving both flows forward to time s (flow
reversal, Xu et al. 2019; see SPLAT_SHARPNESS), or, where nothing lands, approximated from the
two flows as in Super SloMo (Jiang et al. 2018, eq. 4), and blends them weighted by nearness in
time and by visibility: where a pixel's motion does not come back (forward-backward check), it
shows content one frame lacks, so it is taken from the other. Last, each pixel mixes that
motion-compensated value with the plain cross-fade, by which of the two the frames agree on
better around it: where the two moved samples disagree more than the two unmoved frames do (flat
or static areas, motion the flow got wrong), the cross-fade wins, so a wrong flow costs little
and a sub-pixel flow does not blur what stands still. Motion shorter than a pixel counts as
none, and so does motion under two pixels among motion under one (STILL_BELOW).

The flows come from a search on the two frames (decode/motion.py) or from the motion a codec
file keeps (models/codec.py); this module only moves and blends.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
"""Forward-backward check (Sundaram et al. 2010): a pixel is occluded where
|f + b(x + f)|^2 > CONSISTENCY_RELATIVE * (|f|^2 + |b(x + f)|^2) + CONSISTENCY_ABSOLUTE (pixels^2)."""
AGREEMENT_WINDOW = 15
"""Side in pixels of the square over which the two candidates' disagreement is averaged."""
STILL_BELOW = 1.0
"""Motion shorter than this many pixels between the two frames counts as none (its flow is set to
zero): a cross-fade shows it as well, and resampling along it would soften what stands still and
the frame's compression noise (bench/motion_proxy.py; BENCHMARKS-history.md, issue 5)."""
STILL_NEIGHBOURHOOD = 2.0
"""...and so does motion shorter than STILL_NEIGHBOURHOOD x STILL_BELOW pixels where the vectors
around it (AGREEMENT_WINDOW square) are shorter than STILL_BELOW on average: DIS's noise comes in
patches a pixel or two long over a slow drift, which moved alone and cost more than a
cross-fade; longer vectors count wherever they are, so a small fast object still moves
(bench/motion_proxy.py; BENCHMARKS-history.md)."""
SPLAT_SHARPNESS = 0.1
"""The flows from time s are splatted: every pixel of each frame is moved along its flow to where
it is at time s, spread bilinearly over the four pixels around that point, and carries its flows
to both frames there, weighted by nearness in time and by exp(-SPLAT_SHARPNESS * e), e its
brightness-constancy error (mean absolute difference, 0-255, from the pixel it moves to), so that
where two pixels land together the one that stays visible wins (as softmax splatting, Niklaus and
Liu 2020, weights by a learned metric; ahead of Super SloMo's approximation alone on
bench/motion_proxy.py, BENCHMARKS-history.md)."""


def planes(frame: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) ``frame`` as float (3, H, W) in [0, 255], laid out (H, W, 3) in memory as
    the frame is (FramePair.at moves it so, without a copy)."""
    return torch.from_numpy(frame).permute(2, 0, 1).float()


def shrink_by(frame: np.ndarray, factor: int) -> np.ndarray:
    """uint8 (H, W, 3) ``frame`` area-averaged to 1 / ``factor`` of its size (rounded)."""
    import cv2

    if factor == 1:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA)


def enlarge(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 (h, w) or (h, w, channels) ``values`` resized (bilinear, pixel centres as
    torch's interpolate without corners aligned) to (height, width); unchanged at that size
    (OpenCV's resize: a third of interpolate's time for a flow at 1280x720)."""
    import cv2

    if values.shape[:2] == (height, width):
        return values
    return cv2.resize(np.ascontiguousarray(values), (width, height), interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y), each (height, width) float32: every pixel's own coordinates (made once a size;
    never written to)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    return xs, ys


def landing(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y), each (H, W): where each pixel lands when moved by ``flow`` (H, W, 2, pixels)."""
    xs, ys = pixel_grid(*flow.shape[:2])
    return xs + flow[..., 0], ys + flow[..., 1]


def splat(
    values: torch.Tensor, flow: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``values`` (C, H, W) moved by ``flow`` (H, W, 2, pixels) and spread bilinearly over the four
    pixels around where each lands, times ``weight`` (H, W): (the sum (C, H, W), the weights' sum
    (H, W)) at each pixel; what lands outside the frame is dropped.

    The sums are made in the frame with a border of one pixel, so that the four pixels around a
    point that touches the frame are all in it, a fixed step apart (points farther out are
    weighed zero), and the weights travel as one more row beside the values."""
    channels, height, width = values.shape
    x, y = landing(flow)
    left, top = x.floor(), y.floor()
    across, down = x.sub_(left), y.sub_(top)  # where in its square of four pixels each lands
    touches = (left >= -1) & (left < width) & (top >= -1) & (top < height)
    wide = width + 2  # a row of the bordered frame
    top = top.clamp_(-1, height - 1).add_(1)
    corner = top.mul_(wide).add_(left.clamp_(-1, width - 1).add_(1)).long().reshape(-1)
    flat_weight = (weight * touches).reshape(1, -1)
    carried = torch.cat((values.reshape(channels, -1) * flat_weight, flat_weight))
    summed = torch.zeros(channels + 1, (height + 2) * wide)
    stay_x, stay_y = 1 - across, 1 - down
    for step, share in (
        (0, stay_x * stay_y),
        (1, across * stay_y),
        (wide, stay_x * down),
        (wide + 1, across * down),
    ):
        summed.index_add_(1, corner + step, carried * share.reshape(1, -1))
    inside = summed.view(channels + 1, height + 2, wide)[:, 1:-1, 1:-1]
    return inside[:channels], inside[channels]


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (C, H, W) sampled at x + flow(x), edges repeated; flow (H, W, 2) in pixels;
    ``mode`` bilinear or bicubic (OpenCV's remap: a third of grid_sample's time at 1280x720)."""
    channels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    return torch.from_numpy(remap(channels, flow.numpy(), mode)).permute(2, 0, 1)


@functools.lru_cache(maxsize=4)
def pixel_places(height: int, width: int) -> np.ndarray:
    """(height, width, 2) float32: every pixel's own (x, y) (made once a size; read-only)."""
    xs, ys = pixel_grid(height, width)
    places = torch.stack((xs, ys), -1).numpy()
    places.flags.writeable = False
    return places


def remap(image: np.ndarray, flow: np.ndarray, mode: str) -> np.ndarray:
    """float32 (H, W, C) ``image`` sampled at x + flow(x) by OpenCV's remap, edges repeated;
    ``flow`` (H, W, 2) in pixels; ``mode`` bilinear or bicubic: (H, W, C)."""
    import cv2

    height, width = flow.shape[:2]
    places = flow + pixel_places(height, width)
    interpolation = cv2.INTER_CUBIC if mode == "bicubic" else cv2.INTER_LINEAR
    out = cv2.remap(image, places, None, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(height, width, -1)


def moved_along(image: np.ndarray, flow: torch.Tensor) -> np.ndarray:
    """(H, W, C) float32 ``image`` sampled (bicubic) along ``flow`` (h, w, 2, in its own pixels),
    enlarged to the image's size (scaled where it is small): (H, W, C)."""
    height, width = image.shape[:2]
    small_height, small_width = flow.shape[:2]
    scale = np.array([width / small_width, height / small_height], np.float32)
    return remap(image, enlarge(flow.numpy() * scale, height, width), "bicubic")


def on_channels(values: np.ndarray, into: np.ndarray | None = None) -> np.ndarray:
    """float32 (H, W) ``values`` repeated over three channels, (H, W, 3) (written ``into`` such
    an array if given)."""
    import cv2

    return cv2.merge([values, values, values], dst=into)


def channel_mean(values: np.ndarray) -> torch.Tensor:
    """float32 (H, W, 3) ``values`` averaged over their channels, (H, W) (OpenCV's transform: a
    seventh of torch's mean over the last axis at 1280x720)."""
    import cv2

    return torch.from_numpy(cv2.transform(values, np.full((1, 3), 1 / 3, np.float32)))


def occlusion(flow: torch.Tensor, back: torch.Tensor, pixel: float = 1.0) -> torch.Tensor:
    """(H, W): 1 where the motion ``flow`` (H, W, 2) does not come back by ``back``, else 0;
    ``pixel``: the size of the flows' pixels in the frame's (flow_factor)."""
    back_x, back_y = warp(back.permute(2, 0, 1), flow)  # where each pixel's flow ends
    flow_x, flow_y = flow.permute(2, 0, 1).contiguous()
    error = (flow_x + back_x).square_().add_((flow_y + back_y).square_())
    bound = flow_x.square().add_(flow_y.square()).add_(back_x.square()).add_(back_y.square())
    bound.mul_(CONSISTENCY_RELATIVE).add_(CONSISTENCY_ABSOLUTE / pixel**2)
    return (error > bound).to(flow.dtype)


def splat_weight(image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """(H, W): exp(-SPLAT_SHARPNESS * |image - other moved back by flow|), channels averaged."""
    error = (image - warp(other, flow)).abs().mean(0)
    return torch.exp(-SPLAT_SHARPNESS * error)


@functools.lru_cache(maxsize=4)
def window_counts(height: int, width: int) -> np.ndarray:
    """(height, width) float32: how many pixels of the AGREEMENT_WINDOW square around each pixel
    lie in the frame (made once a size)."""
    half = AGREEMENT_WINDOW // 2

    def inside(length: int) -> np.ndarray:
        at = np.arange(length)
        return np.minimum(at + half, length - 1) - np.maximum(at - half, 0) + 1

    counts = np.outer(inside(height), inside(width)).astype(np.float32)
    counts.flags.writeable = False
    return counts


def local_mean(values: torch.Tensor) -> torch.Tensor:
    """(H, W) averaged over AGREEMENT_WINDOW squares (shrunk at the edges): OpenCV's box sums
    over the frame (zeros beyond it) divided by how many of each square's pixels are in it (a
    tenth of the time of pooling at 1280x720, the same to 1e-5)."""
    import cv2

    side = AGREEMENT_WINDOW
    sums = cv2.boxFilter(
        np.ascontiguousarray(values.numpy(), dtype=np.float32),
        -1,
        (side, side),
        normalize=False,
        borderType=cv2.BORDER_CONSTANT,
    )
    return torch.from_numpy(np.divide(sums, window_counts(*values.shape), dtype=np.float32))


def mean_difference(first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    """(H, W) float32: the mean over the channels of |first - second|, uint8 (H, W, 3) frames
    (differences in 8 bits, summed by OpenCV: exact, and 14 ms -> 1 ms at 1280x720 against
    float planes)."""
    import cv2

    difference = cv2.absdiff(np.ascontiguousarray(first), np.ascontiguousarray(second))
    red, green, blue = cv2.split(difference)
    total = cv2.add(cv2.add(red, green, dtype=cv2.CV_32F), blue, dtype=cv2.CV_32F)
    return torch.from_numpy(np.divide(total, 3, dtype=np.float32))


def vector_lengths(flow: torch.Tensor) -> torch.Tensor:
    """(H, W) float32: the length of each vector of ``flow`` (H, W, 2) (OpenCV's magnitude: a
    tenth of torch's norm over the last axis)."""
    import cv2

    along_x, along_y = (np.ascontiguousarray(axis) for axis in flow.permute(2, 0, 1).numpy())
    return torch.from_numpy(cv2.magnitude(along_x, along_y))


def still_as_zero(flow: torch.Tensor, pixel: float = 1.0) -> torch.Tensor:
    """``flow`` (H, W, 2) with every vector shorter than STILL_BELOW pixels set to zero, and every
    one shorter than STILL_NEIGHBOURHOOD x STILL_BELOW among vectors shorter than STILL_BELOW on
    average (local_mean); ``pixel``: the size of the flow's pixels in the frame's."""
    length = vector_lengths(flow).mul_(pixel)
    around = local_mean(length)
    moves = (length >= STILL_BELOW) & (
        (around >= STILL_BELOW) | (length >= STILL_NEIGHBOURHOOD * STILL_BELOW)
    )
    return flow * moves[..., None]


@dataclass
class FramePair:
    """Two frames as float (3, H, W) in [0, 255]; the flows both ways, where each is occluded, and
    each pixel's weight when its flow is splatted (SPLAT_SHARPNESS), all (h, w) at the flows' size
    and in its pixels (flow_factor: (H, W) unless the frames are large); how much the two frames
    differ around each pixel (H, W), which the mix in ``at`` weighs the cross-fade by."""

    first: torch.Tensor
    second: torch.Tensor
    forward: torch.Tensor
    backward: torch.Tensor
    hidden_in_second: torch.Tensor
    hidden_in_first: torch.Tensor
    forward_weight: torch.Tensor
    backward_weight: torch.Tensor
    faded_error: torch.Tensor

    @classmethod
    def from_flows(
        cls, first: np.ndarray, second: np.ndarray, forward: np.ndarray, backward: np.ndarray
    ) -> FramePair:
        """The pair of uint8 (H, W, 3) frames with their flows given: ``forward`` (first to
        second) and ``backward`` (second to first), float32 (h, w, 2) in their own pixels, at
        the frames' size or shrunk by a whole factor (shrink_by: the frames are then compared
        at that size too)."""
        factor = round(first.shape[0] / forward.shape[0])
        near = shrink_by(first, factor), shrink_by(second, factor)
        found = [torch.from_numpy(np.ascontiguousarray(flow)) for flow in (forward, backward)]
        pixel = first.shape[1] / near[0].shape[1]
        whole_first, whole_second = planes(first), planes(second)
        start, end = (
            (whole_first, whole_second) if factor == 1 else (planes(near[0]), planes(near[1]))
        )
        forward_flow, backward_flow = still_as_zero(found[0], pixel), still_as_zero(found[1], pixel)
        return cls(
            first=whole_first,
            second=whole_second,
            forward=forward_flow,
            backward=backward_flow,
            hidden_in_second=occlusion(found[0], found[1], pixel),  # on the flows as found
            hidden_in_first=occlusion(found[1], found[0], pixel),
            forward_weight=splat_weight(start, end, forward_flow),
            backward_weight=splat_weight(end, start, backward_flow),
            faded_error=local_mean(mean_difference(first, second)),
        )

    def flows_from(self, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(to_first, to_second), (h, w, 2): the flows from the frame at fraction ``s`` to each
        frame, splatted from both flows (SPLAT_SHARPNESS), Super SloMo's where nothing lands.

        A pixel moved forward by s * forward carries -s * forward to the first frame and
        (1 - s) * forward to the second; one moved back by (1 - s) * backward carries s *
        backward and -(1 - s) * backward. So each splat carries its flow alone, and where they
        land the weighted mean m of (backward - forward) gives both: s * m to the first frame,
        -(1 - s) * m to the second."""
        forward, backward = self.forward, self.backward
        ahead_sum, ahead_total = splat(
            forward.permute(2, 0, 1), s * forward, (1 - s) * self.forward_weight
        )
        behind_sum, behind_total = splat(
            backward.permute(2, 0, 1), (1 - s) * backward, s * self.backward_weight
        )
        total = ahead_total.add_(behind_total)
        landed = behind_sum.sub_(ahead_sum).div_(total.clamp_min(1e-6)).permute(1, 2, 0)
        some = (total > 1e-3)[..., None]
        to_first = -(1 - s) * s * forward + s * s * backward
        to_second = (1 - s) * (1 - s) * forward - s * (1 - s) * backward
        return (
            torch.where(some, s * landed, to_first),
            torch.where(some, -(1 - s) * landed, to_second),
        )

    def at(self, s: float) -> np.ndarray:
        """The uint8 (H, W, 3) frame at fraction ``s`` (0 < s < 1) of the way from first to second."""
        import cv2

        to_first, to_second = self.flows_from(s)
        # the first frame lacks what the second frame's source pixel shows if the first hides it
        trust_first = (1 - s) * (1 - warp(self.hidden_in_first[None], to_second)[0])
        trust_second = s * (1 - warp(self.hidden_in_second[None], to_first)[0])
        total = trust_first + trust_second
        share = torch.where(
            total < 1e-3, torch.full_like(total, 1 - s), trust_first / total.clamp_min(1e-3)
        )
        first, second = (
            np.ascontiguousarray(frame.permute(1, 2, 0).numpy())
            for frame in (self.first, self.second)
        )  # (H, W, 3): no copy, as planes() lays them out
        height, width = first.shape[:2]
        share_first = on_channels(enlarge(share.numpy(), height, width))
        from_first = moved_along(first, to_first)
        from_second = moved_along(second, to_second)
        # share * from_first + (1 - share) * from_second, then use_moved * moved + (1 -
        # use_moved) * faded, by OpenCV's elementwise calls on (H, W, 3) arrays, in place where
        # they can be: torch's products of a frame by a (H, W, 1) weight took 5.7 ms each at
        # 1280x720, OpenCV's 0.8
        moved = cv2.subtract(from_first, from_second, dst=from_first)  # the difference, for now
        moved_error = local_mean(channel_mean(np.abs(moved)))
        cv2.add(cv2.multiply(moved, share_first, dst=moved), from_second, dst=moved)
        del from_second
        faded = cv2.addWeighted(first, 1 - s, second, s, 0.0)
        faded_error = self.faded_error
        use_moved = faded_error / (moved_error + faded_error).clamp_min(1e-6)
        use_moved = torch.where(moved_error + faded_error < 1e-6, 0.5, use_moved)
        weight = on_channels(use_moved.numpy(), share_first)
        cv2.multiply(cv2.subtract(moved, faded, dst=moved), weight, dst=moved)
        return cv2.add(moved, faded, dtype=cv2.CV_8U)  # rounded half to even, and saturated
