"""Stopping an encode: Ctrl-C and SIGTERM keep what was learned; a second stop leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import (
    SMALL_NET,
    nvfilter_cmd,
)

from nvfilter.io import nvw


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
