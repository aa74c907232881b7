"""Bad input to any command: one line, a non-zero exit, nothing left behind."""

from __future__ import annotations

import time

import pytest
from conftest import (
    EXAMPLE,
    SMALL_NET,
    assert_one_line_error,
    click_error,
    make_clip,
    run,
)


def test_usage_mistakes_are_one_line_with_exit_status_2(smooth_nvw, tmp_path):
    click_error(run("encode"), "Missing argument")
    click_error(run("encode", "a.mp4", "b.nvw", "--bogus"), "--bogus")
    click_error(run("bogus"), "bogus")


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, clips):
    d = tmp_path_factory.mktemp("bad")
    text = d / "notes.mp4"
    text.write_text("not a video\n" * 50)
    audio = make_clip(d / "tone.m4a", "-f", "lavfi", "-i", "sine=duration=0.3")
    empty = make_clip(
        d / "empty.mkv",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x24:rate=5",
        "-frames:v",
        "0",
        "-c:v",
        "libx264",
    )
    return {"text": text, "audio": audio, "empty": empty}


@pytest.mark.parametrize(
    "case,needle",
    [
        ("missing", "no such file"),
        ("text", "not a video ffmpeg can read"),
        ("audio", "no video stream"),
        ("empty", "no frames"),
    ],
)
def test_bad_video_input(bad_inputs, tmp_path, case, needle):
    source = tmp_path / "nothing.mp4" if case == "missing" else bad_inputs[case]
    out = tmp_path / "out.nvw"
    result = run("encode", source, out, "--epochs", "1", *SMALL_NET)
    assert_one_line_error(result, needle)
    assert list(tmp_path.iterdir()) == []


def test_bad_stdin_is_named_as_stdin(bad_inputs, tmp_path):
    result = run("encode", "-", tmp_path / "o.nvw", input=bad_inputs["text"].read_bytes())
    assert_one_line_error(result, "-: not a video ffmpeg can read")
    assert "nvfilter-stdin" not in result.stderr
    assert_one_line_error(
        run("encode", "-", tmp_path / "o.nvw", input=b""), "-: standard input is empty"
    )
    assert list(tmp_path.iterdir()) == []


def test_unavailable_device_is_a_clear_error(clips, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run("encode", clips["smooth"], tmp_path / "o.nvw", "--device", "cuda")
    assert_one_line_error(result, "--device cuda: no CUDA GPU")
    assert list(tmp_path.iterdir()) == []


def test_too_big_for_memory_names_the_flags(clips, tmp_path):
    result = run("encode", clips["smooth"], tmp_path / "o.nvw", "--max-memory", "1K")
    assert_one_line_error(result, "--width", "--max-frames", "--frame-step")
    assert list(tmp_path.iterdir()) == []


def test_a_tiles_part_is_checked_with_the_memory_its_fit_holds(tmp_path):
    """The example at 320x240: a part's frames in hand (50 of them) are 11.5 MB, its fit 12
    bytes a pixel of its frames more (45.2 MB for the longest part, 49 frames): 56.7 MB."""
    tiles = ["--model", "tiles"]
    result = run("encode", EXAMPLE, tmp_path / "o.nvw", "--max-memory", "40M", *tiles)
    assert_one_line_error(result, "need about 56.7 MB of memory with their fit", "--width")
    assert list(tmp_path.iterdir()) == []
    assert run("encode", EXAMPLE, tmp_path / "o.nvw", "--max-memory", "60M", *tiles).exit_code == 0
    # two local workers fit two parts at once
    two = run("encode", EXAMPLE, tmp_path / "j.nvw", "--max-memory", "60M", "--jobs", "2", *tiles)
    assert_one_line_error(two, "need about 101.8 MB of memory with their fit")


@pytest.mark.parametrize("command", ["encode", "decode"])
@pytest.mark.parametrize("case", ["missing folder", "a folder"])
def test_unwritable_output_is_refused_before_work(clips, smooth_nvw, tmp_path, command, case):
    source = clips["smooth"] if command == "encode" else smooth_nvw
    name = "o.nvw" if command == "encode" else "o.mkv"
    out = tmp_path / "nowhere" / name if case == "missing folder" else tmp_path
    started = time.monotonic()
    result = run(command, source, out, "--time-budget", "600", *SMALL_NET) if command == "encode" \
        else run(command, source, out, "--fps", "25")  # fmt: skip
    assert time.monotonic() - started < 30
    needle = "does not exist" if case == "missing folder" else "is a folder"
    if command == "decode" and case == "a folder":  # a folder is decode's PNG output
        assert result.exit_code == 0, result.stderr
        return
    assert_one_line_error(result, str(out), needle)
    assert list(tmp_path.iterdir()) == []


def test_a_tiles_encode_the_disk_cannot_hold_is_refused_before_work(tmp_path, monkeypatch):
    """The example at its own size: 320x240x36 numbers in float16 is 5.5 MB, and its part as
    much again until it is joined: 11.1 MB on the output's disk."""
    import shutil

    real = shutil.disk_usage

    def free(room):
        monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=room))

    free(10_000_000)
    tiles = ["--model", "tiles"]
    result = run("encode", EXAMPLE, tmp_path / "o.nvw", *tiles)
    assert_one_line_error(result, "o.nvw", "need about 11.1 MB of disk", "10.0 MB is free",
                          "--target-psnr")  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    free(12_000_000)
    assert run("encode", EXAMPLE, tmp_path / "o.nvw", *tiles).exit_code == 0
    # a PSNR target stores what it needs, unknown before the fit: not refused
    free(1_000)
    assert run("encode", EXAMPLE, tmp_path / "t.nvw", "--target-psnr", "30", *tiles).exit_code == 0
