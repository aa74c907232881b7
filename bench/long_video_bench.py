"""Long videos (issue 18): streamed encode and decode of long clips made from the corpus, with
peak memory (the process's maximum resident set, from wait4), wall time, PSNR, sound sync and
the change at every join against the source's.

    python bench/long_video_bench.py --part long      # 3 minutes at 480x352 with sound, 600 s
    python bench/long_video_bench.py --part flat      # 1080p at several lengths, short budget

Inputs are made with ffmpeg and labelled: ``long`` loops tour.mp4 (960x540, 9 s) scaled down to
480x352 for 3 minutes with a 440 Hz tone as its sound; ``flat`` loops tour.mp4 scaled *up* to
1920x1080 (a synthetic stand-in for 1080p: softer than real 1080p).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import clip  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.io import media, nvw
from nvfilter.io.media import ffmpeg_exe
from nvfilter.models.parts import part_spans


def make_clip(out: Path, seconds: float, size: str, sound: bool) -> Path:
    if out.exists():
        return out
    args = [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(clip("tour.mp4"))]
    if sound:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-t", str(seconds), "-vf", f"scale={size}:flags=area,fps=30", "-map", "0:v"]
    args += (["-map", "1:a", "-c:a", "aac"] if sound else []) + ["-c:v", "libx264", "-crf", "16"]
    subprocess.run([*args, str(out)], check=True)
    return out


def measured(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak resident GB, stderr) of a command."""
    began = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-2000:]}")
    return time.perf_counter() - began, usage.ru_maxrss / 2**20, err


def nvfilter(*args: object) -> list[str]:
    return [sys.executable, "-m", "nvfilter", *(str(a) for a in args)]


def joins_and_psnr(
    source: Path, decoded: Path, spans: list[tuple[int, int]]
) -> tuple[float, float]:
    """(largest change at a join beyond the source's, in grey levels of mean absolute
    difference; PSNR of every frame), streaming both videos."""
    src_info, dec_info = media.probe(str(source)), media.probe(str(decoded))
    joins = {first + d for first, _ in spans[1:] for d in (-1, 0)}
    a_prev = b_prev = None
    worst, squared, count = -np.inf, 0.0, 0
    pairs = zip(media.iter_frames(str(source), src_info, src_info.width, src_info.height),
                media.iter_frames(str(decoded), dec_info, dec_info.width, dec_info.height),
                strict=False)  # fmt: skip
    for k, (a, b) in enumerate(pairs):
        a, b = a.astype(np.float32), b.astype(np.float32)
        squared += float(((a - b) ** 2).mean())
        count += 1
        if a_prev is not None and k - 1 in joins:
            worst = max(worst, float(np.abs(b - b_prev).mean() - np.abs(a - a_prev).mean()))
        a_prev, b_prev = a, b
    return worst, 10 * np.log10(255.0**2 / (squared / count))


def audio_offset(decoded: Path) -> tuple[float, float]:
    """(video seconds, audio seconds) of a decoded file."""
    info = media.probe(str(decoded))
    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(decoded), "-map", "0:a:0",
                          "-f", "null", "-"], capture_output=True, text=True).stderr  # fmt: skip
    stamp = [p for p in log.split() if p.startswith("time=")][-1][5:]
    h, m, s = stamp.split(":")
    frames = sum(1 for _ in media.iter_frames(str(decoded), info, 16, 16))
    return frames / float(info.frame_rate), int(h) * 3600 + int(m) * 60 + float(s)


def part_long(work: Path, budget: float) -> None:
    source = make_clip(work / "long_480x352_3min.mp4", 180, "480:352", sound=True)
    out = work / "long.nvw"
    wall, peak, _ = measured(
        nvfilter("encode", source, out, "--model", "tiles", "--time-budget", budget)
    )
    loaded = nvw.load(out)
    spans = [(s.first, s.frames) for s in loaded.model.spans]
    dec = work / "long_decoded.mkv"
    d_wall, d_peak, _ = measured(nvfilter("decode", out, dec, "--codec", "ffv1"))
    seam, psnr = joins_and_psnr(source, dec, spans)
    video_s, audio_s = audio_offset(dec)
    slow = work / "long_slow.mkv"
    measured(nvfilter("decode", out, slow, "--preset", "slowmo-2x", "--between", "network",
                      "--codec", "ffv1"))  # fmt: skip
    slow_v, slow_a = audio_offset(slow)
    print(
        "| clip | frames | parts | encode wall | encode peak | train s | PSNR (all frames) "
        "| decode wall | decode peak | worst join excess | sound - picture (1x / slowmo-2x, network between) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {source.name} (tour.mp4 looped, 480x352, 30 fps, tone) | {loaded.video.frames} | "
        f"{len(spans)} | {wall:.0f} s | {peak:.2f} GB | {loaded.training.seconds:.0f} | "
        f"{psnr:.2f} dB | {d_wall:.0f} s | {d_peak:.2f} GB | {seam:+.2f} grey levels | "
        f"{(audio_s - video_s) * 1000:+.0f} ms / {(slow_a - slow_v) * 1000:+.0f} ms |"
    )
    print(
        f"\nbudget {budget} s; nvw {out.stat().st_size / 1e6:.0f} MB, {loaded.parameters / (loaded.video.width * loaded.video.height * loaded.video.frames):.2f} numbers/pixel"
    )


def part_flat(work: Path, lengths: list[float], budget: float, flags: list[str]) -> None:
    """Encode 1080p clips of each length (made by looping tour.mp4 scaled up); each .nvw is
    removed once measured (a minute of 1080p at one float32 number a pixel is 15 GB)."""
    print(
        "| clip | seconds | frames | parts | encode wall | s a part | peak memory | PSNR | .nvw |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for seconds in lengths:
        source = make_clip(work / f"tour_1080p_{seconds:g}s.mp4", seconds, "1920:1080", sound=False)
        out = work / f"flat_{seconds:g}.nvw"
        wall, peak, _ = measured(
            nvfilter("encode", source, out, "--model", "tiles", "--time-budget", budget, *flags)
        )
        loaded = nvw.load(out)
        frames, parts = loaded.video.frames, len(part_spans(loaded.video.frames, 32))
        size, psnr = out.stat().st_size, loaded.training.psnr
        del loaded
        out.unlink()
        print(
            f"| tour.mp4 looped, scaled up to 1920x1080 | {seconds:g} | {frames} | {parts} | "
            f"{wall:.0f} s | {wall / parts:.1f} | {peak:.2f} GB | "
            f"{psnr:.2f} dB | {size / 1e9:.2f} GB |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["long", "flat"], default="long")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nvfilter-long"))
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--lengths", type=float, nargs="+", default=[60, 120, 240])
    parser.add_argument("--flags", default="", help="more encode flags for --part flat, e.g. "
                        "'--target-psnr 38 --dtype float16'")  # fmt: skip
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"command: python bench/long_video_bench.py {' '.join(sys.argv[1:])}\n")
    if args.part == "long":
        part_long(args.work, args.budget or 600)
    else:
        part_flat(args.work, args.lengths, args.budget or 30, args.flags.split())


if __name__ == "__main__":
    main()
