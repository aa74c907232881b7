"""The frames between from the codec's stored motion, probed on the coder alone: the encoder's
proposals with and without the block search's restarts (fast_motion), against a flow searched on
the same decoded frames.

    python bench/between_probe.py [--starts 0 128 136] [--qp 36]

For each window of tour.mp4 (64 frames from ``start``, area-scaled to 640x360 as the between part
of codec_bench.py does), the 32 even frames are coded by ``encode_part`` at a fixed quantiser and
decoded; each odd frame is made at 0.5 between its neighbours from the stored vectors
(codec/flows.chosen_flow at full size) or from the flows `--between search` finds on the same
decoded frames (decode/motion.FramePair.estimate), and scored against the real one. The
"DIS alone" rows switch the restarts off (fast_motion.restart answering None), as the encoder
was before them.
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
from common import CORPUS

from nvfilter.codec import search
from nvfilter.codec.decoder import PartDecoder
from nvfilter.codec.encoder import encode_part
from nvfilter.codec.flows import chosen_flow, reversed_flow
from nvfilter.codec.planes import Layout, to_rgb, to_uint8
from nvfilter.codec.ratecontrol import Target
from nvfilter.codec.structure import pair_source
from nvfilter.decode import motion
from nvfilter.inbetween import FramePair

SIZE = (640, 360)


def window(start: int, count: int = 64) -> np.ndarray:
    """``count`` frames of tour.mp4 from ``start``, uint8 RGB, area-scaled to SIZE."""
    import cv2

    capture = cv2.VideoCapture(str(CORPUS / "tour.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    for _ in range(count):
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)[..., ::-1])
    return np.ascontiguousarray(np.stack(frames))


def psnr(errors: list[float]) -> float:
    return float(10 * np.log10(255.0**2 / np.mean(errors)))


def probe(frames: np.ndarray, qp: int) -> tuple[int, float, float, float]:
    """(bytes, kept frames' PSNR, new frames' PSNR from the stored motion, from searched flows)."""
    kept, held = frames[0::2], frames[1::2]
    layout = Layout(*SIZE)
    coded = encode_part(kept, layout, Target(qp=qp))
    decoder = PartDecoder(coded.data, layout, len(kept))
    pictures, vectors = {}, {}
    for frame in decoder.frames():
        pictures[frame.frame.index] = to_uint8(to_rgb(frame.planes, layout))
        vectors[frame.frame.index] = dict(zip(frame.frame.references, frame.vectors, strict=True))
    stored, searched = [], []
    for first in range(len(held)):
        if first + 1 >= len(kept):
            break
        source = pair_source(decoder.order, first)
        assert source is not None  # no cut inside these windows
        holder, reference = source
        flow = chosen_flow(vectors[holder][reference], pictures[holder], pictures[reference])
        turned = reversed_flow(flow)
        flows = (flow, turned) if holder == first else (turned, flow)
        one, two = pictures[first], pictures[first + 1]
        made = FramePair.from_flows(one, two, *flows).at(0.5)
        stored.append(float(np.mean((made.astype(np.float64) - held[first]) ** 2)))
        found = motion.FramePair.estimate(one, two).at(0.5)
        searched.append(float(np.mean((found.astype(np.float64) - held[first]) ** 2)))
    kept_psnr = 10 * np.log10(255.0**2 * kept.size / sum(coded.squared_errors))
    return len(coded.data), float(kept_psnr), psnr(stored), psnr(searched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", nargs="+", type=int, default=[0, 128, 136])
    parser.add_argument("--qp", type=int, default=36)
    args = parser.parse_args()
    print(f"| tour.mp4 at {SIZE[0]}x{SIZE[1]}, 32 kept frames at qp {args.qp} | bytes | kept dB "
          "| new frames, stored motion | new frames, searched flows |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for start in args.starts:
        frames = window(start)
        for name, restarts in (("DIS alone", False), ("DIS started again", True)):
            if restarts:
                row = probe(frames, args.qp)
            else:
                with mock.patch.object(search.fast_motion, "restart", return_value=None):
                    row = probe(frames, args.qp)
            print(f"| frames {start}-{start + len(frames) - 1}, {name} | {row[0]:,} | "
                  f"{row[1]:.2f} | {row[2]:.2f} | {row[3]:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
