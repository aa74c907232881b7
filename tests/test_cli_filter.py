"""The filter command: learn and play in one go, its flags checked before learning."""

from __future__ import annotations

import subprocess
import time

import pytest
from conftest import (
    EXAMPLE,
    SMALL_NET,
    assert_one_line_error,
    nvfilter_cmd,
    read_video,
    run,
)

from nvfilter.io import media, nvw


def test_filter_in_one_go_through_pipes(clips, tmp_path):
    result = subprocess.run(
        nvfilter_cmd(
            "filter",
            "-",
            "-",
            "--format",
            "nut",
            "--preset",
            "slowmo-2x",
            "--epochs",
            "2",
            "--width",
            "48",
        ),
        input=clips["smooth"].read_bytes(),
        capture_output=True,
        check=True,
    )
    out = tmp_path / "filtered.nut"
    out.write_bytes(result.stdout)
    assert read_video(out).shape == (12, 36, 48, 3)
    assert b"encoded" in result.stderr and b"decoded" in result.stderr


def test_filter_keeps_the_nvw_on_request_and_checks_flags_before_learning(clips, tmp_path):
    kept = tmp_path / "kept.nvw"
    result = run(
        "filter",
        clips["smooth"],
        tmp_path / "up.mp4",
        "--preset",
        "upscale-2x",
        "--epochs",
        "2",
        "--learn-width",
        "16",
        "--keep-nvw",
        kept,
    )
    assert result.exit_code == 0, result.stderr
    assert nvw.load(kept).video.width == 16
    assert media.probe(str(tmp_path / "up.mp4")).width == 32
    started = time.monotonic()
    bad = run("filter", clips["smooth"], tmp_path / "x.mp4", "--preset", "nope", "--epochs", "50")
    assert_one_line_error(bad, "unknown preset")
    assert time.monotonic() - started < 5
    assert_one_line_error(run("filter", clips["smooth"], "-", "--epochs", "50"), "--format")


def test_filter_learns_with_footprint_reads_when_the_network_upscales(clips, tmp_path):
    hybrid = ["--model", "hybrid", "--epochs", "3"]
    up = run("filter", clips["smooth"], tmp_path / "up.mp4", "--spatial-scale", "2",
             "--upscaler", "network", *hybrid)  # fmt: skip
    assert up.exit_code == 0, up.stderr
    assert "footprint reads" in up.stderr
    off = run(
        "filter", clips["smooth"], tmp_path / "off.mp4", "--spatial-scale", "2",
        "--no-footprint", *hybrid,
    )  # fmt: skip
    # the upscale presets and the default make new pixels from the learned size: point reads
    # fit it best
    preset = run("filter", clips["smooth"], tmp_path / "pre.mp4", "--preset", "upscale-2x", *hybrid)
    auto = run("filter", clips["smooth"], tmp_path / "auto.mp4", "--spatial-scale", "2", *hybrid)
    same = run("filter", clips["smooth"], tmp_path / "same.mp4", *hybrid)
    # the default model (the codec) reads points: no footprint reads, no note
    coded = run(
        "filter", EXAMPLE, tmp_path / "t.mp4", "--learn-width", "160", "--spatial-scale", "2"
    )
    for result in (off, preset, auto, same, coded):
        assert result.exit_code == 0, result.stderr
        assert "footprint" not in result.stderr
    assert "by back-projection" in preset.stderr
    assert "-> codec in 1 part" in coded.stderr, coded.stderr


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--fps", "abc"], "not a rate"),
        (["--width", "100000"], "too large"),
        (["--spatial-scale", "5000"], "too large"),
        (["--preset", "BAD_PRESET"], "between 'warp'"),
    ],
)
def test_filter_checks_decode_flags_before_learning(clips, tmp_path, flags, needle):
    bad = tmp_path / "warp.toml"
    bad.write_text('between = "warp"\n')
    flags = [str(bad) if f == "BAD_PRESET" else f for f in flags]
    out = tmp_path / "o.mp4"
    started = time.monotonic()
    result = run("filter", clips["smooth"], out, "--time-budget", "600", *SMALL_NET, *flags)
    assert time.monotonic() - started < 60  # refused, not learned for the budget first
    assert_one_line_error(result, needle)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["warp.toml"]
