"""A .nvw that lies must never crash or run away: seeded mutations of real files, each either
loads or is refused with an NvwError (one line), quickly and in bounded memory."""

from __future__ import annotations

import dataclasses
import json
import random
import resource
import shutil
import struct
import subprocess
import time
import zlib
from fractions import Fraction

import pytest
import torch
from conftest import EXAMPLE, nvfilter_cmd, run
from safetensors import safe_open
from safetensors.torch import save

from nvfilter.codec.encoder import PartEncoder
from nvfilter.config import ColorTags, TrainResult, VideoInfo
from nvfilter.errors import NvwError
from nvfilter.io import nvw
from nvfilter.models.codec import CodedField
from nvfilter.models.planes import PlaneField
from nvfilter.models.segments import SegmentField
from nvfilter.models.siren import Siren
from nvfilter.models.tiles import TileField
from nvfilter.timeline import Timeline

VIDEO = VideoInfo(16, 12, 5, Fraction(24), Fraction(1), ColorTags("tv", "bt709", None, "bt709"))
TRAINING = TrainResult(steps=3, seconds=1.0, psnr=20.0, stopped_by="epochs", settings={"lr": 1})
LIES = ["", "-1", "0", "1e12", "nan", "inf", "[]", "{}", '"x"', "null", "99999999999", "1/0",
        "2.5", "true", "\u00e9\u00e9", "[1, 2]", '{"type": "hybrid"}']  # fmt: skip
HUGE = [10**9, -5, 2**40, 1.5, "16", None, [3], {"a": 1}, float("nan"), True]


def frames(count: int) -> torch.Tensor:
    """A small moving picture, uint8 (count, 12, 16, 3)."""
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    shots = [
        torch.stack(
            [
                128 + 90 * torch.sin((xs - 2 * k) / 3),
                128 + 80 * torch.cos(ys / 2 + k),
                128 + 60 * torch.sin((xs + ys) / 4),
            ],
            -1,
        )  # fmt: skip
        for k in range(count)
    ]
    return torch.stack(shots).round().clamp(0, 255).to(torch.uint8)


def originals() -> list[bytes]:
    """One file of every model (the default codec and tiles among them), and a file of parts."""
    torch.manual_seed(0)
    files = []
    segments = SegmentField(16, 12, 5, segment_frames=2, channels=3, coarse_channels=3, levels=2)
    tiles = TileField(16, 12, 5)
    tiles.start_from(frames(5))
    coded = CodedField(16, 12, 5, "444", target_qp=20)
    coded.start_from(frames(5))
    networks = (PlaneField(16, 12, 5, channels=4, head_features=8), Siren(16, 2), segments,
                tiles, coded)  # fmt: skip
    for model in networks:
        data = nvw.to_bytes(model, VIDEO, TRAINING, audio=(b"\x00\x01audio", "aac"))
        files.append(data)
    timed = dataclasses.replace(VIDEO, timeline=TIMELINE)  # the codec's, with cuts and times
    cut = CodedField(16, 12, 5, "444", target_qp=20)
    cut.start_from(frames(5), cuts=TIMELINE.cuts)  # its new shot coded intra
    files.append(nvw.to_bytes(cut, timed, TRAINING))
    # streams as older nvfilters wrote them, newest first: version 2 (a cut), version 1
    files.append(nvw.to_bytes(older_coded(2, TIMELINE.cuts), timed, TRAINING))
    files.append(nvw.to_bytes(older_coded(1, ()), VIDEO, TRAINING))
    return files + [parts_file()]


def older_coded(version: int, cuts: tuple[int, ...]) -> CodedField:
    """A coded network whose stream is of an older stream ``version`` (bitstream.py)."""
    model = CodedField(16, 12, 5, "444", target_qp=20)
    encoded = PartEncoder(model.layout, 20, starts=cuts, version=version).encode(frames(5).numpy())
    assert encoded.data[4] == version
    model.stream = torch.frombuffer(bytearray(encoded.data), dtype=torch.uint8)
    model.qp = encoded.base_qp
    return model


TIMELINE = Timeline((0.0, 1.0, 2.5, 4.0, 5.0), played=6, cuts=(3,), variable=True, repeats=1,
                    sources=(0, 1, 3, 4, 5))  # fmt: skip


def parts_file() -> bytes:
    """Five frames in two coded parts (of three, sharing the middle frame)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, first in enumerate((0, 2)):
            part = CodedField(16, 12, 3, "444", target_qp=22)
            part.start_from(frames(5)[first : first + 3])
            video = VideoInfo(16, 12, 3, Fraction(24))
            paths.append(Path(folder) / f"part{k}.nvw")
            paths[-1].write_bytes(nvw.to_bytes(part, video, TRAINING))
        return b"".join(nvw.join_parts(paths, VIDEO, TRAINING, "float32", None))


def lie_in_stream(rng: random.Random, stream: torch.Tensor) -> torch.Tensor:
    """A coded stream that says something else, its CRC made to match so that the reader
    believes it: a header field, a frame's length or quantiser, or the coded words."""
    data = bytearray(stream.numpy().tobytes())
    body = 24  # the header's size (codec/bitstream.py)
    where = rng.choice(["header", "table", "words"])
    if where == "header":
        offset = rng.choice([4, 5, 8, 10, 12, 16])
        data[offset] = rng.randrange(256)
    elif where == "table":
        data[body + rng.randrange(min(32, len(data) - body))] = rng.randrange(256)
    else:
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(body, len(data))] = rng.randrange(256)
    data[20:24] = struct.pack("<I", zlib.crc32(bytes(data[body:])))
    return torch.frombuffer(data, dtype=torch.uint8)


def read_parts(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata())


def mutate(rng: random.Random, data: bytes, tmp_path) -> bytes:
    """One lie: a metadata value, an architecture field, a tensor's dtype or shape, or bytes."""
    original = tmp_path / "original.nvw"
    original.write_bytes(data)
    tensors, metadata = read_parts(original)
    streams = sorted(name for name in tensors if name.endswith("stream"))
    kinds = ["metadata", "architecture", "tensor", "bytes", "truncate"]
    kind = rng.choice(kinds + (["stream"] * 3 if streams else []))
    if kind == "stream":
        name = rng.choice(streams)
        tensors[name] = lie_in_stream(rng, tensors[name])
        return save(tensors, metadata=metadata)
    if kind == "metadata":
        metadata[rng.choice(sorted(metadata))] = rng.choice(LIES)
    elif kind == "architecture":
        arch = json.loads(metadata["architecture"])
        arch[rng.choice(sorted(arch))] = rng.choice(HUGE)
        metadata["architecture"] = json.dumps(arch)
    elif kind == "tensor":
        name = rng.choice(sorted(tensors))
        value = tensors[name]
        tensors[name] = rng.choice(
            [value.to(torch.bfloat16), value.to(torch.float8_e4m3fn), value.flatten()[:1].clone(),
             value.to(torch.int32), torch.zeros(0), value.reshape(-1).repeat(2)]
        )  # fmt: skip
    if kind in ("metadata", "architecture", "tensor"):
        return save(tensors, metadata=metadata)
    raw = bytearray(data)
    if kind == "bytes":
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    return bytes(raw[: rng.randrange(len(raw))])


def test_mutated_nvw_files_load_or_are_refused(tmp_path):
    rng = random.Random(20261202)
    files = originals()
    start = time.monotonic()
    refused = 0
    for case in range(300):
        path = tmp_path / f"case{case}.nvw"
        path.write_bytes(mutate(rng, rng.choice(files), tmp_path))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            loaded = nvw.load(path)
        except NvwError as err:
            refused += 1
            assert "\n" not in str(err) and str(err).startswith(str(path)), str(err)
        else:  # what loads must be usable: the network reads a point (or, for a coded stream
            # whose CRC was made to match its lies, says in one line it cannot)
            try:
                with torch.no_grad():
                    assert loaded.model(torch.zeros(1, 3)).shape == (1, 3)
            except NvwError as err:
                refused += 1
                assert "\n" not in str(err), str(err)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert grown < 200_000, f"case {case} took {grown} KB"  # bounded memory
        path.unlink()
    assert time.monotonic() - start < 60
    assert refused > 100  # the mutations do lie


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("architecture", '{"type": "hybrid", "width": 1000000, "height": 1000000, "frames": 5,'
         ' "channels": 4, "head_features": 8}', "is not the video's"),
        ("architecture", '{"type": "hybrid", "width": 16, "height": 12, "frames": 5,'
         ' "channels": 400, "head_features": 8}', "has shape"),
        ("architecture", '{"type": "hybrid", "width": -3}', "out of range"),
        ("architecture", "[1, 2]", "not an object"),
        ("width", "100000000", "larger than any video"),
        ("format_version", "0", "not a version"),
        ("train_settings", "[1, 2]", "train_settings"),
        ("train_settings", "{oops", "train_settings = '{oops' is malformed"),
        ("frame_rate", "1/0", "frame_rate = '1/0' is malformed"),
        ("width", "wide", "width = 'wide' is malformed"),
        ("train_steps", "-4", "negative"),
        ("timeline", '{"times": [0, 1]}', "timeline = .* is malformed"),
        ("timeline", TIMELINE.to_json().replace('"played":6', '"played":99999999'), "timeline"),
        ("timeline", TIMELINE.to_json().replace('"cuts":[3]', '"cuts":[9]'), "timeline"),
    ],
)  # fmt: skip
def test_named_lies_are_refused_with_one_line(tmp_path, key, value, needle):
    path = tmp_path / "m.nvw"
    path.write_bytes(originals()[0])
    tensors, metadata = read_parts(path)
    metadata[key] = value
    path.write_bytes(save(tensors, metadata=metadata))
    with pytest.raises(NvwError, match=needle):
        nvw.load(path)


def test_audio_stored_as_another_dtype_is_refused(tmp_path):
    path = tmp_path / "m.nvw"
    path.write_bytes(originals()[0])
    tensors, metadata = read_parts(path)
    tensors["audio"] = tensors["audio"].to(torch.bfloat16)
    path.write_bytes(save(tensors, metadata=metadata))
    with pytest.raises(NvwError, match="audio"):
        nvw.load(path)


def _limited_run(args: list[str], limits: dict[int, int], seconds: float):
    """A command in its own process under resource limits; returns (result, seconds taken)."""

    def apply() -> None:
        for which, value in limits.items():
            resource.setrlimit(which, (value, value))

    start = time.monotonic()
    result = subprocess.run(
        args, preexec_fn=apply, capture_output=True, text=True, timeout=seconds, check=False
    )
    return result, time.monotonic() - start


def _fuzz_cli(tmp_path, cases: int, seed: int) -> None:
    """Mutated files through `nvfilter info` and `nvfilter decode` in their own processes: each
    succeeds or fails with exactly one `nvfilter: error:` line, within 20 s and 1.5 GB, and a
    failed decode leaves no output behind."""
    rng = random.Random(seed)
    files = originals()
    for case in range(cases):
        path = tmp_path / f"case{case}.nvw"
        path.write_bytes(mutate(rng, rng.choice(files), tmp_path))
        out = tmp_path / "out" / "clip.nut"
        out.parent.mkdir(exist_ok=True)
        for args in (["info", path], ["decode", path, out, "--preset", "slowmo-2x"]):
            result, seconds = _limited_run(nvfilter_cmd(*args), {}, 20)
            lines = result.stderr.strip().splitlines()
            errors = [line for line in lines if line.startswith("nvfilter: error:")]
            assert "Traceback" not in result.stderr, result.stderr
            assert seconds < 20
            if result.returncode:
                assert result.returncode in (1, 2) and len(errors) == 1, result.stderr
                assert not any(out.parent.iterdir()), "a failed decode left a file"
            shutil.rmtree(out.parent)
            out.parent.mkdir()
        path.unlink()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    assert peak < 1.5 * 2**30, f"a command peaked at {peak / 2**30:.2f} GB"


def test_mutated_nvw_files_through_the_command_line(tmp_path):
    _fuzz_cli(tmp_path, cases=6, seed=1203)


@pytest.mark.slow
def test_many_mutated_nvw_files_through_the_command_line(tmp_path):
    _fuzz_cli(tmp_path, cases=150, seed=20261203)


@pytest.mark.parametrize("command", ["encode", "encode-hybrid", "decode", "frames"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, command):
    """Writing past what the disk takes (a file size limit stands in for a full disk: the
    write fails the same way, midway) is one error line naming the user's path, also where
    the write that fails is a part in the hidden folder beside it (tiles); no partial file
    stays."""
    folder = tmp_path / "outputs"
    folder.mkdir()
    if command.startswith("encode"):
        name = "clip.nvw"
        args = ["encode", EXAMPLE, folder / name, "--width", "80"]
        args += ["--model", "hybrid", "--epochs", "1"] if command == "encode-hybrid" else [
            "--model", "tiles"]  # fmt: skip
    else:
        nvw_file = tmp_path / "clip.nvw"
        run("encode", EXAMPLE, nvw_file, "--width", "80", "--epochs", "1", "--no-audio")
        name = "clip.mkv" if command == "decode" else "frames/"
        args = ["decode", nvw_file, str(folder / name), "--preset", "lossless", "--width", "320"]
    result, _ = _limited_run(nvfilter_cmd(*args), {resource.RLIMIT_FSIZE: 50_000}, 120)
    assert result.returncode == 1, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("nvfilter: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert name.rstrip("/") in errors[0], errors[0]
    assert list(folder.iterdir()) == []
