"""The video networks and their registry: a .nvw's architecture dict names one by ``type``.

Model files never import each other; each registers its ModelSpec (models/spec.py) when
imported, and this module imports them all: adding a model is its file and one line here.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from torch import nn

from nvfilter.models import codec, planes, segments, siren, tiles  # noqa: F401 (registers them)
from nvfilter.models.codec import CodedField
from nvfilter.models.field import VideoField
from nvfilter.models.planes import PlaneField
from nvfilter.models.segments import SegmentField
from nvfilter.models.siren import Siren
from nvfilter.models.spec import REGISTRY, ModelSpec
from nvfilter.models.tiles import TileField

MODELS: dict[str, type[VideoField]] = {name: spec.network for name, spec in REGISTRY.items()}
"""Every network a .nvw may hold, by its architecture's ``type``."""


def spec_of(name: str) -> ModelSpec:
    """The registered model called ``name`` (KeyError if there is none)."""
    return REGISTRY[name]


def build_model(architecture: dict[str, Any]) -> VideoField:
    """Rebuild a network from its architecture dict, every value of the type its network's
    constructor declares (a number written as a string is refused, not passed on); raises
    KeyError/TypeError/ValueError if bad."""
    arch = dict(architecture)
    kind = arch.pop("type")
    arch.pop("output", None)
    if kind not in MODELS:
        raise ValueError(f"unknown model type {kind!r}")
    network = MODELS[kind]
    hints = _constructor_types(network)
    for key, value in arch.items():
        if key not in hints:
            raise TypeError(f"{kind} has no setting {key!r}")
        if not _is_a(value, hints[key]):
            raise TypeError(f"{kind} {key} = {value!r} is not {hints[key]}")
    return network(**arch)


def _constructor_types(network: type[VideoField]) -> dict[str, Any]:
    """The types a network's constructor declares for its arguments (read once a class)."""
    if network not in _TYPES:
        hints = typing.get_type_hints(network.__init__)
        hints.pop("return", None)
        _TYPES[network] = hints
    return _TYPES[network]


_TYPES: dict[type[VideoField], dict[str, Any]] = {}


def _is_a(value: Any, hint: Any) -> bool:
    """Whether an architecture value (from JSON) is of a constructor's declared type: int,
    float (an int too), str, bool, or a union of them with None."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        return type(None) in options
    if isinstance(value, bool):
        return bool in options
    if isinstance(value, int):
        return int in options or float in options
    return any(isinstance(value, option) for option in options if option is not type(None))


def count_parameters(model: nn.Module) -> int:
    """Numbers the network stores."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODELS",
    "REGISTRY",
    "CodedField",
    "ModelSpec",
    "PlaneField",
    "SegmentField",
    "Siren",
    "TileField",
    "VideoField",
    "build_model",
    "count_parameters",
    "spec_of",
]
