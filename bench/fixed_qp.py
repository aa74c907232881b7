"""One change at a time: a clip's first frames coded at a fixed quantiser, in one process.

    python bench/fixed_qp.py CLIP FRAMES QP [QP ...]

Prints, per quantiser, the coded part's bytes, its RGB PSNR, wall and CPU seconds and a hash
of the stream (the same hash: the same bytes, for changes meant to leave them). The tables of
BENCHMARKS.md measured "at a fixed quantiser" come from this (`encode_part`, no rate control,
the clip at its own size).
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

from nvfilter.codec.encoder import encode_part
from nvfilter.codec.planes import Layout
from nvfilter.codec.ratecontrol import Target


def first_frames(clip: str, count: int) -> np.ndarray:
    """The clip's first ``count`` frames, uint8 RGB (n, h, w, 3), as OpenCV decodes them."""
    import cv2

    capture = cv2.VideoCapture(clip)
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    return np.ascontiguousarray(np.stack(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip")
    parser.add_argument("frames", type=int)
    parser.add_argument("qps", type=int, nargs="+")
    args = parser.parse_args()
    frames = first_frames(args.clip, args.frames)
    layout = Layout(frames.shape[2], frames.shape[1])
    for qp in args.qps:
        wall, cpu = time.perf_counter(), time.process_time()
        coded = encode_part(frames, layout, Target(qp=qp))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        psnr = 10 * np.log10(255.0**2 * frames.size / sum(coded.squared_errors))
        digest = hashlib.md5(coded.data).hexdigest()[:12]
        print(f"{args.clip} {len(frames)} frames qp {qp}: {len(coded.data):,} B {psnr:.3f} dB "
              f"{wall:.1f} s ({cpu:.1f} s CPU) stream {digest}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
