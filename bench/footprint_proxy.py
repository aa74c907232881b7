"""Proxy for footprint reads: a linear plane whose pixel averages are the small frame, upscaled.

    python bench/footprint_proxy.py

For four frames of each corpus clip at 320x176, area-downscaled by 2 and 4: bilinear and bicubic
upscaling (torch), against a plane of cells at the small frame's pixel centres, solved by Adam so
that the average of its linear interpolant over each small pixel equals that pixel, then read at
the large size (at the output pixels' centres, and as the average over each output pixel). PSNR
against the original frames. No network: this is what the hybrid's --footprint reads aim at.
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nvfilter import ffio  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
OVERSAMPLE = 8


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * np.log10(1 / torch.mean((a - b) ** 2).item()))


def load(name: str, start: int) -> torch.Tensor:
    path = str(CORPUS / name)
    frames = ffio.read_frames(path, ffio.probe(path), 320, 176, 1, start + 4)[start:]
    return frames.permute(0, 3, 1, 2).float() / 255


def area_read(plane: torch.Tensor, scale: int) -> torch.Tensor:
    """The linear interpolant of plane, averaged over pixels of 1/scale cell (oversampled)."""
    _, _, h, w = plane.shape
    size = (h * scale * OVERSAMPLE, w * scale * OVERSAMPLE)
    fine = F.interpolate(plane, size=size, mode="bilinear", align_corners=False)
    return F.avg_pool2d(fine, OVERSAMPLE)


def point_read(plane: torch.Tensor, scale: int, mode: str = "bilinear") -> torch.Tensor:
    _, _, h, w = plane.shape
    return F.interpolate(plane, size=(h * scale, w * scale), mode=mode, align_corners=False)


def solve(small: torch.Tensor, steps: int = 300) -> torch.Tensor:
    plane = small.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([plane], lr=0.01)
    for _ in range(steps):
        loss = ((area_read(plane, 1) - small) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return plane.detach()


def main() -> None:
    print("command: python bench/footprint_proxy.py\n")
    print(
        "| clip | scale | bilinear | bicubic | solved plane, point reads | solved plane, area reads |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, start in [
        ("realshort.mp4", 0),
        ("Principe_inertie.avi", 0),
        ("g1.avi", 0),
        ("oa4_launch.webm", 150),
    ]:
        large = load(name, start)
        for scale in (2, 4):
            small = F.avg_pool2d(large, scale)
            plane = solve(small)
            cells = [
                point_read(small, scale),
                point_read(small, scale, "bicubic").clamp(0, 1),
                point_read(plane, scale).clamp(0, 1),
                area_read(plane, scale).clamp(0, 1),
            ]
            print(
                f"| {name} | {scale} | "
                + " | ".join(f"{psnr(c, large):.2f} dB" for c in cells)
                + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
