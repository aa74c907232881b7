"""Model -> frames at any size, time and rate. Batched: memory does not grow with frame count or size.

Timing (the contract a test checks): a source of N frames rendered with temporal scale s gives
round(N * s) frames; output frame j samples source frame position p_j = j / s, so output frame
s*k is the reconstruction of source frame k. Positions past the last source frame (the final
s - 1 frames of a slow-motion render) hold the last frame, p = N - 1. Space: an output of any size
covers the same [-1, 1] extent at pixel centres (coords.py), so 2x output pixels 2i and 2i+1 sit
symmetrically around source pixel i.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import torch

from nvfilter.config import (
    AUTO,
    BETWEEN_RULES,
    MAX_FPS,
    MAX_FRAMES,
    MAX_SIDE,
    MOVING_RULES,
    UPSCALERS,
    RenderSpec,
    VideoInfo,
    check_rule,
)
from nvfilter.coords import frame_time
from nvfilter.decode.motion import FramePair
from nvfilter.decode.multiframe import MULTIFRAME_BYTES_PER_PIXEL, upscale_frames
from nvfilter.decode.upscale import backproject, enlarges
from nvfilter.device import opencv_threads, torch_threads
from nvfilter.errors import OptionError
from nvfilter.models.field import READ_BYTES, VideoField
from nvfilter.models.reads import render_frames
from nvfilter.timeline import Timeline


def plan_render(
    video: VideoInfo,
    width: int | None = None,
    height: int | None = None,
    spatial_scale: float | None = None,
    temporal_scale: Fraction | None = None,
    num_frames: int | None = None,
    fps: Fraction | None = None,
) -> RenderSpec:
    """Resolve the decode flags into a RenderSpec; raises OptionError on a value that makes no sense.

    Size: --width/--height win over --spatial-scale; one of them alone keeps the aspect ratio.
    Frames: --num-frames wins over --temporal-scale. Rate: --fps, else the source's rate.
    """
    for name, value in (
        ("width", width),
        ("height", height),
        ("spatial scale", spatial_scale),
        ("temporal scale", temporal_scale),
        ("number of frames", num_frames),
        ("fps", fps),
    ):
        if value is not None and value <= 0:
            raise OptionError(f"{name} must be positive, got {value}")
    scale = spatial_scale or 1.0
    if width and height:
        out_w, out_h = width, height
    elif width:
        out_w, out_h = width, max(1, round(width * video.height / video.width))
    elif height:
        out_w, out_h = max(1, round(height * video.width / video.height)), height
    else:
        out_w, out_h = max(1, round(video.width * scale)), max(1, round(video.height * scale))
    if out_w > MAX_SIDE or out_h > MAX_SIDE:
        raise OptionError(f"output size {out_w}x{out_h} is too large (at most {MAX_SIDE} a side)")
    played = video.played_frames
    if num_frames is not None:
        frames = num_frames
        t_scale = Fraction(num_frames, played)
    else:
        t_scale = temporal_scale or Fraction(1)
        frames = max(1, round(played * t_scale))
    if frames > MAX_FRAMES:
        raise OptionError(f"{frames} output frames is too many (at most {MAX_FRAMES})")
    rate = fps or video.frame_rate
    if rate > MAX_FPS:
        raise OptionError(f"fps {float(rate):g} is too high (at most {MAX_FPS})")
    return RenderSpec(
        width=out_w,
        height=out_h,
        num_frames=frames,
        fps=rate,
        temporal_scale=t_scale,
        learned_size=(video.width, video.height),
        source_frames=played,
    )


RENDER_BYTES_PER_PIXEL = 64
"""Memory a network render holds per output pixel at its peak: the float RGB frame and the
resized level pictures summed into it, and the 8-bit frame handed to ffmpeg (59 measured at
3840x2160 with the segments model)."""
MOTION_WORKERS = 2
"""Threads that make the frames between pairs of source frames (each a whole pair: its flows,
then its new frames), while this thread renders the source frames and hands frames on: OpenCV
and torch release the interpreter, and the two cores overlap (1280x720 slowmo-2x: 2.7 frames/s
in one thread, 5.1 this way, BENCHMARKS-history.md). Meanwhile torch and OpenCV run each operation on
the workers' share of the cores (one thread each here): the workers' operations are small and
the cores already busy, and sharing each between all the threads cost 6% for torch (96 frames of
1280x720, half of them new: 13.5 s against 14.5 s, alternating) and 13% of the CPU time for
OpenCV's DIS (device.opencv_threads)."""
AHEAD_FRAMES = 2 * (MOTION_WORKERS + 1)
"""How far past the frame being handed on (source frames) a pair may start for the workers to
make ahead: the next MOTION_WORKERS + 1 pairs are started, but only those that begin this close,
since a pair's two frames are read, and every source frame before them held, when it starts. A
few pairs far apart (the gaps of a repeat left out, of a variable rate) otherwise held all the
frames up to the next: 316 frames of 1920x1080, 2 GB, in a minute's 1x decode."""
MOTION_BYTES_PER_PIXEL = 192 * (MOTION_WORKERS + 1)
"""What frames made by motion add per pixel of the frames they move: for each pair in hand (those
the workers make and the one whose frames are handed on) two source frames as float planes, the
flow both ways, the two warped frames blended and the frames made (167 measured for one pair at
3840x2160)."""


def decode_memory(spec: RenderSpec, between: str, upscaler: str) -> int:
    """Bytes a decode of ``spec`` holds at its peak (an estimate from the frame sizes: the memory
    does not grow with the number of frames)."""
    out = spec.width * spec.height
    made = math.prod(spec.learned_size) if backprojects(spec, upscaler) else out
    total = RENDER_BYTES_PER_PIXEL * max(out, made) + 2 * READ_BYTES  # frames read together
    if between in MOVING_RULES and makes_new_frames(spec):
        total += MOTION_BYTES_PER_PIXEL * made
    if made != out:  # back-projection works at the output size on the frame made smaller
        total += MOTION_BYTES_PER_PIXEL * out
        if upscaler == "multiframe":  # and on its neighbours
            total += MULTIFRAME_BYTES_PER_PIXEL * out
    return total


def makes_new_frames(spec: RenderSpec) -> bool:
    """True when some output frame lies between two source frames (output frame j samples
    source position j / temporal_scale: a whole number for every j only where the scale is 1/m;
    a one-frame source holds its frame)."""
    scale = Fraction(spec.temporal_scale)
    return spec.num_frames > 1 and spec.source_frames > 1 and scale.numerator > 1


def chosen_rules(
    spec: RenderSpec, between: str, upscaler: str, available: int
) -> tuple[str, str, str | None]:
    """The (between, upscaler) rules a render of ``spec`` uses, and a note when ``auto`` gave
    something up. ``auto`` is motion for new frames and back-projection for new pixels (they
    score above the network's own reads and ffmpeg's filters on every benchmark, BENCHMARKS-history.md);
    where the render would not fit in ``available`` bytes, back-projection and then motion give
    way to the network's reads. Raises OptionError when even those do not fit."""
    chosen = {
        "between": "motion" if between == AUTO else between,
        "upscaler": "backproject" if upscaler == AUTO else upscaler,
    }
    wanted, given_up = decode_memory(spec, **chosen), []
    for name, given, used, read_by in (
        ("upscaler", upscaler, backprojects(spec, chosen["upscaler"]), "back-projection"),
        ("between", between, makes_new_frames(spec), "motion"),
    ):
        if given == AUTO and used and decode_memory(spec, **chosen) > available:
            chosen[name] = "network"
            given_up.append(read_by)
    check_decode_memory(spec, chosen["between"], chosen["upscaler"], available)
    note = None
    if given_up:
        note = (
            f"note: {' and '.join(given_up)} would need about {wanted / 2**30:.1f} GB of memory "
            f"and {available / 2**30:.1f} GB is free; the network's own reads instead"
        )
    return chosen["between"], chosen["upscaler"], note


def check_decode_memory(spec: RenderSpec, between: str, upscaler: str, available: int) -> None:
    """Refuse a render that would need more memory than ``available`` bytes."""
    need = decode_memory(spec, between, upscaler)
    if need > available:
        raise OptionError(
            f"a {spec.width}x{spec.height} render needs about {need / 2**30:.1f} GB of memory "
            f"and {available / 2**30:.1f} GB is free: ask for a smaller --width/--height"
        )


def source_positions(
    spec: RenderSpec, source_frames: int, timeline: Timeline | None = None
) -> list[float]:
    """Source frame position sampled by each output frame: time j / temporal_scale (in the
    source's frame periods), held at the end; where the video has a ``timeline``, the learned
    frames around that time (Timeline.position: the nearer one across a cut)."""
    times = [Fraction(j) / spec.temporal_scale for j in range(spec.num_frames)]
    if timeline is not None:
        return [timeline.position(float(time)) for time in times]
    return [float(min(time, Fraction(source_frames - 1))) for time in times]


def backprojects(spec: RenderSpec, upscaler: str) -> bool:
    """True when ``upscaler`` makes this render's pixels from frames at the learned size (by
    back-projection, of each frame alone or with its neighbours)."""
    from_learned = upscaler in ("backproject", "multiframe")
    return from_learned and enlarges((spec.width, spec.height), spec.learned_size)


def iter_frames(
    model: VideoField,
    spec: RenderSpec,
    source_frames: int,
    between: str = "network",
    upscaler: str = "network",
    colour: tuple[str, str | None] = ("444", None),
    timeline: Timeline | None = None,
) -> Iterator[np.ndarray]:
    """Every frame of a render, one at a time; ``colour`` is the video's (chroma layout, YCbCr
    matrix), which back-projection enlarges the colour by; ``timeline`` its frames' times and
    cuts (none: evenly spaced).

    Frames between two source frames are the network read at their time (``between="network"``),
    or the two rendered source frames around them moved along the motion the model keeps, else
    along their optical flow, and blended (``"motion"``; ``"search"``: the flow searched even where
    the model keeps motion, nvfilter.decode.motion). An output larger than the learned size is the network read
    at the output's pixels (``upscaler="network"``), or each frame made at the learned size and
    upscaled by back-projection (``"backproject"``, nvfilter.decode.upscale), or by back-projection
    against its neighbouring frames too (``"multiframe"``, nvfilter.decode.multiframe).
    """
    check_rule("between", between, BETWEEN_RULES)
    check_rule("upscaler", upscaler, UPSCALERS)
    model.forget_render_cache()
    positions = source_positions(spec, source_frames, timeline)
    enlarge = backprojects(spec, upscaler)
    width, height = spec.learned_size if enlarge else (spec.width, spec.height)
    frames = frames_at(model, positions, source_frames, between, width, height, timeline)
    if enlarge and upscaler == "multiframe":
        yield from upscale_frames(frames, spec.width, spec.height, *colour)
        return
    for frame in frames:
        yield (
            backproject(frame, spec.width, spec.height, chroma=colour[0], matrix=colour[1])
            if enlarge
            else frame
        )


def frames_at(
    model: VideoField,
    positions: list[float],
    source_frames: int,
    between: str,
    width: int,
    height: int,
    timeline: Timeline | None = None,
) -> Iterator[np.ndarray]:
    """The frames at source ``positions``, ``width`` x ``height``, made by the ``between`` rule
    (with a ``timeline``, the flows of frames FAR_PAIR or more apart searched)."""
    if between == "network":
        times = [frame_time(position, source_frames) for position in positions]
        yield from render_frames(model, width, height, times)
        return
    far = set() if timeline is None else timeline.far_pairs(FAR_PAIR)
    yield from _MovedFrames(model, positions, source_frames, between, width, height,
                            far).frames()  # fmt: skip


FAR_PAIR = 2.0
"""Frames at least this many frame periods apart (a variable rate's gap: a frame or more
missing) have their flow searched even where the file keeps motion between them: the coder's
motion, made to predict one frame from the other, reads a long gap less well than a search
(BENCHMARKS.md, "Cuts, repeats and variable rates")."""


class _MovedFrames:
    """frames_at's frames by a motion rule: the source frames read from the model, several at
    once and each once, and the new frames between each pair made along the motion by worker
    threads, a few pairs ahead of the frames handed on."""

    def __init__(self, model: VideoField, positions: list[float], source_frames: int,
                 between: str, width: int, height: int, far: set[int]) -> None:  # fmt: skip
        self.model, self.positions, self.between = model, positions, between
        self.far = far
        """Pairs (their first frame) whose flow is searched even where the model keeps one."""
        kept = sorted(
            {math.floor(position) for position in positions}
            | {math.floor(position) + 1 for position in positions if position % 1}
        )  # the source frames used, read in this order, several at once
        times = [frame_time(k, source_frames) for k in kept]
        self.reads = zip(kept, render_frames(model, width, height, times), strict=True)
        self.rendered: dict[int, np.ndarray] = {}  # source frames read and still to be used
        self.wanted: dict[int, list[float]] = {}  # pair (its first frame) -> fractions, in order
        for position in positions:
            whole = math.floor(position)
            if position != whole:
                self.wanted.setdefault(whole, []).append(position - whole)
        self.pairs = list(self.wanted)
        self.made: dict[int, Future[list[np.ndarray]]] = {}

    def source_frame(self, index: int) -> np.ndarray:
        """Source frame ``index`` (asked for in order, none after its last use)."""
        while index not in self.rendered:
            read, frame = next(self.reads)
            self.rendered[read] = frame
        return self.rendered[index]

    def near(self, order: int, whole: int) -> bool:
        """Whether the ``order``-th pair begins within AHEAD_FRAMES of source frame ``whole``."""
        return order < len(self.pairs) and self.pairs[order] <= whole + AHEAD_FRAMES

    def start(self, order: int, workers: ThreadPoolExecutor) -> None:
        """Have a worker make the ``order``-th pair's new frames, if there is such a pair."""
        if order < len(self.pairs) and self.pairs[order] not in self.made:
            first = self.pairs[order]
            frames = self.source_frame(first), self.source_frame(first + 1)
            # here: a network's reads are not thread-safe
            kept = self.between == "motion" and first not in self.far
            stored = self.model.pair_flows(first) if kept else None
            self.made[first] = workers.submit(frames_between, *frames, self.wanted[first], stored)

    def frames(self) -> Iterator[np.ndarray]:
        """The frame at each position, in order."""
        entered = -1  # the pairs whose frames have been handed on (their order)
        current: tuple[int, Iterator[np.ndarray]] | None = None
        share = max(1, torch.get_num_threads() // MOTION_WORKERS)  # the cores, shared by workers
        workers = ThreadPoolExecutor(MOTION_WORKERS, thread_name_prefix="nvfilter-motion")
        with torch_threads(share), opencv_threads(share):
            try:
                for position in self.positions:
                    whole = math.floor(position)
                    for old in [kept for kept in self.rendered if kept < whole]:
                        del self.rendered[old]
                    if position == whole:
                        yield self.source_frame(whole)
                        continue
                    if current is None or current[0] != whole:
                        entered += 1
                        for order in range(entered, entered + MOTION_WORKERS + 1):
                            if self.near(order, whole):  # this pair (it begins at whole)
                                self.start(order, workers)  # and the next few, if near
                        current = (whole, iter(self.made.pop(whole).result()))
                    yield next(current[1])
            finally:
                workers.shutdown(wait=True, cancel_futures=True)


def frames_between(
    first: np.ndarray, second: np.ndarray, fractions: list[float],
    stored: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[np.ndarray]:  # fmt: skip
    """The frames at ``fractions`` of the way from ``first`` to ``second``, moved along the
    motion the network keeps between them (``stored``, VideoField.pair_flows), else along the
    flows searched on them (motion.FramePair.estimate)."""
    if stored is None:
        pair = FramePair.estimate(first, second)
    else:
        height, width = first.shape[:2]
        factor = max(1, round(height / stored[0].shape[0]))  # as the model shrank them
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        flows = [resized_flow(flow, size) for flow in stored]
        pair = FramePair.from_flows(first, second, flows[0], flows[1])
    return [pair.at(fraction) for fraction in fractions]


def resized_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow (h, w, 2) in its own pixels, resized (bilinear) to ``size`` (width, height) and
    its vectors scaled to that size's pixels."""
    import cv2

    height, width = flow.shape[:2]
    if (width, height) == size:
        return flow
    resized = cv2.resize(np.ascontiguousarray(flow), size, interpolation=cv2.INTER_LINEAR)
    return resized * np.array([size[0] / width, size[1] / height], np.float32)
