"""Interpolation and super-resolution quality on held-out frames and pixels, against ffmpeg's filters.

    python bench/quality_bench.py            # the run recorded in BENCHMARKS.md
    python bench/quality_bench.py --quick    # short training, two clips, to try it out

Temporal: a clip at 160x90 (25 frames: 0..24, or from START where a clip begins still), keep
every k-th frame (k = 2, 4), learn what was kept with `nvfilter encode` (no budget, as a plain
encode; --budget gives a time budget; --models compares models side by side), decode at the
original rate (temporal scale k, the slowmo path of `nvfilter decode`), and score the frames that were left out, interior ones only
(between the first and the last kept frame), against the real ones. The same frames are made from
the kept ones by ffmpeg `minterpolate` (mi_mode=mci, motion compensated), `framerate` (blending)
and by repeating the nearest kept frame (ties: the earlier one).

Spatial: the clip at 320x176 (24 frames), downscaled by 2 and by 4 with ffmpeg's area filter; the
small clip is learned and decoded at 320x176 (`--width/--height`, every upscaler), and scored
against the original; ffmpeg `scale` with bicubic and with lanczos from the same small clip are scored on the
same frames.

PSNR pools the squared error of all scored frames (as ffmpeg's psnr filter does); SSIM is the mean
of per-frame SSIM (nvfilter.metrics.ssim); held-out frames also get VMAF (ffmpeg's libvmaf with its
default model, the call `nvfilter eval --vmaf` makes, the scored frames as one sequence; a model
made for larger pictures, so read it beside PSNR and SSIM at 160x90). Kept-frame PSNR (the
reconstruction of the frames that were learned) is reported too: gains in between must not cost it
more than 0.5 dB.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from common import CORPUS  # noqa: E402  (puts the checkout on sys.path)

from nvfilter import metrics  # noqa: E402
from nvfilter.config import UPSCALERS, VideoInfo  # noqa: E402
from nvfilter.decode.render import iter_frames, plan_render  # noqa: E402
from nvfilter.eval.evaluate import libvmaf_score  # noqa: E402
from nvfilter.io import media as ffio  # noqa: E402
from nvfilter.io import nvw  # noqa: E402

CLIPS = ["realshort.mp4", "Principe_inertie.avi", "g1.avi", "oa4_launch.webm"]
START = {"oa4_launch.webm": 150}
"""First frame used, where a clip starts still (oa4_launch.webm moves from about frame 150 on)."""
TEMPORAL_SIZE = (160, 90)
TEMPORAL_FRAMES = 25
SPATIAL_SIZE = (320, 176)  # divisible by 4, so both downscales are exact
SPATIAL_FRAMES = 24


def load(name: str, size: tuple[int, int], frames: int) -> tuple[np.ndarray, Fraction]:
    """Up to ``frames`` frames of a corpus clip from its START frame, at ``size``."""
    path = str(CORPUS / name)
    src = ffio.probe(path)
    start = START.get(name, 0)
    video = ffio.read_frames(path, src, size[0], size[1], 1, start + frames)
    return video[start:].numpy(), src.frame_rate


def ffmpeg_filter(
    frames: np.ndarray, rate: Fraction, graph: str, size: tuple[int, int]
) -> np.ndarray:
    """Raw RGB frames through an ffmpeg filter graph, back as RGB frames of ``size``."""
    count, height, width, _ = frames.shape
    out = subprocess.run(
        [
            ffio.ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", str(rate), "-i", "-",
            "-vf", graph, "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        input=frames.tobytes(),
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, np.uint8).reshape(-1, size[1], size[0], 3)


def learn(frames: np.ndarray, rate: Fraction, budget: float | None, model: str):
    """``nvfilter encode`` of ``frames`` (as a lossless FFV1 clip) with ``--model model`` and
    ``--time-budget budget`` (None: no budget, as a plain encode; the hybrid then runs its 100
    epochs): the learned network and its VideoInfo."""
    count, height, width, _ = frames.shape
    with tempfile.TemporaryDirectory() as folder:
        clip, out = Path(folder) / "kept.mkv", Path(folder) / "kept.nvw"
        subprocess.run(
            [ffio.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo",
             "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(rate), "-i", "-",
             "-c:v", "ffv1", "-pix_fmt", "bgr0", str(clip)],
            input=np.ascontiguousarray(frames).tobytes(), check=True,
        )  # fmt: skip
        budgets = ["--time-budget", f"{budget:g}"] if budget is not None else []
        subprocess.run([sys.executable, "-m", "nvfilter", "encode", str(clip), str(out), "-q",
                        "--model", model, *budgets], check=True)  # fmt: skip
        loaded = nvw.load(out)
    return loaded.model, loaded.video


def score(test: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(PSNR pooled over the frames, mean SSIM)."""
    a, b = torch.from_numpy(np.ascontiguousarray(test)), torch.from_numpy(reference)
    psnr = metrics.psnr_from_mse(metrics.mse(a, b))
    ssim = float(np.mean([metrics.ssim(a[k], b[k]) for k in range(a.shape[0])]))
    return psnr, ssim


def score_with_vmaf(
    test: np.ndarray, reference: np.ndarray, rate: Fraction
) -> tuple[float, float, float]:
    """(PSNR, SSIM as score's, VMAF of the frames as one sequence at ``rate``: ffmpeg's libvmaf,
    its default model, through nvfilter eval's own call)."""
    count, height, width, _ = reference.shape
    video = VideoInfo(width=width, height=height, frames=count, frame_rate=rate)
    with tempfile.TemporaryDirectory() as folder:
        distorted, real = Path(folder) / "test.rgb", Path(folder) / "real.rgb"
        distorted.write_bytes(np.ascontiguousarray(test).tobytes())
        real.write_bytes(np.ascontiguousarray(reference).tobytes())
        quality = libvmaf_score(distorted, real, video)
    return (*score(test, reference), quality)


def nearest(kept: np.ndarray, k: int, count: int) -> np.ndarray:
    """Frame j is the kept frame nearest in time to j (ties go to the earlier one)."""
    return np.stack([kept[min(kept.shape[0] - 1, (j + (k - 1) // 2) // k)] for j in range(count)])


def temporal(
    name: str, k: int, budget: float | None, models: list[str]
) -> dict[str, tuple[float, ...]]:
    """Held-out frames' (PSNR, SSIM, VMAF) for each method (score_with_vmaf), nvfilter's rows
    once for each of ``models``."""

    def scored(made: np.ndarray) -> tuple[float, ...]:
        return score_with_vmaf(made[held], frames[held], out_rate)

    frames, rate = load(name, TEMPORAL_SIZE, TEMPORAL_FRAMES)
    last = (frames.shape[0] - 1) // k * k  # last kept frame; only frames before it are scored
    kept = frames[: last + 1 : k]
    held = [j for j in range(last) if j % k]
    out_rate = rate
    in_rate = rate / k
    size = TEMPORAL_SIZE
    rows: dict[str, tuple[float, ...]] = {}
    for choice in models:
        model, video = learn(kept, in_rate, budget, choice)
        spec = plan_render(video, temporal_scale=Fraction(k), fps=out_rate)
        decoded = np.stack(list(iter_frames(model, spec, video.frames, between="network")))
        rows[f"nvfilter --model {choice} --between network"] = scored(decoded)
        rows[f"nvfilter --model {choice}, kept frames"] = score(decoded[: last + 1 : k], kept)
        moved = np.stack(list(iter_frames(model, spec, video.frames, between="motion")))
        rows[f"nvfilter --model {choice} --between motion (the default)"] = scored(moved)
        if not np.array_equal(moved[: last + 1 : k], decoded[: last + 1 : k]):
            raise SystemExit("--between motion changed a kept frame")
    # the filters stop short of their last input frame: give them one more (the last, repeated)
    padded = np.concatenate([kept, kept[-1:]])
    mci = ffmpeg_filter(padded, in_rate, f"minterpolate=fps={out_rate}:mi_mode=mci", size)
    rows["ffmpeg minterpolate (mci)"] = scored(mci)
    blend = ffmpeg_filter(padded, in_rate, f"framerate=fps={out_rate}", size)
    rows["ffmpeg framerate (blend)"] = scored(blend)
    rows["nearest frame"] = scored(nearest(kept, k, last + 1))
    # the filters' own kept frames must come back as they were: a check of the alignment
    for label, made in (("minterpolate", mci), ("framerate", blend)):
        drift = score(made[: last + 1 : k], kept)[0]
        if drift < 40:
            raise SystemExit(f"{label} output is not aligned with its input ({drift:.1f} dB)")
    return rows


def spatial(
    name: str, factor: int, budget: float | None, models: list[str]
) -> dict[str, tuple[float, float]]:
    """Upscaled frames' (PSNR, SSIM) for each method, nvfilter's rows once for each of
    ``models``."""
    frames, rate = load(name, SPATIAL_SIZE, SPATIAL_FRAMES)
    width, height = SPATIAL_SIZE
    small_size = (width // factor, height // factor)
    small = ffmpeg_filter(
        frames, rate, f"scale={small_size[0]}:{small_size[1]}:flags=area", small_size
    )
    rows: dict[str, tuple[float, float]] = {}
    for choice in models:
        model, video = learn(small, rate, budget, choice)
        spec = plan_render(video, width=width, height=height)
        for upscaler in UPSCALERS:
            made = np.stack(list(iter_frames(model, spec, video.frames, upscaler=upscaler)))
            rows[f"nvfilter --model {choice} --upscaler {upscaler}"] = score(made, frames)
        rows[f"nvfilter --model {choice}, learned size"] = score(
            np.stack(list(iter_frames(model, plan_render(video), video.frames))), small
        )
    for flags in ("bicubic", "lanczos"):
        up = ffmpeg_filter(small, rate, f"scale={width}:{height}:flags={flags}", SPATIAL_SIZE)
        rows[f"ffmpeg scale {flags}"] = score(up, frames)
    return rows


def table(title: str, results: dict[str, dict[str, tuple[float, ...]]]) -> None:
    clips = list(results)
    methods = list(next(iter(results.values())))
    print(f"\n### {title}\n")
    print("| method | " + " | ".join(clips) + " | mean |")
    print("| --- |" + " --- |" * (len(clips) + 1))
    for method in methods:
        cells = [results[c][method] for c in clips]
        means = tuple(float(np.mean(values)) for values in zip(*cells, strict=True))
        print(f"| {method} | " + " | ".join(map(cell, cells)) + f" | {cell(means)} |")


def cell(values: tuple[float, ...]) -> str:
    """PSNR dB / SSIM, and / VMAF where scored."""
    text = f"{values[0]:.2f} dB / {values[1]:.3f}"
    return text + (f" / {values[2]:.1f}" if len(values) > 2 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s of training, two clips")
    parser.add_argument(
        "--budget",
        type=lambda text: None if text == "default" else float(text),
        default=None,
        help="training seconds per encode; by default (or 'default') none, as a plain "
        "`nvfilter encode` (the hybrid then runs its 100 epochs), which also makes the run the "
        "same on a busy machine",
    )
    parser.add_argument("--clips", nargs="+", default=CLIPS)
    parser.add_argument("--models", nargs="+", default=["auto"],
                        help="the --model of each nvfilter encode, side by side (auto: the "
                        "default's pick)")  # fmt: skip
    parser.add_argument(
        "--parts", nargs="+", choices=("temporal", "spatial"), default=["temporal", "spatial"]
    )
    args = parser.parse_args()
    budget = 5.0 if args.quick else args.budget
    clips = args.clips[:2] if args.quick else args.clips
    print("Command: python bench/quality_bench.py " + " ".join(sys.argv[1:]))
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, {time.strftime('%Y-%m-%d')}; `nvfilter encode --model` "
        + ", ".join(args.models)
        + ", "
        + (f"{budget:g} s per clip" if budget is not None else "no budget (a plain encode)")
    )
    print(
        "\nEach cell: PSNR (all scored frames pooled) / mean SSIM, and for held-out frames / VMAF "
        "(ffmpeg's libvmaf, default model, the scored frames as one sequence)."
    )
    for k in (2, 4) if "temporal" in args.parts else ():
        results = {name: temporal(name, k, budget, args.models) for name in clips}
        table(
            f"Temporal: every k = {k} frame kept, the {k - 1} between scored "
            f"({TEMPORAL_SIZE[0]}x{TEMPORAL_SIZE[1]}, {TEMPORAL_FRAMES} frames)",
            results,
        )
    for factor in (2, 4) if "spatial" in args.parts else ():
        results = {name: spatial(name, factor, budget, args.models) for name in clips}
        table(
            f"Spatial: {factor}x downscaled (area), upscaled back to "
            f"{SPATIAL_SIZE[0]}x{SPATIAL_SIZE[1]} ({SPATIAL_FRAMES} frames)",
            results,
        )
    print(f"\n(benchmark took {time.process_time() / 60:.0f} CPU minutes)")


if __name__ == "__main__":
    main()
