"""Streamed encode in parts: cutting, budget sharing, the .nvw of parts, joins, sound, memory,
resume of a killed run, and --jobs / --ray local agreeing with one process."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch

from nvfilter.config import EncodeOptions
from nvfilter.encode import encoder
from nvfilter.encode import parts as streamed
from nvfilter.encode.part_plan import cut_parts
from nvfilter.encode.run_folder import RunOptions
from nvfilter.encode.time_share import BudgetShare
from nvfilter.errors import NvwError
from nvfilter.io import media, nvw
from nvfilter.models.parts import part_spans
from nvfilter.progress import Console
from tests.conftest import make_clip, nvfilter_cmd, read_video, run


@pytest.mark.parametrize("frames", [1, 2, 9, 17, 24, 25, 33, 40, 41, 100])
def test_stream_is_cut_as_part_spans_say(frames):
    stream = (np.full((2, 2, 3), k, np.uint8) for k in range(frames))
    parts = list(cut_parts(stream, 8))
    spans = part_spans(frames, 8)
    assert [(int(p[0, 0, 0, 0]), len(p)) for p in parts] == spans
    assert spans[0][0] == 0 and sum(n for _, n in spans) - (len(spans) - 1) == frames
    assert all(n <= 8 + 1 + 4 for _, n in spans)


def test_a_part_is_handed_on_with_only_the_frames_read_past_it_held():
    """While a part is coded, the cutter holds the frames it read past the part and nothing more
    (not the part's frames twice): a part of 1920x1080 is a gigabyte."""
    frame_bytes = 96 * 128 * 3
    stream = (np.full((96, 128, 3), k % 256, np.uint8) for k in range(60))
    tracemalloc.start()
    try:
        beside = []
        for part in cut_parts(stream, 8):
            beside.append(tracemalloc.get_traced_memory()[0] - part.nbytes)
            del part
    finally:
        tracemalloc.stop()
    assert max(beside) <= 7 * frame_bytes  # the 5 read past a part of 8 (+1): 14 held before


def test_the_encode_lets_a_part_go_before_the_next_is_read(tmp_path, monkeypatch):
    """When the next part's frames are read, nothing still holds the part before it (each of
    1920x1080 is a gigabyte): checked from the frames' stream, on a real streamed encode."""
    held_while_reading: list[bool] = []
    before: list[weakref.ref[np.ndarray]] = []
    cut = streamed.cut_parts

    def reading(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            if before:  # the first frame read since a part was handed on
                held_while_reading.append(before.pop()() is not None)
            yield frame

    def watched(frames: Iterator[np.ndarray], *args: Any) -> Iterator[np.ndarray]:
        stream = cut(reading(frames), *args)
        while (part := next(stream, None)) is not None:
            before.append(weakref.ref(part))
            yield part
            del part

    monkeypatch.setattr(streamed, "cut_parts", watched)
    clip = make_clip(tmp_path / "c.mkv", "-f", "lavfi", "-i",
                     "testsrc2=size=64x48:rate=25:duration=1.2", "-c:v", "ffv1")  # fmt: skip
    options = EncodeOptions(model="segments", segment_frames=8, epochs=0.2, audio=False)
    encoder.encode(str(clip), str(tmp_path / "c.nvw"), options, Console(quiet=True))
    assert len(held_while_reading) >= 2 and not any(held_while_reading), held_while_reading


def test_budget_is_shared_by_frames_and_spent_once():
    now = [0.0]
    share = BudgetShare(100.0, 1, 97, clock=lambda: now[0])
    given = []
    for k, n in enumerate(n for _, n in part_spans(97, 32)):
        given.append(share.give(k, n))
        now[0] += given[-1]  # each part trains for what it was given
        share.took(k)
    assert sum(given) == pytest.approx(100.0)
    assert given[0] == pytest.approx(given[1], rel=0.03)
    now = [0.0]
    early = BudgetShare(10.0, 1, 64, clock=lambda: now[0])
    early.give(0, 33)
    now[0] = 1.0
    early.took(0)  # a part that stops early leaves its time to the rest
    assert early.give(1, 32) == pytest.approx(9.0)


def test_budget_counts_the_time_between_parts_and_earlier_runs():
    """Reading, starting and writing parts take wall time too: it comes out of the budget, so
    a run ends near its budget; parts an earlier run finished count their own seconds."""
    now = [0.0]
    share = BudgetShare(60.0, 1, 65, clock=lambda: now[0])
    now[0] = 2.0  # reading the first part
    first = share.give(0, 33)
    assert first == pytest.approx(58.0 * 33 / 65)
    now[0] += first + 4.0  # trained, then 4 s writing it and reading the next
    share.took(0)
    assert share.give(1, 33) == pytest.approx(60.0 - now[0])
    resumed = BudgetShare(60.0, 1, 65, clock=lambda: 0.0)
    resumed.kept(33, 25.0)
    assert resumed.give(1, 33) == pytest.approx(35.0)
    two = BudgetShare(60.0, 2, 97, clock=lambda: 0.0)
    in_flight = two.give(0, 33)
    assert two.give(1, 33) == pytest.approx((120.0 - in_flight) * 33 / 65)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """4 s of a moving test picture with a tone, 48x32 at 25 fps: 100 frames, 13 parts of 8."""
    path = tmp_path_factory.mktemp("parts") / "long.mkv"
    return make_clip(
        path, "-f", "lavfi", "-i", "testsrc2=size=48x32:rate=25:duration=4", "-f", "lavfi",
        "-i", "sine=frequency=440:duration=4", "-c:v", "ffv1", "-c:a", "flac", "-shortest",
    )  # fmt: skip


def encode_parts(clip, out, *flags, model="segments"):
    steps = ["--epochs", "2"] if model == "segments" else []
    result = run("encode", clip, out, "--model", model, "--segment-frames", "8", *steps, *flags)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("model", ["segments", "tiles"])
def test_parts_file_decodes_with_seamless_joins_and_sound_in_sync(long_clip, tmp_path, model):
    out = tmp_path / "long.nvw"
    encode_parts(long_clip, out, model=model)
    loaded = nvw.load(out)
    assert loaded.metadata["format_version"] == {"segments": "4", "tiles": "5"}[model]
    assert loaded.video.frames == 100 and len(loaded.model.spans) == len(part_spans(100, 8))
    assert loaded.parameters <= 48 * 32 * 100  # at most one number per pixel
    index = json.loads(loaded.metadata["parts"])
    assert [e["first"] for e in index] == [s for s, _ in part_spans(100, 8)]
    played = tmp_path / "played.mkv"
    assert run("decode", out, played, "--codec", "ffv1").exit_code == 0
    decoded = read_video(played).astype(np.float64)
    source = read_video(long_clip).astype(np.float64)
    assert decoded.shape == source.shape
    step_decoded = np.abs(np.diff(decoded, axis=0)).mean(axis=(1, 2, 3))
    step_source = np.abs(np.diff(source, axis=0)).mean(axis=(1, 2, 3))
    joins = [first + d for first, _ in part_spans(100, 8)[1:] for d in (-1, 0)]  # j -> j + 1
    assert max(step_decoded[j] - step_source[j] for j in joins) <= 3.0
    assert len(loaded.model.loaded) <= 2  # parts read one at a time
    slow = tmp_path / "slow.mkv"
    assert run("decode", out, slow, "--preset", "slowmo-2x", "--codec", "ffv1").exit_code == 0
    info = media.probe(str(slow))
    frames = len(read_video(slow))
    assert frames == 200
    audio_seconds = _audio_seconds(slow)
    assert abs(audio_seconds - frames / float(info.frame_rate)) < 0.05


def _audio_seconds(path):
    from nvfilter.io.media import ffmpeg_exe

    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:a:0",
                          "-f", "null", "-"], capture_output=True, text=True).stderr  # fmt: skip
    stamp = [part for part in log.split() if part.startswith("time=")][-1][5:]
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_streamed_encode_memory_does_not_grow_with_length(tmp_path):
    """Raw frames held by a streamed encode (numpy, traced) stay flat from 40 to 160 frames."""
    peaks = []
    for seconds in (1.6, 6.4):
        clip = make_clip(tmp_path / f"c{seconds}.mkv", "-f", "lavfi", "-i",
                         f"testsrc2=size=64x48:rate=25:duration={seconds}", "-c:v", "ffv1")  # fmt: skip
        options = EncodeOptions(model="segments", segment_frames=8, epochs=0.5, audio=False)
        tracemalloc.start()
        encoder.encode(str(clip), str(tmp_path / f"c{seconds}.nvw"), options, Console(quiet=True))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    frame = 64 * 48 * 3
    assert peaks[1] < peaks[0] * 1.25 + 8 * frame, peaks
    assert peaks[1] < 60 * frame + 2_000_000  # not the 160 frames (and not a copy of them)


@pytest.mark.parametrize("model", ["segments", "tiles"])
def test_jobs_and_ray_local_give_the_one_process_result(long_clip, tmp_path, model):
    pytest.importorskip("ray")
    one, two, rayed = tmp_path / "one.nvw", tmp_path / "two.nvw", tmp_path / "ray.nvw"
    encode_parts(long_clip, one, model=model)
    encode_parts(long_clip, two, "--jobs", "2", model=model)
    encode_parts(long_clip, rayed, "--ray", "local", "--jobs", "2", model=model)
    psnr = [nvw.load(path).training.psnr for path in (one, two, rayed)]
    assert max(psnr) - min(psnr) <= 0.05 or min(psnr) == math.inf, psnr  # inf: exact
    spans = [[(e["first"], e["frames"], e["train_steps"]) for e in
              json.loads(nvw.load(path).metadata["parts"])] for path in (one, two, rayed)]  # fmt: skip
    assert spans[0] == spans[1] == spans[2]


def test_a_stopped_tiles_run_resumes_after_its_finished_parts(long_clip, tmp_path):
    """A tiles run stopped after some parts (here: the later part files removed, as a kill
    leaves them missing) keeps the finished parts byte for byte and ends with the file an
    unbroken run writes."""
    folder, out, whole = tmp_path / "run", tmp_path / "out.nvw", tmp_path / "whole.nvw"
    encode_parts(long_clip, whole, model="tiles")
    encode_parts(long_clip, tmp_path / "first.nvw", "--outputs", folder, model="tiles")
    for k in range(6, 13):
        for path in folder.glob(f"part_{k:06d}.*"):
            path.unlink()
    kept = {p.name: p.read_bytes() for p in folder.glob("part_*[0-9].nvw")}
    assert len(kept) == 6
    result = run("encode", long_clip, out, "--resume", folder)
    assert result.exit_code == 0, result.output
    for name, data in kept.items():
        assert (folder / name).read_bytes() == data
    a, b = nvw.load(out), nvw.load(whole)
    assert a.video.frames == 100 and a.training.psnr == pytest.approx(b.training.psnr, abs=1e-6)


def test_killed_streamed_run_resumes_at_its_part(long_clip, tmp_path):
    """SIGKILL mid-run: finished parts are kept as they were, the run goes on from the part it
    was on, and the training time is the budget, not the budget again."""
    folder, out = tmp_path / "run", tmp_path / "out.nvw"
    proc = subprocess.Popen(
        nvfilter_cmd(
            "encode",
            long_clip,
            out,
            "--model",
            "segments",
            "--segment-frames",
            "8",
            "--time-budget",
            "13",
            "--outputs",
            folder,
        ),  # fmt: skip
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (folder / "part_000004.nvw").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    kept = {p.name: p.read_bytes() for p in folder.glob("part_*[0-9].nvw")}
    assert len(kept) >= 5
    result = run("encode", long_clip, out, "--resume", folder)
    assert result.exit_code == 0, result.output
    for name, data in kept.items():
        assert (folder / name).read_bytes() == data
    loaded = nvw.load(out)
    assert loaded.video.frames == 100
    assert loaded.training.seconds <= 13 * 1.15 + 1.0
    assert loaded.training.seconds >= 13 * 0.6


def test_parts_index_that_lies_is_refused(long_clip, tmp_path):
    out = tmp_path / "long.nvw"
    encode_parts(long_clip, out, "--epochs", "0.1")
    from tests.test_nvw import rewrite_metadata

    index = json.loads(nvw.load(out).metadata["parts"])
    lies = {
        "first": lambda e: [{**e[0], "first": 1}] + e[1:],
        "overlap": lambda e: e[:1] + [{**e[1], "first": e[1]["first"] + 1}] + e[2:],
        "frames": lambda e: e[:-1] + [{**e[-1], "frames": 10**9}],
        "size": lambda e: (
            [{**e[0], "architecture": {**e[0]["architecture"], "width": 4096}}] + e[1:]
        ),
        "short": lambda e: e[:-1],
        "kind": lambda e: [{**e[0], "architecture": {"type": "parts"}}] + e[1:],
    }
    for name, lie in lies.items():
        bad = tmp_path / f"{name}.nvw"
        bad.write_bytes(out.read_bytes())
        rewrite_metadata(bad, parts=json.dumps(lie(index)))
        with pytest.raises(NvwError) as caught:
            nvw.load(bad)
        assert "\n" not in str(caught.value), name


def test_part_tensors_are_checked_before_any_part_is_built(long_clip, tmp_path):
    out = tmp_path / "long.nvw"
    encode_parts(long_clip, out, "--epochs", "0.1")
    with nvw.safe_open(str(out), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        metadata = handle.metadata()
    from safetensors.torch import save

    dropped = dict(tensors)
    dropped.pop(next(k for k in tensors if k.startswith("part.3.")))
    (tmp_path / "missing.nvw").write_bytes(save(dropped, metadata=metadata))
    with pytest.raises(NvwError, match="part 3: .nvw is missing"):
        nvw.load(tmp_path / "missing.nvw")
    extra = {**tensors, "part.99.x": torch.zeros(1)}
    (tmp_path / "extra.nvw").write_bytes(save(extra, metadata=metadata))
    with pytest.raises(NvwError, match="belongs to no part"):
        nvw.load(tmp_path / "extra.nvw")
    resized = dict(tensors)
    key = next(k for k in tensors if k.startswith("part.1.") and tensors[k].dim() == 3)
    resized[key] = torch.zeros(tensors[key].shape[0], 2, 2)
    (tmp_path / "resized.nvw").write_bytes(save(resized, metadata=metadata))
    with pytest.raises(NvwError, match="has shape"):
        nvw.load(tmp_path / "resized.nvw")


def test_jobs_refused_for_one_network(clips, tmp_path):
    result = run("encode", clips["smooth"], tmp_path / "x.nvw", "--model", "hybrid", "--jobs", "2")
    assert result.exit_code != 0 and "--jobs" in result.output
    assert RunOptions().jobs == 1


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc")
def test_playing_a_file_of_parts_keeps_memory_flat(tmp_path):
    """Every part of a ~100 MB file of parts played in turn: the process's resident memory grows
    by about the parts kept loaded, not by the file (parts are read, not memory-mapped)."""
    from nvfilter.config import ColorTags, TrainResult, VideoInfo
    from nvfilter.models.reads import render_frame
    from nvfilter.models.segments import SegmentField

    parts, frames_each = 12, 9
    frames = parts * (frames_each - 1) + 1
    video = VideoInfo(
        320, 240, frames, Fraction(25), Fraction(1), ColorTags(None, None, None, None)
    )
    training = TrainResult(0, 0.0, 0.0, "epochs", None)
    files = []
    for k in range(parts):
        model = SegmentField(320, 240, frames_each, segment_frames=8)
        part_video = VideoInfo(320, 240, frames_each, video.frame_rate, Fraction(1), video.color)
        files.append(tmp_path / f"part{k}.nvw")
        files[-1].write_bytes(nvw.to_bytes(model, part_video, training))
    whole = tmp_path / "whole.nvw"
    with whole.open("wb") as out:
        for chunk in nvw.join_parts(files, video, training, "float32"):
            out.write(chunk)
    size = whole.stat().st_size
    assert size > 80e6
    loaded = nvw.load(whole)
    render_frame(loaded.model, 32, 24, -1.0)
    before = _resident_bytes()
    for k in range(frames):
        render_frame(loaded.model, 32, 24, (2 * k + 1) / frames - 1)
    grown = _resident_bytes() - before
    part_bytes = size / parts
    assert grown < 3 * part_bytes, (grown, size)


def test_a_joins_shared_frame_is_both_parts_fits_averaged():
    """Parts 0..4 and 4..8 share frame 4: it is read from both and averaged (frame reads and
    point reads alike); every other frame is read from its one part."""
    from nvfilter.coords import frame_time
    from nvfilter.models.field import VideoField
    from nvfilter.models.parts import PartsField, PartSpan
    from nvfilter.models.reads import render_frame

    class Flat(VideoField):
        def __init__(self, level: float) -> None:
            super().__init__()
            self.level = torch.nn.Parameter(torch.tensor(level))

        def forward(self, coords):
            return self.level.expand(coords.shape[0], 3) * (coords[:, 2:3] + 2) / 2

    spans = [PartSpan(0, 5, {}), PartSpan(4, 5, {})]
    field = PartsField(9, spans, lambda k: Flat([0.2, 0.6][k]))
    shared = frame_time(4, 9)
    pixel = float(render_frame(field, 2, 2, shared)[0, 0, 0])
    ending, starting = 0.2 * (0.8 + 2) / 2, 0.6 * (-0.8 + 2) / 2  # each at its own time
    assert pixel == pytest.approx(255 * (ending + starting) / 2, abs=0.5)
    point = field(torch.tensor([[0.0, 0.0, shared]]))
    assert point[0, 0].item() == pytest.approx((ending + starting) / 2, abs=1e-6)
    before, after = frame_time(3, 9), frame_time(5, 9)
    assert field.reads_at(before) == [field.part_at(before)]
    assert [k for k, _ in field.reads_at(after)] == [1]


def test_frames_of_parts_read_together_are_the_frames_read_one_at_a_time():
    """PartsField.render_images reads each part's frames together and averages a join's shared
    frame as render_image does; parts read by points have no such read, and render_frames then
    makes the same frames one at a time."""
    from nvfilter.coords import frame_time
    from nvfilter.models.parts import PartsField, PartSpan
    from nvfilter.models.reads import render_frame, render_frames
    from nvfilter.models.siren import Siren
    from nvfilter.models.tiles import TileField

    generator = torch.Generator().manual_seed(1)
    video = (torch.rand(9, 12, 20, 3, generator=generator) * 255).round().to(torch.uint8)
    spans = [PartSpan(0, 5, {}), PartSpan(4, 5, {})]

    def tiles_part(k: int) -> TileField:
        network = TileField(20, 12, 5, tile=4)
        network.start_from(video[4 * k : 4 * k + 5])
        return network.eval()

    times = [frame_time(p, 9) for p in (0, 1.5, 3.75, 4, 4, 6.25, 8)]
    for load in (tiles_part, lambda k: Siren(hidden_features=8, hidden_layers=1).eval()):
        field = PartsField(9, spans, load)
        together = list(render_frames(field, 20, 12, times))
        alone = [render_frame(field, 20, 12, t) for t in times]
        assert all(np.array_equal(a, b) for a, b in zip(together, alone, strict=True))
    with torch.inference_mode():
        assert PartsField(9, spans, tiles_part).render_images(times, 20, 12) is not None
