"""nvfilter eval: decode a .nvw at its learned size and rate and score it against the original."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Generator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvfilter import metrics
from nvfilter.config import SourceInfo, VideoInfo
from nvfilter.errors import OutputError, VideoError
from nvfilter.io import media
from nvfilter.io.inputs import open_nvw
from nvfilter.models.reads import reconstruct


def evaluate(original: str, nvw_path: str, vmaf: bool = False) -> dict[str, Any]:
    """Decode the .nvw at its own size and rate and score it against the original's frames.

    PSNR is computed as ffmpeg's psnr filter does: per frame over R, G and B, and overall from the
    mean squared error of all frames (``psnr_db``); SSIM as metrics.ssim, averaged over frames.
    """
    loaded, size = open_nvw(nvw_path)
    video = loaded.video
    if not Path(original).is_file():
        raise VideoError(f"{original}: no such file")
    src = media.probe(original)
    step = same_video(original, src, video)
    count = video.frames
    rows = []
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        distorted, kept_reference = Path(tmp) / "dist.rgb", Path(tmp) / "ref.rgb"
        with (
            distorted.open("wb") as kept,
            kept_reference.open("wb") as kept_real,
            contextlib.closing(_learned_from(original, src, video, step)) as references,
        ):  # both streamed: memory for a frame of each, whatever the length
            frames = reconstruct(loaded.model, video.width, video.height, video.frames)
            for k, (frame, real) in enumerate(zip(frames, references, strict=False)):
                if vmaf:
                    kept.write(frame.tobytes())
                    kept_real.write(real.tobytes())
                recon, reference = torch.from_numpy(frame), torch.from_numpy(real)
                error = metrics.mse(recon, reference)
                total += error
                rows.append({"frame": k, "psnr_db": metrics.psnr_from_mse(error),
                             "ssim": metrics.ssim(recon, reference)})  # fmt: skip
        if len(rows) < count:
            raise VideoError(
                f"{original}: gives {len(rows)} frames at {video.frame_rate} fps, the .nvw "
                f"learned {video.frames}: not the video it learned"
            )
        vmaf_score = libvmaf_score(distorted, kept_reference, video) if vmaf else None
    result = _summary(rows, total, video, size)
    if vmaf_score is not None:
        result["vmaf"] = vmaf_score
    return {"original": original, "nvw": nvw_path, **result}


def _summary(
    rows: list[dict[str, Any]], total: float, video: VideoInfo, size: int
) -> dict[str, Any]:
    """The scores of the frames (``rows``, their squared errors adding up to ``total``)."""
    count = len(rows)
    return {
        "frames": count,
        "width": video.width,
        "height": video.height,
        "psnr_db": metrics.psnr_from_mse(total / count),
        "psnr_worst_db": min(r["psnr_db"] for r in rows),
        "ssim": sum(r["ssim"] for r in rows) / count,
        "ssim_worst": min(r["ssim"] for r in rows),
        "nvw_bytes": size,
        "bits_per_pixel": size * 8 / (video.width * video.height * video.frames),
        "per_frame": rows,
    }


def _learned_from(
    original: str, src: SourceInfo, video: VideoInfo, step: int
) -> Generator[np.ndarray, None, None]:
    """The original's frames that the .nvw's frames are, in order: every ``step``-th as the
    encoder read them (at the constant rate, or each at its own time where the rate varied),
    less the repeats it left out (its timeline's sources)."""
    timeline = video.timeline
    last = video.frames if timeline is None else timeline.source_of(video.frames - 1) + 1
    read = media.iter_frames(original, src, video.width, video.height, step, last,
                             constant_rate=timeline is None or not timeline.variable)  # fmt: skip
    wanted = None if timeline is None or timeline.sources is None else set(timeline.sources)
    with contextlib.closing(read):
        for index, frame in enumerate(read):
            if wanted is None or index in wanted:
                yield frame


def same_video(original: str, src: SourceInfo, video: VideoInfo) -> int:
    """The frame step that turns the original's rate into the .nvw's; refuses an original whose
    picture shape or rate cannot be the one the .nvw learned (after --width or --frame-step)."""
    ratio = src.frame_rate / video.frame_rate
    step = max(1, round(ratio))
    if abs(ratio - step) > Fraction(1, 100) * step:
        raise VideoError(
            f"{original}: {float(src.frame_rate):.3f} fps is not a whole multiple of the .nvw's "
            f"{float(video.frame_rate):.3f} fps: not the video it learned"
        )
    _, height = media.training_size(src.width, src.height, video.width, None)
    if abs(height - video.height) > max(2, video.height // 50):
        raise VideoError(
            f"{original}: its {src.width}x{src.height} picture cannot be the .nvw's "
            f"{video.width}x{video.height}: not the video it learned"
        )
    return step


def libvmaf_score(distorted: Path, reference: Path, video: VideoInfo) -> float:
    """VMAF of raw rgb24 frames in ``distorted`` against those in ``reference``, through ffmpeg's
    libvmaf (its built-in model)."""
    raw = [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{video.width}x{video.height}",
        "-framerate",
        str(video.frame_rate),
    ]
    args = [
        media.ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *raw,
        "-i",
        str(distorted),
        *raw,
        "-i",
        str(reference),
        "-lavfi",
        "[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];[d][r]libvmaf",
        "-f",
        "null",
        "-",
    ]
    log = media.run_ffmpeg(args).stderr.decode(errors="replace")
    match = re.search(r"VMAF score: ([\d.]+)", log)
    if match is None:
        raise OutputError("ffmpeg's libvmaf gave no score: " + log.strip().splitlines()[-1])
    return float(match.group(1))
