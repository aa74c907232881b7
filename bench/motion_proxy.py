"""Motion-compensated in-between frames from the real kept frames (no network): how good can it be?

    python bench/motion_proxy.py [--size 1280x720] [--frames 13] [--no-ffmpeg]

The temporal test of quality_bench.py (160x90, 25 frames, every k-th kept, the rest scored), with
the in-between frames made from the kept frames themselves by nvfilter.decode.motion (optical flow both
ways, warped to the in-between time, blended by visibility), beside ffmpeg's minterpolate and
framerate and a plain cross-fade of the same frames. A proxy for the decode rule: the network's
learned frames are 40+ dB copies of these.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from quality_bench import CLIPS, TEMPORAL_FRAMES, TEMPORAL_SIZE, ffmpeg_filter, load, score  # noqa: E402

from nvfilter.decode import motion  # noqa: E402


def between(kept: np.ndarray, k: int, make) -> np.ndarray:
    """Frames 0..last at the original rate, in-between ones made by ``make(a, b, fraction)``."""
    out = []
    for i in range(kept.shape[0] - 1):
        a, b = kept[i], kept[i + 1]
        out.append(a)
        pair = make.prepare(a, b) if hasattr(make, "prepare") else (a, b)
        for j in range(1, k):
            out.append(make(pair, j / k))
    out.append(kept[-1])
    return np.stack(out)


class Blend:
    def __call__(self, pair, s):
        a, b = pair
        return np.round(a * (1 - s) + b * s).astype(np.uint8)


class Compensated:
    def prepare(self, a, b):
        return motion.FramePair.estimate(a, b)

    def __call__(self, pair, s):
        return pair.at(s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=CLIPS)
    parser.add_argument(
        "--size", default="x".join(map(str, TEMPORAL_SIZE)), help="WxH the clips are scaled to"
    )
    parser.add_argument("--frames", type=int, default=TEMPORAL_FRAMES)
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip minterpolate and framerate")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    size = (width, height)
    print("Command: python bench/motion_proxy.py " + " ".join(sys.argv[1:]))
    makers = {
        "blend": Blend(),
        "flow": Compensated(),
    }
    for k in (2, 4):
        print(f"\n### k = {k}\n")
        rows: dict[str, list[float]] = {}
        for name in args.clips:
            frames, rate = load(name, size, args.frames)
            last = (frames.shape[0] - 1) // k * k
            kept = frames[: last + 1 : k]
            held = [j for j in range(last) if j % k]
            padded = np.concatenate([kept, kept[-1:]])
            if not args.no_ffmpeg:
                graph = f"minterpolate=fps={rate}:mi_mode=mci"
                mci = ffmpeg_filter(padded, rate / k, graph, size)
                rows.setdefault("minterpolate", []).append(score(mci[held], frames[held])[0])
                fr = ffmpeg_filter(padded, rate / k, f"framerate=fps={rate}", size)
                rows.setdefault("framerate", []).append(score(fr[held], frames[held])[0])
            for label, make in makers.items():
                start = time.perf_counter()
                made = between(kept, k, make)
                rows.setdefault(label, []).append(score(made[held], frames[held])[0])
                rows.setdefault(label + " s", []).append(time.perf_counter() - start)
        print("| method | " + " | ".join(args.clips) + " | mean |")
        print("| --- |" + " --- |" * (len(args.clips) + 1))
        for label, values in rows.items():
            print(
                f"| {label} | "
                + " | ".join(f"{v:.2f}" for v in values)
                + f" | {np.mean(values):.2f} |"
            )


if __name__ == "__main__":
    main()
