"""The eval and info commands: scores that agree with ffmpeg, a file described."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import (
    SMALL_NET,
    assert_one_line_error,
    make_clip,
    run,
)

from nvfilter.io import media, nvw


def test_info_human_and_json(smooth_nvw):
    human = run("info", smooth_nvw)
    assert human.exit_code == 0 and "32x24, 6 frames at 12/1 fps" in human.stdout
    assert re.search(
        r"settings +[\d.]+ epochs of batches of \d+, lr [\de.-]+ cosine, on cpu in float32, seed 0$",
        human.stdout,
        re.MULTILINE,
    )
    data = run("info", smooth_nvw, "--json")
    parsed = json.loads(data.stdout)
    assert parsed["architecture"]["type"] == "hybrid" and parsed["frames"] == "6"
    assert parsed["train_settings"]["batch_size"] == 2048 and parsed["train_settings"]["seed"] == 0
    piped = run("info", "-", input=smooth_nvw.read_bytes())
    assert piped.exit_code == 0 and "32x24, 6 frames" in piped.stdout


def ffmpeg_psnr(original: Path, decoded_pattern: str) -> float:
    """ffmpeg's own psnr filter on the same frames, both as rgb24, paired by frame number."""
    log = subprocess.run(
        [
            media.ffmpeg_exe(),
            "-hide_banner",
            "-i",
            str(original),
            "-start_number",
            "0",
            "-i",
            decoded_pattern,
            "-lavfi",
            "[0:v]format=rgb24,settb=1,setpts=N[a];[1:v]format=rgb24,settb=1,setpts=N[b];[a][b]psnr",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return float(re.search(r"average:([\d.]+)", log).group(1))


def test_eval_agrees_with_ffmpeg_psnr(smooth_nvw, clips, tmp_path):
    result = run("eval", clips["smooth"], smooth_nvw, "--json", "--per-frame")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["frames"] == 6 and len(scores["per_frame"]) == 6
    assert run("decode", smooth_nvw, f"{tmp_path}/rec/").exit_code == 0
    reference = ffmpeg_psnr(clips["smooth"], f"{tmp_path}/rec/frame_%06d.png")
    assert scores["psnr_db"] == pytest.approx(reference, abs=0.01)
    assert scores["psnr_worst_db"] <= scores["psnr_db"] + 0.5
    assert 0.9 < scores["ssim"] <= 1 and scores["bits_per_pixel"] > 0
    human = run("eval", clips["smooth"], smooth_nvw)
    assert "PSNR" in human.stdout and "SSIM" in human.stdout and "bits/pixel" in human.stdout


def test_eval_vmaf(smooth_nvw, clips):
    result = run("eval", clips["smooth"], smooth_nvw, "--json", "--vmaf")
    assert result.exit_code == 0, result.stderr
    assert 0 <= json.loads(result.stdout)["vmaf"] <= 100


def test_eval_of_a_resized_or_stepped_nvw_scores_the_same_frames(clips, tmp_path):
    out = tmp_path / "s.nvw"
    made = run("encode", clips["testsrc"], out, "--width", "32", "--frame-step", "2", *SMALL_NET)
    assert made.exit_code == 0, made.stderr
    scores = json.loads(run("eval", clips["testsrc"], out, "--json").stdout)
    assert (scores["width"], scores["height"], scores["frames"]) == (32, 24, 6)
    assert scores["psnr_db"] == pytest.approx(nvw.load(out).training.psnr, abs=0.01)


def test_eval_refuses_an_original_that_is_not_the_learned_video(clips, smooth_nvw, tmp_path):
    # smooth.nvw learned 32x24 (4:3) at 12 fps, 6 frames: a 16:9 clip, or one of 3 frames, is not it
    wide = make_clip(
        tmp_path / "wide.mp4", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=12:duration=0.5",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
    )  # fmt: skip
    short = make_clip(
        tmp_path / "short.mp4", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=12:duration=0.25",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
    )  # fmt: skip
    assert_one_line_error(run("eval", wide, smooth_nvw), "not the video it learned")
    assert_one_line_error(run("eval", short, smooth_nvw), "3 frames", "not the video it learned")
