"""The shell helpers in bin/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_video

BIN = Path(__file__).resolve().parents[1] / "bin"
ENV = {
    **os.environ,
    "NVFILTER": f"{sys.executable} -m nvfilter",
    "NVFILTER_ENCODE_ARGS": "--epochs 2 --hidden-features 16 --channels 4 -q",
}


@pytest.mark.parametrize(
    "script,factor,frames,size",
    [
        ("nv-slowmo", None, 24, (32, 24)),
        ("nv-slowmo", "2", 12, (32, 24)),
        ("nv-upscale", None, 6, (64, 48)),
        ("nv-upscale", "3", 6, (96, 72)),
    ],
)
def test_helpers_give_the_frames_and_size(clips, tmp_path, script, factor, frames, size):
    out = tmp_path / "out.mp4"
    args = [str(BIN / script), str(clips["smooth"]), str(out)] + ([factor] if factor else [])
    subprocess.run(args, env=ENV, check=True, cwd=tmp_path)
    video = read_video(out)
    assert video.shape[0] == frames and video.shape[1:3] == (size[1], size[0])


def test_helper_usage_error(tmp_path):
    result = subprocess.run([str(BIN / "nv-slowmo")], capture_output=True, text=True, env=ENV)
    assert result.returncode == 2 and result.stderr.strip() == "usage: nv-slowmo IN OUT [N]"


def test_upscale_helper_decodes_by_back_projection(tmp_path):
    env = {**ENV, "NVFILTER": "echo", "NVFILTER_ENCODE_ARGS": "--epochs 2"}
    done = subprocess.run(
        [str(BIN / "nv-upscale"), "in.mp4", "out.mp4", "3"], env=env, capture_output=True, text=True
    )
    encode_line, decode_line = done.stdout.splitlines()
    assert encode_line.startswith("encode in.mp4") and encode_line.endswith("--epochs 2")
    assert decode_line.endswith("--spatial-scale 3 --upscaler backproject")
