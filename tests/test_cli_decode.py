"""The decode command: presets, frames and pixels between, sizes, and its flags and mistakes."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    click_error,
    psnr,
    read_pngs,
    read_video,
    run,
)

from nvfilter.io import media, nvw


@pytest.mark.parametrize(
    "preset,frames,size,fps",
    [
        ("reconstruct", 6, (32, 24), Fraction(12)),
        ("slowmo-2x", 12, (32, 24), Fraction(12)),
        ("slowmo-4x", 24, (32, 24), Fraction(12)),
        ("slowmo-8x", 48, (32, 24), Fraction(12)),
        ("fps-2x", 12, (32, 24), Fraction(24)),
        ("upscale-2x", 6, (64, 48), Fraction(12)),
        ("upscale-4x", 6, (128, 96), Fraction(12)),
    ],
)
def test_presets_give_documented_frame_counts_sizes_and_rates(
    smooth_nvw, tmp_path, preset, frames, size, fps
):
    out = tmp_path / f"{preset}.mp4"
    result = run("decode", smooth_nvw, out, "--preset", preset)
    assert result.exit_code == 0, result.stderr
    info = media.probe(str(out))
    assert (info.width, info.height) == size
    assert info.frame_rate == fps
    assert read_video(out).shape[0] == frames


def test_slowmo_frame_4k_is_source_frame_k(smooth_nvw, tmp_path):
    assert run("decode", smooth_nvw, f"{tmp_path}/rec/").exit_code == 0
    assert run("decode", smooth_nvw, f"{tmp_path}/slow/", "--temporal-scale", "4").exit_code == 0
    rec, slow = read_pngs(tmp_path / "rec"), read_pngs(tmp_path / "slow")
    assert len(slow) == 4 * len(rec)
    assert np.array_equal(slow[::4], rec)
    assert sorted(p.name for p in (tmp_path / "rec").iterdir())[0] == "frame_000000.png"


def test_between_motion_keeps_source_frames_and_makes_others_another_way(smooth_nvw, tmp_path):
    for rule in ("network", "motion", "default"):
        flags = [] if rule == "default" else ["--between", rule]
        result = run("decode", smooth_nvw, f"{tmp_path}/{rule}/", "--temporal-scale", "2", *flags)
        assert result.exit_code == 0, result.stderr
        assert ("moved along the motion" in result.stderr) == (rule != "network")
        assert ("read from the network" in result.stderr) == (rule == "network")
    network, moved = read_pngs(tmp_path / "network"), read_pngs(tmp_path / "motion")
    assert network.shape == moved.shape
    assert np.array_equal(network[::2], moved[::2])
    assert not np.array_equal(network[1::2], moved[1::2])
    assert np.array_equal(read_pngs(tmp_path / "default"), moved)  # auto: motion


@pytest.mark.parametrize(
    "option,bad,preset_text,known",
    [
        ("between", "warp", 'temporal_scale = 2\nbetween = "warp"\n', "auto, network, motion"),
        (
            "upscaler",
            "lanczos",
            'spatial_scale = 2\nupscaler = "lanczos"\n',
            "auto, network, backproject",
        ),
    ],
)
def test_a_bad_decode_rule_is_one_clear_error(
    smooth_nvw, tmp_path, option, bad, preset_text, known
):
    click_error(run("decode", smooth_nvw, tmp_path / "o.mp4", f"--{option}", bad), bad)
    preset = tmp_path / "mine.toml"
    preset.write_text(preset_text)
    result = run("decode", smooth_nvw, tmp_path / "o.mp4", "--preset", preset)
    assert_one_line_error(result, f"{option} {bad!r}", known)
    assert not (tmp_path / "o.mp4").exists()


def test_backproject_upscaling_averages_back_to_the_learned_frames(smooth_nvw, tmp_path):
    assert run("decode", smooth_nvw, f"{tmp_path}/rec/").exit_code == 0
    big = ["--spatial-scale", "2", "--upscaler", "backproject"]
    result = run("decode", smooth_nvw, f"{tmp_path}/big/", *big)
    assert result.exit_code == 0, result.stderr
    assert "upscaled from the learned 32x24 by back-projection" in result.stderr
    rec, big = read_pngs(tmp_path / "rec"), read_pngs(tmp_path / "big").astype(np.float64)
    assert big.shape == (rec.shape[0], 48, 64, 3)
    pooled = (big[:, 0::2, 0::2] + big[:, 1::2, 0::2] + big[:, 0::2, 1::2] + big[:, 1::2, 1::2]) / 4
    assert np.abs(pooled - rec).max() <= 1.5  # the 8-bit rounding of the four, and clipping
    # the default (auto) back-projects; the network's own read is another picture
    assert run("decode", smooth_nvw, f"{tmp_path}/auto/", "--spatial-scale", "2").exit_code == 0
    assert np.array_equal(read_pngs(tmp_path / "auto"), big)
    read = run("decode", smooth_nvw, f"{tmp_path}/read/", "--spatial-scale", "2",
               "--upscaler", "network")  # fmt: skip
    assert "new pixels read from the network" in read.stderr
    assert not np.array_equal(read_pngs(tmp_path / "read"), big)


def test_multiframe_upscaling_through_the_command_line(smooth_nvw, tmp_path):
    big = ["--spatial-scale", "2", "--upscaler", "multiframe"]
    result = run("decode", smooth_nvw, f"{tmp_path}/big/", *big)
    assert result.exit_code == 0, result.stderr
    assert "by back-projection against neighbouring frames" in result.stderr
    single = run("decode", smooth_nvw, f"{tmp_path}/one/", "--spatial-scale", "2",
                 "--upscaler", "backproject")  # fmt: skip
    assert single.exit_code == 0, single.stderr
    made, alone = read_pngs(tmp_path / "big"), read_pngs(tmp_path / "one")
    assert made.shape == alone.shape and made.shape[1:] == (48, 64, 3)
    assert psnr(made.astype(np.float64), alone) > 30  # the same frames, corrected a little


@pytest.mark.parametrize("upscaler", ["network", "backproject"])
def test_upscale_is_aligned_to_the_source_pixel_grid(smooth_nvw, tmp_path, upscaler):
    assert run("decode", smooth_nvw, f"{tmp_path}/rec/").exit_code == 0
    big = [f"{tmp_path}/big/", "--spatial-scale", "2", "--upscaler", upscaler]
    assert run("decode", smooth_nvw, *big).exit_code == 0
    rec, big = read_pngs(tmp_path / "rec"), read_pngs(tmp_path / "big").astype(np.float64)
    pooled = (big[:, 0::2, 0::2] + big[:, 1::2, 0::2] + big[:, 0::2, 1::2] + big[:, 1::2, 1::2]) / 4
    shifted = (
        big[:, 1:-1:2, 1:-1:2] + big[:, 2::2, 1:-1:2] + big[:, 1:-1:2, 2::2] + big[:, 2::2, 2::2]
    ) / 4
    aligned = psnr(pooled, rec)
    assert aligned > 30
    # a grid off by one fine pixel matches clearly worse: the test can tell misalignment
    assert aligned > psnr(shifted, rec[:, :-1, :-1]) + 3


def test_odd_output_size_is_padded_for_yuv420p(smooth_nvw, tmp_path):
    out = tmp_path / "odd.mp4"
    result = run("decode", smooth_nvw, out, "--width", "33", "--height", "25")
    assert result.exit_code == 0, result.stderr
    assert "padded to 34x26" in result.stderr
    info = media.probe(str(out))
    assert (info.width, info.height) == (34, 26)
    lossless = tmp_path / "odd.mkv"
    assert run("decode", smooth_nvw, lossless, "--width", "33", "--codec", "ffv1").exit_code == 0
    assert media.probe(str(lossless)).width == 33


def test_presets_command_lists_one_line_each():
    result = run("presets")
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("slowmo-4x ") for line in lines)
    assert len(lines) >= 7


@pytest.fixture
def broken_nvws(smooth_nvw, tmp_path):
    import struct

    from safetensors.torch import save

    data = smooth_nvw.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"]["format_version"] = "99"
    blob = json.dumps(header).encode()
    loaded = nvw.load(smooth_nvw)
    state = {k: v for k, v in loaded.model.state_dict().items() if k != "head.0.weight"}
    files = {
        "truncated": data[: len(data) // 2],
        "not-safetensors": b"\x00garbage" * 100,
        "future": struct.pack("<Q", len(blob)) + blob + data[8 + length :],
        "missing": save(state, metadata=loaded.metadata),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.nvw"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize(
    "case,needle",
    [
        ("truncated", "truncated or not safetensors"),
        ("not-safetensors", "truncated or not safetensors"),
        ("future", "newer than this nvfilter reads"),
        ("missing", "missing tensors: head.0.weight"),
    ],
)
def test_bad_nvw(broken_nvws, tmp_path, case, needle):
    out = tmp_path / "out" / "o.mp4"
    out.parent.mkdir()
    result = run("decode", broken_nvws[case], out)
    assert_one_line_error(result, needle)
    assert list(out.parent.iterdir()) == []
    assert_one_line_error(run("info", broken_nvws[case]), needle)
    piped = run("decode", "-", out, input=broken_nvws[case].read_bytes())
    assert_one_line_error(piped, "-: ", needle)
    assert "nvfilter-stdin" not in piped.stderr


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--width", "100000"], "too large"),
        (["--preset", "warp-9x"], "unknown preset"),
        (["--fps", "0"], "fps must be positive"),
        (["--fps", "fast"], "not a rate"),
        (["-f", "nut", "--codec", "no-such-codec"], "ffmpeg could not write"),
    ],
)
def test_bad_decode_flags(smooth_nvw, tmp_path, flags, needle):
    out = tmp_path / "o.mkv"
    result = run("decode", smooth_nvw, out, *flags)
    assert_one_line_error(result, needle)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "flags", [["--width", "0"], ["--spatial-scale", "-2"], ["--temporal-scale", "0"]]
)
def test_non_positive_sizes_and_rates_are_refused(smooth_nvw, tmp_path, flags):
    click_error(run("decode", smooth_nvw, tmp_path / "o.mp4", *flags))
    assert list(tmp_path.iterdir()) == []


def test_stdout_needs_a_format(smooth_nvw, tmp_path):
    assert_one_line_error(run("decode", smooth_nvw, "-"), "--format")
    assert_one_line_error(run("decode", smooth_nvw, tmp_path / "noext"), "--format")
    assert list(tmp_path.iterdir()) == []


def test_decode_settings_are_checked_in_one_place():
    from nvfilter.config import DecodeOptions
    from nvfilter.errors import OptionError

    options = DecodeOptions.from_settings({"temporal_scale": 4, "between": "motion", "crf": 20})
    assert options.temporal_scale == 4 and options.crf_for("libx264") == 20
    assert DecodeOptions().crf_for("ffv1") is None and DecodeOptions().crf_for("libx264") == 18
    for bad in ({"width": "12"}, {"crf": 99}, {"audio": "loud"}, {"temporal_scale": 0}):
        with pytest.raises(OptionError):
            DecodeOptions.from_settings(bad)


def test_fps_alone_notes_that_it_changes_the_duration_and_how_to_keep_it(smooth_nvw, tmp_path):
    """The test clip: 6 frames at 12 fps. --fps sets the playback rate of the same frames."""
    fast = run("decode", smooth_nvw, tmp_path / "fast.mp4", "--fps", "24")
    assert fast.exit_code == 0, fast.stderr
    assert "note: --fps 24 plays the 6 frames faster (0.25 s instead of 0.50 s); add " \
        "--num-frames 12 to keep the duration" in fast.stderr  # fmt: skip
    kept = run("decode", smooth_nvw, tmp_path / "kept.mp4", "--fps", "24", "--num-frames", "12")
    assert kept.exit_code == 0 and "note:" not in kept.stderr, kept.stderr
    assert read_video(tmp_path / "kept.mp4").shape[0] == 12
    preset = run("decode", smooth_nvw, tmp_path / "p.mp4", "--preset", "fps-2x")
    assert preset.exit_code == 0 and "note:" not in preset.stderr
