"""Upscaling from several neighbouring frames: multi-frame back-projection of the brightness.

A frame made at the learned size holds each pixel as the average of the picture over its square,
so fine detail folds into patterns it does not have (aliasing); where the camera or the scene
moves by a fraction of a pixel, a neighbouring frame samples the same detail at other places. Irani
and Peleg's back-projection (1991) was made for this: each frame's large picture is corrected so
that, moved along the motion to each neighbour and averaged over that neighbour's pixels, it gives
back the neighbour's learned pixels too, not only its own.

Here the single-frame back-projection (upscale.py) of every frame is the start and keeps the
colour; the brightness (luma) of frame k is then corrected CORRECTIONS times against frame k and
its NEIGHBOURS frames each side. The motion is OpenCV's DIS optical flow between the
single-frame results' luma, both ways (DIS's medium preset, as motion.py's; small frames are
not enlarged for it as there: on a 128x96 pan, enlarged 3x, the gain fell from 6 to 0.9 dB).
A neighbour's pixel counts only where the two flows agree (forward-backward check, as
motion.py) and where the neighbour agrees with the frame at low frequency (AGREEMENT_LEVELS):
aliasing differs from frame to frame by fine patterns that a blur averages out, while a flow
that went wrong (a fast arm, a cut) leaves a difference a blur keeps. Only the brightness: the
colour of a video holds little fine detail (and a 4:2:0 source's came at half size).

Measured (bench/real_size_bench.py's upscaling table, BENCHMARKS-history.md), 2x from frames learned at
half size, against the real frames: the hand-held forest at 640x360 29.13 -> 29.75 dB (lanczos
29.33), tour.mp4 at 720x404 34.93 -> 35.13, oa4_launch.webm at 640x360 28.56 -> 28.71, Big Buck
Bunny at 1280x720 39.47 -> 40.42; about five times the decode time. Without the low-frequency
agreement, a phone clip at 720x1280 lost 3 dB (an arm's fast moves); with it, it gains 0.25.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nvfilter.chroma import ycbcr_matrix
from nvfilter.decode.motion import dis_search
from nvfilter.decode.upscale import backproject, lanczos_enlarge
from nvfilter.device import opencv_threads, torch_threads
from nvfilter.inbetween import occlusion, pixel_places

NEIGHBOURS = 2
"""Frames each side whose pixels correct a frame."""
CORRECTIONS = 5
"""Corrections against all the frames at once."""
AGREEMENT_LEVELS = 1.0
"""A neighbour's pixel counts with weight exp(-d^2 / AGREEMENT_LEVELS^2), d the local RMS (over
AGREEMENT_WINDOW small pixels) of its difference from the frame moved onto it, blurred
(Gaussian, AGREEMENT_BLUR small pixels), in 8-bit grey levels."""
AGREEMENT_BLUR = 1.0
AGREEMENT_WINDOW = 5
CORRECTION_WORKERS = 2
"""Threads correcting frames (one frame each) beside the one making enlargements and flows."""
FLOW_MIN_SIDE = 16
"""Frames with a side shorter than this get no flow (DIS needs 12 pixels and more)."""
MULTIFRAME_BYTES_PER_PIXEL = 704
"""Memory the upscaler holds per output pixel beyond the single-frame back-projection's: the
window's frames, the flows between them both ways, and the frames being corrected (each
neighbour's places and weights, on CORRECTION_WORKERS threads). Measured: 40 frames of a
640x360 network decoded at 1280x720, 1.10 GB peak against 0.48 GB by `backproject` (672 bytes a
pixel more; 350 with the corrections on one thread)."""


@dataclass
class _Frame:
    """One frame of the stream: its learned pixels' luma (h, w), its single-frame enlargement
    (H, W, 3) uint8 and that enlargement's luma (H, W) float and 8-bit (what the flows are found
    on)."""

    small: torch.Tensor
    single: np.ndarray
    luma: torch.Tensor
    grey: np.ndarray


class MultiFrameUpscaler:
    """Enlarges a stream of learned-size frames, each once every neighbour it needs has come:
    ``feed`` a frame, get back the work for those now ready (calls that each give one upscaled
    frame, in the stream's order, and may run on any thread); ``finish``: the rest's."""

    def __init__(self, width: int, height: int, chroma: str = "444", matrix: str | None = None):
        self.width, self.height = width, height
        self.chroma, self.matrix = chroma, matrix
        self.to_ycbcr = ycbcr_matrix(matrix)
        self.from_ycbcr = torch.linalg.inv(self.to_ycbcr)
        self.learned = (0, 0)  # the learned frames' (height, width), from the first
        self.frames: deque[_Frame] = deque()
        self.first = 0  # the index of frames[0] in the stream
        self.next_out = 0
        self.flows: dict[tuple[int, int], torch.Tensor] = {}
        self.grid = pixel_places(height, width)  # (H, W, 2): each pixel's x, y

    # ---- the stream -------------------------------------------------------------------------

    def feed(self, frame: np.ndarray) -> list[Callable[[], np.ndarray]]:
        """Take the next learned-size frame (uint8 h x w x 3); the work (each call gives one
        upscaled frame, in order) for the frames whose neighbours have all come."""
        self.learned = (int(frame.shape[0]), int(frame.shape[1]))
        single = backproject(frame, self.width, self.height, chroma=self.chroma, matrix=self.matrix)
        luma = self._luma(single)
        grey = np.ascontiguousarray(luma.round().clamp(0, 255).to(torch.uint8).numpy())
        self.frames.append(_Frame(self._luma(frame), single, luma, grey))
        last = self.first + len(self.frames) - 1
        for other in range(max(self.first, last - NEIGHBOURS), last):
            self._flows_between(other, last)
        work = []
        while self.next_out + NEIGHBOURS <= last:
            work.append(self._work(self.next_out))
        return work

    def finish(self) -> list[Callable[[], np.ndarray]]:
        """The work for the frames still waiting for neighbours that will not come."""
        last = self.first + len(self.frames) - 1
        return [self._work(self.next_out) for _ in range(self.next_out, last + 1)]

    def _work(self, index: int) -> Callable[[], np.ndarray]:
        """What upscales frame ``index`` (holding what it needs); frames no later frame needs
        are let go."""
        last = self.first + len(self.frames) - 1
        neighbours = [
            (self.frames[j - self.first].small, self.flows[(j, index)], self.flows[(index, j)])
            for j in range(index - NEIGHBOURS, index + NEIGHBOURS + 1)
            if j != index and self.first <= j <= last
        ]  # fmt: skip
        work = functools.partial(self._corrected, self.frames[index - self.first], neighbours)
        self.next_out = index + 1
        while self.first < self.next_out - NEIGHBOURS:
            self.frames.popleft()
            self.first += 1
            self.flows = {
                pair: flow for pair, flow in self.flows.items() if min(pair) >= self.first
            }
        return work

    # ---- the correction ---------------------------------------------------------------------

    def _corrected(
        self, own: _Frame, neighbours: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    ) -> np.ndarray:
        """``own``'s enlargement, its luma corrected against its ``neighbours`` (each: its
        learned luma, its flow to us, ours to it)."""
        if not neighbours:
            return own.single
        terms = []  # per neighbour: its luma, its places in us, ours in it, its weight (ours)
        for small, to_own, to_it in neighbours:
            from_own, from_it = self._places(to_own), self._places(to_it)
            weight = self._agreement(own.luma, small, from_own)
            weight = self._moved(weight, from_it) * self._consistent(to_it, to_own)
            terms.append((small, from_own, from_it, weight))
        total = 1 + sum(term[3] for term in terms)
        large = own.luma.clone()
        for _ in range(CORRECTIONS):
            update = self._enlarge(own.small - self._area(large))
            for small, from_own, from_it, weight in terms:
                error = self._enlarge(small - self._area(self._moved(large, from_own)))
                update += self._moved(error, from_it) * weight
            large += update / total
        return self._with_luma(own.single, large)

    def _agreement(
        self, luma: torch.Tensor, small: torch.Tensor, places: tuple[np.ndarray, np.ndarray]
    ) -> torch.Tensor:
        """Weights (H, W) on a neighbour's grid: how well its learned pixels ``small`` agree, at
        low frequency, with our enlargement ``luma`` moved onto it (sampled at ``places``)."""
        import cv2

        difference = (small - self._area(self._moved(luma, places))).numpy()
        blurred = torch.from_numpy(cv2.GaussianBlur(difference, (0, 0), AGREEMENT_BLUR))
        power = F.avg_pool2d(
            blurred[None, None].square(), AGREEMENT_WINDOW, 1, AGREEMENT_WINDOW // 2,
            count_include_pad=False,
        )  # fmt: skip
        weight = torch.exp(-power / AGREEMENT_LEVELS**2)
        return F.interpolate(weight, size=(self.height, self.width), mode="bilinear")[0, 0]

    def _consistent(self, flow: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
        """1 where ``flow`` (ours to a neighbour) lands inside it and comes back along ``back``
        (motion.occlusion's forward-backward check), else 0."""
        landing = self.grid + flow.numpy()
        inside = (landing >= 0).all(-1) & (landing <= (self.width - 1, self.height - 1)).all(-1)
        return (1 - occlusion(flow, back)) * torch.from_numpy(inside)

    # ---- pieces ---------------------------------------------------------------------------

    def _flows_between(self, first: int, second: int) -> None:
        """The optical flows between frames ``first`` and ``second``, both ways."""
        a, b = self.frames[first - self.first].grey, self.frames[second - self.first].grey
        if min(a.shape) < FLOW_MIN_SIDE:  # too small for DIS: no motion, the weights judge
            self.flows[(first, second)] = self.flows[(second, first)] = torch.zeros(*a.shape, 2)
            return
        search = dis_search(own_pixels=False, finest=False, started=False)
        self.flows[(first, second)] = torch.from_numpy(search.calc(a, b, None))
        self.flows[(second, first)] = torch.from_numpy(search.calc(b, a, None))

    def _places(self, flow: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The places p + flow[p] as OpenCV's fixed-point maps (1/32 pixel), which remap reads
        faster than floats; made once for all of a correction's moves along ``flow``."""
        import cv2

        place = self.grid + flow.numpy()
        return cv2.convertMaps(place[..., 0], place[..., 1], cv2.CV_16SC2)

    @staticmethod
    def _moved(image: torch.Tensor, places: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        """``image`` (H, W) or (H, W, C) sampled at ``places`` (bicubic, edges repeated)."""
        import cv2

        moved = cv2.remap(image.numpy(), *places, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return torch.from_numpy(moved)

    def _enlarge(self, small: torch.Tensor) -> torch.Tensor:
        return lanczos_enlarge(small, (self.height, self.width))

    def _area(self, large: torch.Tensor) -> torch.Tensor:
        """``large`` (H, W) averaged over each learned pixel's area."""
        return F.adaptive_avg_pool2d(large[None], self.learned)[0]

    def _luma(self, rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(rgb).float() @ self.to_ycbcr[0]

    def _with_luma(self, rgb: np.ndarray, luma: torch.Tensor) -> np.ndarray:
        """``rgb`` (uint8) with its luma replaced by ``luma``."""
        ycbcr = torch.from_numpy(rgb).float() @ self.to_ycbcr.T
        ycbcr[..., 0] = luma
        out = ycbcr @ self.from_ycbcr.T
        return out.round_().clamp_(0, 255).to(torch.uint8).numpy()


def upscale_frames(
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    chroma: str = "444",
    matrix: str | None = None,
) -> Iterator[np.ndarray]:
    """Learned-size frames (uint8 h x w x 3, in order) enlarged to ``width`` x ``height``, each
    from itself and its neighbours (module docstring), in order. The corrections run on
    CORRECTION_WORKERS threads while this one makes the single-frame enlargements and the flows,
    each operation on one thread."""
    upscaler = MultiFrameUpscaler(width, height, chroma, matrix)
    pending: deque[Future[np.ndarray]] = deque()
    with (
        torch_threads(1),
        opencv_threads(1),
        ThreadPoolExecutor(CORRECTION_WORKERS, thread_name_prefix="nvfilter-upscale") as pool,
    ):
        try:
            for frame in frames:
                pending.extend(pool.submit(work) for work in upscaler.feed(frame))
                while len(pending) > CORRECTION_WORKERS:
                    yield pending.popleft().result()
            pending.extend(pool.submit(work) for work in upscaler.finish())
            while pending:
                yield pending.popleft().result()
        finally:
            for left in pending:
                left.cancel()
