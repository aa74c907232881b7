"""The Python API (nvfilter/api.py): open a .nvw and read it anywhere, encode and decode with the
command line's options."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLE

import nvfilter
from nvfilter.api import decode, encode
from nvfilter.coords import frame_time
from nvfilter.errors import NvwError, OptionError
from nvfilter.io import media


@pytest.fixture(scope="module")
def opened(tmp_path_factory) -> nvfilter.Video:
    out = tmp_path_factory.mktemp("api") / "example.nvw"
    result = encode(EXAMPLE, out, width=160, audio=False, quality=70)
    assert result.psnr > 30
    return nvfilter.open(out)


def test_open_gives_the_video_and_its_frames(opened):
    assert (opened.width, opened.height, opened.frames) == (160, 120, 36)
    frame = opened.frame(5)
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    source = media.read_frames(EXAMPLE, media.probe(EXAMPLE), 160, 120)[5].numpy()
    assert np.abs(frame.astype(int) - source).mean() < 3
    assert opened.frame(5, width=320).shape == (240, 320, 3)
    with pytest.raises(IndexError):
        opened.frame(36)


def test_frames_at_any_time_are_the_frames_at_theirs_and_between(opened):
    rate = float(opened.frame_rate)
    at = opened.frames_at([5 / rate, 5.5 / rate, 6 / rate])
    assert np.array_equal(at[0], opened.frame(5)) and np.array_equal(at[2], opened.frame(6))
    assert not np.array_equal(at[1], at[0]) and not np.array_equal(at[1], at[2])
    assert np.array_equal(opened.frames_at([100.0])[0], opened.frame(35))  # held at the end


def test_points_read_what_the_frames_show(opened):
    t = frame_time(7, opened.frames)
    rgb = opened.points([[(2 * 40 + 1) / 160 - 1, (2 * 30 + 1) / 120 - 1, t]])
    assert rgb.shape == (1, 3)
    assert np.allclose(rgb[0] * 255, opened.frame(7)[30, 40], atol=1.0)


def test_decode_takes_the_command_line_options(opened, tmp_path):
    source = tmp_path / "small.nvw"
    encode(EXAMPLE, source, width=80, audio=False, max_frames=6)
    decode(source, f"{tmp_path}/frames/", preset="slowmo-2x")
    assert len(list((tmp_path / "frames").iterdir())) == 12
    with pytest.raises(OptionError):
        decode(source, tmp_path / "bad.mp4", temporal_scale=-1)
    with pytest.raises(NvwError):
        nvfilter.open(tmp_path / "frames" / "frame_000000.png")
