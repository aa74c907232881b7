"""The codec model: a part of the video as a coded stream (nvfilter/codec), decoded when read.

Its one tensor is ``stream``, the part's bytes (codec/bitstream.py: quantised, entropy-coded
residuals and the motion between frames). Read at a frame's time it is that frame as decoded;
read between two frames, it is the two decoded frames moved along the motion the stream keeps
between them and blended (nvfilter/inbetween.py), with no search: the motion was found once,
by the encoder. Any other size is the frame resized bilinearly at pixel centres (coords.py),
and a point read samples the frame at its time the same way, so frame and point reads agree.

Frames are decoded in the stream's order (each from the ones it is predicted from) and kept
while they may be read again: a few groups' worth, whatever the part's length. Reading an
earlier frame than those kept decodes the part again from its start.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nvfilter.chroma import LAYOUTS
from nvfilter.codec import bitstream
from nvfilter.codec.decoder import DecodedFrame, PartDecoder
from nvfilter.codec.encoder import EncodedPart, encode_part
from nvfilter.codec.entropy import CorruptStream
from nvfilter.codec.flows import chosen_flow, reversed_flow
from nvfilter.codec.planes import Layout, to_rgb, to_uint8
from nvfilter.codec.ratecontrol import Target
from nvfilter.codec.structure import pair_source
from nvfilter.errors import NvwError
from nvfilter.inbetween import FramePair
from nvfilter.models.field import VideoField
from nvfilter.models.spec import SINGLE_VERSION, ModelSpec, PartShape, register

KEEP_FRAMES = 24
"""Decoded frames kept for reads: the frames of a group being played and the ones around."""
FLOW_SHRINK_FROM = 256
"""Frames this tall or taller are moved between frames along flows at half their size: the
stored vectors are one per 8x8 block, so half size loses nothing of them, and the work of the
blend (splatting, occlusion) is a quarter (tour.mp4 at 640x360: the new frames within 0.03 dB,
the pairs 1.6-1.9x faster; BENCHMARKS.md, frames between)."""
MAX_STREAM = 1 << 40


class CodedField(VideoField):
    """A part's frames as a coded stream, decoded when read (module docstring)."""

    kind = "codec"
    closed_form = True
    stream: torch.Tensor

    def __init__(
        self,
        width: int,
        height: int,
        frames: int,
        chroma: str = "420",
        target_qp: int | None = None,
        target_psnr: float | None = None,
        bits_per_frame: float | None = None,
        qp: int | None = None,
        stream_bytes: int = 0,
    ) -> None:
        super().__init__()
        if min(width, height, frames) < 1 or not 0 <= stream_bytes <= MAX_STREAM:
            raise ValueError("every size in the architecture must be positive")
        if chroma not in LAYOUTS:
            raise ValueError(f"chroma {chroma!r}: 444, 422 or 420")
        self.width, self.height, self.frames, self.chroma = width, height, frames, chroma
        self.target = Target(target_qp, target_psnr, bits_per_frame)
        self.qp = qp
        self.layout = Layout(width, height, chroma)
        self.register_buffer("stream", torch.zeros(stream_bytes, dtype=torch.uint8))
        self.register_load_state_dict_post_hook(lambda module, keys: module._check_stream())
        self.fit: EncodedPart | None = None
        """What the encoder made of the frames (their errors and bits), after start_from."""
        self.forget_render_cache()

    # ---- the fit --------------------------------------------------------------------------

    def start_from(
        self, frames: torch.Tensor, progress: Callable[[int], None] | None = None,
        cuts: Sequence[int] = (),
    ) -> None:  # fmt: skip
        """Code the uint8 frames (n, height, width, 3) for the target, each frame in ``cuts``
        (it starts a new shot) coded intra; ``progress`` is told each frame's index as it is
        coded."""
        encoded = encode_part(frames.numpy(), self.layout, self.target, progress, cuts)
        self.stream = torch.frombuffer(bytearray(encoded.data), dtype=torch.uint8)
        self.qp = encoded.base_qp
        self.fit = encoded
        self.forget_render_cache()

    def fit_squared_errors(self) -> list[float] | None:
        """Each frame's mean squared error (in [0, 1] units) as the encoder reconstructed it,
        which is what decoding gives."""
        if self.fit is None:
            return None
        samples = self.width * self.height * 3 * 255.0**2
        return [error / samples for error in self.fit.squared_errors]

    def _check_stream(self) -> None:
        """Refuse a stream whose header does not describe this network's frames (raised as a
        RuntimeError, which the .nvw reader reports in one line)."""
        if self.stream.device.type == "meta":
            return
        try:
            header, _, _ = bitstream.unpack(self.stream.numpy().tobytes())
        except CorruptStream as err:
            raise RuntimeError(str(err)) from None
        if (header.width, header.height, header.frames, header.chroma) != (
            self.width, self.height, self.frames, self.chroma,
        ):  # fmt: skip
            raise RuntimeError("the coded stream is of other frames than its architecture's")
        self.forget_render_cache()

    # ---- reads ----------------------------------------------------------------------------

    def forget_render_cache(self) -> None:
        self._decoding: Iterator[DecodedFrame] | None = None
        self._decoder: PartDecoder | None = None
        self._kept: OrderedDict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = OrderedDict()
        self._pair: tuple[int, FramePair] | None = None

    def _start_decoding(self) -> None:
        try:
            self._decoder = PartDecoder(self.stream.numpy().tobytes(), self.layout, self.frames)
        except CorruptStream as err:
            raise NvwError(f"the coded stream of a {self.kind} network: {err}") from None
        self._decoding = self._decoder.frames()
        self._kept.clear()

    def decoded(self, index: int) -> np.ndarray:
        """Frame ``index`` as decoded: uint8 (height, width, 3) (the part's first and last as
        the fit made them, where this network was just fitted: the same frames, no decode)."""
        if self.fit is not None and index in self.fit.edges:
            return self.fit.edges[index]
        return self._decoded(index)[0]

    def _decoded(self, index: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Frame ``index`` and its vectors by reference, decoding on (or again from the start,
        for a frame no longer kept)."""
        if index in self._kept:
            return self._kept[index]
        if not 0 <= index < self.frames:
            raise IndexError(f"frame {index} of a part of {self.frames}")
        if self._decoding is None or (self._kept and index < min(self._kept)):
            self._start_decoding()
        assert self._decoding is not None
        try:
            for frame in self._decoding:
                picture = to_uint8(to_rgb(frame.planes, self.layout))
                vectors = dict(zip(frame.frame.references, frame.vectors, strict=True))
                self._kept[frame.frame.index] = (picture, vectors)
                while len(self._kept) > KEEP_FRAMES:
                    self._kept.pop(min(self._kept))
                if frame.frame.index == index:
                    return self._kept[index]
        except CorruptStream as err:
            raise NvwError(f"the coded stream of a {self.kind} network: {err}") from None
        self._decoding = None  # the part is done: a later read starts again
        return self._decoded(index)

    def pair_flows(self, first: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(forward, backward) flows between frames ``first`` and ``first + 1`` from the motion
        the stream keeps (inbetween.FramePair.from_flows's; codec/flows.chosen_flow), at half
        their size for frames FLOW_SHRINK_FROM rows or taller; None across a cut."""
        self._decoded(first)  # the decoder, and with it the coding order, is there now
        assert self._decoder is not None
        source = pair_source(self._decoder.order, first)
        if source is None:  # a cut: no motion between the two shots
            return None
        holder, reference = source
        picture, vectors = self._decoded(holder)
        factor = 2 if self.height >= FLOW_SHRINK_FROM else 1
        flow = chosen_flow(vectors[reference], picture, self._decoded(reference)[0], factor)
        turned = reversed_flow(flow)
        return (flow, turned) if holder == first else (turned, flow)

    def between(self, first: int, fraction: float) -> np.ndarray:
        """The uint8 frame at ``fraction`` (0 < fraction < 1) of the way from frame ``first`` to
        the next, moved along the stored motion; across a cut, the nearer of the two."""
        if self._pair is None or self._pair[0] != first:
            flows = self.pair_flows(first)
            if flows is None:
                return self.decoded(first + (fraction > 0.5))  # a tie: the earlier (Timeline)
            one, two = self.decoded(first), self.decoded(first + 1)
            self._pair = (first, FramePair.from_flows(one, two, *flows))
        return self._pair[1].at(fraction)

    def picture(self, position: float) -> np.ndarray:
        """The uint8 frame at a frame position (0 .. frames - 1, clamped)."""
        position = min(max(position, 0.0), self.frames - 1.0)
        nearest = round(position)
        if abs(position - nearest) < 1e-6 or self.frames == 1:
            return self.decoded(nearest)
        first = min(math.floor(position), self.frames - 2)
        return self.between(first, position - first)

    def render_images(self, times: list[float], width: int, height: int) -> list[torch.Tensor]:
        images = []
        for t in times:
            frame = self.picture((t + 1) * 0.5 * self.frames - 0.5)
            image = torch.from_numpy(frame).permute(2, 0, 1).float().div_(255.0)
            if (height, width) != (self.height, self.width):
                image = F.interpolate(image[None], size=(height, width), mode="bilinear",
                                      align_corners=False)[0].clamp_(0, 1)  # fmt: skip
            images.append(image)
        return images

    def render_image(self, t: float, width: int, height: int) -> torch.Tensor:
        return self.render_images([t], width, height)[0]

    def render_rows(
        self, t: float, width: int, height: int, row_start: int, row_stop: int
    ) -> torch.Tensor:
        image = self.render_image(t, width, height)
        return image[:, row_start:row_stop].permute(1, 2, 0).reshape(-1, 3)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """RGB (B, 3) at points (B, 3): each time's frame at the learned size, read bilinearly
        at (x, y) (pixel centres, coords.py), as the frame reads resize it."""
        out = coords.new_zeros(coords.shape[0], 3)
        times = coords[:, 2]
        for time in times.unique().tolist():
            index = (times == time).nonzero().squeeze(1)
            image = self.render_image(time, self.width, self.height)
            grid = coords[index, :2].view(1, 1, -1, 2)
            sampled = F.grid_sample(image[None], grid, mode="bilinear",
                                    padding_mode="border", align_corners=False)  # fmt: skip
            out[index] = sampled[0, :, 0].T
        return out

    # ---- storage --------------------------------------------------------------------------

    # ---- the architecture's values (VideoField.architecture reads them) ------------------

    @property
    def target_qp(self) -> int | None:
        return self.target.qp

    @property
    def target_psnr(self) -> float | None:
        return self.target.psnr

    @property
    def bits_per_frame(self) -> float | None:
        return self.target.bits_per_frame

    @property
    def stream_bytes(self) -> int:
        return int(self.stream.numel())


CODEC_VERSION = SINGLE_VERSION + 4
"""The .nvw version of a file holding coded parts (7: older readers refuse it in one line)."""
PART_BYTES = 1 << 30
"""A part holds at most about this many bytes of raw frames (BENCHMARKS.md, codec: an intra
frame a part costs 1 to 4% of the file at 240 frames, and the part's frames are in memory)."""
PART_FRAMES = (16, 240)
"""The shortest and longest part (frames, one shared with the next)."""
QUALITY_QP = (12, 0.44)
"""--quality q (0 to 100) codes at quantiser 12 + 0.44 x (100 - q): 100 about 55 dB, 50 about
40 dB, 0 about 30 dB (BENCHMARKS.md, codec)."""


def quality_qp(quality: float) -> int:
    """The quantiser parameter of a --quality value (QUALITY_QP)."""
    base, per_point = QUALITY_QP
    return round(base + per_point * (100 - quality))


def part_frames(width: int, height: int) -> int:
    least, most = PART_FRAMES
    return int(min(most, max(least, PART_BYTES // (3 * width * height))))


def part_architecture(part: PartShape) -> dict[str, Any]:
    """A part's coder before it codes: what it codes for (ratecontrol.Target)."""
    settings = part.settings
    quality = settings.get("quality")
    return {"type": "codec", "width": part.width, "height": part.height, "frames": part.frames,
            "chroma": part.chroma,
            "target_qp": None if quality is None else quality_qp(quality),
            "target_psnr": settings.get("target_psnr"),
            "bits_per_frame": settings.get("bits_per_frame"), "qp": None, "stream_bytes": 0}  # fmt: skip


def describe_target(architecture: Mapping[str, Any]) -> str:
    """What a part is coded for, in words."""
    aims = []
    if architecture["target_qp"] is not None:
        aims.append(f"quantiser {architecture['target_qp']}")
    if architecture["target_psnr"] is not None:
        aims.append(f"{architecture['target_psnr']:g} dB")
    if architecture["bits_per_frame"] is not None:
        bits = architecture["bits_per_frame"] / (architecture["width"] * architecture["height"])
        aims.append(f"{'within ' if aims else ''}{bits:.3g} bits a pixel")
    return " ".join(aims) or "its default"


def describe_parts(part: PartShape, count: str) -> str:
    return (
        f"codec in {count} of {part.part_frames} frames (+1 shared): each frame predicted "
        f"along motion found once and kept, residuals quantised and entropy-coded, for "
        f"{describe_target(part_architecture(part))}"
    )


def stored_bytes(settings: Mapping[str, Any], width: int, height: int, frames: int) -> int | None:
    """A budget of bits is a ceiling the coder keeps to."""
    bits = settings.get("bits_per_frame")
    return None if bits is None else int(bits * frames / 8)


SPEC = register(
    ModelSpec(
        name="codec",
        network=CodedField,
        help="a coded stream: each frame predicted along motion found once and kept in the "
        "file, what is left quantised and entropy-coded; by default at 45 dB or the source "
        "file's size, whichever is smaller",
        streamed=True,
        coded=True,
        refuses=("footprint", "hidden_features", "hidden_layers", "channels", "levels"),
        refuse_reason="it is a coded stream, not a network",
        # a few groups of frames as float planes, their predictions and the trial's copy
        fit_bytes_per_pixel=2,
        format_version=lambda architecture: CODEC_VERSION,
        part_architecture=part_architecture,
        describe_parts=describe_parts,
        part_frames=part_frames,
        stored_bytes=stored_bytes,
    )
)
