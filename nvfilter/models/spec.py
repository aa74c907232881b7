"""What a model is, declared once beside its network: its name, its defaults and its traits.

Each model file registers one ``ModelSpec`` (``register``); ``nvfilter.models`` imports every
model file, so the registry knows them all. Encode, decode, the .nvw reader and the command line
ask the spec rather than comparing names: adding a model is its file and one import line in
``models/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nvfilter.models.field import VideoField

SINGLE_VERSION = 3
"""The .nvw format version of a file of one trained network (io/nvw.py)."""


@dataclass(frozen=True)
class PartShape:
    """What a streamed model's part network is built from (encode/part_plan.py)."""

    width: int
    height: int
    frames: int
    """The part's frames (its own and the one it shares with the next)."""
    part_frames: int
    """Frames from one part to the next (--segment-frames)."""
    chroma: str
    """The frames' colour layout (chroma.py)."""
    settings: Mapping[str, Any]
    """Every encode setting, the model's defaults filled in."""


@dataclass(frozen=True)
class ModelSpec:
    """One model: its network class and everything encode, decode and the file need of it."""

    name: str
    network: type[VideoField]
    help: str
    """What it is, in a phrase, for --help."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Its values for the encode settings the user leaves out (epochs, lr, ...)."""
    gpu_defaults: Mapping[str, Any] = field(default_factory=dict)
    """What differs from ``defaults`` when training on a CUDA GPU."""
    streamed: bool = False
    """Learned part by part, a network a part (encode/parts.py); else the whole video at once."""
    dtype: str = "float32"
    """What --dtype auto stores its floating-point tensors in."""
    refuses: tuple[str, ...] = ()
    """Encode settings (EncodeOptions fields) that make no sense for it, refused when given."""
    refuse_reason: str = ""
    fit_bytes_per_pixel: int = 0
    """Memory a part's fit holds besides its frames, per pixel of the part (the memory check)."""
    cuda_precision: str = "float32"
    """What --precision auto trains it in on an NVIDIA GPU."""
    compiles: bool = False
    """Whether --compile (torch.compile of its plain form) applies."""
    trains_until_budget: bool = False
    """Whether a --time-budget without --epochs trains it for the whole budget."""
    footprint: bool = False
    """Whether it can read pixel footprints (--footprint)."""
    coded: bool = False
    """Whether it codes for a quality or a rate (--quality, --bitrate, --bits-per-pixel), with
    a budget of bits by default (encode/part_plan.py)."""
    format_version: Callable[[dict[str, Any]], int] = lambda architecture: SINGLE_VERSION
    """The .nvw format version a file holding this architecture is written as."""
    build: Callable[[Mapping[str, Any], int, int, int], tuple[VideoField, str]] | None = None
    """A whole-video model: (settings, width, height, frames) -> its network before training
    and a phrase describing it."""
    part_architecture: Callable[[PartShape], dict[str, Any]] | None = None
    """A streamed model: a part's architecture before its fit."""
    describe_parts: Callable[[PartShape, str], str] | None = None
    """A streamed model: the encoder's phrase for its parts ("N parts of F frames" given)."""
    part_frames: Callable[[int, int], int] | None = None
    """A streamed model with no ``segment_frames`` default: its part length for frames of
    (width, height)."""
    stored_bytes: Callable[[Mapping[str, Any], int, int, int], int | None] = (
        lambda settings, width, height, frames: None
    )
    """About how many bytes its file of (width, height, frames) holds, where that is known
    before the fit (the disk check); None where not."""

    @property
    def closed_form(self) -> bool:
        """Fitted in closed form (no optimiser steps), so the step settings are none of its."""
        return self.network.closed_form

    def default(self, name: str, device: str = "cpu") -> Any:
        """Its default for setting ``name`` on ``device`` (None where it has none)."""
        if device.split(":")[0] == "cuda" and name in self.gpu_defaults:
            return self.gpu_defaults[name]
        return self.defaults.get(name)


REGISTRY: dict[str, ModelSpec] = {}
"""Every model, by name (``nvfilter.models`` fills it)."""


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (each model file calls this once)."""
    if spec.name in REGISTRY or spec.network.kind != spec.name:
        raise ValueError(f"model {spec.name!r} registered twice or under another name")
    REGISTRY[spec.name] = spec
    return spec
