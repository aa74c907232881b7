import dataclasses
import json
import struct
from fractions import Fraction

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save

from nvfilter.config import ColorTags, TrainConfig, TrainResult, VideoInfo
from nvfilter.errors import NvwError
from nvfilter.io import nvw
from nvfilter.models.planes import PlaneField
from nvfilter.models.segments import SegmentField
from nvfilter.models.siren import Siren
from nvfilter.models.tiles import TileField

VIDEO = VideoInfo(
    width=97,
    height=55,
    frames=24,
    frame_rate=Fraction(30000, 1001),
    sample_aspect_ratio=Fraction(16, 15),
    color=ColorTags(range="tv", primaries="bt709", transfer=None, matrix="bt709"),
)
TRAINING = TrainResult(steps=12, seconds=3.5, psnr=31.25, stopped_by="time-budget")


@pytest.fixture(params=["siren", "hybrid", "segments", "tiles"])
def model(request):
    torch.manual_seed(1)
    if request.param == "tiles":
        tiles = TileField(VIDEO.width, VIDEO.height, VIDEO.frames, tile=4)
        shape = (VIDEO.frames, VIDEO.height, VIDEO.width, 3)
        tiles.start_from(torch.randint(0, 256, shape, dtype=torch.uint8))
        return tiles
    if request.param == "hybrid":
        return PlaneField(VIDEO.width, VIDEO.height, VIDEO.frames, channels=4, head_features=8)
    if request.param == "segments":
        return SegmentField(
            VIDEO.width, VIDEO.height, VIDEO.frames, segment_frames=8, channels=6,
            coarse_channels=3, levels=2,
        )  # fmt: skip
    return Siren(hidden_features=16, hidden_layers=2)


def write(tmp_path, model, dtype="float32"):
    path = tmp_path / "m.nvw"
    path.write_bytes(nvw.to_bytes(model, VIDEO, TRAINING, dtype))
    return path


def test_round_trip_is_bit_identical_with_equal_metadata(tmp_path, model):
    loaded = nvw.load(write(tmp_path, model))
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    assert loaded.video == VIDEO
    assert loaded.training == TRAINING
    assert loaded.architecture == model.architecture()


def test_plain_safetensors_reads_it_with_documented_keys(tmp_path, model):
    with safe_open(str(write(tmp_path, model)), framework="pt") as handle:
        meta = handle.metadata()
        assert set(handle.keys()) == set(model.state_dict())
    assert meta["format"] == "nvfilter.io.nvw"
    assert meta["format_version"] == ("5" if model.kind == "tiles" else "3")
    assert meta["audio_codec"] == "none"
    assert meta["frame_rate"] == "30000/1001"
    assert meta["sample_aspect_ratio"] == "16/15"
    assert meta["color_transfer"] == "unknown"
    assert float(meta["duration"]) == pytest.approx(24 * 1001 / 30000, abs=1e-6)
    assert json.loads(meta["architecture"])["type"] == model.kind
    for key in meta:
        assert key in nvw.__doc__, f"metadata key {key} is not documented"


def test_float16_storage_halves_the_file_and_loads_close(tmp_path, model):
    full = write(tmp_path, model).stat().st_size
    path = write(tmp_path, model, "float16")
    loaded = nvw.load(path)
    assert loaded.dtype == "float16"
    assert path.stat().st_size < 0.7 * full
    for name, tensor in model.state_dict().items():
        assert torch.allclose(loaded.model.state_dict()[name], tensor, rtol=1e-3, atol=1e-4)


def test_truncated_file(tmp_path, model):
    path = write(tmp_path, model)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(NvwError, match="truncated or not safetensors"):
        nvw.load(path)


def test_not_safetensors(tmp_path):
    path = tmp_path / "x.nvw"
    path.write_bytes(b"this is a text file, not a model\n" * 10)
    with pytest.raises(NvwError, match="not a readable .nvw"):
        nvw.load(path)


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "x.nvw"
    path.write_bytes(save({"a": torch.zeros(2)}))
    with pytest.raises(NvwError, match="not an nvfilter .nvw"):
        nvw.load(path)


def rewrite_metadata(path, drop=(), **changes):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"].update(changes)
    for key in drop:
        del header["__metadata__"][key]
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data[8 + length :])


def test_newer_format_version_is_refused(tmp_path, model):
    path = write(tmp_path, model)
    newer = str(nvw.FORMAT_VERSION + 1)
    rewrite_metadata(path, format_version=newer)
    with pytest.raises(NvwError, match=f"format version {newer} is newer"):
        nvw.load(path)


def test_missing_tensor(tmp_path, model):
    dropped = list(model.state_dict())[-1]
    state = {k: v for k, v in model.state_dict().items() if k != dropped}
    meta = nvw.encode_metadata(model.architecture(), VIDEO, TRAINING, "float32")
    path = tmp_path / "m.nvw"
    path.write_bytes(save(state, metadata=meta))
    with pytest.raises(NvwError, match=f"missing tensors: {dropped}"):
        nvw.load(path)


def test_bad_metadata_value(tmp_path, model):
    path = write(tmp_path, model)
    rewrite_metadata(path, width="wide")
    with pytest.raises(NvwError, match="bad .nvw metadata"):
        nvw.load(path)


def test_audio_is_stored_as_bytes_and_given_back(tmp_path, model):
    sound = bytes(range(256)) * 3 + b"end"
    path = tmp_path / "a.nvw"
    path.write_bytes(nvw.to_bytes(model, VIDEO, TRAINING, audio=(sound, "aac")))
    loaded = nvw.load(path)
    assert loaded.audio == sound
    assert loaded.audio_codec == "aac"
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["audio_codec"] == "aac"
        assert handle.get_tensor("audio").dtype == torch.uint8


def test_training_settings_are_stored_and_files_without_them_still_load(tmp_path, model):
    settings = dataclasses.asdict(TrainConfig(batch_size=4096, lr=3e-4, lr_schedule="cosine"))
    path = tmp_path / "s.nvw"
    training = dataclasses.replace(TRAINING, settings=settings)
    path.write_bytes(nvw.to_bytes(model, VIDEO, training))
    assert nvw.load(path).training == training
    rewrite_metadata(path, drop=["train_settings"])
    assert nvw.load(path).training.settings is None


def test_version_1_file_without_audio_still_loads(tmp_path, model):
    path = write(tmp_path, model)
    rewrite_metadata(path, drop=["audio_codec"], format_version="1")
    loaded = nvw.load(path)
    assert loaded.audio is None and loaded.audio_codec is None


def test_version_2_file_still_loads(tmp_path, model):
    path = write(tmp_path, model)
    rewrite_metadata(path, format_version="2")
    assert nvw.load(path).architecture == model.architecture()


def test_chroma_layout_is_stored_and_files_without_it_read_as_full(tmp_path, model):
    path = tmp_path / "c.nvw"
    path.write_bytes(nvw.to_bytes(model, dataclasses.replace(VIDEO, chroma="420"), TRAINING))
    assert nvw.load(path).video.chroma == "420"
    rewrite_metadata(path, chroma="411")
    with pytest.raises(NvwError, match="chroma = '411' is malformed"):
        nvw.load(path)
    rewrite_metadata(path, drop=["chroma"])
    assert nvw.load(path).video.chroma == "444"
