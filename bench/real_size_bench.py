"""Real sizes: PSNR against training time on the corpus's real-size clips at their own sizes,
the default model beside today's hybrid in one run, with the machine's matmul rate beside every
timed figure; then decode frames/s at 1280x720 into a raw pipe.

    python bench/real_size_bench.py                       # the run recorded in BENCHMARKS.md
    python bench/real_size_bench.py --budget 20 --clips oa4_launch.webm   # a quick try

Each model trains as `nvfilter encode CLIP out.nvw --model M --time-budget B` does (the encoder's
own model and settings), with the clock stopped while each checkpoint evaluates the 8-bit
reconstruction of every frame; the segments model's start from the frames counts as training
time. Throughput is pixels learned per second of training; FLOP/s counts the multiply-adds of
the reads and the head (forward and backward), against float32 matmul on this machine.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from common import CORPUS  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import EncodeOptions, TrainResult, VideoInfo  # noqa: E402
from nvfilter.decode.render import reconstruction_mse  # noqa: E402
from nvfilter.encode.encoder import create_model, train_config  # noqa: E402
from nvfilter.encode.train import Trainer  # noqa: E402
from nvfilter.eval.metrics import psnr_from_mse  # noqa: E402
from nvfilter.io import media, nvw  # noqa: E402
from nvfilter.models import count_parameters  # noqa: E402

NVFILTER = [sys.executable, "-m", "nvfilter"]


def matmul_flops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matmul FLOP/s of a few size^3 products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def flops_per_pixel(model) -> float:
    """Forward + backward (x3) FLOPs per learned pixel: the hybrid's head matmuls and reads
    (4 taps a plane); for the segments model each level's products and decoder at its own size
    (a 1/4 as many cells a level down) and the resizes of its 3-channel picture."""
    if model.kind == "segments":
        per_level = [(2 + 2 * 3) * c for c in model.level_channels]  # 2 products, decoder
        cells = sum(f / 4**level for level, f in enumerate(per_level))
        return 3 * (cells + 4 * 3 * (model.levels - 1))
    dims = [model.levels * model.channels] + [model.head_features] * model.head_layers + [3]
    head = sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    return 3 * 2 * (head + 4 * model.levels * 3 * model.channels)


def curve(model_name: str, frames: torch.Tensor, budget: float, marks: list[float]):
    n, h, w, _ = frames.shape
    options = EncodeOptions(model=model_name, time_budget=budget)
    torch.manual_seed(0)
    model, text = create_model(options, SimpleNamespace(width=w, height=h, frames=n))
    trainer = Trainer(model, frames, train_config(options, "cpu"))
    points: dict[float, float] = {}

    def evaluate(step: int, seconds: float) -> None:
        points[seconds] = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)

    result = trainer.run(checkpoints=marks, on_checkpoint=evaluate)
    points[result.seconds] = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)
    views = trainer.views
    pixels = result.steps * (
        trainer.views_per_step * w * h if views is not None else trainer.config.batch_size
    )
    return model, text, points, result, pixels


def decode_fps(frames_count: int = 48) -> tuple[float, str]:
    """End-to-end `nvfilter decode` of a 1280x720 segments .nvw into a raw pipe (frames/s)."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.nvw"
        src = media.probe(str(CORPUS / "tour.mp4"))
        frames = media.read_frames(str(CORPUS / "tour.mp4"), src, 1280, 720, 1, frames_count)
        n, h, w, _ = frames.shape
        model, _ = create_model(
            EncodeOptions(model="segments"), SimpleNamespace(width=w, height=h, frames=n)
        )
        model.start_from(frames)
        video = VideoInfo(w, h, n, src.frame_rate, src.sample_aspect_ratio, src.color)
        result = TrainResult(0, 0.0, 0.0, "epochs", None)
        clip.write_bytes(nvw.to_bytes(model, video, result, "float32", None))
        command = [
            *NVFILTER,
            "decode",
            str(clip),
            "-",
            "-q",
            "--format",
            "nut",
            "--codec",
            "rawvideo",
        ]
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, check=True)
        seconds = time.perf_counter() - start
        assert len(out.stdout) >= n * w * h * 3 / 2  # yuv420p at least
        return n / seconds, " ".join(command[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["tour.mp4", "oa4_launch.webm"])
    parser.add_argument("--models", nargs="+", default=["segments", "hybrid"])
    parser.add_argument("--budget", type=float, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    marks = [m for m in (30, 60, 120, 300) if m < args.budget]
    print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    heads = " | ".join(f"{m:g} s" for m in [*marks, args.budget])
    print(
        f"| clip (native size) | model | numbers per pixel | PSNR at {heads} | steps | "
        "pixels/s | GFLOP/s (% of matmul) | matmul GFLOP/s before/after |"
    )
    print("|" + " --- |" * (9 + len(marks)))
    for name in args.clips:
        path = str(CORPUS / name)
        src = media.probe(path)
        frames = media.read_frames(path, src, src.width, src.height)
        n, h, w, _ = frames.shape
        for model_name in args.models:
            before = matmul_flops()
            model, text, points, result, pixels = curve(model_name, frames, args.budget, marks)
            after = matmul_flops()
            rate = pixels / result.seconds
            flops = rate * flops_per_pixel(model)
            stored = count_parameters(model) / (w * h * n)
            psnrs = " | ".join(f"{points[k]:.2f}" for k in sorted(points))
            print(
                f"| {name} ({w}x{h}, {n} frames) | {model_name}: {text.split(',')[0]} | "
                f"{stored:.2f} | {psnrs} | {result.steps} | {rate:,.0f} | "
                f"{flops / 1e9:.1f} ({flops / before:.1%}) | {before / 1e9:.0f}/{after / 1e9:.0f} |",
                flush=True,
            )
    fps, command = decode_fps()
    print(f"\ndecode 1280x720 into a raw pipe, segments model (48 frames of tour.mp4 scaled to "
          f"1280x720): {fps:.1f} frames/s, matmul {matmul_flops() / 1e9:.0f} GFLOP/s "
          f"(`nvfilter {command}`)")  # fmt: skip


if __name__ == "__main__":
    main()
