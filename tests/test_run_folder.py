"""encode --outputs DIR and --resume: every file written and readable; a killed run resumes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import nvfilter_cmd, run
from PIL import Image
from safetensors.torch import load_file

from nvfilter.io import nvw

NET = ["--model", "hybrid", "--channels", "4", "--levels", "2", "--hidden-features", "16",
       "--batch-size", "1024"]  # fmt: skip
"""A small trained network: the default model (tiles) takes no steps to checkpoint or resume."""


def same_weights(a: Path, b: Path) -> bool:
    first, second = load_file(str(a)), load_file(str(b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_outputs_folder_holds_every_file_readable(clips, tmp_path):
    folder = tmp_path / "run"
    result = run(
        "encode", clips["testsrc"], tmp_path / "o.nvw", "--epochs", "4", *NET,
        "--outputs", folder, "--checkpoint-every", "20",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    final = nvw.load(tmp_path / "o.nvw")
    steps = final.training.steps
    config = json.loads((folder / "config.json").read_text())
    assert config["encode"]["lr"] == 3e-3 and config["encode"]["channels"] == 4
    assert config["train"]["batch_size"] == 1024 and config["run"]["checkpoint_every"] == 20
    assert config["video"]["frames"] == 12 and config["versions"]["torch"] == torch.__version__
    assert "ffmpeg version" in config["versions"]["ffmpeg"]

    checkpoints = sorted(folder.glob("checkpoint_*.nvw"))
    expected = sorted({*range(20, steps + 1, 20), steps})
    assert [int(p.stem.split("_")[1]) for p in checkpoints] == expected
    for checkpoint in checkpoints:
        loaded = nvw.load(checkpoint)
        assert loaded.video == final.video
        assert (folder / f"{checkpoint.stem}.optim.safetensors").is_file()
    assert same_weights(checkpoints[-1], tmp_path / "o.nvw")
    assert run("decode", checkpoints[0], tmp_path / "c.mp4").exit_code == 0

    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "loss" in r]
    assert {"step", "seconds", "loss", "psnr_db", "lr"} <= set(logged[0])
    assert [r["step"] for r in logged] == sorted({*range(100, steps + 1, 100), steps})
    assert [r["step"] for r in records if "full_psnr_db" in r] == expected
    assert records[-1]["full_psnr_db"] == pytest.approx(final.training.psnr, abs=1e-3)

    for step in expected:
        with Image.open(folder / f"recon_step_{step:07d}.png") as image:
            assert image.size[0] > 2 * 64 and image.size[1] > 48
    with Image.open(folder / "training_progress.png") as image:
        assert image.size[0] >= 800 and image.size[1] >= 500
    comparisons = sorted(p.name for p in folder.glob("comparison_frame_*.png"))
    assert comparisons == [f"comparison_frame_{k:06d}.png" for k in (0, 6, 11)]
    assert not [p for p in folder.iterdir() if "partial" in p.name]


def test_resume_from_a_checkpoint_ends_exactly_where_the_whole_run_ends(clips, tmp_path):
    whole = tmp_path / "whole"
    args = [clips["testsrc"], "--epochs", "3", *NET, "--checkpoint-every", "10"]
    assert (
        run("encode", args[0], tmp_path / "whole.nvw", *args[1:], "--outputs", whole).exit_code == 0
    )
    part = tmp_path / "part"
    part.mkdir()
    for path in whole.glob("checkpoint_0000010.*"):
        shutil.copy(path, part)
    killed = part / ".recon_step_0000010.nvfilter-partial-1.png"  # as a killed run leaves it
    killed.write_bytes(b"half a PNG")
    result = run("encode", clips["testsrc"], tmp_path / "resumed.nvw", "--resume", part)
    assert result.exit_code == 0, result.stderr
    assert not killed.exists()
    assert "resuming at step 10" in result.stderr
    assert same_weights(tmp_path / "whole.nvw", tmp_path / "resumed.nvw")
    assert (part / "training_progress.png").is_file()
    assert {p.name for p in part.glob("checkpoint_*.nvw")} == {
        p.name for p in whole.glob("checkpoint_*.nvw")
    }


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_stopped_encode_resumes_to_the_same_weights(clips, tmp_path, sig):
    args = [clips["testsrc"], "--epochs", "60", *NET, "--checkpoint-every", "40"]
    assert run("encode", args[0], tmp_path / "whole.nvw", *args[1:]).exit_code == 0
    folder = tmp_path / "run"
    proc = subprocess.Popen(
        nvfilter_cmd("encode", args[0], tmp_path / "stopped.nvw", *args[1:], "--outputs", folder),
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(folder.glob("checkpoint_*.nvw")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0, "the run ended before it could be stopped"
    partial = [p for p in folder.iterdir() if "partial" in p.name]
    if sig == signal.SIGINT:
        assert not partial  # stopped cleanly: nothing half-written left
    else:  # a kill during a write leaves only a hidden partial file, never a half-written output
        assert all(p.name.startswith(".") for p in partial)
    result = run("encode", clips["testsrc"], tmp_path / "resumed.nvw", "--resume", folder)
    assert result.exit_code == 0, result.stderr
    assert not [p for p in folder.iterdir() if "partial" in p.name]  # the resumed run cleaned up
    whole, resumed = nvw.load(tmp_path / "whole.nvw"), nvw.load(tmp_path / "resumed.nvw")
    assert resumed.training.steps == whole.training.steps
    assert same_weights(tmp_path / "whole.nvw", tmp_path / "resumed.nvw")  # bit for bit
    assert resumed.training.psnr == whole.training.psnr


def test_run_folder_mistakes_are_one_line_errors(clips, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    cases = [
        (["--outputs", tmp_path / "full"], "not empty"),
        (["--resume", tmp_path / "none"], "no such file or folder"),
        (["--resume", tmp_path / "full"], "no checkpoint"),
    ]
    for flags, needle in cases:
        result = run("encode", clips["testsrc"], tmp_path / "o.nvw", *flags)
        assert result.exit_code == 1 and needle in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    folder = tmp_path / "run"
    run("encode", clips["testsrc"], tmp_path / "o.nvw", "--epochs", "1", *NET, "--outputs", folder)
    result = run("encode", clips["testsrc"], tmp_path / "o.nvw", "--resume", folder, "--lr", "1")
    assert result.exit_code == 1 and "leave out --lr" in result.stderr
    result = run("encode", clips["smooth"], tmp_path / "o.nvw", "--resume", folder)
    assert result.exit_code == 1 and "not the same video" in result.stderr


def test_filter_takes_the_encode_flags_and_outputs(clips, tmp_path):
    folder = tmp_path / "run"
    result = run(
        "filter", clips["testsrc"], tmp_path / "o.mp4", *NET, "--epochs", "1",
        "--outputs", folder, "--precision", "bfloat16", "--keep-nvw", tmp_path / "k.nvw",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    kept = nvw.load(tmp_path / "k.nvw")
    assert kept.architecture["channels"] == 4 and kept.architecture["head_features"] == 16
    config = json.loads((folder / "config.json").read_text())
    assert config["train"]["precision"] == "bfloat16" and config["train"]["batch_size"] == 1024
    assert (folder / "training_progress.png").is_file()


def test_a_time_budget_run_checkpoints_every_tenth_of_the_budget(clips, tmp_path):
    folder = tmp_path / "run"
    result = run(
        "encode", clips["testsrc"], tmp_path / "o.nvw", "--time-budget", "2", "--epochs", "100000",
        *NET, "--outputs", folder,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert nvw.load(tmp_path / "o.nvw").training.stopped_by == "time-budget"
    checkpoints = sorted(folder.glob("checkpoint_*.nvw"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(checkpoints) >= 9  # 0.2 s, 0.4 s, ... 1.8 s and the end
    seconds = [nvw.load(p).training.seconds for p in checkpoints]
    assert seconds == sorted(seconds) and seconds[0] < 0.5 and seconds[-1] >= 2.0
    assert same_weights(checkpoints[-1], tmp_path / "o.nvw")


def test_a_streamed_run_resumes_after_its_finished_parts(clips, tmp_path):
    """A parts run whose folder holds its first part only goes on from the second part (the first
    is not learned again) and ends on the whole run's weights."""
    flags = ["--model", "segments", "--segment-frames", "4", "--epochs", "3"]
    whole = tmp_path / "whole"
    result = run("encode", clips["testsrc"], tmp_path / "whole.nvw", *flags, "--outputs", whole)
    assert result.exit_code == 0, result.stderr
    part = tmp_path / "part"
    part.mkdir()
    for name in ("config.json", "part_000000.nvw", "part_000000.json"):
        shutil.copy(whole / name, part)
    result = run("encode", clips["testsrc"], tmp_path / "resumed.nvw", "--resume", part)
    assert result.exit_code == 0, result.stderr
    assert "resuming" in result.stderr
    assert (part / "part_000000.nvw").read_bytes() == (whole / "part_000000.nvw").read_bytes()
    assert same_weights(tmp_path / "whole.nvw", tmp_path / "resumed.nvw")
