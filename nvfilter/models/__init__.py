"""The video networks and their registry: a .nvw's architecture dict names one by ``type``.

Model files never import each other; only this registry knows them all.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nvfilter.models.field import VideoField
from nvfilter.models.planes import PlaneField
from nvfilter.models.segments import SegmentField
from nvfilter.models.siren import Siren
from nvfilter.models.tiles import TileField

MODELS: dict[str, type[VideoField]] = {
    "siren": Siren,
    "hybrid": PlaneField,
    "segments": SegmentField,
    "tiles": TileField,
}
"""Every network a .nvw may hold, by its architecture's ``type``."""


def build_model(architecture: dict[str, Any]) -> VideoField:
    """Rebuild a network from its architecture dict; raises KeyError/TypeError/ValueError if bad."""
    arch = dict(architecture)
    kind = arch.pop("type")
    arch.pop("output", None)
    if kind not in MODELS:
        raise ValueError(f"unknown model type {kind!r}")
    return MODELS[kind](**arch)


def count_parameters(model: nn.Module) -> int:
    """Numbers the network stores."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODELS",
    "PlaneField",
    "SegmentField",
    "Siren",
    "TileField",
    "VideoField",
    "build_model",
    "count_parameters",
]
