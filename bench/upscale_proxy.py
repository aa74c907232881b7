"""Back-projected upscaling from the real small frames (no network): how good can it be?

    python bench/upscale_proxy.py

The spatial test of quality_bench.py (320x176, 24 frames, downscaled by 2 and by 4 with ffmpeg's
area filter, upscaled back and scored against the original), with the small clip itself upscaled
by nvfilter.decode.upscale.backproject beside ffmpeg's bicubic and lanczos and torch's bicubic (the
first step of back-projection). A proxy for `--upscaler backproject`: the network's frames at the
learned size are 40+ dB copies of these.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from quality_bench import CLIPS, SPATIAL_FRAMES, SPATIAL_SIZE, ffmpeg_filter, load, score  # noqa: E402

from nvfilter.decode.upscale import backproject  # noqa: E402


def torch_bicubic(small: np.ndarray, width: int, height: int) -> np.ndarray:
    image = torch.tensor(small, dtype=torch.float32).permute(0, 3, 1, 2)
    large = F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False)
    return large.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=CLIPS)
    args = parser.parse_args()
    print("Command: python bench/upscale_proxy.py " + " ".join(sys.argv[1:]))
    print("\nEach cell: PSNR (all frames pooled) / mean SSIM.")
    width, height = SPATIAL_SIZE
    for factor in (2, 4):
        rows: dict[str, list[tuple[float, float]]] = {}
        for name in args.clips:
            frames, rate = load(name, SPATIAL_SIZE, SPATIAL_FRAMES)
            size = (width // factor, height // factor)
            small = ffmpeg_filter(frames, rate, f"scale={size[0]}:{size[1]}:flags=area", size)
            made = {
                f"ffmpeg scale {flags}": ffmpeg_filter(
                    small, rate, f"scale={width}:{height}:flags={flags}", SPATIAL_SIZE
                )
                for flags in ("bicubic", "lanczos")
            }
            made["torch bicubic (back-projection, 0 steps)"] = torch_bicubic(small, width, height)
            for steps in (1, 3, 5, 10):
                made[f"back-projection, {steps} step" + ("s" if steps > 1 else "")] = np.stack(
                    [backproject(frame, width, height, steps) for frame in small]
                )
            for label, frames_made in made.items():
                rows.setdefault(label, []).append(score(frames_made, frames))
        print(f"\n### {factor}x downscaled (area), upscaled back to {width}x{height}\n")
        print("| method | " + " | ".join(args.clips) + " | mean |")
        print("| --- |" + " --- |" * (len(args.clips) + 1))
        for label, cells in rows.items():
            mean = np.mean([c[0] for c in cells]), np.mean([c[1] for c in cells])
            print(
                f"| {label} | "
                + " | ".join(f"{p:.2f} dB / {s:.3f}" for p, s in [*cells, mean])
                + " |"
            )


if __name__ == "__main__":
    main()
