"""End-to-end tests of the command line on clips made with ffmpeg and on the corpus."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, corpus_clip, make_clip, nvfilter_cmd, read_video, run
from PIL import Image

from nvfilter.config import EncodeOptions
from nvfilter.encode.encoder import train_config
from nvfilter.io import media, nvw
from nvfilter.models.siren import ORIGINAL_RECIPE as ORIGINAL_SIREN_RECIPE

SMALL_NET = [
    "--hidden-features",
    "48",
    "--hidden-layers",
    "2",
    "--batch-size",
    "2048",
    "--lr",
    "1e-3",
]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


def read_pngs(folder: Path) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))]
    )


@pytest.fixture(scope="module")
def smooth_nvw(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("enc") / "smooth.nvw"
    result = run("encode", clips["smooth"], out, "--model", "hybrid", "--epochs", "300", *SMALL_NET)
    assert result.exit_code == 0, result.stderr
    return out


def test_encode_reaches_psnr_floor_and_decode_matches(smooth_nvw, clips, tmp_path):
    loaded = nvw.load(smooth_nvw)
    assert loaded.training.psnr > 35
    assert (loaded.video.width, loaded.video.height, loaded.video.frames) == (32, 24, 6)
    assert loaded.video.frame_rate == 12
    result = run("decode", smooth_nvw, f"{tmp_path}/frames/")
    assert result.exit_code == 0, result.stderr
    decoded = read_pngs(tmp_path / "frames")
    assert decoded.shape == (6, 24, 32, 3)
    # the PSNR the encoder reported is the PSNR of what decode gives
    assert psnr(decoded, read_video(clips["smooth"])) == pytest.approx(
        loaded.training.psnr, abs=0.05
    )


def test_siren_model_end_to_end(clips, tmp_path):
    out = tmp_path / "siren.nvw"
    result = run("encode", clips["smooth"], out, "--model", "siren", "--epochs", "300", *SMALL_NET)
    assert result.exit_code == 0, result.stderr
    assert "SIREN 48 wide x 3 sine layers" in result.stderr
    assert "batches of 2048, lr 0.001 cosine" in result.stderr
    loaded = nvw.load(out)
    assert loaded.architecture["type"] == "siren" and loaded.training.psnr > 35
    assert run("decode", out, f"{tmp_path}/frames/", "--preset", "slowmo-2x").exit_code == 0
    assert len(list((tmp_path / "frames").iterdir())) == 12


def test_siren_steps_are_small_on_a_cpu_and_the_original_on_a_gpu():
    def steps(options: EncodeOptions, device: str) -> dict:
        config = train_config(options, device)
        return {name: getattr(config, name) for name in ORIGINAL_SIREN_RECIPE}

    original = {"batch_size": 65536, "lr": 1e-4, "lr_schedule": "constant"}  # the design's
    assert ORIGINAL_SIREN_RECIPE == original
    siren = EncodeOptions(model="siren")
    assert steps(siren, "cpu") == {"batch_size": 4096, "lr": 3e-4, "lr_schedule": "cosine"}
    assert steps(siren, "cuda") == original
    given = EncodeOptions(model="siren", batch_size=65536, lr=1e-4, lr_schedule="constant")
    assert steps(given, "cpu") == ORIGINAL_SIREN_RECIPE
    # the network and the length of the run are the original design's everywhere
    for device in ("cpu", "cuda"):
        assert train_config(siren, device).epochs == 1000
        assert [siren.setting(name, device) for name in ("hidden_features", "hidden_layers")] == [
            256,
            5,
        ]


def test_default_model_says_what_it_picked(clips, tmp_path):
    result = run("encode", clips["smooth"], tmp_path / "h.nvw")
    assert result.exit_code == 0, result.stderr
    assert "-> codec in 1 part" in result.stderr and "for 45 dB within" in result.stderr
    named = run("encode", clips["smooth"], tmp_path / "h.nvw", "--model", "hybrid", "--epochs", "1")
    assert "hybrid planes: 3 levels x 16 channels (picked for this video size)" in named.stderr


def test_auto_codes_and_names_the_flags_it_leaves_unused(clips, tmp_path):
    out = tmp_path / "t.nvw"
    clip = [EXAMPLE, "--width", "160"]
    result = run("encode", *clip, out, "--epochs", "2", "--hidden-features", "16")
    assert result.exit_code == 0, result.stderr
    assert (
        "note: --epochs, --hidden-features: unused, the codec model is fitted in closed form "
        "(give --model hybrid to train a network)" in result.stderr
    )
    assert nvw.load(out).model.spans[0].architecture["type"] == "codec"
    plain = run("encode", *clip, out)
    assert plain.exit_code == 0 and "note" not in plain.stderr, plain.stderr
    assert "-> codec in 1 part" in plain.stderr, plain.stderr
    tiles = run("encode", *clip, out, "--model", "tiles")
    assert "-> tiles in 1 part" in tiles.stderr, tiles.stderr
    small = run("encode", clips["testsrc"], out)  # a tiny clip is coded too
    assert small.exit_code == 0 and "-> codec in 1 part" in small.stderr, small.stderr
    explicit = run("encode", clips["testsrc"], out, "--model", "tiles", "--lr", "1e-3")
    assert explicit.exit_code == 0, explicit.stderr
    assert "note: --lr: unused, the tiles model is fitted in closed form\n" in explicit.stderr
    trained = run("encode", clips["testsrc"], out, "--model", "hybrid", "--epochs", "1")
    assert trained.exit_code == 0 and "note" not in trained.stderr, trained.stderr
    assert nvw.load(out).architecture["type"] == "hybrid"


def test_frame_step_dtype_and_pix_fmt_flags(clips, tmp_path):
    out = tmp_path / "half.nvw"
    result = run(
        "encode",
        clips["smooth"],
        out,
        "--epochs",
        "2",
        "--frame-step",
        "2",
        "--dtype",
        "float16",
        *SMALL_NET,
    )
    assert result.exit_code == 0, result.stderr
    loaded = nvw.load(out)
    assert loaded.video.frames == 3 and loaded.video.frame_rate == 6
    assert loaded.dtype == "float16"
    video = tmp_path / "v.mkv"
    assert run("decode", out, video, "--pix-fmt", "yuv444p", "--crf", "0").exit_code == 0
    assert media.probe(str(video)).pix_fmt == "yuv444p"


def test_summary_and_progress_go_to_stderr(clips, tmp_path):
    out = tmp_path / "x.nvw"
    result = run("encode", clips["smooth"], out, "--epochs", "2", *SMALL_NET)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "PSNR" in result.stderr and "bits/pixel" in result.stderr
    quiet = run("encode", clips["smooth"], out, "--epochs", "2", "-q", *SMALL_NET)
    assert quiet.stderr == "" and quiet.stdout == ""


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


def test_colour_tags_and_sample_aspect_ratio_are_kept(tmp_path):
    src = make_clip(
        tmp_path / "tagged.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=32x24:rate=25:duration=0.2",
        "-vf",
        "setsar=16/15,setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    )
    nvw_path = tmp_path / "t.nvw"
    assert run("encode", src, nvw_path, "--epochs", "1", *SMALL_NET).exit_code == 0
    meta = nvw.load(nvw_path).metadata
    assert meta["sample_aspect_ratio"] == "16/15" and meta["color_matrix"] == "bt709"
    out = tmp_path / "out.mp4"
    assert run("decode", nvw_path, out, "--preset", "upscale-2x").exit_code == 0
    info = media.probe(str(out))
    assert info.sample_aspect_ratio == Fraction(16, 15)
    assert info.color == media.ColorTags("tv", "bt709", "bt709", "bt709")


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


def test_usage_mistakes_are_one_line_with_exit_status_2(smooth_nvw, tmp_path):
    click_error(run("encode"), "Missing argument")
    click_error(run("encode", "a.mp4", "b.nvw", "--bogus"), "--bogus")
    click_error(run("bogus"), "bogus")


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


def test_a_tiles_encode_reports_the_psnr_of_what_it_stored(tmp_path):
    """Tiles are stored in float16 by default; the PSNR the encode reports is the stored
    file's, as eval measures it (the float32 fit's differed by 0.003 dB on this clip)."""
    source = Path(__file__).parent / "data" / "g1.avi"
    out = tmp_path / "g1.nvw"
    assert run("encode", source, out, "--model", "tiles", "--segment-frames", "6").exit_code == 0
    loaded = nvw.load(out)
    assert loaded.dtype == "float16"
    scores = json.loads(run("eval", source, out, "--json").stdout)
    assert scores["psnr_db"] == pytest.approx(loaded.training.psnr, abs=5e-4)


def test_eval_vmaf(smooth_nvw, clips):
    result = run("eval", clips["smooth"], smooth_nvw, "--json", "--vmaf")
    assert result.exit_code == 0, result.stderr
    assert 0 <= json.loads(result.stdout)["vmaf"] <= 100


def test_presets_command_lists_one_line_each():
    result = run("presets")
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("slowmo-4x ") for line in lines)
    assert len(lines) >= 7


@pytest.mark.parametrize(
    "name", ["realshort.mp4", "Principe_inertie.avi", "g1.avi", "oa4_launch.webm"]
)
def test_corpus_clips_encode_and_decode(name, tmp_path):
    out = tmp_path / "c.nvw"
    result = run(
        "encode",
        corpus_clip(name),
        out,
        "--width",
        "40",
        "--max-frames",
        "8",
        "--epochs",
        "2",
        *SMALL_NET,
    )
    assert result.exit_code == 0, result.stderr
    video = nvw.load(out).video
    assert video.width == 40 and video.frames == 8
    decoded = tmp_path / "c.mp4"
    assert run("decode", out, decoded, "--preset", "slowmo-2x").exit_code == 0
    assert read_video(decoded).shape[0] == 16


def test_stdin_stdout_pipeline(clips, tmp_path):
    encode = subprocess.run(
        nvfilter_cmd("encode", "-", "-", "--epochs", "2", *SMALL_NET),
        input=clips["smooth"].read_bytes(),
        capture_output=True,
        check=True,
    )
    assert encode.stdout[:8] != b"" and b"PSNR" in encode.stderr
    decode = subprocess.run(
        nvfilter_cmd("decode", "-", "-", "--format", "nut", "--preset", "slowmo-2x"),
        input=encode.stdout,
        capture_output=True,
        check=True,
    )
    out = tmp_path / "piped.nut"
    out.write_bytes(decode.stdout)
    assert read_video(out).shape == (12, 24, 32, 3)
    mp4 = subprocess.run(
        nvfilter_cmd("decode", "-", "-", "--format", "mp4"),
        input=encode.stdout,
        capture_output=True,
        check=True,
    )
    (tmp_path / "piped.mp4").write_bytes(mp4.stdout)
    assert read_video(tmp_path / "piped.mp4").shape[0] == 6


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


# ---------------------------------------------------------------------------------- bad input


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code not in (0, None)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nvfilter: error:"), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def click_error(result, *needles: str) -> None:
    """click's own usage errors: one 'nvfilter: error:' line naming the help, exit status 2."""
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nvfilter: error:"), result.stderr
    assert "--help" in lines[0]
    for needle in needles:
        assert needle in result.stderr


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


@pytest.fixture
def broken_nvws(smooth_nvw, tmp_path):
    import json
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


def test_ctrl_c_during_encode_leaves_a_complete_nvw_or_none(clips, tmp_path):
    out = tmp_path / "int.nvw"
    proc = subprocess.Popen(
        nvfilter_cmd(
            "encode",
            str(clips["smooth"]),
            str(out),
            "--model",
            "hybrid",
            "--epochs",
            "100000",
            *SMALL_NET,
        ),  # fmt: skip
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "step" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130
    assert "interrupted" in rest
    assert [p.name for p in tmp_path.iterdir()] == ["int.nvw"]
    loaded = nvw.load(out)
    assert loaded.training.stopped_by == "interrupt" and loaded.training.steps > 0


def training(source: Path, out: Path) -> subprocess.Popen:
    """A long encode in its own process, returned once its progress shows a training step."""
    proc = subprocess.Popen(
        nvfilter_cmd("encode", source, out, "--model", "hybrid", "--epochs", "100000", *SMALL_NET),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    while "step" not in proc.stderr.readline():
        pass
    return proc


def test_sigterm_during_encode_saves_what_was_learned(clips, tmp_path):
    out = tmp_path / "t.nvw"
    proc = training(clips["smooth"], out)
    os.kill(proc.pid, signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert [p.name for p in tmp_path.iterdir()] == ["t.nvw"]
    loaded = nvw.load(out)
    assert loaded.training.stopped_by == "interrupt" and loaded.training.steps > 0


def test_second_interrupt_while_saving_leaves_no_file(clips, tmp_path):
    out = tmp_path / "t.nvw"
    proc = training(clips["smooth"], out)
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGINT)  # at once: the save in progress is abandoned
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    names = [p.name for p in tmp_path.iterdir()]
    assert names in ([], ["t.nvw"]), names
    if names:  # the first signal's save finished before the second arrived: a whole file
        assert nvw.load(out).training.stopped_by == "interrupt"


def test_compile_flag_trains_siren_compiled(clips, tmp_path):
    result = run(
        "encode", clips["smooth"], tmp_path / "c.nvw", "--model", "siren", "--compile",
        "--hidden-features", "32", "--hidden-layers", "2", "--epochs", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "compiling the network" in result.stderr and "in float32, compiled" in result.stderr
    assert (tmp_path / "c.nvw").stat().st_size > 0


def test_footprint_flag_is_stored_and_refused_for_siren(clips, tmp_path):
    nvw_path = tmp_path / "f.nvw"
    result = run("encode", clips["smooth"], nvw_path, "--model", "hybrid", "--footprint",
                 "--epochs", "5")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "footprint reads" in result.stderr
    info = json.loads(run("info", nvw_path, "--json").stdout)
    assert info["architecture"]["footprint"] is True
    decoded = run("decode", nvw_path, tmp_path / "big.mp4", "--preset", "upscale-2x")
    assert decoded.exit_code == 0, decoded.stderr
    assert_one_line_error(
        run("encode", clips["smooth"], tmp_path / "s.nvw", "--model", "siren", "--footprint"),
        "--footprint is not for --model siren (footprint reads are the hybrid model's)",
    )
    assert not (tmp_path / "s.nvw").exists()


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


def test_decode_settings_are_checked_in_one_place():
    from nvfilter.config import DecodeOptions
    from nvfilter.errors import OptionError

    options = DecodeOptions.from_settings({"temporal_scale": 4, "between": "motion", "crf": 20})
    assert options.temporal_scale == 4 and options.crf_for("libx264") == 20
    assert DecodeOptions().crf_for("ffv1") is None and DecodeOptions().crf_for("libx264") == 18
    for bad in ({"width": "12"}, {"crf": 99}, {"audio": "loud"}, {"temporal_scale": 0}):
        with pytest.raises(OptionError):
            DecodeOptions.from_settings(bad)


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


def test_rgb_source_decodes_to_yuv_with_its_colours(clips, tmp_path):
    rgb = make_clip(
        tmp_path / "rgb.mkv", "-f", "lavfi", "-i", "testsrc2=size=32x24:rate=12:duration=0.25",
        "-c:v", "ffv1", "-pix_fmt", "gbrp",
    )  # fmt: skip
    out = tmp_path / "rgb.nvw"
    assert run("encode", rgb, out, *SMALL_NET).exit_code == 0
    assert nvw.load(out).video.color.matrix == "gbr"
    assert run("decode", out, f"{tmp_path}/png/").exit_code == 0  # the RGB it learned, exactly
    result = run("decode", out, tmp_path / "o.mp4", "--crf", "0", "--pix-fmt", "yuv444p")
    assert result.exit_code == 0, result.stderr
    exact = read_pngs(tmp_path / "png").astype(int)
    through_yuv = read_video(tmp_path / "o.mp4").astype(int)
    assert np.abs(exact - through_yuv).mean() < 2.0  # a wrong matrix is off by tens of levels


def plays_as_learned(out, learned_psnr, source, tmp_path):
    """The .nvw decodes to the PSNR its encode reported, and through the slow-motion (motion)
    and upscale (back-projection) presets at their frame counts and sizes (a 12-frame 64x48
    clip)."""
    result = run("decode", out, f"{tmp_path}/frames/")
    assert result.exit_code == 0, result.stderr
    decoded = read_pngs(tmp_path / "frames")
    assert psnr(decoded, read_video(source)) == pytest.approx(learned_psnr, abs=0.005)
    for preset, frames, size in (("slowmo-2x", 24, (48, 64)), ("upscale-2x", 12, (96, 128))):
        folder = tmp_path / preset
        result = run("decode", out, f"{folder}/", "--preset", preset)
        assert result.exit_code == 0, result.stderr
        assert read_pngs(folder).shape == (frames, *size, 3)


def test_tiles_model_end_to_end(clips, tmp_path):
    """--model tiles is fitted without steps, stores at most a number per pixel, reports the
    PSNR decode gives (far above the segments model's at the same size), plays through the
    slow-motion and upscale presets; a flag of the other models is refused in one line."""
    out = tmp_path / "t.nvw"
    result = run("encode", clips["testsrc"], out, "--model", "tiles", "--segment-frames", "6")
    assert result.exit_code == 0, result.stderr
    assert "closed form" in result.stderr and "fitted" in result.stderr
    loaded = nvw.load(out)
    assert loaded.metadata["format_version"] == "5" and loaded.training.steps == 0
    assert loaded.dtype == "float16"  # --dtype auto; the PSNR reported is the stored file's
    assert loaded.video.chroma == "420"  # a yuv420p clip: its colour at half size
    assert loaded.model.spans[0].architecture["chroma"] in ("420", "444")  # test_tiles: which
    assert loaded.model.spans[0].architecture["type"] == "tiles"
    assert loaded.parameters <= 64 * 48 * loaded.video.frames
    assert loaded.training.psnr > 35
    plays_as_learned(out, loaded.training.psnr, clips["testsrc"], tmp_path)
    refused = run("encode", clips["testsrc"], tmp_path / "h.nvw", "--model", "tiles",
                  "--channels", "4")  # fmt: skip
    assert refused.exit_code != 0 and "not for --model tiles" in refused.stderr
    assert not (tmp_path / "h.nvw").exists()


def test_segments_model_end_to_end(clips, tmp_path):
    """--model segments learns, reports the PSNR decode gives, and plays through the slow-motion
    (motion) and upscale (back-projection) presets; a head flag is refused in one line."""
    out = tmp_path / "s.nvw"
    flags = ["--model", "segments", "--segment-frames", "6", "--epochs", "4"]
    result = run("encode", clips["testsrc"], out, *flags)
    assert result.exit_code == 0, result.stderr
    assert "principal-component fit" in result.stderr
    loaded = nvw.load(out)
    assert loaded.architecture["type"] == "parts" and loaded.training.psnr > 20
    assert loaded.model.spans[0].architecture["type"] == "segments"
    assert loaded.parameters <= 64 * 48 * loaded.video.frames
    plays_as_learned(out, loaded.training.psnr, clips["testsrc"], tmp_path)
    refused = run("encode", clips["testsrc"], tmp_path / "h.nvw", *flags, "--hidden-layers", "2")
    assert refused.exit_code != 0 and "not for --model segments" in refused.stderr
    assert not (tmp_path / "h.nvw").exists()


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
