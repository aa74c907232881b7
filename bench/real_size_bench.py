"""Real sizes: the default (tiles) model's no-flag encode and fit rate on the corpus's real-size
clips at their own sizes (alone: --part tiles), then PSNR against training time for the models
trained by steps (segments and hybrid), with the machine's matmul rate beside every timed figure;
then decode frames/s at 1280x720 into a raw pipe (alone: --part decode; --part reads: the tiles
network's own reads there, with several frames a product). --part quality: slow
motion and upscaling at real sizes against ffmpeg; --part native720: all of it on a native
1280x720 clip fetched from PyPI (common.NATIVE_720), the corpus having none; --part handheld:
the no-flag encode, slow motion and upscaling on real hand-held clips given by path (--clips);
--part aligned: one part fitted as it is and along its camera path, each forced, on the interior;
--part upscaling: 2x upscaling (each frame alone, and with its neighbours) against lanczos on
each clip (corpus names or paths) at its own size.

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
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from common import CORPUS, ffmpeg, frames_of, matmul_flops, psnr_of  # noqa: E402  (puts the checkout on sys.path)
from common import native_720 as native_720_clip  # noqa: E402

from nvfilter import chroma  # noqa: E402
from nvfilter.camera import camera_path  # noqa: E402
from nvfilter.config import BETWEEN_RULES, UPSCALERS, EncodeOptions, TrainResult, VideoInfo  # noqa: E402
from nvfilter.encode.encoder import create_model, train_config  # noqa: E402
from nvfilter.encode.train import Trainer  # noqa: E402
from nvfilter.io import media, nvw  # noqa: E402
from nvfilter.metrics import psnr_from_mse  # noqa: E402
from nvfilter.models import count_parameters  # noqa: E402
from nvfilter.models.parts import part_spans  # noqa: E402
from nvfilter.models.reads import reconstruct, reconstruction_mse  # noqa: E402
from nvfilter.models.tiles import TileField  # noqa: E402

NVFILTER = [sys.executable, "-m", "nvfilter"]
TILES = ["--model", "tiles"]
"""The learned models' benchmark measures the tiles model where it once measured the default (the
codec's own figures are bench/codec_bench.py's)."""
LOSSLESS = ["-c:v", "ffv1"]
"""ffmpeg output options for the clips the quality tables make and score."""


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


def network_720(model_name: str = "tiles"):
    """The decode benchmarks' network: 48 frames of tour.mp4 scaled to 1280x720, one network of
    ``model_name`` fitted to them (tiles; segments: its start), and its VideoInfo."""
    src = media.probe(str(CORPUS / "tour.mp4"))
    frames = media.read_frames(str(CORPUS / "tour.mp4"), src, 1280, 720, 1, 48)
    n, h, w, _ = frames.shape
    if model_name == "tiles":
        model = TileField(w, h, n)
    else:
        model, _ = create_model(
            EncodeOptions(model=model_name), SimpleNamespace(width=w, height=h, frames=n)
        )
    model.start_from(frames)
    return model, VideoInfo(w, h, n, src.frame_rate, src.sample_aspect_ratio, src.color)


def print_reads(repeats: int = 8) -> None:
    """The tiles network's own 1280x720 reads (TileField.native_pictures) with several frames
    in one sparse product: ms a frame and the pictures' bytes streamed a second (each frame reads
    every component once; several frames read them once together), on 1 and 2 threads, best of
    ``repeats``, beside the matmul rate."""
    model, _ = network_720()
    pictures = model.basis.numel() * model.basis.element_size()
    before = matmul_flops()
    print(f"\nthe tiles network's 1280x720 reads ({model.components} components, "
          f"{pictures / 1e6:.0f} MB of pictures; matmul {before / 1e9:.0f} GFLOP/s before)\n")  # fmt: skip
    print("| frames a product | threads | ms a frame | pictures read, GB/s |")
    print("| --- | --- | --- | --- |")
    threads = torch.get_num_threads()
    for count in (1, 2, 4, 8):
        for used in (1, threads):
            torch.set_num_threads(used)
            positions = [k * 47 / 8 for k in range(count)]
            with torch.inference_mode():
                model.native_pictures(positions)
                best = math.inf
                for _ in range(repeats):
                    begin = time.perf_counter()
                    model.native_pictures(positions)
                    best = min(best, time.perf_counter() - begin)
            print(f"| {count} | {used} | {best / count * 1e3:.1f} | {pictures / best / 1e9:.1f} |")
    torch.set_num_threads(threads)
    print(f"\nmatmul {matmul_flops() / 1e9:.0f} GFLOP/s after")


def decode_fps(rounds: int = 2, model_name: str = "tiles") -> list[str]:
    """End-to-end `nvfilter decode` of a 1280x720 .nvw (48 frames of tour.mp4 scaled to 1280x720,
    one network of the default model fitted to them: tiles; segments: its start) into a raw pipe: the start-up (one frame), 240 frames
    read from the network, and 96 frames of which half are made by motion (`--between motion`);
    frames/s with the start-up and without it, best of ``rounds`` alternating rounds. Rows of a
    Markdown table."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.nvw"
        model, video = network_720(model_name)
        w, h = video.width, video.height
        result = TrainResult(0, 0.0, 0.0, "epochs", None)
        clip.write_bytes(nvw.to_bytes(model, video, result, "float32", None))
        base = ["decode", str(clip), "-", "-q", "--format", "nut", "--codec", "rawvideo"]
        runs = {
            "start-up (1 frame)": [*base, "--num-frames", "1"],
            "network, 240 frames": [*base, "--num-frames", "240"],
            "motion, 96 frames (48 new)": [*base, "--num-frames", "96", "--between", "motion"],
        }
        best: dict[str, float] = {}
        for _ in range(rounds):
            for label, command in runs.items():
                begin = time.perf_counter()
                out = subprocess.run([*NVFILTER, *command], capture_output=True, check=True)
                best[label] = min(best.get(label, math.inf), time.perf_counter() - begin)
                assert len(out.stdout) >= int(command[-3 if "motion" in label else -1]) * w * h
        start_up = best["start-up (1 frame)"]
        rows = [
            f"| start-up (1 frame) | {start_up:.2f} s | | | `nvfilter {' '.join(runs['start-up (1 frame)'])}` |"
        ]
        for label, command in list(runs.items())[1:]:
            count = int(command[command.index("--num-frames") + 1])
            seconds = best[label]
            rows.append(
                f"| {label} | {seconds:.2f} s | {count / seconds:.1f} | "
                f"{(count - 1) / (seconds - start_up):.1f} | `nvfilter {' '.join(command)}` |"
            )
        return rows


def slow_motion(
    d: Path,
    clip: Path,
    start: int,
    budget: float,
    size: tuple[int, int] = (640, 360),
    count: int = 64,
) -> None:
    """The slow-motion table (quality) for ``count`` frames of ``clip`` from ``start`` at
    ``size``, in the folder ``d``: every second one kept, learned for ``budget`` s, played at
    twice the frames with --between motion, beside minterpolate (mci) from the kept frames."""
    width, height = size
    window = f"trim=start_frame={start},setpts=PTS-STARTPTS,scale={width}:{height}:flags=area"
    ffmpeg("-i", str(clip), "-an", "-vf", window, "-frames:v", str(count), *LOSSLESS,
           str(d / "full.mkv"))  # fmt: skip
    ffmpeg("-i", str(d / "full.mkv"), "-vf", "select='not(mod(n,2))',setpts=N/12/TB", "-r",
           "12", *LOSSLESS, str(d / "kept.mkv"))  # fmt: skip
    subprocess.run([*NVFILTER, "encode", str(d / "kept.mkv"), str(d / "kept.nvw"), "-q",
                    *TILES, "--time-budget", str(budget)], check=True)  # fmt: skip
    decode = {}
    for rule in BETWEEN_RULES:
        begin = time.perf_counter()
        subprocess.run([*NVFILTER, "decode", str(d / "kept.nvw"), str(d / f"slow-{rule}.mkv"),
                        "-q", "--temporal-scale", "2", "--fps", "24", "--between", rule,
                        "--preset", "lossless"], check=True)  # fmt: skip
        decode[rule] = time.perf_counter() - begin
    ffmpeg("-i", str(d / "kept.mkv"), "-vf", "minterpolate=fps=24:mi_mode=mci", *LOSSLESS,
           str(d / "mi.mkv"))  # fmt: skip
    real = frames_of(d / "full.mkv")
    ours = {rule: frames_of(d / f"slow-{rule}.mkv") for rule in BETWEEN_RULES}
    theirs = frames_of(d / "mi.mkv")
    scored = min(len(ours["motion"]), len(theirs), len(real) - 1)  # minterpolate ends early
    scored -= 1 - scored % 2  # end on a kept frame
    real, theirs = real[:scored], theirs[:scored]
    new = list(range(1, scored, 2))
    blend = (real[0 : scored - 1 : 2] + real[2:scored:2]) / 2
    print(
        f"\nslow motion, {clip.name} at {width}x{height}, frames {start}-{start + count - 1}, every "
        f"second one held out (a blend of the kept neighbours scores "
        f"{psnr_of(blend, real[new]):.2f} dB on the new ones), {budget:g} s of training, frames "
        f"0-{scored - 1} scored:\n"
    )
    print("| method | all frames | new frames | kept frames | decode s |")
    print("| --- | --- | --- | --- | --- |")
    rows = [(f"nvfilter `--between {rule}`", ours[rule][:scored], f"{decode[rule]:.1f}")
            for rule in BETWEEN_RULES]  # fmt: skip
    for name, video, seconds in [*rows, ("minterpolate mci", theirs, "")]:
        print(f"| {name} | {psnr_of(video, real):.2f} | "
              f"{psnr_of(video[new], real[new]):.2f} | "
              f"{psnr_of(video[0::2], real[0::2]):.2f} | {seconds} |")  # fmt: skip


def upscaling(
    d: Path, clip: Path, big: tuple[int, int], small: tuple[int, int], budget: float
) -> None:
    """The upscaling table (quality): ``clip`` at ``big`` (area), learned at ``small`` for
    ``budget`` s, played at ``big`` with back-projection of each frame alone and with its
    neighbours (and the decode's seconds), beside lanczos from the same small frames, all
    against the real ``big`` frames; in the folder ``d``."""
    ffmpeg("-i", str(clip), "-an", "-vf", f"scale={big[0]}:{big[1]}:flags=area", *LOSSLESS,
           str(d / "big.mkv"))  # fmt: skip
    ffmpeg("-i", str(d / "big.mkv"), "-vf", f"scale={small[0]}:{small[1]}:flags=area", *LOSSLESS,
           str(d / "small.mkv"))  # fmt: skip
    subprocess.run([*NVFILTER, "encode", str(d / "small.mkv"), str(d / "small.nvw"), "-q",
                    *TILES, "--time-budget", str(budget)], check=True)  # fmt: skip
    seconds = {}
    for upscaler in UPSCALERS:
        begin = time.perf_counter()
        subprocess.run([*NVFILTER, "decode", str(d / "small.nvw"), str(d / f"{upscaler}.mkv"),
                        "-q", "--width", str(big[0]), "--height", str(big[1]), "--upscaler",
                        upscaler, "--codec", "ffv1"], check=True)  # fmt: skip
        seconds[upscaler] = time.perf_counter() - begin
    ffmpeg("-i", str(d / "small.mkv"), "-vf", f"scale={big[0]}:{big[1]}:flags=lanczos",
           *LOSSLESS, str(d / "lanczos.mkv"))  # fmt: skip
    real = frames_of(d / "big.mkv")
    print(
        f"\nupscaling, {clip.name}: learned at {small[0]}x{small[1]} for {budget:g} s, played at "
        f"{big[0]}x{big[1]}, against the real {big[0]}x{big[1]} frames ({len(real)}):\n"
    )
    print("| method | PSNR | decode s |")
    print("| --- | --- | --- |")
    for upscaler, name in (("network", "the network's read"), ("backproject", "back-projection"),
                           ("multiframe", "multi-frame back-projection")):  # fmt: skip
        score = psnr_of(frames_of(d / f"{upscaler}.mkv"), real)
        print(f"| nvfilter `--upscaler {upscaler}` ({name}) | {score:.2f} | "
              f"{seconds[upscaler]:.1f} |")  # fmt: skip
    print(f"| lanczos | {psnr_of(frames_of(d / 'lanczos.mkv'), real):.2f} | |")


def quality(budget: float, starts: list[int]) -> None:
    """In-between frames and upscaling at real sizes, through the command line, against ffmpeg.

    Slow motion: 64 frames of tour.mp4 at 640x360 from each of ``starts``, every second one kept
    (32 frames), learned for ``budget`` s, decoded at twice the frames with --between motion;
    minterpolate (mci) makes the same 64 from the kept frames. Frame 0 starts a slow camera move
    (a blend of the kept frames scores 28.4 dB on the held-out ones), 128 the start of the fast
    part (25.0 dB, frames 6 grey levels apart on average), 136 inside it (20.9 dB, 10 levels
    apart). Upscaling: tour.mp4 at 720x404 (area), learned at 360x202 for ``budget`` s, decoded at
    720x404 (the upscale-2x preset's back-projection); lanczos enlarges the same 360x202
    frames. All scored against the real frames.
    """
    tour = CORPUS / "tour.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        for start in starts:
            slow_motion(Path(tmp), tour, start, budget)
        upscaling(Path(tmp), tour, (720, 404), (360, 202), budget)


def native_720(budget: float) -> None:
    """A native 1280x720 clip (common.NATIVE_720, fetched once): the no-flag encode, `eval`,
    decoding into a raw pipe (network and --between motion), slow motion at 1280x720 with every
    second frame held out, and 2x upscaling from 640x360, each beside ffmpeg."""
    clip = native_720_clip()
    tiles_table([str(clip)])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.nvw"
        subprocess.run([*NVFILTER, "encode", str(clip), str(out), "-q", *TILES], check=True)
        begin = time.perf_counter()
        scores = subprocess.run([*NVFILTER, "eval", str(clip), str(out)], capture_output=True,
                                text=True, check=True).stdout.strip()  # fmt: skip
        print(f"\n`nvfilter eval`: {scores} ({time.perf_counter() - begin:.1f} s)\n")
        print("| decode into a raw pipe | seconds | frames/s end to end |")
        print("| --- | --- | --- |")
        base = ["decode", str(out), "-", "-q", "--format", "nut", "--codec", "rawvideo"]
        for label, flags, frames in (
            ("network, every frame", [], 132),
            ("slowmo-2x --between motion", ["--preset", "slowmo-2x", "--between", "motion"], 264),
        ):
            begin = time.perf_counter()
            subprocess.run([*NVFILTER, *base, *flags], stdout=subprocess.DEVNULL, check=True)
            seconds = time.perf_counter() - begin
            print(f"| {label} ({frames} frames) | {seconds:.1f} | {frames / seconds:.1f} |")
        slow_motion(Path(tmp), clip, 0, budget, (1280, 720), 132)
        upscaling(Path(tmp), clip, (1280, 720), (640, 360), budget)


HANDHELD_FRAMES = 120
"""Frames of each hand-held clip the no-flag encode and the upscaling learn (the issue's 120)."""


def handheld(paths: list[str], budget: float, starts: list[int]) -> None:
    """The issue's checks on real hand-held clips that the user names (no package registry ships
    one; BENCHMARKS.md names those measured and where they come from), each at its own size:
    its first HANDHELD_FRAMES frames cut losslessly and encoded with no flags (tiles_table);
    slow motion of 64 frames at 640x360 (360x640 for an upright clip) from each of ``starts``,
    every second one held out (slow_motion); and those frames learned at half their size for
    ``budget`` s, played at their own size beside lanczos (upscaling)."""
    for path in paths:
        src = media.probe(path)
        with tempfile.TemporaryDirectory() as tmp:
            cut = Path(tmp) / f"{Path(path).stem}-{HANDHELD_FRAMES}.mkv"
            ffmpeg("-i", path, "-an", "-frames:v", str(HANDHELD_FRAMES), *LOSSLESS, str(cut))
            print(f"\n{Path(path).name} ({src.width}x{src.height}), its first "
                  f"{HANDHELD_FRAMES} frames:\n")  # fmt: skip
            tiles_table([str(cut)])
            size = (640, 360) if src.width >= src.height else (360, 640)
            for start in starts:
                slow_motion(Path(tmp), Path(path), start, budget, size)
            big = (src.width // 2 * 2, src.height // 2 * 2)
            upscaling(Path(tmp), cut, big, (big[0] // 2, big[1] // 2), budget)


def upscaling_table(clips: list[str], budget: float) -> None:
    """2x upscaling on each clip (a corpus name or a path) at its own size: its first
    HANDHELD_FRAMES frames learned at half size for ``budget`` s, played back by back-projection
    of each frame alone and with its neighbours, beside lanczos (upscaling)."""
    for name in clips:
        path = Path(name) if Path(name).exists() else CORPUS / name
        src = media.probe(str(path))
        with tempfile.TemporaryDirectory() as tmp:
            cut = Path(tmp) / f"{path.stem}-{HANDHELD_FRAMES}.mkv"
            ffmpeg("-i", str(path), "-an", "-frames:v", str(HANDHELD_FRAMES), *LOSSLESS, str(cut))
            big = (src.width // 4 * 4, src.height // 4 * 4)
            upscaling(Path(tmp), cut, big, (big[0] // 2, big[1] // 2), budget)


def aligned_interiors(clips: list[str], starts: list[int], count: int = 33) -> None:
    """The two ways the tiles fit chooses between (TileField.start_from), each forced: one part of
    ``count`` frames from each of ``starts`` fitted (at one number per pixel, its colour layout
    found as the encoder finds it) as it is, and with each frame moved by a whole-pixel camera
    path first (here a crop, in steps of the layout's colour block), both scored on the
    interior every moved frame covers."""
    print("| clip (native size) | frames | the path's span x, y (pixels) | interior | PSNR as is "
          "| PSNR along the path |")  # fmt: skip
    print("|" + " --- |" * 6)
    for name in clips:
        path = str(CORPUS / name)
        src = media.probe(path)
        for start in starts:
            frames = media.read_frames(path, src, src.width, src.height, 1, start + count)
            frames = frames[start:].numpy()
            n, height, width, _ = frames.shape
            layout = chroma.detect(torch.from_numpy(frames), src.color.matrix)
            places = camera_path(frames, max(chroma.LAYOUTS.get(layout, (1, 1))))
            if places is None:  # a still camera, or a path beyond PATH_MAX_SHARE
                places = np.zeros((n, 2), np.int64)
            span = places.max(0)
            inner_w, inner_h = (np.array([width, height]) - span) // 8 * 8
            scores = []
            for moved in (False, True):
                corners = span - places if moved else np.tile(span, (n, 1))
                stack = torch.from_numpy(np.stack([frames[k, y : y + inner_h, x : x + inner_w]
                                                   for k, (x, y) in enumerate(corners)]))  # fmt: skip
                model = TileField(int(inner_w), int(inner_h), n, chroma=layout)
                model.follow_camera = False  # the crop is the path here
                model.start_from(stack)
                scores.append(psnr_from_mse(reconstruction_mse(model, stack), peak=1.0))
            print(f"| {Path(name).name} ({width}x{height}) | {start}-{start + n - 1} | "
                  f"{span[0]}, {span[1]} | {inner_w}x{inner_h} | {scores[0]:.2f} dB | "
                  f"{scores[1]:.2f} dB |", flush=True)  # fmt: skip


SHAKE_MARGIN = 16
"""Pixels the hand-held stand-in's crop may wander from the centre, each way."""


def shaken(
    frames: torch.Tensor, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Hand-held stand-ins made from uint8 ``frames`` (n, H, W, 3) with a still camera: crops of
    (H - 2 SHAKE_MARGIN) x (W - 2 SHAKE_MARGIN) that follow a hand's path (a velocity that drifts,
    AR(1) 0.8 with 1.5-pixel steps, plus a tremor of 0.7 pixel): at whole pixels, so no frame is
    resampled; and at the path's own sub-pixel positions with a roll drifting up to about a
    degree, resampled (OpenCV's Lanczos); the centre crops beside them (the camera held still);
    and the whole-pixel path's mean move a frame in pixels."""
    import cv2

    rng = np.random.default_rng(seed)
    n, height, width, _ = frames.shape
    crop_h, crop_w = height - 2 * SHAKE_MARGIN, width - 2 * SHAKE_MARGIN
    position, velocity, roll = np.full(2, float(SHAKE_MARGIN)), np.zeros(2), 0.0
    corners, warped = [], []
    for k in range(n):
        velocity = 0.8 * velocity + rng.normal(0, 1.5, 2)
        position = np.clip(position + velocity, 0, 2 * SHAKE_MARGIN)
        at = np.clip(position + rng.normal(0, 0.7, 2), 0, 2 * SHAKE_MARGIN)
        corners.append(np.round(at))
        roll = float(np.clip(0.9 * roll + rng.normal(0, 0.15), -1.0, 1.0))
        centre = (at[0] + crop_w / 2, at[1] + crop_h / 2)
        matrix = cv2.getRotationMatrix2D(centre, roll, 1.0)
        matrix[:, 2] -= at  # the crop's corner to the origin
        warped.append(cv2.warpAffine(frames[k].numpy(), matrix, (crop_w, crop_h),
                                     flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT))  # fmt: skip
    moves = float(np.mean(np.abs(np.diff(np.array(corners), axis=0)).sum(1)))
    held = torch.stack([frames[k, int(y) : int(y) + crop_h, int(x) : int(x) + crop_w]
                        for k, (x, y) in enumerate(corners)])  # fmt: skip
    m = SHAKE_MARGIN
    still = frames[:, m : m + crop_h, m : m + crop_w].contiguous()
    return held, torch.from_numpy(np.stack(warped)), still, moves


def write_h264(frames: torch.Tensor, path: Path, rate: int = 25) -> None:
    """uint8 frames (n, H, W, 3) as a high-quality H.264 (4:2:0) file, as a camera gives."""
    n, height, width, _ = frames.shape
    subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f",
                    "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(rate),
                    "-i", "-", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(path)],
                   input=frames.numpy().tobytes(), check=True)  # fmt: skip


def shaken_720(count: int = 120) -> None:
    """The issue's hand-held 1280x720 clip, which no clip at hand is: the native 1280x720 clip's
    first ``count`` frames cropped along a hand's path (``shaken``: at whole pixels, and at
    sub-pixel positions with a roll), and held still beside them, each as H.264; the no-flag
    encode (wall, PSNR and SSIM from `nvfilter eval`)."""
    clip = native_720_clip()
    src = media.probe(str(clip))
    frames = media.read_frames(str(clip), src, src.width, src.height, 1, count)
    held, rolled, still, moves = shaken(frames)
    n, height, width, _ = held.shape
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\n{clip.name}'s first {n} frames cropped to {width}x{height}: along a hand's path "
              f"(a mean move of {moves:.1f} pixels a frame), and held still; H.264 "
              f"crf 12, 4:2:0; `nvfilter encode CLIP out.nvw` with no flags:\n")  # fmt: skip
        print("| clip | mean difference of neighbouring frames (grey levels) | encode wall | PSNR "
              "(eval) | SSIM |")  # fmt: skip
        print("| --- | --- | --- | --- | --- |")
        for label, video in (
            ("hand-held stand-in, whole pixels", held),
            ("hand-held stand-in, sub-pixel with a roll (resampled)", rolled),
            ("held still", still),
        ):
            path, out = Path(tmp) / "clip.mp4", Path(tmp) / "out.nvw"
            write_h264(video, path)
            shown = frames_of(path)
            difference = (shown[1:] - shown[:-1]).abs().mean().item()
            out.unlink(missing_ok=True)
            begin = time.perf_counter()
            subprocess.run([*NVFILTER, "encode", str(path), str(out), "-q", *TILES], check=True)
            wall = time.perf_counter() - begin
            scores = subprocess.run([*NVFILTER, "eval", str(path), str(out)], capture_output=True,
                                    text=True, check=True).stdout  # fmt: skip
            psnr = scores.split("PSNR")[1].split()[0] if "PSNR" in scores else "?"
            ssim = scores.split("SSIM")[1].split()[0] if "SSIM" in scores else "?"
            print(f"| {label} | {difference:.2f} | {wall:.1f} s | {psnr} | {ssim} |", flush=True)


def tile_fit_flops(model: TileField) -> float:
    """The tiles fit's floating-point operations: per tile its Gram matrix (2 n^2 P for n
    frames of P values), its eigen-decomposition (about 9 n^3 with vectors) and its kept
    pictures (2 n P a component)."""
    n, values = model.frames, 3 * model.tile * model.tile
    tiles = model.rows * model.columns
    return tiles * (2 * n * n * values + 9 * n**3) + model.components * 2 * n * values


def tiles_table(clips: list[str], rounds: int = 2) -> None:
    """The tiles model on each clip at its own size: `nvfilter encode CLIP out.nvw --model tiles`
    (the default before the codec; wall, training seconds, PSNR, numbers per pixel, peak memory), and the fit
    of one 33-frame part in this process: its FLOP/s against matmul measured beside it, pixels
    fitted per second; best of ``rounds``."""
    print("| clip (native size) | --model tiles encode wall | fit s (in the .nvw) | PSNR | numbers per "
          "pixel | peak memory | one part's RGB fit | pixels/s | GFLOP/s (% of matmul) | matmul "
          "GFLOP/s before/after |")  # fmt: skip
    print("|" + " --- |" * 10)
    for name in clips:
        path = str(CORPUS / name)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.nvw"
            begin = time.perf_counter()
            run = subprocess.run(["/usr/bin/time", "-f", "%M", *NVFILTER, "encode", path,
                                  str(out), "-q", *TILES], capture_output=True,
                                 text=True, check=True)  # fmt: skip
            wall = time.perf_counter() - begin
            peak = int(run.stderr.strip().splitlines()[-1]) * 1024
            loaded = nvw.load(out)
            video = loaded.video
            stored = loaded.parameters / (video.width * video.height * video.frames)
            training = loaded.training
        src = media.probe(path)
        frames = media.read_frames(path, src, src.width, src.height, 1, 33)
        n, h, w, _ = frames.shape
        best, before = math.inf, matmul_flops()
        for _ in range(rounds):
            model = TileField(w, h, n)
            begin = time.perf_counter()
            model.start_from(frames)
            best = min(best, time.perf_counter() - begin)
        after = matmul_flops()
        flops = tile_fit_flops(model) / best
        print(f"| {Path(name).name} ({video.width}x{video.height}, {video.frames} frames) | {wall:.1f} s | "
              f"{training.seconds:.1f} s | {training.psnr:.2f} dB | {stored:.2f} | "
              f"{peak / 1e9:.2f} GB | {best:.2f} s | {w * h * n / best:,.0f} | "
              f"{flops / 1e9:.0f} ({flops / before:.0%}) | {before / 1e9:.0f}/{after / 1e9:.0f} |",
              flush=True)  # fmt: skip


def tiles_sweep(clips: list[str]) -> None:
    """The tiles model's design choices on each clip at its own size: tile side, part length
    and numbers per pixel, PSNR of every frame of the 8-bit reconstruction (parts fitted as the
    encoder cuts them, a join's shared frame from the earlier part)."""
    print("| clip (native size) | tile | frames a part | numbers per pixel (ceiling) | colour "
          "layout | stored | PSNR | fit s |")  # fmt: skip
    print("|" + " --- |" * 8)
    settings = [(8, 32, 1.0, "444"), (16, 32, 1.0, "444"), (32, 32, 1.0, "444"),
                (8, 16, 1.0, "444"), (8, 64, 1.0, "444"), (8, 32, 0.5, "444"),
                (8, 32, 0.25, "444"), (16, 32, 0.25, "444"), (8, 32, 1.0, "found"),
                (8, 32, 0.5, "found"), (8, 32, 0.25, "found")]  # fmt: skip
    for name in clips:
        path = str(CORPUS / name)
        src = media.probe(path)
        frames = media.read_frames(path, src, src.width, src.height)
        n, h, w, _ = frames.shape
        found = chroma.detect(frames, src.color.matrix)
        for tile, length, ceiling, layout in settings:
            layout = found if layout == "found" else layout
            squared, stored, seconds = 0.0, 0, 0.0
            for first, count in part_spans(n, length):
                model = TileField(w, h, count, tile=tile, numbers_per_pixel=ceiling, chroma=layout)
                begin = time.perf_counter()
                model.start_from(frames[first : first + count])
                seconds += time.perf_counter() - begin
                stored += count_parameters(model)
                own = count if first + count == n else count - 1
                for k, picture in enumerate(reconstruct(model, w, h, count)):
                    if k == own:
                        break
                    error = torch.from_numpy(picture).float() - frames[first + k].float()
                    squared += float(error.square().mean()) / 255.0**2
            print(f"| {name} ({w}x{h}, {n} frames) | {tile} | {length} | {ceiling:g} | {layout} | "
                  f"{stored / (w * h * n):.2f} | {psnr_from_mse(squared / n, peak=1.0):.2f} dB | "
                  f"{seconds:.1f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["tour.mp4", "oa4_launch.webm"])
    parser.add_argument("--models", nargs="+", default=["segments", "hybrid"])
    parser.add_argument("--budget", type=float, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--motion-starts", type=int, nargs="+", default=[0, 128, 136],
                        help="first frames of the slow-motion windows (--part quality)")  # fmt: skip
    parts = ["all", "tiles", "sweep", "curves", "quality", "decode", "reads", "native720",
             "shaken720", "handheld", "aligned", "upscaling"]  # fmt: skip
    parser.add_argument("--part", choices=parts, default="all")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part == "decode":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        print_decode()
        return
    if args.part == "reads":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        print_reads()
        return
    if args.part == "sweep":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        tiles_sweep(args.clips)
        return
    if args.part == "tiles":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        tiles_table(args.clips)
        return
    if args.part == "native720":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        native_720(min(args.budget, 120))
        return
    if args.part == "shaken720":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        shaken_720()
        return
    if args.part == "handheld":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        handheld(args.clips, min(args.budget, 120), args.motion_starts)
        return
    if args.part == "upscaling":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        upscaling_table(args.clips, min(args.budget, 120))
        return
    if args.part == "aligned":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        aligned_interiors(args.clips, args.motion_starts)
        return
    if args.part == "quality":
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        quality(min(args.budget, 120), args.motion_starts)
        return
    marks = [m for m in (30, 60, 120, 300) if m < args.budget]
    print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    tiles_table(args.clips)
    print()
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
    print_decode()


def print_decode() -> None:
    """The 1280x720 decoding table, with the matmul rate measured beside it."""
    before = matmul_flops()
    rows = decode_fps()
    print(f"\ndecode at 1280x720 into a raw pipe (matmul {before / 1e9:.0f} GFLOP/s before, "
          f"{matmul_flops() / 1e9:.0f} after)\n")  # fmt: skip
    print("| run | seconds | frames/s end to end | frames/s after the start-up | command |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
