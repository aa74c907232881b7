"""The .nvw file: the only module that knows its layout.

A .nvw file is a plain safetensors file (https://huggingface.co/docs/safetensors): an 8-byte
little-endian header length, a JSON header, then the raw tensor bytes. Nothing in it is pickled.

* Tensors: the network's ``state_dict``, names as PyTorch gives them, stored as float32 or float16
  (``dtype``): for the hybrid model ``table`` (every plane's cells, layout in hybrid.py) and
  ``head.*``; for SIREN ``net.0.linear.weight``, ``net.0.linear.bias``, ..., ``final.weight``,
  ``final.bias``. Optionally ``audio``: uint8, the source's first audio stream as a small MP4 file
  (codecs aac, mp3, alac, opus, flac, ac3, eac3) or else a Matroska file: the compressed packets
  copied, not re-encoded (see audio.py).
* Metadata (``__metadata__``, string to string), every key always present:

  ========================  =====================================================================
  format                    ``nvfilter.io.nvw``
  format_version            ``2`` (``1``: the same without audio); a reader refuses a version
                            newer than it knows
  nvfilter_version          version of nvfilter that wrote the file
  architecture              JSON: ``type`` (``hybrid``, ``siren``) and the network's constructor
                            arguments
  dtype                     ``float32`` or ``float16``: precision of the stored tensors
  width, height             size in pixels of the learned frames
  frames                    number of learned frames
  frame_rate                exact fraction, ``30000/1001``
  duration                  seconds, frames / frame_rate, as a decimal
  sample_aspect_ratio       pixel shape as a fraction, ``1/1`` for square pixels
  color_range               ``tv``, ``pc`` or ``unknown``
  color_primaries           ffmpeg name (``bt709``, ``bt2020``, ...) or ``unknown``
  color_transfer            ffmpeg name (``bt709``, ``smpte2084``, ...) or ``unknown``
  color_matrix              ffmpeg ``colorspace`` name (``bt709``, ``bt470bg``, ...) or ``unknown``
  train_steps               optimiser steps taken
  train_seconds             seconds of training
  train_psnr_db             PSNR in dB of the 8-bit reconstruction of every learned frame
  train_stopped_by          ``epochs``, ``time-budget``, ``target-psnr`` or ``interrupt``
  train_settings            JSON: the training settings (``epochs``, ``batch_size``, ``lr``,
                            ``lr_schedule``, ``time_budget``, ``target_psnr``, ``seed``,
                            ``device``, ``precision``, ``compile``); ``{}`` where not known, and
                            absent in files written before it (which still read)
  audio_codec               codec of the ``audio`` tensor's stream (``aac``, ``opus``, ...), or
                            ``none`` when the file holds no sound (version 2)
  ========================  =====================================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from nvfilter import __version__
from nvfilter.config import MAX_FPS, MAX_FRAMES, MAX_SIDE, ColorTags, TrainResult, VideoInfo
from nvfilter.errors import NvwError
from nvfilter.models import MODELS, build_model
from nvfilter.models.field import VideoField

FORMAT_NAME = "nvfilter.io.nvw"
FORMAT_VERSION = 3
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


def _tag(value: str | None) -> str:
    return value or "unknown"


def _untag(value: str) -> str | None:
    return None if value == "unknown" else value


def encode_metadata(
    architecture: dict[str, Any],
    video: VideoInfo,
    training: TrainResult,
    dtype: str,
    audio_codec: str | None = None,
) -> dict[str, str]:
    """The metadata header of a .nvw (see the module docstring for each key)."""
    return {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
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
        "train_steps": str(training.steps),
        "train_seconds": f"{training.seconds:.3f}",
        "train_psnr_db": f"{training.psnr:.4f}",
        "train_stopped_by": training.stopped_by,
        "train_settings": json.dumps(training.settings or {}, sort_keys=True),
        "audio_codec": audio_codec or "none",
    }


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
        name: tensor.detach().to("cpu", DTYPES[dtype]).contiguous()
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


def decode_metadata(metadata: dict[str, str]) -> tuple[dict[str, Any], VideoInfo, TrainResult]:
    """Parse the metadata header; raises NvwError naming what is wrong."""
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
    try:
        architecture = json.loads(metadata["architecture"])
        video = VideoInfo(
            width=int(metadata["width"]),
            height=int(metadata["height"]),
            frames=int(metadata["frames"]),
            frame_rate=Fraction(metadata["frame_rate"]),
            sample_aspect_ratio=Fraction(metadata["sample_aspect_ratio"]),
            color=ColorTags(
                range=_untag(metadata["color_range"]),
                primaries=_untag(metadata["color_primaries"]),
                transfer=_untag(metadata["color_transfer"]),
                matrix=_untag(metadata["color_matrix"]),
            ),
        )
        settings = json.loads(metadata.get("train_settings", "{}"))
        if not isinstance(settings, dict):
            raise ValueError("train_settings is not an object")
        training = TrainResult(
            steps=int(metadata["train_steps"]),
            seconds=float(metadata["train_seconds"]),
            psnr=float(metadata["train_psnr_db"]),
            stopped_by=metadata["train_stopped_by"],
            settings=settings or None,
        )
    except (KeyError, ValueError, ZeroDivisionError, json.JSONDecodeError) as err:
        raise NvwError(f"bad .nvw metadata: {type(err).__name__} {err}") from None
    if min(video.width, video.height, video.frames) <= 0 or video.frame_rate <= 0:
        raise NvwError("bad .nvw metadata: non-positive size, frame count or rate")
    if max(video.width, video.height) > MAX_SIDE or video.frames > MAX_FRAMES:
        raise NvwError(
            f"bad .nvw metadata: {video.width}x{video.height}, {video.frames} frames is larger "
            f"than any video nvfilter makes (at most {MAX_SIDE} a side, {MAX_FRAMES} frames)"
        )
    if video.frame_rate > MAX_FPS or video.sample_aspect_ratio <= 0:
        raise NvwError("bad .nvw metadata: frame rate or pixel aspect ratio out of range")
    check_architecture(architecture)
    return architecture, video, training


ARCHITECTURE_INT_LIMIT = 1 << 20
"""Largest whole number an architecture field may hold (a size, a width, a count)."""


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
        if isinstance(value, int) and 0 <= value <= ARCHITECTURE_INT_LIMIT:
            continue
        if isinstance(value, float) and math.isfinite(value) and abs(value) <= 1e6:
            continue
        raise NvwError(f"bad .nvw metadata: architecture {key} = {value!r} is out of range")


def load(path: Path, label: str | None = None) -> NvwFile:
    """Open a .nvw file and rebuild its network; raises NvwError with one clear line if bad.

    ``label`` names the file in messages (``-`` for standard input spooled to ``path``).
    """
    name = label or str(path)
    if not path.is_file():
        raise NvwError(f"{name}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NvwError(
            f"{name}: not a readable .nvw file (truncated or not safetensors: {detail})"
        ) from None
    try:
        architecture, video, training = decode_metadata(metadata)
    except NvwError as err:
        raise NvwError(f"{name}: {err}") from None
    audio_tensor = tensors.pop(AUDIO_TENSOR, None)
    if audio_tensor is not None and (audio_tensor.dtype != torch.uint8 or audio_tensor.dim() != 1):
        raise NvwError(f"{name}: .nvw audio is not a byte string ({audio_tensor.dtype})")
    audio = None if audio_tensor is None else audio_tensor.numpy().tobytes()
    model = _build_checked(architecture, tensors, name)
    audio_codec = metadata.get("audio_codec", "none")
    try:
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as err:
        raise NvwError(
            f"{name}: .nvw tensors do not fit its architecture ({str(err).splitlines()[0]})"
        ) from None
    model.eval()
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
    )


def _build_checked(
    architecture: dict[str, Any], tensors: dict[str, torch.Tensor], name: str
) -> VideoField:
    """The network, built only once a weightless copy (torch's meta device) shows that the
    file's tensors are exactly the ones it has, name for name and shape for shape."""
    try:
        count = getattr(MODELS[architecture["type"]], "tensor_count", None)
        needed = count(architecture) if count is not None else None
        if needed is not None and needed > 2 * len(tensors) + 16:  # not worth building
            raise NvwError(
                f"{name}: .nvw is missing tensors: it holds {len(tensors)}, its architecture "
                f"needs {needed}"
            )
        with torch.device("meta"):
            shape_only = build_model(architecture)
        expected = {key: tuple(value.shape) for key, value in shape_only.state_dict().items()}
    except (
        KeyError, TypeError, ValueError, RuntimeError, NotImplementedError, ZeroDivisionError
    ) as err:  # fmt: skip
        raise NvwError(f"{name}: unknown architecture in .nvw ({err})") from None
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise NvwError(
            f"{name}: .nvw is missing tensors: {', '.join(missing[:4])}"
            + (" ..." if len(missing) > 4 else "")
        )
    for key, value in tensors.items():
        if key in expected and tuple(value.shape) != expected[key]:
            raise NvwError(
                f"{name}: .nvw tensor {key} has shape {tuple(value.shape)}, its architecture "
                f"needs {expected[key]}"
            )
        if not value.is_floating_point():
            raise NvwError(f"{name}: .nvw tensor {key} is not floating point ({value.dtype})")
    return build_model(architecture)
