"""The default encode, the codec, as a user meets it: sizes against the source, the quality and
rate flags, and slow motion from the motion the file keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, psnr, read_pngs, read_video, run

from nvfilter.io import nvw


@pytest.fixture(scope="module")
def coded(tmp_path_factory) -> tuple[Path, str]:
    """The shipped example encoded with no flags, and what the encoder said."""
    out = tmp_path_factory.mktemp("coded") / "example.nvw"
    result = run("encode", EXAMPLE, out)
    assert result.exit_code == 0, result.stderr
    return out, result.stderr


def test_no_flags_codes_within_the_source_size_and_decodes_as_scored(coded, tmp_path):
    out, said = coded
    assert out.stat().st_size <= Path(EXAMPLE).stat().st_size
    assert "x the source file's size" in said and "bits/pixel" in said
    loaded = nvw.load(out)
    assert loaded.model.spans[0].architecture["type"] == "codec"
    assert loaded.metadata["format_version"] == "7"
    result = run("decode", out, f"{tmp_path}/frames/")
    assert result.exit_code == 0, result.stderr
    decoded = read_pngs(tmp_path / "frames")
    assert psnr(decoded, read_video(EXAMPLE)) == pytest.approx(loaded.training.psnr, abs=0.05)
    assert loaded.training.psnr > 30


def test_info_says_what_the_stream_holds(coded):
    out, _ = coded
    human = run("info", out)
    assert human.exit_code == 0, human.stderr
    assert "bytes of coded stream" in human.stdout and "fit         in closed form" in human.stdout
    assert "epochs" not in human.stdout  # a coded stream has no optimiser settings
    meta = json.loads(run("info", out, "--json").stdout)
    assert meta["architecture"]["type"] == "parts"


def test_quality_and_rates_set_the_size(tmp_path):
    sizes = {}
    for name, flags in {
        "high": ["--quality", "90"],
        "low": ["--quality", "30"],
        "rate": ["--bitrate", "150k"],
        "bpp": ["--bits-per-pixel", "0.05"],
    }.items():
        out = tmp_path / f"{name}.nvw"
        result = run("encode", EXAMPLE, out, "--no-audio", *flags)
        assert result.exit_code == 0, result.stderr
        loaded = nvw.load(out)
        stream = sum(span.architecture["stream_bytes"] for span in loaded.model.spans)
        sizes[name] = (stream, loaded.training.psnr)
    assert sizes["high"][1] > sizes["low"][1] + 6 and sizes["high"][0] > sizes["low"][0]
    seconds = 36 / 30.02
    assert sizes["rate"][0] * 8 <= 150_000 * seconds
    assert sizes["bpp"][0] * 8 <= 0.05 * 320 * 240 * 36


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--quality", "50", "--bitrate", "1M"], "--quality and --bitrate both say"),
        (["--quality", "50", "--target-psnr", "40"], "--quality and --target-psnr"),
        (["--model", "tiles", "--bits-per-pixel", "0.1"], "--bits-per-pixel is for --model codec"),
        (["--bitrate", "fast"], "--bitrate 'fast' is not a number"),
        (["--model", "codec", "--channels", "8"], "--channels is not for --model codec"),
    ],
)
def test_rate_flags_that_make_no_sense_are_one_line(tmp_path, flags, needle):
    result = run("encode", EXAMPLE, tmp_path / "o.nvw", *flags)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and needle in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_slow_motion_moves_along_the_motion_the_file_keeps(coded, tmp_path):
    out, _ = coded
    said = {}
    for rule in ("motion", "network", "search"):
        result = run("decode", out, f"{tmp_path}/{rule}/", "--temporal-scale", "2",
                     "--between", rule)  # fmt: skip
        assert result.exit_code == 0, result.stderr
        said[rule] = result.stderr
    read = {rule: read_pngs(tmp_path / rule) for rule in ("motion", "network", "search")}
    # the network's own read between frames is the stored motion's: the same frames
    assert np.array_equal(read["motion"], read["network"])
    faded = (read["motion"][0:-2:2].astype(np.float64) + read["motion"][2::2]) / 2
    assert not np.allclose(read["motion"][1:-1:2], faded, atol=1)  # moved, not a cross-fade
    # search: the same source frames, new ones moved along flows searched on them
    assert np.array_equal(read["search"][::2], read["motion"][::2])
    assert not np.array_equal(read["search"][1::2], read["motion"][1::2])
    assert "along flows searched on them" in said["search"]
    assert "moved along the motion" in said["motion"]


def test_settings_a_coded_stream_has_no_use_for_are_named(tmp_path):
    out = tmp_path / "o.nvw"
    result = run("encode", EXAMPLE, out, "--max-frames", "3", "--time-budget", "5", "--dtype",
                 "float16", "--epochs", "2")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    note = result.stderr.splitlines()[0]
    assert note.startswith("note: --epochs, --time-budget, --dtype: unused"), note
    assert nvw.load(out).model.kind == "parts"
