"""The codec against x264 and x265 on the same frames, and as a user meets it.

    python bench/codec_bench.py                                 # the run recorded in BENCHMARKS.md
    python bench/codec_bench.py --clips oa4_launch.webm --part rd   # one clip, one part

Clips at their own sizes: tour.mp4 (960x540, 270 frames), oa4_launch.webm (640x360, 194) and
Big Buck Bunny (1280x720, 132; common.native_720). Every figure of a part is measured in one run,
one command at a time, with the machine's float32 matmul rate printed beside the timings.

--part rd: each clip's frames as ffmpeg gives them in RGB (what nvfilter reads and scores
against) go to x264 and x265 (``-preset medium -pix_fmt yuv444p``, a crf sweep, raw RGB piped
in, in Matroska), and the clip itself to ``nvfilter encode --no-audio --target-psnr P`` for
several P; every file's bits per pixel (its whole size) and RGB PSNR against those frames (the
.nvw's is the PSNR its encoder reports, which decode gives: tests/test_codec_cli.py). Each codec's
rate at 35, 40 and 45 dB is read off its curve (log-rate linear in PSNR between measured points),
and the ratio of nvfilter's to x264's given; BD-rate (Bjontegaard's mean log-rate difference over
the PSNRs both curves cover, here with piecewise-linear curves rather than cubic fits) against
x264 and x265. Plots PSNR against bits per pixel, one line per codec: bench/figures/codec_rd.png.

--part table: the rd part's tables and plots again from bench/figures/codec_rd.json; also PSNR
against encode seconds (bench/figures/codec_time.png).

--part speed: ``nvfilter encode CLIP`` with no flags, timed beside x264 medium (crf 23, and the crf
whose PSNR is nearest the no-flag encode's) on the same frames; then decodes into a raw pipe
(``--format nut --codec rawvideo``): the file at its own rate, and at twice the frames
(``--temporal-scale 2``, new frames moved along the motion the file keeps, and with ``--between
search``, along flows searched on the decoded frames), beside ffmpeg's ``minterpolate`` (mci)
making the same twice the frames from the clip, and the file at twice the width and height
(``--preset upscale-2x``). The frames/s of each decode: bench/figures/codec_speed.json and
codec_speed.png.

--part default: ``nvfilter encode CLIP`` with no flags: its size against the source file's and
against a lossless FFV1 copy of the frames (the source's pixel format), and its PSNR.

--part between: frames between frames at 640x360, every second one of 64 held out (tour.mp4 from
frames 0, 128 and 136: the cases of the earlier sessions), the kept ones encoded with no flags and
played at twice the frames: new frames from the file's own motion (the codec) beside the flows
searched on the decoded frames (``--between motion`` on a ``--model tiles`` file of the same
frames, the default until this codec) and minterpolate (mci), scored against the held-out frames.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import CORPUS, ROOT, ffmpeg, frames_of, matmul_flops, native_720, psnr_of

from nvfilter.io import media, nvw  # noqa: E402

NVFILTER = [sys.executable, "-m", "nvfilter"]
CLIPS = ["tour.mp4", "oa4_launch.webm", "bigbuckbunny.mp4"]
TARGETS = [35.0, 37.5, 40.0, 42.5, 45.0, 47.5]
"""The --target-psnr values of the rate-distortion curve (its ends past 35 and 45, so that
those points are read off the curve, not past it)."""
CRFS = {"libx264": [8, 13, 18, 23, 28, 33, 38, 43], "libx265": [10, 15, 20, 25, 30, 35, 40, 45]}
POINTS = (35.0, 40.0, 45.0)
FIGURES = ROOT / "bench" / "figures"


def clip_path(name: str) -> Path:
    return native_720() if name == "bigbuckbunny.mp4" else CORPUS / name


def run_timed(args: list[str], stdin: bytes | None = None, sink: bool = False) -> float:
    """Seconds a command takes (its output thrown away where ``sink``)."""
    begin = time.perf_counter()
    out = subprocess.DEVNULL if sink else None
    subprocess.run(args, input=stdin, stdout=out, check=True)
    return time.perf_counter() - begin


def reference_encode(frames: np.ndarray, rate: str, codec: str, crf: int, path: Path) -> float:
    """x264 or x265 medium, 4:4:4, on raw RGB frames; returns the seconds it took."""
    height, width = frames.shape[1:3]
    args = [media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
            "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", rate, "-i", "-", "-c:v", codec,
            "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv444p"]  # fmt: skip
    if codec == "libx265":
        args += ["-x265-params", "log-level=error"]
    return run_timed([*args, str(path)], stdin=frames.tobytes())


def nvw_psnr(path: Path) -> float:
    return nvw.load(path).training.psnr


REACH = 0.1
"""How far past a curve's ends (dB) its rate is still read, along its end segment: a point
measured at 35.01 dB stands for 35 (nan beyond)."""


def rate_at(curve: list[tuple[float, float]], psnr: float) -> float:
    """Bits per pixel at ``psnr`` on a curve of (bpp, PSNR) points: log-rate linear in PSNR
    between them, and along the end segments up to REACH past the ends (nan beyond)."""
    points = sorted((p, math.log(b)) for b, p in curve)
    psnrs, logs = [p for p, _ in points], [r for _, r in points]
    if not psnrs[0] - REACH <= psnr <= psnrs[-1] + REACH:
        return math.nan
    if psnr < psnrs[0] or psnr > psnrs[-1]:
        ends = (0, 1) if psnr < psnrs[0] else (-2, -1)
        (p0, p1), (r0, r1) = [psnrs[k] for k in ends], [logs[k] for k in ends]
        return math.exp(r0 + (r1 - r0) * (psnr - p0) / (p1 - p0))
    return math.exp(float(np.interp(psnr, psnrs, logs)))


def bd_rate(reference: list[tuple[float, float]], test: list[tuple[float, float]]) -> float:
    """Mean rate difference of ``test`` against ``reference`` (percent) over the PSNRs both
    cover: the mean of the log-rate difference on a fine grid, piecewise linear."""
    low = max(min(p for _, p in reference), min(p for _, p in test))
    high = min(max(p for _, p in reference), max(p for _, p in test))
    if high <= low:
        return math.nan
    grid = np.linspace(low, high, 200)
    gaps = [math.log(rate_at(test, p)) - math.log(rate_at(reference, p)) for p in grid]
    return (math.exp(float(np.mean(gaps))) - 1) * 100


def rd(clip: Path, work: Path) -> dict:
    """The rate-distortion part for one clip (module docstring)."""
    src = media.probe(str(clip))
    frames = frames_of(clip).to(dtype=torch.uint8).numpy()
    count, height, width = frames.shape[:3]
    pixels = count * width * height
    rate = f"{src.frame_rate.numerator}/{src.frame_rate.denominator}"
    curves: dict[str, list[tuple[float, float]]] = {}
    seconds: dict[str, list[float]] = {}
    for codec, crfs in CRFS.items():
        for crf in crfs:
            out = work / f"{codec}-{crf}.mkv"
            took = reference_encode(frames, rate, codec, crf, out)
            decoded = frames_of(out)
            score = psnr_of(decoded, torch.from_numpy(frames).float())
            curves.setdefault(codec, []).append((out.stat().st_size * 8 / pixels, score))
            seconds.setdefault(codec, []).append(took)
    for target in TARGETS:
        out = work / f"nvfilter-{target:g}.nvw"
        took = run_timed([*NVFILTER, "encode", str(clip), str(out), "-q", "--no-audio",
                          "--target-psnr", str(target)])  # fmt: skip
        curves.setdefault("nvfilter", []).append((out.stat().st_size * 8 / pixels, nvw_psnr(out)))
        seconds.setdefault("nvfilter", []).append(took)
    return {"clip": clip.name, "size": [width, height], "frames": count, "curves": curves,
            "seconds": seconds}  # fmt: skip


def merged(results: list[dict], path: Path) -> list[dict]:
    """These clips' results in place of their earlier ones in ``path``, the other clips' kept
    (so a clip can be measured again alone), in CLIPS order."""
    earlier = json.loads(path.read_text()) if path.exists() else []
    by_clip = {result["clip"]: result for result in earlier + results}
    order = {name: k for k, name in enumerate(CLIPS)}
    return sorted(by_clip.values(), key=lambda result: order.get(result["clip"], len(order)))


def print_rd(results: list[dict]) -> None:
    print("\n| clip (own size) | codec | bpp at 35 dB | at 40 dB | at 45 dB | x x264 at 35 / 40 / 45 "
          "| BD-rate vs x264 | vs x265 |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for result in results:
        curves = result["curves"]
        x264 = [rate_at(curves["libx264"], p) for p in POINTS]
        for codec in ("libx264", "libx265", "nvfilter"):
            rates = [rate_at(curves[codec], p) for p in POINTS]
            ratios = " / ".join(f"{r / x:.2f}" for r, x in zip(rates, x264, strict=True))
            bd = [bd_rate(curves[ref], curves[codec]) for ref in ("libx264", "libx265")]
            size = "x".join(map(str, result["size"]))
            print(f"| {result['clip']} ({size}, {result['frames']} frames) | {codec} | "
                  + " | ".join(f"{r:.4f}" for r in rates)
                  + f" | {ratios} | {bd[0]:+.1f}% | {bd[1]:+.1f}% |")  # fmt: skip
    print("\nEvery point (bits per pixel, PSNR dB; seconds to encode):")
    for result in results:
        for codec, curve in result["curves"].items():
            points = ", ".join(f"{b:.4f} bpp {p:.2f} dB {s:.1f} s"
                               for (b, p), s in zip(curve, result["seconds"][codec], strict=True))  # fmt: skip
            print(f"- {result['clip']}, {codec}: {points}")


def speed(clip: Path, work: Path) -> tuple[str, dict]:
    """The timing part for one clip (module docstring): its table row and its figures."""
    src = media.probe(str(clip))
    frames = frames_of(clip).to(dtype=torch.uint8).numpy()
    count = len(frames)
    rate = f"{src.frame_rate.numerator}/{src.frame_rate.denominator}"
    out = work / "default.nvw"
    ours = run_timed([*NVFILTER, "encode", str(clip), str(out), "-q"])
    psnr = nvw_psnr(out)
    default = reference_encode(frames, rate, "libx264", 23, work / "x264-23.mkv")
    matched = min(CRFS["libx264"], key=lambda crf: abs(crf - 23 + (psnr - 39.5) * 1.7))
    matched_seconds = reference_encode(frames, rate, "libx264", matched, work / "x264-m.mkv")
    matched_psnr = psnr_of(frames_of(work / "x264-m.mkv"),
                           torch.from_numpy(frames).float())  # fmt: skip
    pipe = ["-q", "--format", "nut", "--codec", "rawvideo", "--no-audio"]
    once = run_timed([*NVFILTER, "decode", str(out), "-", *pipe], sink=True)
    twice = run_timed([*NVFILTER, "decode", str(out), "-", *pipe, "--temporal-scale", "2"],
                      sink=True)  # fmt: skip
    searched = run_timed([*NVFILTER, "decode", str(out), "-", *pipe, "--temporal-scale", "2",
                          "--between", "search"], sink=True)  # fmt: skip
    upscaled = run_timed([*NVFILTER, "decode", str(out), "-", *pipe, "--preset", "upscale-2x"],
                         sink=True)  # fmt: skip
    doubled = src.frame_rate * 2
    mi = run_timed([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(clip),
                    "-an", "-vf", f"minterpolate=fps={doubled.numerator}/{doubled.denominator}:"
                    "mi_mode=mci", "-f", "nut", "-c:v", "rawvideo", "-"], sink=True)  # fmt: skip
    row = (
        f"| {clip.name} ({src.width}x{src.height}, {count} frames) | {ours:.1f} s ({psnr:.2f} dB) "
        f"| {default:.1f} s (crf 23) / {matched_seconds:.1f} s (crf {matched}, "
        f"{matched_psnr:.2f} dB) | {ours / matched_seconds:.1f} | {once:.1f} s | {twice:.1f} s "
        f"({twice / once:.2f} x 1x) | {searched:.1f} s ({searched / once:.2f} x 1x) | {mi:.1f} s "
        f"| {upscaled:.1f} s ({upscaled / once:.2f} x 1x) |"
    )
    frames_per_second = {
        "decode 1x": count / once,
        "2x, stored motion": 2 * count / twice,
        "2x, --between search": 2 * count / searched,
        "2x, minterpolate": 2 * count / mi,
        "upscale-2x": count / upscaled,
    }
    return row, {"clip": clip.name, "size": [src.width, src.height], "frames": count,
                 "encode_seconds": ours, "x264_seconds": matched_seconds,
                 "frames_per_second": frames_per_second}  # fmt: skip


def plot_speed(results: list[dict], path: Path) -> None:
    """Decode frames/s of each clip's file, by rule, beside minterpolate's: one group a clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.2))
    rules = list(results[0]["frames_per_second"])
    width = 0.8 / len(rules)
    for k, rule in enumerate(rules):
        axis.bar([c + k * width for c in range(len(results))],
                 [r["frames_per_second"][rule] for r in results], width, label=rule)  # fmt: skip
    axis.set_xticks([c + 0.4 - width / 2 for c in range(len(results))],
                    [f"{r['clip']} ({'x'.join(map(str, r['size']))})" for r in results])  # fmt: skip
    axis.set_ylabel("output frames per second (2 CPU cores)")
    axis.grid(True, axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    print(f"\nplotted {path.relative_to(ROOT)}")


def plot_rd(results: list[dict], path: Path) -> None:
    """PSNR against bits per pixel, one line per codec, one panel per clip."""
    plot_per_clip(results, path, "bits per pixel", "o-", lambda result, codec: sorted(
        result["curves"][codec], key=lambda point: point[0]), limits=(30, 50))  # fmt: skip


def plot_time(results: list[dict], path: Path) -> None:
    """PSNR against encode seconds, one line per codec, from the rd part's points."""
    plot_per_clip(results, path, "encode seconds (2 CPU cores)", "o", lambda result, codec: sorted(
        zip(result["seconds"][codec], (psnr for _, psnr in result["curves"][codec]), strict=True)
    ))  # fmt: skip


def plot_per_clip(results: list[dict], path: Path, x_label: str, style: str,
                  points: Callable[[dict, str], list], limits: tuple[int, int] | None = None,
                  ) -> None:  # fmt: skip
    """RGB PSNR against ``x_label`` (log scale), a panel per clip and a line per codec of
    ``points(result, codec)``: (x, PSNR) pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), squeeze=False)
    for axis, result in zip(axes[0], results, strict=True):
        for codec in result["curves"]:
            line = points(result, codec)
            axis.plot([x for x, _ in line], [psnr for _, psnr in line], style, label=codec)
        axis.set_xscale("log")
        axis.set_xlabel(x_label)
        axis.set_ylabel("RGB PSNR (dB)")
        axis.set_title(f"{result['clip']} ({'x'.join(map(str, result['size']))})")
        if limits:
            axis.set_ylim(*limits)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    print(f"\nplotted {path.relative_to(ROOT)}")


def default_sizes(clip: Path, work: Path) -> str:
    """The default part for one clip: a row of its table."""
    out = work / "default.nvw"
    began = time.perf_counter()
    subprocess.run([*NVFILTER, "encode", str(clip), str(out), "-q"], check=True)
    took = time.perf_counter() - began
    copy = work / "ffv1.mkv"
    ffmpeg("-i", str(clip), "-an", "-c:v", "ffv1", str(copy))
    size, source, lossless = out.stat().st_size, clip.stat().st_size, copy.stat().st_size
    loaded = nvw.load(out)
    pixels = loaded.video.width * loaded.video.height * loaded.video.frames
    return (
        f"| {clip.name} ({loaded.video.width}x{loaded.video.height}, {loaded.video.frames} "
        f"frames) | {loaded.training.psnr:.2f} dB | {size:,} B ({size * 8 / pixels:.3f} bpp) | "
        f"{source:,} B | {size / source:.2f} | {lossless:,} B | {size / lossless:.3f} | "
        f"{took:.1f} s |"
    )


def between(work: Path, start: int, size: tuple[int, int] = (640, 360), count: int = 64) -> str:
    """The frames-between part for one window of tour.mp4: a row of its table."""
    clip = CORPUS / "tour.mp4"
    width, height = size
    window = f"trim=start_frame={start},setpts=PTS-STARTPTS,scale={width}:{height}:flags=area"
    ffmpeg("-i", str(clip), "-an", "-vf", window, "-frames:v", str(count), "-c:v", "ffv1",
           str(work / "full.mkv"))  # fmt: skip
    ffmpeg("-i", str(work / "full.mkv"), "-vf", "select='not(mod(n,2))',setpts=N/12/TB", "-r",
           "12", "-c:v", "ffv1", str(work / "kept.mkv"))  # fmt: skip
    made = {}
    for name, model in (("codec", []), ("tiles", ["--model", "tiles"])):
        subprocess.run([*NVFILTER, "encode", str(work / "kept.mkv"), str(work / f"{name}.nvw"),
                        "-q", *model], check=True)  # fmt: skip
        began = time.perf_counter()
        subprocess.run([*NVFILTER, "decode", str(work / f"{name}.nvw"),
                        str(work / f"slow-{name}.mkv"), "-q", "--temporal-scale", "2", "--fps",
                        "24", "--preset", "lossless"], check=True)  # fmt: skip
        made[name] = (frames_of(work / f"slow-{name}.mkv"), time.perf_counter() - began)
    ffmpeg("-i", str(work / "kept.mkv"), "-vf", "minterpolate=fps=24:mi_mode=mci", "-c:v",
           "ffv1", str(work / "mi.mkv"))  # fmt: skip
    real = frames_of(work / "full.mkv")
    theirs = frames_of(work / "mi.mkv")
    scored = min(len(made["codec"][0]), len(theirs), len(real) - 1)
    scored -= 1 - scored % 2  # end on a kept frame
    new = list(range(1, scored, 2))

    def scores(video: object) -> str:
        return (f"{psnr_of(video[new], real[new]):.2f} / "  # type: ignore[index]
                f"{psnr_of(video[:scored], real[:scored]):.2f}")  # type: ignore[index]  # fmt: skip

    return (
        f"| frames {start}-{start + count - 1} | {scores(made['codec'][0])} "
        f"({made['codec'][1]:.1f} s) | {scores(made['tiles'][0])} ({made['tiles'][1]:.1f} s) | "
        f"{scores(theirs)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "rd", "table", "speed", "default", "between"],
                        default="all")  # fmt: skip
    parser.add_argument("--clips", nargs="+", default=CLIPS)
    parser.add_argument("--starts", nargs="+", type=int, default=[0, 128, 136],
                        help="first frames of the windows of the between part")  # fmt: skip
    args = parser.parse_args()
    flops = matmul_flops()
    print(f"# {platform.processor() or platform.machine()}, float32 matmul "
          f"{flops / 1e9:.0f} GFLOP/s, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    clips = [clip_path(name) for name in args.clips]
    with tempfile.TemporaryDirectory(prefix="codec-bench-") as tmp:
        work = Path(tmp)
        if args.part == "table":  # the rd part's tables and plot again, from its JSON
            results = json.loads((FIGURES / "codec_rd.json").read_text())
            print_rd(results)
            plot_rd(results, FIGURES / "codec_rd.png")
            plot_time(results, FIGURES / "codec_time.png")
        if args.part in ("all", "rd"):
            results = merged([rd(clip, work) for clip in clips], FIGURES / "codec_rd.json")
            print_rd(results)
            plot_rd(results, FIGURES / "codec_rd.png")
            plot_time(results, FIGURES / "codec_time.png")
            (FIGURES / "codec_rd.json").write_text(json.dumps(results, indent=1))
        if args.part in ("all", "default"):
            print("\n| clip (own size) | no-flag PSNR | .nvw | source file | x source | lossless "
                  "FFV1 copy | x FFV1 | encode |")  # fmt: skip
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for clip in clips:
                print(default_sizes(clip, work))
        if args.part in ("all", "speed"):
            print(f"\nmatmul {matmul_flops() / 1e9:.0f} GFLOP/s")
            print("\n| clip | nvfilter encode, no flags | x264 medium | x x264 | decode 1x | "
                  "decode 2x (stored motion) | decode 2x (--between search) | minterpolate 2x "
                  "| decode upscale-2x |")  # fmt: skip
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            timed = []
            for clip in clips:
                row, record = speed(clip, work)
                print(row)
                timed.append(record)
            (FIGURES / "codec_speed.json").write_text(json.dumps(timed, indent=1))
            plot_speed(timed, FIGURES / "codec_speed.png")
            print(f"\nmatmul {matmul_flops() / 1e9:.0f} GFLOP/s")
        if args.part in ("all", "between"):
            print("\n| tour.mp4 at 640x360, every second of 64 frames held out | codec, stored "
                  "motion: new / all frames dB (decode) | tiles, searched flow | minterpolate |")  # fmt: skip
            print("| --- | --- | --- | --- |")
            for start in args.starts:
                print(between(work, start))


if __name__ == "__main__":
    main()
