"""Shared fixtures and helpers: small clips made with the bundled ffmpeg, reading videos back, and
the command-line tests' network, scores and error checks."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nvfilter.io.media import ffmpeg_exe

CLIPS = Path(__file__).resolve().parent / "data"
"""Real clips copied into the repository (tests/data/SOURCES.md), beside the shipped example."""
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "realshort.mp4"


def corpus_clip(name: str) -> Path:
    """A real clip the tests use, by file name: tests/data or the shipped example."""
    return EXAMPLE if name == EXAMPLE.name else CLIPS / name


def run(*args: object, input: bytes | None = None):
    """Invoke the nvfilter command in-process; raises any exception other than SystemExit."""
    from click.testing import CliRunner

    from nvfilter.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def nvfilter_cmd(*args: object) -> list[str]:
    """The nvfilter command line for a separate process."""
    return [sys.executable, "-m", "nvfilter", *(str(a) for a in args)]


def make_clip(path: Path, *args: str) -> Path:
    """Run ffmpeg with args (inputs, filters, output options) writing path; returns path."""
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(path)], check=True
    )
    return path


def read_video(path: Path | str, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames of a video as uint8 (frames, height, width, 3), decoded by ffmpeg independently."""
    from nvfilter.io.media import probe

    info = probe(str(path))
    width, height = size or (info.width, info.height)
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-fps_mode",
            "passthrough",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny test clips, made once per session."""
    d = tmp_path_factory.mktemp("clips")
    # A smooth, slowly moving picture that a small SIREN learns in seconds.
    smooth = "geq=r='128+100*sin(X/9+T*3)':g='128+90*cos(Y/7-T*2)':b='128+80*sin((X+Y)/13+T)'"
    return {
        "smooth": make_clip(
            d / "smooth.mp4",
            "-f",
            "lavfi",
            "-i",
            "nullsrc=size=32x24:rate=12:duration=0.5",
            "-vf",
            smooth,
            "-c:v",
            "libx264",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv444p",
        ),
        "testsrc": make_clip(
            d / "testsrc.mp4",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=24:duration=0.5",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ),
    }


def assert_frame_and_point_reads_agree(model, size: tuple[int, int], position: float) -> None:
    """A network's frame read (every row at ``size``, at frame ``position``) and its point
    reads at the same pixel centres give the same colours."""
    import torch

    from nvfilter.coords import frame_time, rows_coords

    width, height = size
    t = frame_time(position, model.frames)
    with torch.inference_mode():
        model.forget_render_cache()
        frame = model.render_rows(t, width, height, 0, height)
        points = model(rows_coords(width, height, t, 0, height))
    assert torch.allclose(frame, points, atol=1e-5)


# ---- the command-line tests' shared pieces

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
    """PSNR in dB of 8-bit frames ``a`` against ``b``, all values pooled (inf where equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def read_pngs(folder: Path) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))]
    )


@pytest.fixture(scope="session")
def smooth_nvw(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("enc") / "smooth.nvw"
    result = run("encode", clips["smooth"], out, "--model", "hybrid", "--epochs", "300", *SMALL_NET)
    assert result.exit_code == 0, result.stderr
    return out


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


def square_scene(offset: float, width: int = 96, height: int = 64) -> np.ndarray:
    """A smooth textured square (24 pixels, its centre at x = 30 + ``offset``, y = 32) on a
    textured background, uint8 RGB (height, width, 3): motion tests' scene."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    background = 100 + 40 * np.sin(xs / 5.0) * np.cos(ys / 7.0)
    inside = (np.abs(xs - 30 - offset) < 12) & (np.abs(ys - 32) < 12)
    square = 180 + 50 * np.sin((xs - offset) / 3.0 + ys / 4.0)
    gray = np.where(inside, square, background)
    return np.stack([gray, gray * 0.8, 255 - gray], axis=-1).round().astype(np.uint8)
