"""The encode command end to end: each model, its flags, what it says, real clips and pipes."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    EXAMPLE,
    SMALL_NET,
    assert_one_line_error,
    corpus_clip,
    make_clip,
    nvfilter_cmd,
    psnr,
    read_pngs,
    read_video,
    run,
)

from nvfilter.config import EncodeOptions
from nvfilter.encode.encoder import train_config
from nvfilter.io import media, nvw
from nvfilter.models.siren import ORIGINAL_RECIPE as ORIGINAL_SIREN_RECIPE


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
        "note: --epochs, --hidden-features: unused, the codec model is a coded stream, not trained "
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
    assert video.width == 40 and video.played_frames == 8  # a repeat left out plays as 8 too
    assert video.timeline is None or not video.timeline.variable
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
