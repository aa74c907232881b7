"""Edited and phone footage: cuts, a dissolve, a variable frame rate, repeated frames.

    python bench/edit_bench.py                  # every part, the run recorded in BENCHMARKS.md
    python bench/edit_bench.py --part cuts      # one part

Every clip is made here with ffmpeg from real clips at 640x360 (tour.mp4 and oa4_launch.webm
from ../shared/corpus, Big Buck Bunny from bench/common.native_720), kept losslessly (FFV1),
encoded by ``nvfilter encode`` with no flags, and played back with ``nvfilter decode``.
"Today" is the same encode with ``--no-cuts --keep-repeats`` (what nvfilter did before it
looked for cuts and repeats) or, for the variable rate, the constant-rate reading it did (the
frame before a gap repeated: ffmpeg's ``-fps_mode cfr``). Beside them: ffmpeg's
``minterpolate`` (mci, ``scd=fdiff``) and a plain repeat of the nearer kept frame.

--part cuts: three shots (tour.mp4 frames 40-79, oa4_launch.webm 0-39, Big Buck Bunny 0-39),
every second frame kept (12 frames/s), spliced at two hard cuts, played at twice the frames.
The new frame at each cut against its two neighbours (the best of the two); the new frames
inside the shots against the held-out frames; the cuts found.

--part dissolve: tour.mp4 and Big Buck Bunny cross-faded over 12 frames (``xfade``), every
second frame kept, played at twice the frames: the new frames against the held-out ones.

--part variable: tour.mp4 frames 0-71 at 24 frames/s with frames 10-13, 30-31 and 50-52 dropped
and the others' timestamps kept (a variable rate, as a phone records), played at the original
constant 24 frames/s: the frames at the dropped times against the dropped frames.

--part repeats: tour.mp4 at 20 frames/s turned into 30 (``fps=30``: every third frame a repeat,
as a 24-to-30 conversion makes them), with a tone as its sound, played at twice the frames: how
evenly the picture moves (the mean optical-flow length between consecutive output frames: its
spread over its mean, a still frame between two moving ones counting as 0), and the sound's
length against the picture's.

--part long: three minutes of ffmpeg's testsrc2 at 160x90 and 30 frames/s, 15 of every 90
frames dropped (a half-second gap every 3 s, timestamps kept), with a tone, and a white flash
and a click together at 170 s: encoded with no flags and played at its rate and at twice the
frames, when the flash is seen and the click heard, and the sound's length against the
picture's.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import CORPUS, ffmpeg, matmul_flops, native_720

from nvfilter.io import media  # noqa: E402

NVFILTER = [sys.executable, "-m", "nvfilter"]
SIZE = (640, 360)
SCALE = f"scale={SIZE[0]}:{SIZE[1]}:flags=area,setsar=1,format=yuv444p"


def nvfilter(*args: object) -> None:
    subprocess.run([*NVFILTER, *(str(a) for a in args), "-q"], check=True)


def frames(path: Path, constant: bool = True) -> np.ndarray:
    """A video's frames as uint8 RGB (n, h, w, 3); every frame the stream has where not
    ``constant`` (a variable rate's own frames)."""
    src = media.probe(str(path))
    read = media.iter_frames(str(path), src, src.width, src.height, constant_rate=constant)
    return np.stack(list(read))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255**2 / mse) if mse > 0 else float("inf")


def window(source: Path, first: int, count: int, out: Path) -> Path:
    ffmpeg("-i", str(source), "-an", "-vf",
           f"trim=start_frame={first}:end_frame={first + count},setpts=PTS-STARTPTS,fps=24,"
           f"{SCALE}", "-frames:v", str(count), "-c:v", "ffv1", str(out))  # fmt: skip
    return out


def every_second(full: Path, out: Path) -> Path:
    ffmpeg("-i", str(full), "-vf", "select='not(mod(n,2))',setpts=N/12/TB", "-r", "12",
           "-c:v", "ffv1", str(out))  # fmt: skip
    return out


def played_twice(kept: Path, work: Path, name: str, *flags: str) -> np.ndarray:
    """``kept`` encoded (with ``flags``) and played at twice the frames, losslessly."""
    nvw, slow = work / f"{name}.nvw", work / f"{name}-2x.mkv"
    nvfilter("encode", kept, nvw, *flags)
    nvfilter("decode", nvw, slow, "--temporal-scale", "2", "--preset", "lossless")
    return frames(slow)


def minterpolated(kept: Path, work: Path, fps: int = 24) -> np.ndarray:
    out = work / "minterpolate.mkv"
    ffmpeg("-i", str(kept), "-vf", f"minterpolate=fps={fps}:mi_mode=mci:scd=fdiff",
           "-c:v", "ffv1", str(out))  # fmt: skip
    return frames(out)


def held_out_and_made(full: Path, work: Path, name: str) -> tuple[Path, np.ndarray, dict]:
    """Every second frame of ``full`` kept, its frames, and the kept ones played at twice the
    frames by nvfilter (``NAME-found.nvw``), by nvfilter with --no-cuts, and by minterpolate."""
    kept = every_second(full, work / f"{name}-kept.mkv")
    made = {
        "nvfilter": played_twice(kept, work, f"{name}-found"),
        "today (--no-cuts)": played_twice(kept, work, f"{name}-nocuts", "--no-cuts"),
        "minterpolate scd=fdiff": minterpolated(kept, work),
    }
    return kept, frames(full), made


def shots(work: Path) -> list[Path]:
    return [
        window(CORPUS / "tour.mp4", 40, 40, work / "shot-tour.mkv"),
        window(CORPUS / "oa4_launch.webm", 0, 40, work / "shot-oa4.mkv"),
        window(native_720(), 0, 40, work / "shot-bbb.mkv"),
    ]


def cuts(work: Path) -> None:
    parts = shots(work)
    full = work / "spliced.mkv"
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    ffmpeg(*inputs, "-filter_complex", "concat=n=3:v=1", "-c:v", "ffv1", str(full))
    kept, truth, made = held_out_and_made(full, work, "cuts")
    made["repeat"] = np.repeat(frames(kept), 2, axis=0)
    found = subprocess.run([*NVFILTER, "info", str(work / "cuts-found.nvw")], capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    print("\n" + next(line for line in found.splitlines() if line.startswith("time")))
    print(
        "\n| 640x360, 3 shots at 2 cuts, every 2nd frame kept, played 2x | new frame at cut 1: "
        "best of its neighbours | at cut 2 | new frames inside the shots vs held out |"
    )
    print("| --- | --- | --- | --- |")
    count = min(len(truth), *(len(v) for v in made.values())) - 1
    cut_frames = [39, 79]  # halfway from each shot's last kept frame to the next one's first
    inside = [k for k in range(1, count, 2) if k not in cut_frames]
    for name, video in made.items():
        at_cuts = [max(psnr(video[k], video[k - 1]), psnr(video[k], video[k + 1]))
                   for k in cut_frames]  # fmt: skip
        within = psnr(video[inside], truth[inside])
        print(f"| {name} | {at_cuts[0]:.2f} dB | {at_cuts[1]:.2f} dB | {within:.2f} dB |")


def dissolve(work: Path) -> None:
    first = window(CORPUS / "tour.mp4", 40, 40, work / "a.mkv")
    second = window(native_720(), 0, 40, work / "b.mkv")
    full = work / "dissolve.mkv"
    ffmpeg("-i", str(first), "-i", str(second), "-filter_complex",
           "xfade=transition=fade:duration=0.5:offset=1.2", "-c:v", "ffv1", str(full))  # fmt: skip
    _, truth, made = held_out_and_made(full, work, "dissolve")
    count = min(len(truth), *(len(v) for v in made.values())) - 1
    new = list(range(1, count, 2))
    fade = [k for k in new if 28 <= k <= 42]  # the dissolve's 12 frames
    print(
        "\n| 640x360 dissolve over 12 frames, every 2nd kept, played 2x | new frames vs held "
        "out | those in the dissolve |"
    )
    print("| --- | --- | --- |")
    for name, video in made.items():
        print(f"| {name} | {psnr(video[new], truth[new]):.2f} dB | "
              f"{psnr(video[fade], truth[fade]):.2f} dB |")  # fmt: skip


DROPPED = [*range(10, 14), 30, 31, *range(50, 53)]


def variable(work: Path) -> None:
    full = window(CORPUS / "tour.mp4", 0, 72, work / "full72.mkv")
    keep = "+".join(f"eq(n\\,{k})" for k in DROPPED)
    varied = work / "variable.mkv"
    ffmpeg("-i", str(full), "-vf", f"select='not({keep})'", "-fps_mode", "vfr", "-c:v", "ffv1",
           str(varied))  # fmt: skip
    truth = frames(full)
    nvw, played, searched = work / "variable.nvw", work / "variable-1x.mkv", work / "search.mkv"
    nvfilter("encode", varied, nvw)
    nvfilter("decode", nvw, played, "--preset", "lossless")
    nvfilter("decode", nvw, searched, "--preset", "lossless", "--between", "search")
    today = work / "variable-cfr.mkv"
    ffmpeg("-i", str(varied), "-fps_mode", "cfr", "-r", "24", "-c:v", "ffv1", str(today))
    mi = work / "variable-mi.mkv"
    ffmpeg("-i", str(varied), "-vf", "minterpolate=fps=24:mi_mode=mci:scd=fdiff", "-c:v", "ffv1",
           str(mi))  # fmt: skip
    print(
        "\n| tour.mp4 640x360, 72 frames, 9 dropped at a variable rate, played at 24 fps | "
        "frames | at the dropped times vs the dropped frames | every frame |"
    )
    print("| --- | --- | --- | --- |")
    for name, video in (("nvfilter", frames(played)),
                        ("nvfilter --between search", frames(searched)),
                        ("today (constant-rate reading: the "
                        "frame before each gap repeated)", frames(today)),
                        ("minterpolate scd=fdiff", frames(mi))):  # fmt: skip
        count = min(len(video), len(truth))
        print(f"| {name} | {len(video)} | {psnr(video[DROPPED], truth[DROPPED]):.2f} dB | "
              f"{psnr(video[:count], truth[:count]):.2f} dB |")  # fmt: skip


def evenness(video: np.ndarray) -> tuple[float, float, float]:
    """The mean optical-flow length between consecutive frames: its mean, its spread over its
    mean, and how much it jumps from one step to the next over its mean (a stutter's measure:
    a camera speeding up moves the spread, not the jumps)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in video]
    lengths = []
    for a, b in zip(grey, grey[1:], strict=False):
        flow = dis.calc(a, b, None)
        lengths.append(float(np.hypot(flow[..., 0], flow[..., 1]).mean()))
    array = np.array(lengths[2:-2])
    jumps = np.abs(np.diff(array)).mean()
    return float(array.mean()), float(array.std() / array.mean()), float(jumps / array.mean())


def repeats(work: Path) -> None:
    clip = work / "repeated.mkv"
    ffmpeg("-i", str(CORPUS / "tour.mp4"), "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
           "-vf", f"trim=start_frame=40:end_frame=80,setpts=N/20/TB,fps=30,{SCALE}",
           "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "ffv1", "-c:a", "aac",
           str(clip))  # fmt: skip
    print(
        "\n| tour.mp4 640x360 at 20 fps made 30 (every 3rd frame a repeat), played 2x | "
        "frames | flow between output frames: mean px, spread / mean, step-to-step jump / mean "
        "| sound - picture |"
    )
    print("| --- | --- | --- | --- |")
    for name, flags in (("nvfilter", ()), ("today (--keep-repeats)", ("--keep-repeats",))):
        nvw, slow = work / "repeats.nvw", work / "repeats-2x.mkv"
        nvfilter("encode", clip, nvw, *flags)
        nvfilter("decode", nvw, slow, "--temporal-scale", "2", "--preset", "lossless")
        mean, spread, jump = evenness(frames(slow))
        picture, sound = durations(slow)
        print(f"| {name} | {len(frames(slow))} | {mean:.2f} px, {spread:.2f}, {jump:.2f} | "
              f"{(sound - picture) * 1000:+.0f} ms |")  # fmt: skip
    source = work / "source20.mkv"  # the frames before the conversion, played as often
    ffmpeg("-i", str(CORPUS / "tour.mp4"), "-vf",
           f"trim=start_frame=40:end_frame=80,setpts=N/20/TB,{SCALE}", "-r", "20", "-c:v", "ffv1",
           str(source))  # fmt: skip
    nvfilter("encode", source, work / "source20.nvw")
    nvfilter("decode", work / "source20.nvw", work / "source20-3x.mkv", "--temporal-scale", "3",
             "--preset", "lossless")  # fmt: skip
    mean, spread, jump = evenness(frames(work / "source20-3x.mkv"))
    print(
        f"| the 20 fps frames before the conversion, played 3x (no sound) | "
        f"{len(frames(work / 'source20-3x.mkv'))} | {mean:.2f} px, {spread:.2f}, {jump:.2f} | |"
    )
    mi = work / "repeats-mi.mkv"
    ffmpeg("-i", str(clip), "-vf", "minterpolate=fps=60:mi_mode=mci:scd=fdiff", "-c:v", "ffv1",
           "-c:a", "copy", str(mi))  # fmt: skip
    mean, spread, jump = evenness(frames(mi))
    picture, sound = durations(mi)
    print(f"| minterpolate scd=fdiff (60 fps) | {len(frames(mi))} | {mean:.2f} px, {spread:.2f}, "
          f"{jump:.2f} | "
          f"{(sound - picture) * 1000:+.0f} ms |")  # fmt: skip


LONG_SECONDS = 180
MARK_AT = 170.0
"""The long variable-rate clip's length, and where its picture flashes white and its sound
clicks at once (the mark whose two times, after a decode, say how far apart they drifted)."""


def long_variable(work: Path) -> None:
    """Three minutes at a variable rate (a half-second gap every 3 s) with sound: played at its
    rate and at twice the frames, the picture's flash and the sound's click stay together."""
    clip = work / "long.mkv"
    flash = f"drawbox=enable='between(t,{MARK_AT},{MARK_AT + 0.1})':color=white:t=fill"
    click = (f"0.1*sin(2*PI*440*t)+if(between(t,{MARK_AT},{MARK_AT + 0.1}),"
             f"0.8*sin(2*PI*1000*t),0)")  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=30:duration={LONG_SECONDS}",
           "-f", "lavfi", "-i", f"aevalsrc='{click}':d={LONG_SECONDS}:s=48000",
           "-vf", f"{flash},select='not(between(mod(n\\,90)\\,30\\,44))'",
           "-fps_mode", "vfr", "-c:v", "ffv1", "-c:a", "flac", str(clip))  # fmt: skip
    print(
        "\n| 160x90, 180 s at a variable rate (15 of every 90 frames dropped), sound | frames "
        "| the flash | the click | click - flash | sound - picture |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    nvw = work / "long.nvw"
    nvfilter("encode", clip, nvw)
    for name, flags in (("the source", None), ("nvfilter, at its rate", ()),
                        ("nvfilter, 2x (`--temporal-scale 2`)", ("--temporal-scale", "2"))):  # fmt: skip
        played = clip
        if flags is not None:
            played = work / "long-played.mkv"
            nvfilter("decode", nvw, played, "--preset", "lossless", *flags)
        seen, heard, count = mark_times(played)
        picture, sound = durations(played)
        print(f"| {name} | {count} | {seen:.3f} s | {heard:.3f} s | "
              f"{(heard - seen) * 1000:+.0f} ms | {(sound - picture) * 1000:+.0f} ms |")  # fmt: skip


def mark_times(path: Path) -> tuple[float, float, int]:
    """(when the picture first turns white, when the sound first clicks, frames): seconds from
    the start, read off the decoded frames' timestamps and the decoded samples."""
    log = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                          "-vf", "signalstats,metadata=print:key=lavfi.signalstats.YAVG",
                          "-f", "null", "-"], capture_output=True, text=True).stderr  # fmt: skip
    stamps, brightness = [], []
    for line in log.splitlines():
        if "pts_time:" in line:
            stamps.append(float(line.split("pts_time:")[1].split()[0]))
        elif "YAVG=" in line:
            brightness.append(float(line.split("YAVG=")[1]))
    seen = stamps[next(k for k, value in enumerate(brightness) if value > 200)]
    raw = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-ac", "1", "-ar", "48000", "-f", "f32le", "-"], capture_output=True,
                         check=True).stdout  # fmt: skip
    samples = np.frombuffer(raw, np.float32)
    heard = int(np.argmax(np.abs(samples) > 0.5)) / 48000
    return seen, heard, len(stamps)


def durations(path: Path) -> tuple[float, float]:
    """(picture, sound) seconds of a file, from its streams' decoded lengths."""
    lengths = []
    for stream in ("v:0", "a:0"):
        log = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map",
                              f"0:{stream}", "-f", "null", "-"], capture_output=True,
                             text=True).stderr  # fmt: skip
        stamp = log.rsplit("time=", 1)[1].split()[0]
        hours, minutes, seconds = stamp.split(":")
        lengths.append(int(hours) * 3600 + int(minutes) * 60 + float(seconds))
    return lengths[0], lengths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "cuts", "dissolve", "variable", "repeats",
                                           "long"],
                        default="all")  # fmt: skip
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, float32 matmul "
          f"{matmul_flops() / 1e9:.0f} GFLOP/s, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="edit-bench-") as tmp:
        work = Path(tmp)
        for name, part in (("cuts", cuts), ("dissolve", dissolve), ("variable", variable),
                           ("repeats", repeats), ("long", long_variable)):  # fmt: skip
            if args.part in ("all", name):
                part(work)


if __name__ == "__main__":
    main()
