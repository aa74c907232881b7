"""The .nvw file: the only module that knows its layout.

A .nvw file is a plain safetensors file (https://huggingface.co/docs/safetensors): an 8-byte
little-endian header length, a JSON header, then the raw tensor bytes. Nothing in it is pickled.

* Tensors: the network's ``state_dict``, names as PyTorch gives them, stored as float32 or float16
  (``dtype``): for the tiles model ``basis`` (components, tile, tile, 3: each component's RGB
  picture of its tile), ``weights`` (components, frames: its weight in each frame) and ``ranks``
  (tiles: how many of the components, in order, each tile has, tile rows first; whole numbers
  stored as floats), and for a network whose tiles follow the camera (its architecture has
  ``canvas_width`` and ``canvas_height``) ``places`` (frames, 2: each frame's top-left corner on
  the tiled canvas, x then y, whole pixels stored as floats), layout in models/tiles.py; for the
  segments model each segment's
  ``segments.g.xy.l``, ``segments.g.xt.l``, ``segments.g.yt.l`` and ``decoders.l.*``; for the
  hybrid model ``table`` (every plane's cells, layout in planes.py) and ``head.*``; for SIREN
  ``net.0.linear.weight``, ``net.0.linear.bias``, ..., ``final.weight``,
  ``final.bias``. Optionally ``audio``: uint8, the source's first audio stream as a small MP4 file
  (codecs aac, mp3, alac, opus, flac, ac3, eac3) or else a Matroska file: the compressed packets
  copied, not re-encoded (see audio.py).
* Metadata (``__metadata__``, string to string), every key always present:

  ========================  =====================================================================
  format                    ``nvfilter.io.nvw``
  format_version            ``6`` for a file holding a tiles network that follows the camera
                            (``places``), ``5`` for other tiles networks, ``4`` for a video learned
                            in parts of segments networks, ``3`` for one network (``2``, ``1``:
                            older networks, ``1`` without audio); a reader refuses a version
                            newer than it knows
  nvfilter_version          version of nvfilter that wrote the file
  architecture              JSON: ``type`` (``tiles``, ``segments``, ``hybrid``, ``siren``) and the
                            network's constructor arguments; ``{"type": "parts", "frames": N,
                            "parts": P}`` for a video learned in parts
  dtype                     ``float32`` or ``float16``: precision of the stored tensors
  width, height             size in pixels of the learned frames
  frames                    number of learned frames
  frame_rate                exact fraction, ``30000/1001``
  duration                  seconds, played frames / frame_rate, as a decimal
  timeline                  JSON (absent where the frames are evenly spaced with no cut, as in
                            every file before it): ``times`` (each learned frame's time in
                            frame periods from the first, rising, the first 0; null: frame k
                            at k), ``played`` (frames a play at frame_rate shows), ``cuts``
                            (the learned frames that start a new shot), ``variable`` (the
                            source's rate varied: the times are its timestamps), ``repeats``
                            (repeated source frames left out), ``sources`` (the source frame
                            each learned frame is; null: frame k is k); nvfilter/timeline.py
  sample_aspect_ratio       pixel shape as a fraction, ``1/1`` for square pixels
  color_range               ``tv``, ``pc`` or ``unknown``
  color_primaries           ffmpeg name (``bt709``, ``bt2020``, ...) or ``unknown``
  color_transfer            ffmpeg name (``bt709``, ``smpte2084``, ...) or ``unknown``
  color_matrix              ffmpeg ``colorspace`` name (``bt709``, ``bt470bg``, ...) or ``unknown``
  chroma                    ``420``, ``422`` or ``444``: the learned frames' colour came at half
                            the width and height, half the width, or full size (chroma.py;
                            absent in files written before it: ``444``)
  train_steps               optimiser steps taken
  train_seconds             seconds of training
  train_psnr_db             PSNR in dB of the 8-bit reconstruction of every learned frame
  train_stopped_by          ``epochs``, ``time-budget``, ``target-psnr``, ``interrupt`` or
                            ``fitted`` (a tiles network: fitted in closed form, no steps)
  train_settings            JSON: the training settings (``epochs``, ``batch_size``, ``lr``,
                            ``lr_schedule``, ``time_budget``, ``target_psnr``, ``seed``,
                            ``device``, ``precision``, ``compile``); ``{}`` where not known, and
                            absent in files written before it (which still read)
  audio_codec               codec of the ``audio`` tensor's stream (``aac``, ``opus``, ...), or
                            ``none`` when the file holds no sound (version 2)
  parts                     (version 4 only) JSON list, one object per part in order:
                            ``first`` (its first source frame), ``frames``, ``architecture`` (the
                            part's network, its ``frames`` the part's), ``train_steps``,
                            ``train_seconds``, ``train_psnr_db``, ``train_stopped_by``; part k's
                            tensors are named ``part.k.`` + the network's own names. Part 0
                            starts at frame 0, each next part on the last frame of the one before,
                            and the last ends on the video's last frame
  ========================  =====================================================================

A reader opens a version-4 file lazily: the index and every tensor's name and shape are checked
against the parts' architectures before anything is built, and a part's tensors are read only when
a frame of it is (decode/parts stream).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from nvfilter.chroma import LAYOUTS
from nvfilter.config import MAX_FPS, MAX_FRAMES, MAX_SIDE, ColorTags, TrainResult, VideoInfo
from nvfilter.errors import NvwError
from nvfilter.models import MODELS, build_model, spec_of
from nvfilter.models.field import VideoField
from nvfilter.models.parts import PartsField, PartSpan
from nvfilter.models.spec import SINGLE_VERSION
from nvfilter.timeline import Timeline
from nvfilter.version import __version__

FORMAT_NAME = "nvfilter.io.nvw"
FORMAT_VERSION = 7
"""The newest version this reader knows: a file of coded parts (models/codec.py). A file is
written at the version its models need (ModelSpec.format_version: a tiles network 5, or 6
where it follows the camera; a file of parts of other networks PARTS_VERSION; one network
SINGLE_VERSION), so the readers since each version decode it."""
PARTS_VERSION = 4
PART_PREFIX = "part."
MAX_PARTS = 1_000_000
AUDIO_TENSOR = "audio"
DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass
class NvwFile:
    """A loaded .nvw: the rebuilt network (float32, eval mode) and what the metadata says."""

    model: VideoField
    architecture: dict[str, Any]
    video: VideoInfo
    training: TrainResult
    dtype: str
    nvfilter_version: str
    metadata: dict[str, str]
    audio: bytes | None = None
    """The stored audio stream (a Matroska file), None when there is none."""
    audio_codec: str | None = None
    parameters: int = 0
    """Numbers the network stores (every part's, for a video learned in parts)."""


def _tag(value: str | None) -> str:
    return value or "unknown"


def _untag(value: str) -> str | None:
    return None if value == "unknown" else value


def _chroma(value: str) -> str:
    if value not in LAYOUTS:
        raise ValueError(value)
    return value


def format_version(architectures: list[dict[str, Any]]) -> int:
    """The format version of a file holding these networks: the newest any of them needs
    (ModelSpec.format_version), at least PARTS_VERSION for several parts."""
    needed = [spec_of(a["type"]).format_version(a) for a in architectures]
    return max([*needed, PARTS_VERSION if len(architectures) > 1 else SINGLE_VERSION])


def encode_metadata(
    architecture: dict[str, Any],
    video: VideoInfo,
    training: TrainResult,
    dtype: str,
    audio_codec: str | None = None,
) -> dict[str, str]:
    """The metadata header of a .nvw (see the module docstring for each key)."""
    kind = architecture.get("type")
    version = PARTS_VERSION if kind == "parts" else format_version([architecture])
    return {
        "format": FORMAT_NAME,
        "format_version": str(version),
        "nvfilter_version": __version__,
        "architecture": json.dumps(architecture, sort_keys=True),
        "dtype": dtype,
        "width": str(video.width),
        "height": str(video.height),
        "frames": str(video.frames),
        "frame_rate": f"{video.frame_rate.numerator}/{video.frame_rate.denominator}",
        "duration": f"{video.duration:.6f}",
        "sample_aspect_ratio": (
            f"{video.sample_aspect_ratio.numerator}/{video.sample_aspect_ratio.denominator}"
        ),
        "color_range": _tag(video.color.range),
        "color_primaries": _tag(video.color.primaries),
        "color_transfer": _tag(video.color.transfer),
        "color_matrix": _tag(video.color.matrix),
        "chroma": video.chroma,
        "train_steps": str(training.steps),
        "train_seconds": f"{training.seconds:.3f}",
        "train_psnr_db": f"{training.psnr:.4f}",
        "train_stopped_by": training.stopped_by,
        "train_settings": json.dumps(training.settings or {}, sort_keys=True),
        "audio_codec": audio_codec or "none",
        **({"timeline": video.timeline.to_json()} if video.timeline is not None else {}),
    }


def round_to_stored(model: nn.Module, dtype: str) -> None:
    """Round ``model``'s floating-point tensors, in place, to the precision ``dtype`` stores them
    in, so that what is scored is what the file holds."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}")
    stored = DTYPES[dtype]
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() and tensor.dtype != stored:  # float32 in float32: as is
                tensor.copy_(tensor.to(stored))
    forget = getattr(model, "forget_render_cache", None)
    if forget is not None:
        forget()


def to_bytes(
    model: nn.Module,
    video: VideoInfo,
    training: TrainResult,
    dtype: str = "float32",
    audio: tuple[bytes, str] | None = None,
) -> bytes:
    """Serialise a trained network, its video facts and optionally (stream bytes, codec) of the
    source's audio to .nvw bytes."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}")
    tensors = {
        name: _stored(tensor.detach().cpu(), dtype).contiguous()
        for name, tensor in model.state_dict().items()
    }
    if audio is not None:
        tensors[AUDIO_TENSOR] = torch.frombuffer(bytearray(audio[0]), dtype=torch.uint8)
    metadata = encode_metadata(
        model.architecture(),  # type: ignore[operator]
        video,
        training,
        dtype,
        audio[1] if audio is not None else None,
    )
    return save(tensors, metadata=metadata)


def _stored(tensor: torch.Tensor, dtype: str) -> torch.Tensor:
    """A tensor as the file stores it: floating point in ``dtype``, bytes (a coded stream) as
    they are."""
    return tensor.to(DTYPES[dtype]) if tensor.is_floating_point() else tensor


def decode_metadata(metadata: dict[str, str]) -> tuple[dict[str, Any], VideoInfo, TrainResult]:
    """Parse the metadata header; raises NvwError naming what is wrong."""
    version = _format_version(metadata)

    def field(key: str, parse: Callable[[str], Any]) -> Any:
        return _field(metadata, key, parse)

    architecture = field("architecture", json.loads)
    video = VideoInfo(
        width=field("width", int),
        height=field("height", int),
        frames=field("frames", int),
        frame_rate=field("frame_rate", Fraction),
        sample_aspect_ratio=field("sample_aspect_ratio", Fraction),
        color=ColorTags(
            range=field("color_range", _untag),
            primaries=field("color_primaries", _untag),
            transfer=field("color_transfer", _untag),
            matrix=field("color_matrix", _untag),
        ),
        chroma=field("chroma", _chroma) if "chroma" in metadata else "444",
    )
    if "timeline" in metadata:
        frames = video.frames
        timeline = field("timeline", lambda text: Timeline.from_json(text, frames))
        video = dataclasses.replace(video, timeline=timeline)
    settings = field("train_settings", json.loads) if "train_settings" in metadata else {}
    if not isinstance(settings, dict):
        raise NvwError("bad .nvw metadata: train_settings is not an object")
    training = TrainResult(
        steps=field("train_steps", int),
        seconds=field("train_seconds", float),
        psnr=field("train_psnr_db", float),
        stopped_by=field("train_stopped_by", str),
        settings=settings or None,
    )
    _check_ranges(video, training)
    _check_network_fits(architecture, video, version)
    return architecture, video, training


def _format_version(metadata: dict[str, str]) -> int:
    """The file's format version, checked to be an nvfilter .nvw this nvfilter reads."""
    if metadata.get("format") != FORMAT_NAME:
        raise NvwError("not an nvfilter .nvw file (safetensors without nvfilter metadata)")
    try:
        version = int(metadata["format_version"])
    except (KeyError, ValueError):
        raise NvwError("bad .nvw: no readable format_version") from None
    if version < 1:
        raise NvwError(f"bad .nvw: format_version {version} is not a version")
    if version > FORMAT_VERSION:
        raise NvwError(
            f".nvw format version {version} is newer than this nvfilter reads "
            f"({FORMAT_VERSION}): upgrade nvfilter"
        )
    return version


def _field(metadata: dict[str, str], key: str, parse: Callable[[str], Any]) -> Any:
    """One metadata value parsed strictly; a missing or malformed one names its key."""
    if key not in metadata:
        raise NvwError(f"bad .nvw metadata: no {key}")
    try:
        return parse(metadata[key])
    except (ValueError, TypeError, ZeroDivisionError, json.JSONDecodeError):
        raise NvwError(f"bad .nvw metadata: {key} = {metadata[key]!r:.60} is malformed") from None


def _check_ranges(video: VideoInfo, training: TrainResult) -> None:
    """Refuse sizes, counts and rates no nvfilter file has (a lying header)."""
    if training.steps < 0 or not training.seconds >= 0:
        raise NvwError("bad .nvw metadata: train_steps or train_seconds is negative")
    if min(video.width, video.height, video.frames) <= 0 or video.frame_rate <= 0:
        raise NvwError("bad .nvw metadata: non-positive size, frame count or rate")
    if max(video.width, video.height) > MAX_SIDE or video.frames > MAX_FRAMES:
        raise NvwError(
            f"bad .nvw metadata: {video.width}x{video.height}, {video.frames} frames is larger "
            f"than any video nvfilter makes (at most {MAX_SIDE} a side, {MAX_FRAMES} frames)"
        )
    if video.frame_rate > MAX_FPS or video.sample_aspect_ratio <= 0:
        raise NvwError("bad .nvw metadata: frame rate or pixel aspect ratio out of range")


def _check_network_fits(architecture: Any, video: VideoInfo, version: int) -> None:
    """Refuse an architecture that is malformed, or that was learned for another video."""
    if isinstance(architecture, dict) and architecture.get("type") == "parts" and version >= 4:
        check_parts_architecture(architecture, video)
    else:
        check_architecture(architecture)
        for key in ("width", "height", "frames"):  # a network learned for another video
            if key in architecture and architecture[key] != getattr(video, key):
                raise NvwError(
                    f"bad .nvw metadata: the network's {key} {architecture[key]} is not "
                    f"the video's {getattr(video, key)}"
                )


def check_parts_architecture(architecture: Any, video: VideoInfo) -> None:
    """The top-level architecture of a video learned in parts: its frames and part count."""
    if set(architecture) != {"type", "frames", "parts"}:
        raise NvwError("bad .nvw metadata: a parts architecture holds type, frames and parts")
    frames, parts = architecture["frames"], architecture["parts"]
    if type(frames) is not int or frames != video.frames:
        raise NvwError(f"bad .nvw metadata: architecture frames {frames!r} is not {video.frames}")
    if type(parts) is not int or not 1 <= parts <= min(MAX_PARTS, video.frames):
        raise NvwError(f"bad .nvw metadata: architecture parts = {parts!r} is out of range")


ARCHITECTURE_INT_LIMIT = 1 << 20
"""Largest whole number an architecture field may hold (a size, a width, a count)..."""
LARGE_COUNTS = {"components": 1 << 31, "stream_bytes": 1 << 40}
"""... except a tiles network's component count (1080p: about 300,000 a part; the network
checks it against its tiles and frames) and a coded part's bytes (checked against the file's
tensor)."""
FLOAT_LIMIT = 1e12
"""Largest magnitude of a number with a fraction in an architecture (bits a frame: millions)."""


def check_architecture(architecture: Any) -> None:
    """Refuse an architecture that is not a flat object of small plain values naming a known
    network, before anything is built from it."""
    if not isinstance(architecture, dict):
        raise NvwError("bad .nvw metadata: architecture is not an object")
    kind = architecture.get("type")
    if not isinstance(kind, str) or kind not in MODELS:
        raise NvwError(f"bad .nvw metadata: unknown model type {kind!r}")
    for key, value in architecture.items():
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        limit = LARGE_COUNTS.get(key, ARCHITECTURE_INT_LIMIT)
        if isinstance(value, int) and 0 <= value <= limit:
            continue
        if isinstance(value, float) and math.isfinite(value) and abs(value) <= FLOAT_LIMIT:
            continue
        raise NvwError(f"bad .nvw metadata: architecture {key} = {value!r} is out of range")


def load(path: Path, label: str | None = None) -> NvwFile:
    """Open a .nvw file and rebuild its network; raises NvwError with one clear line if bad.

    ``label`` names the file in messages (``-`` for standard input spooled to ``path``). A file
    of parts is checked whole and its parts are read from it when played (the file may be
    removed once opened: it stays mapped).
    """
    name = label or str(path)
    if not path.is_file():
        raise NvwError(f"{name}: no such file")
    try:
        handle = safe_open(str(path), framework="pt")
        metadata = handle.metadata() or {}
        names = list(handle.keys())
    except (SafetensorError, OSError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NvwError(
            f"{name}: not a readable .nvw file (truncated or not safetensors: {detail})"
        ) from None
    try:
        architecture, video, training = decode_metadata(metadata)
    except NvwError as err:
        raise NvwError(f"{name}: {err}") from None
    audio = None
    if AUDIO_TENSOR in names:
        names.remove(AUDIO_TENSOR)
        audio_tensor = handle.get_slice(AUDIO_TENSOR)
        if audio_tensor.get_dtype() != "U8" or len(audio_tensor.get_shape()) != 1:
            raise NvwError(f"{name}: .nvw audio is not a byte string ({audio_tensor.get_dtype()})")
        audio = handle.get_tensor(AUDIO_TENSOR).numpy().tobytes()
    audio_codec = metadata.get("audio_codec", "none")
    model: VideoField
    if architecture["type"] == "parts":
        model, parameters = _open_parts(handle, path, names, metadata, video, name)
    else:
        model = _load_single(architecture, {key: handle.get_tensor(key) for key in names}, name)
        parameters = sum(p.numel() for p in model.parameters())
    return NvwFile(
        model=model,
        architecture=architecture,
        video=video,
        training=training,
        dtype=metadata.get("dtype", "float32"),
        nvfilter_version=metadata.get("nvfilter_version", "unknown"),
        metadata=metadata,
        audio=audio,
        audio_codec=None if audio is None or audio_codec == "none" else audio_codec,
        parameters=parameters,
    )


def _load_single(
    architecture: dict[str, Any], tensors: dict[str, torch.Tensor], name: str
) -> VideoField:
    """One network from its architecture and tensors, checked before it is built."""
    shapes = {
        key: (tuple(value.shape), value.is_floating_point()) for key, value in tensors.items()
    }
    if any(value.dtype not in (*FLOAT_TORCH, torch.uint8) for value in tensors.values()):
        raise NvwError(f"{name}: .nvw tensors are neither floating point nor bytes")
    _check_tensors(_expected_shapes(architecture, shapes, name), shapes, name)
    return _build_loaded(architecture, tensors, name)


def _build_loaded(
    architecture: dict[str, Any], tensors: dict[str, torch.Tensor], name: str
) -> VideoField:
    """The network built and given its (already checked) tensors, in eval mode."""
    model = build_model(architecture)
    try:
        model.load_state_dict(  # its tensors become the network's, not copied into it
            {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
            strict=True,
            assign=True,
        )
    except RuntimeError as err:
        raise NvwError(
            f"{name}: .nvw tensors do not fit its architecture ({str(err).splitlines()[0]})"
        ) from None
    return model.eval()


TORCH_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
                "F64": torch.float64, "U8": torch.uint8}  # fmt: skip
"""The safetensors dtypes a network's tensors may be stored in, as torch's: floating point,
or bytes (a coded stream)."""
FLOAT_DTYPES = frozenset(TORCH_DTYPES) - {"U8"}
FLOAT_TORCH = tuple(TORCH_DTYPES[name] for name in FLOAT_DTYPES)


def parse_parts(metadata: dict[str, str], video: VideoInfo, name: str) -> list[PartSpan]:
    """The index of a file of parts, each entry checked: plain whole numbers, parts that follow
    one another (each starting on the last frame of the one before) and end on the last frame,
    each architecture a known network of the video's size and the part's frames."""
    try:
        index = json.loads(metadata["parts"])
    except (KeyError, json.JSONDecodeError):
        raise NvwError(f"{name}: bad .nvw metadata: no readable parts index") from None
    expected_parts = json.loads(metadata["architecture"])["parts"]
    if not isinstance(index, list) or len(index) != expected_parts:
        raise NvwError(f"{name}: bad .nvw metadata: parts is not a list of {expected_parts} parts")
    spans = []
    first = 0
    for k, entry in enumerate(index):
        where = f"{name}: bad .nvw metadata: parts[{k}]"
        if not isinstance(entry, dict):
            raise NvwError(f"{where} is not an object")
        begin, frames, architecture = (
            entry.get("first"),
            entry.get("frames"),
            entry.get("architecture"),
        )
        if type(begin) is not int or begin != first:
            raise NvwError(f"{where}.first = {begin!r}, the part before ends at frame {first}")
        if type(frames) is not int or not 1 <= frames <= video.frames - begin:
            raise NvwError(f"{where}.frames = {frames!r} is out of range")
        try:
            check_architecture(architecture)
        except NvwError as err:
            raise NvwError(f"{where}: {str(err).removeprefix('bad .nvw metadata: ')}") from None
        assert isinstance(architecture, dict)
        if architecture["type"] == "parts" or (
            architecture.get("width"),
            architecture.get("height"),
            architecture.get("frames"),
        ) not in ((video.width, video.height, frames), (None, None, None)):
            raise NvwError(f"{where}.architecture is not a network of {video.width}x"
                           f"{video.height}, {frames} frames")  # fmt: skip
        spans.append(PartSpan(begin, frames, architecture))
        first = begin + frames - 1
    if first != video.frames - 1 and not (video.frames == 1 and first == 0):
        raise NvwError(f"{name}: bad .nvw metadata: the parts end at frame {first}, "
                       f"the video at {video.frames - 1}")  # fmt: skip
    return spans


def _open_parts(
    handle: Any,
    path: Path,
    names: list[str],
    metadata: dict[str, str],
    video: VideoInfo,
    name: str,
) -> tuple[PartsField, int]:
    """A PartsField reading its parts from the open file, once every part's tensors are checked
    (name for name, shape for shape) against its architecture; and the numbers stored."""
    spans = parse_parts(metadata, video, name)
    by_part: dict[int, dict[str, tuple[tuple[int, ...], bool]]] = {}
    for key in names:
        head, _, rest = key.partition(".")
        number, _, tensor = rest.partition(".")
        if head + "." != PART_PREFIX or not number.isdigit() or int(number) >= len(spans):
            raise NvwError(f"{name}: .nvw tensor {key} belongs to no part")
        part = handle.get_slice(key)
        shape = tuple(int(d) for d in part.get_shape())
        if part.get_dtype() not in TORCH_DTYPES:
            raise NvwError(f"{name}: .nvw tensor {key} is neither floating point nor bytes")
        by_part.setdefault(int(number), {})[tensor] = (shape, part.get_dtype() in FLOAT_DTYPES)
    known: dict[str, dict[str, tuple[tuple[int, ...], bool]]] = {}
    stored = 0
    for k, span in enumerate(spans):
        shapes = by_part.get(k, {})
        label = f"{name} part {k}"
        key = json.dumps(span.architecture, sort_keys=True)
        if key not in known:
            known[key] = _expected_shapes(span.architecture, shapes, label)
        _check_tensors(known[key], shapes, label)
        stored += sum(math.prod(shape) for shape, _ in shapes.values())

    reader = TensorReader(path)

    def load_part(k: int) -> VideoField:
        prefix = f"{PART_PREFIX}{k}."
        tensors = {key: reader.read(prefix + key) for key in by_part[k]}
        return _build_loaded(spans[k].architecture, tensors, f"{name} part {k}")  # checked above

    return PartsField(video.frames, spans, load_part), stored


class TensorReader:
    """Tensors of a safetensors file read with plain reads (pread) at the offsets its header
    gives, not through a memory map: a long file's parts, read one after another, then leave no
    mapped pages behind in the process's memory (a 3.5 GB file of parts held 3.5 GB resident
    when read through the map). The file stays open, so it may be removed once opened. Only
    called for tensors already checked against the header by safetensors (names, dtypes)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        (length,) = struct.unpack("<Q", self._file.read(8))
        self._header = json.loads(self._file.read(length))
        self._data = 8 + length

    def read(self, key: str) -> torch.Tensor:
        entry = self._header[key]
        begin, end = entry["data_offsets"]
        raw = bytearray(os.pread(self._file.fileno(), end - begin, self._data + begin))
        if len(raw) != end - begin:
            raise NvwError(f".nvw tensor {key} is truncated")
        shape = [int(d) for d in entry["shape"]]
        if not raw:
            return torch.empty(shape, dtype=TORCH_DTYPES[entry["dtype"]])
        return torch.frombuffer(raw, dtype=TORCH_DTYPES[entry["dtype"]]).reshape(shape)


def _expected_shapes(
    architecture: dict[str, Any], shapes: dict[str, tuple[tuple[int, ...], bool]], name: str
) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Every tensor name, shape and whether it is floating point, as the architecture's network
    has them, found on a weightless copy (torch's meta device), and only once its tensor count
    is near what the file holds."""
    try:
        count = getattr(MODELS[architecture["type"]], "tensor_count", None)
        needed = count(architecture) if count is not None else None
        if needed is not None and needed > 2 * len(shapes) + 16:  # not worth building
            raise NvwError(
                f"{name}: .nvw is missing tensors: it holds {len(shapes)}, its architecture "
                f"needs {needed}"
            )
        with torch.device("meta"):
            shape_only = build_model(architecture)
        return {
            key: (tuple(value.shape), value.is_floating_point())
            for key, value in shape_only.state_dict().items()
        }
    except (
        KeyError, TypeError, ValueError, RuntimeError, NotImplementedError, ZeroDivisionError
    ) as err:  # fmt: skip
        raise NvwError(f"{name}: unknown architecture in .nvw ({err})") from None


def _check_tensors(
    expected: dict[str, tuple[tuple[int, ...], bool]],
    shapes: dict[str, tuple[tuple[int, ...], bool]],
    name: str,
) -> None:
    """The file's tensors are exactly the expected ones, in shape and floating point (or bytes,
    where the network holds bytes)."""
    missing = sorted(set(expected) - set(shapes))
    if missing:
        raise NvwError(
            f"{name}: .nvw is missing tensors: {', '.join(missing[:4])}"
            + (" ..." if len(missing) > 4 else "")
        )
    for key, (shape, floating) in shapes.items():
        if key not in expected:
            raise NvwError(f"{name}: .nvw tensor {key} is not part of its architecture")
        if shape != expected[key][0]:
            raise NvwError(
                f"{name}: .nvw tensor {key} has shape {shape}, its architecture "
                f"needs {expected[key][0]}"
            )
        if floating != expected[key][1]:
            kind = "floating point" if expected[key][1] else "bytes"
            raise NvwError(f"{name}: .nvw tensor {key} is not {kind}")


SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.uint8: "U8"}


def join_parts(
    part_files: list[Path],
    video: VideoInfo,
    training: TrainResult,
    dtype: str,
    audio: tuple[bytes, str] | None = None,
) -> Iterator[bytes]:
    """The bytes of one version-4 .nvw made of the single-network .nvw files of a video's
    parts (in order; each learned its own frames), as a stream: the safetensors header, then
    each tensor's bytes read from its part file, so memory holds one tensor at a time."""
    index: list[dict[str, Any]] = []
    entries: list[tuple[str, Path, str, torch.dtype, list[int]]] = []
    first = 0
    for k, path in enumerate(part_files):
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata()
            for key in handle.keys():
                if key == AUDIO_TENSOR:
                    continue
                piece = handle.get_slice(key)
                stored = DTYPES[dtype] if piece.get_dtype() in FLOAT_DTYPES else torch.uint8
                entries.append((f"{PART_PREFIX}{k}.{key}", path, key, stored, piece.get_shape()))
        frames = int(meta["frames"])
        index.append(
            {
                "first": first,
                "frames": frames,
                "architecture": json.loads(meta["architecture"]),
                "train_steps": int(meta["train_steps"]),
                "train_seconds": float(meta["train_seconds"]),
                "train_psnr_db": float(meta["train_psnr_db"]),
                "train_stopped_by": meta["train_stopped_by"],
            }
        )
        first += frames - 1
    architecture = {"type": "parts", "frames": video.frames, "parts": len(part_files)}
    metadata = encode_metadata(architecture, video, training, dtype, audio[1] if audio else None)
    metadata["parts"] = json.dumps(index, sort_keys=True)
    metadata["format_version"] = str(format_version([entry["architecture"] for entry in index]))
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, _, _, stored, shape in entries:
        size = math.prod(shape) * torch.empty(0, dtype=stored).element_size()
        header[name] = {"dtype": SAFETENSORS_DTYPES[stored], "shape": shape,
                        "data_offsets": [offset, offset + size]}  # fmt: skip
        offset += size
    if audio is not None:
        header[AUDIO_TENSOR] = {"dtype": "U8", "shape": [len(audio[0])],
                                "data_offsets": [offset, offset + len(audio[0])]}  # fmt: skip
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    yield struct.pack("<Q", len(blob)) + blob
    handles: dict[Path, Any] = {}
    for _, path, key, stored, _ in entries:
        if path not in handles:
            handles.clear()  # one part file open at a time
            handles[path] = safe_open(str(path), framework="pt")
        yield handles[path].get_tensor(key).to(stored).contiguous().numpy().tobytes()
    if audio is not None:
        yield audio[0]
