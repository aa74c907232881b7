"""The README's option tables say the defaults the code has (each default is defined once)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from nvfilter.cli import main
from nvfilter.config import DecodeOptions
from nvfilter.io import media
from nvfilter.models import REGISTRY

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def readme_defaults(section: str) -> dict[str, str]:
    """``--flag`` -> its default cell, from the first options table after ``section``."""
    text = README[README.index(section) :]
    rows: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        match = re.match(r"\| `(--[a-z0-9-]+)[^|]*\| ([^|]*) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def same(value: object, cell: str) -> bool:
    first = cell.split()[0] if cell else ""
    try:
        return float(first) == float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return first == str(value)


@pytest.mark.parametrize("command", ["encode"])
def test_readme_gives_the_flags_defaults(command):
    rows = readme_defaults(f"`nvfilter {command} IN OUT.nvw`")
    options = [p for p in main.commands[command].params if isinstance(p, click.Option)]
    checked = 0
    for option in options:
        flag = max(option.opts, key=len)
        if option.is_flag or not isinstance(option.default, str | int | float) or flag not in rows:
            continue
        assert same(option.default, rows[flag]), (flag, option.default, rows[flag])
        checked += 1
    assert checked >= 5


def test_readme_gives_the_model_defaults():
    rows = readme_defaults("`nvfilter encode IN OUT.nvw`")
    for name in ("epochs", "hidden_features", "hidden_layers", "lr", "levels", "batch_size"):
        cell = rows["--" + name.replace("_", "-")]
        for model, spec in REGISTRY.items():
            if name not in spec.defaults:
                continue
            value = spec.defaults[name]
            spelled = {f"{value:g}", f"{value:.0e}".replace("e-0", "e-")}
            assert any(f"{model} {text}" in cell or f"{model} and siren {text}" in cell
                       for text in spelled), (model, name, cell)  # fmt: skip
    assert str(REGISTRY["segments"].defaults["segment_frames"]) in rows["--segment-frames"]


def test_readme_and_help_give_the_decode_defaults():
    """Decode's defaults live in DecodeOptions (and the codec rules in media); the README's decode
    table and `nvfilter decode --help` say the same."""
    rows = readme_defaults("`nvfilter decode IN.nvw OUT`")
    defaults = DecodeOptions()
    helps = {max(p.opts, key=len): p.help or "" for p in main.commands["decode"].params}
    for name in ("between", "upscaler", "audio", "device"):
        value = getattr(defaults, name)
        assert same(value, rows["--" + name]), (name, value, rows["--" + name])
        if name != "device":
            assert f"{value} (" in helps["--" + name] and "default" in helps["--" + name], name
    crf = defaults.crf_for(media.default_codec("mp4"))
    assert same(crf, rows["--crf"]) and f"default {crf}" in helps["--crf"]
    assert rows["--codec"].startswith(media.default_codec("mp4"))
    assert f"{media.default_codec('webm')} for `.webm`" in rows["--codec"]
    assert rows["--pix-fmt"].startswith(str(media.default_pix_fmt(media.default_codec("mp4"))))


def help_records(command: str) -> dict[str, str]:
    """``--flag`` -> the text `nvfilter COMMAND --help` gives it."""
    cmd = main.commands[command]
    ctx = click.Context(cmd, info_name=command)
    records = {}
    for option in cmd.params:
        record = option.get_help_record(ctx) if isinstance(option, click.Option) else None
        if record is not None:
            records[max(option.opts, key=len)] = " ".join(record[1].split())
    return records


@pytest.mark.parametrize("command", sorted(main.commands))
def test_help_gives_every_default_the_code_has(command):
    """Every option with a default shows it, as the code has it; the model-dependent ones (no
    click default) say each model's, from the registry."""
    records = help_records(command)
    for option in main.commands[command].params:
        default = option.default
        if not isinstance(option, click.Option) or not isinstance(default, str | int | float):
            continue
        if option.is_flag and not option.secondary_opts:
            continue
        flag = max(option.opts, key=len)
        shown = re.search(r"\[default: ([^;\]]+)", records[flag])
        assert shown, (command, flag, records[flag])
        value = "on" if default is True else "off" if default is False else str(default)
        named = (f"--{option.name}", option.name)  # a --x/--no-x pair shows the one it is
        assert shown.group(1).split("/")[0].strip() in (value, *named), (flag, shown)
    if command in ("encode", "filter"):
        for name in ("epochs", "hidden_features", "hidden_layers", "lr", "levels", "batch_size",
                     "omega_0"):  # fmt: skip
            text = records["--" + name.replace("_", "-")]
            for model, spec in REGISTRY.items():
                if name in spec.defaults:
                    value = spec.defaults[name]
                    spelled = {f"{value:g}", f"{value:.0e}".replace("e-0", "e-")}
                    assert any(f"{model} {each}" in text or f"{model} and siren {each}" in text
                               for each in spelled), (model, name, text)  # fmt: skip
