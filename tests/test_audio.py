"""Sound: stored in the .nvw, copied or stretched in sync by decode and filter, or left out."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_clip, run

from nvfilter.io import nvw, presets
from nvfilter.io.audio import container_of, tempo_chain
from nvfilter.io.media import ffmpeg_exe

RATE = 48000
TONE = 440.0
NET = ["--epochs", "2", "--channels", "4", "--levels", "2", "--hidden-features", "16"]


def samples(path: Path) -> np.ndarray | None:
    """The first audio stream as mono 48 kHz float samples, None when there is none."""
    done = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "1",
         "-ar", str(RATE), "-"],
        capture_output=True,
    )  # fmt: skip
    if done.returncode != 0:
        assert b"matches no streams" in done.stderr, done.stderr
        return None
    return np.frombuffer(done.stdout, np.float32)


def video_seconds(path: Path) -> float:
    log = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        text=True,
    ).stderr
    frames = int(log.rsplit("frame=", 1)[1].split()[0])
    fps = float(log.split(" fps,")[0].rsplit(" ", 1)[1])
    return frames / fps


def dominant_hz(sound: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(sound * np.hanning(sound.size)))
    return float(np.argmax(spectrum) * RATE / sound.size)


@pytest.fixture(scope="module")
def voiced(tmp_path_factory) -> tuple[Path, Path]:
    """A 1 s, 24 fps clip with a 440 Hz tone in AAC, and its .nvw."""
    folder = tmp_path_factory.mktemp("audio")
    clip = make_clip(
        folder / "tone.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=48x32:rate=24:duration=1",
        "-f", "lavfi", "-i", f"sine=frequency={TONE:g}:sample_rate={RATE}:duration=1",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
    )  # fmt: skip
    result = run("encode", clip, folder / "tone.nvw", *NET)
    assert result.exit_code == 0, result.stderr
    assert "aac audio" in result.stderr
    return clip, folder / "tone.nvw"


def test_the_nvw_carries_the_compressed_stream(voiced):
    loaded = nvw.load(voiced[1])
    assert loaded.audio_codec == "aac"
    assert loaded.audio is not None and loaded.audio[4:8] == b"ftyp"  # an MP4 file


@pytest.mark.parametrize("preset", sorted(presets.available()))
def test_audio_is_in_sync_after_each_preset(voiced, tmp_path, preset):
    clip, nvw_path = voiced
    settings = presets.load(preset)
    stretch = float(settings.get("temporal_scale", 1)) / (2 if settings.get("fps") == "2x" else 1)
    out = tmp_path / ("out.mkv" if settings.get("codec") == "ffv1" else "out.mp4")
    result = run("decode", nvw_path, out, "--preset", preset)
    assert result.exit_code == 0, result.stderr
    source, sound = samples(clip), samples(out)
    assert source is not None and sound is not None, "no audio in the output"
    assert video_seconds(out) == pytest.approx(stretch * 1.0, abs=1e-6)
    if stretch == 1:
        assert "copied" in result.stderr
        if out.suffix == ".mp4":
            assert np.array_equal(sound, source)  # the same packets, decoded the same
        else:  # Matroska keeps time to the millisecond
            assert sound.size / RATE == pytest.approx(source.size / RATE, abs=0.002)
    else:
        assert "stretched" in result.stderr
        assert sound.size / RATE == pytest.approx(video_seconds(out), abs=0.03)
        middle = sound[sound.size // 4 : 3 * sound.size // 4]
        assert dominant_hz(middle) == pytest.approx(TONE, abs=3)  # pitch kept


def test_container_that_cannot_hold_the_codec_gets_it_re_encoded(voiced, tmp_path):
    out = tmp_path / "out.webm"
    result = run("decode", voiced[1], out, "--preset", "slowmo-2x")
    assert result.exit_code == 0, result.stderr
    sound = samples(out)
    assert sound is not None and sound.size / RATE == pytest.approx(2.0, abs=0.03)
    log = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True
    )
    assert "Audio: opus" in log.stderr and "Video: vp9" in log.stderr


def test_audio_left_out_on_request(voiced, tmp_path):
    clip, nvw_path = voiced
    for flags in (["--no-audio"], ["--audio", "drop"]):
        out = tmp_path / "silent.mp4"
        assert run("decode", nvw_path, out, "--preset", "slowmo-2x", *flags).exit_code == 0
        assert samples(out) is None
    assert run("encode", clip, tmp_path / "mute.nvw", *NET, "--no-audio").exit_code == 0
    assert nvw.load(tmp_path / "mute.nvw").audio is None
    assert "audio       none" in run("info", tmp_path / "mute.nvw").stdout
    assert run("decode", tmp_path / "mute.nvw", tmp_path / "m.mp4").exit_code == 0
    assert samples(tmp_path / "m.mp4") is None
    png_folder = tmp_path / "frames/"
    assert run("decode", nvw_path, str(png_folder) + "/").exit_code == 0


def test_filter_keeps_the_sound_through_pipes(voiced, tmp_path):
    clip, _ = voiced
    done = subprocess.run(
        [sys.executable, "-m", "nvfilter", "filter", "-", "-", "--format", "nut",
         "--preset", "slowmo-2x", "--epochs", "1"],
        input=clip.read_bytes(),
        capture_output=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "out.nut").write_bytes(done.stdout)
    sound = samples(tmp_path / "out.nut")
    assert sound is not None and sound.size / RATE == pytest.approx(2.0, abs=0.05)


def test_tempo_chain_stays_in_atempo_range():
    for tempo in (1 / 8, 0.25, 0.3, 1.0, 2.5, 10.0):
        chain = tempo_chain(tempo)
        assert math.prod(chain) == pytest.approx(tempo)
        assert all(0.5 <= f <= 2.0 for f in chain)


def test_container_from_format_or_extension():
    assert container_of("a.MP4", None) == "mp4"
    assert container_of("-", "nut") == "nut"
    assert container_of("a.mkv", None) == "matroska"
    assert container_of("a.xyz", None) is None
