"""A .nvw that lies must never crash or run away: seeded mutations of real files, each either
loads or is refused with an NvwError (one line), quickly and in bounded memory."""

from __future__ import annotations

import json
import random
import resource
import time
from fractions import Fraction

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save

from nvfilter.config import ColorTags, TrainResult, VideoInfo
from nvfilter.errors import NvwError
from nvfilter.io import nvw
from nvfilter.models.planes import PlaneField
from nvfilter.models.segments import SegmentField
from nvfilter.models.siren import Siren

VIDEO = VideoInfo(16, 12, 5, Fraction(24), Fraction(1), ColorTags("tv", "bt709", None, "bt709"))
TRAINING = TrainResult(steps=3, seconds=1.0, psnr=20.0, stopped_by="epochs", settings={"lr": 1})
LIES = ["", "-1", "0", "1e12", "nan", "inf", "[]", "{}", '"x"', "null", "99999999999", "1/0",
        "2.5", "true", "\u00e9\u00e9", "[1, 2]", '{"type": "hybrid"}']  # fmt: skip
HUGE = [10**9, -5, 2**40, 1.5, "16", None, [3], {"a": 1}, float("nan"), True]


def originals() -> list[tuple[dict[str, torch.Tensor], dict[str, str]]]:
    torch.manual_seed(0)
    files = []
    segments = SegmentField(16, 12, 5, segment_frames=2, channels=3, coarse_channels=3, levels=2)
    for model in (PlaneField(16, 12, 5, channels=4, head_features=8), Siren(16, 2), segments):
        data = nvw.to_bytes(model, VIDEO, TRAINING, audio=(b"\x00\x01audio", "aac"))
        files.append(data)
    return files


def read_parts(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata())


def mutate(rng: random.Random, data: bytes, tmp_path) -> bytes:
    """One lie: a metadata value, an architecture field, a tensor's dtype or shape, or bytes."""
    original = tmp_path / "original.nvw"
    original.write_bytes(data)
    tensors, metadata = read_parts(original)
    kind = rng.choice(["metadata", "architecture", "tensor", "bytes", "truncate"])
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
        else:  # what loads must be usable: the network reads a point
            with torch.no_grad():
                assert loaded.model(torch.zeros(1, 3)).shape == (1, 3)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert grown < 200_000, f"case {case} took {grown} KB"  # bounded memory
        path.unlink()
    assert time.monotonic() - start < 60
    assert refused > 100  # the mutations do lie


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("architecture", '{"type": "hybrid", "width": 1000000, "height": 1000000, "frames": 5,'
         ' "channels": 4, "head_features": 8}', "has shape"),
        ("architecture", '{"type": "hybrid", "width": -3}', "out of range"),
        ("architecture", "[1, 2]", "not an object"),
        ("width", "100000000", "larger than any video"),
        ("format_version", "0", "not a version"),
        ("train_settings", "[1, 2]", "train_settings"),
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
