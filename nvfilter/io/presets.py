"""Find, load and validate preset files; defaults < preset < explicit flags.

A preset is a TOML file of decode settings, named by its file name (``slowmo-4x.toml`` is
``slowmo-4x``). The shipped ones live in the repository's ``presets/`` folder (installed inside
the package as ``nvfilter/preset_files``). ``--preset`` also takes a path to a user's own file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from nvfilter.errors import PresetError

PRESET_KEYS: dict[str, tuple[type, ...]] = {
    "description": (str,),
    "fps": (str, int, float),
    "width": (int,),
    "height": (int,),
    "spatial_scale": (int, float),
    "temporal_scale": (int, float, str),
    "num_frames": (int,),
    "between": (str,),
    "upscaler": (str,),
    "codec": (str,),
    "crf": (int,),
    "pix_fmt": (str,),
    "audio": (str,),
}
"""Every key a preset may set, with the TOML types it may take (same meaning as the decode flag)."""


def preset_dir() -> Path:
    """Folder of the shipped presets, installed or in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "preset_files", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    raise PresetError("the shipped presets are missing from this installation")


def available() -> dict[str, Path]:
    """Shipped presets by name."""
    return {path.stem: path for path in sorted(preset_dir().glob("*.toml"))}


def load(name_or_path: str) -> dict[str, Any]:
    """Load a shipped preset by name, or a preset file by path; validated, without 'description'."""
    path = Path(name_or_path)
    shipped = available()
    if name_or_path in shipped:
        path = shipped[name_or_path]
    elif not (path.suffix == ".toml" or path.exists()):
        raise PresetError(
            f"unknown preset {name_or_path!r} (known: {', '.join(shipped)}; or give a .toml path)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"preset file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PresetError(f"preset {path}: cannot be read ({err})") from None
    return validate(data, str(path))


def validate(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Check keys and types; returns the settings without the description."""
    for key, value in data.items():
        if key not in PRESET_KEYS:
            raise PresetError(
                f"preset {where}: unknown key {key!r} (known: {', '.join(PRESET_KEYS)})"
            )
        if isinstance(value, bool) or not isinstance(value, PRESET_KEYS[key]):
            raise PresetError(f"preset {where}: {key} has the wrong type ({value!r})")
    return {k: v for k, v in data.items() if k != "description"}


def describe(path: Path) -> str:
    """The one-line description of a preset file."""
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8")).get("description", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return "(unreadable)"


def merge(preset: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Preset settings overridden by the flags the user gave (those not None)."""
    merged = dict(preset)
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged
