"""What a .nvw holds, in lines for a person (`nvfilter info`): the video, the model, how it was
fitted or trained, and the sound. Each model is described by what it is: a coded stream by its
bytes and what it was coded for, a closed-form fit without the optimiser settings it never had.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nvfilter.config import TrainConfig, VideoInfo
from nvfilter.io.nvw import NvwFile
from nvfilter.models import REGISTRY


def info_lines(loaded: NvwFile, source: str, size: int) -> list[str]:
    """`nvfilter info`'s lines for the .nvw ``loaded`` from ``source`` (``size`` bytes)."""
    meta, video, training = loaded.metadata, loaded.video, loaded.training
    kinds = _kinds(loaded)
    closed = all(REGISTRY[kind].closed_form for kind in kinds if kind in REGISTRY)
    coded = any(REGISTRY[kind].coded for kind in kinds if kind in REGISTRY)
    stored = "coded" if coded else loaded.dtype
    lines = [
        f"file        {source} ({size:,} bytes, {stored})",
        f"format      {meta['format']} version {meta['format_version']}, written by nvfilter "
        f"{loaded.nvfilter_version}",
        f"video       {video.width}x{video.height}, {video.frames} frames at "
        f"{meta['frame_rate']} fps ({video.duration:.3f} s), SAR {meta['sample_aspect_ratio']}, "
        f"chroma {video.chroma}",
        f"colour      range {meta['color_range']}, primaries {meta['color_primaries']}, "
        f"transfer {meta['color_transfer']}, matrix {meta['color_matrix']}",
        _timing_line(video),
        _model_line(loaded, coded),
        *_parts_lines(loaded),
    ]
    bits = size * 8 / (video.width * video.height * video.frames)
    if closed:
        lines.append(f"fit         in closed form in {training.seconds:.1f} s, PSNR "
                     f"{training.psnr:.2f} dB, {bits:.3f} bits a pixel")  # fmt: skip
    else:
        lines += [
            f"training    {training.steps} steps in {training.seconds:.1f} s, stopped by "
            f"{training.stopped_by}, PSNR {training.psnr:.2f} dB, {bits:.3f} bits a pixel",
            "settings    "
            + (describe_settings(training.settings) if training.settings else "not recorded"),
        ]
    lines.append(
        "audio       "
        + (
            f"{loaded.audio_codec}, {len(loaded.audio):,} bytes (first stream, copied)"
            if loaded.audio
            else "none"
        )
    )
    return lines


def _timing_line(video: VideoInfo) -> str:
    """When the frames stand: the rate's kind, the repeats left out, the cuts."""
    timeline = video.timeline
    if timeline is None:
        return "time        constant rate, no cut found"
    rate = "variable rate (each frame at its own time)" if timeline.variable else "constant rate"
    count = timeline.repeats
    repeats = f", {count} repeated frame{'s' * (count != 1)} left out" if count else ""
    shown = ", ".join(str(c) for c in timeline.cuts[:MAX_CUTS_SHOWN])
    more = (
        f" and {len(timeline.cuts) - MAX_CUTS_SHOWN} more"
        if len(timeline.cuts) > MAX_CUTS_SHOWN
        else ""
    )
    cuts = f"cuts before frames {shown}{more}" if timeline.cuts else "no cut found"
    return f"time        {rate}, {timeline.played} frames played{repeats}; {cuts}"


MAX_CUTS_SHOWN = 20


def describe_settings(settings: dict[str, Any]) -> str:
    """One line of a .nvw's training settings: the encoder's words for them, the seed and the
    stops given."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{key: value for key, value in settings.items() if key in known})
    stops = [
        f", {name} {value:g}{unit}"
        for name, value, unit in (
            ("time budget", config.time_budget, " s"),
            ("target", config.target_psnr, " dB"),
        )
        if value is not None
    ]
    return f"{config.describe()}, seed {config.seed}" + "".join(stops)


def _kinds(loaded: NvwFile) -> list[str]:
    spans = getattr(loaded.model, "spans", None)
    if loaded.architecture.get("type") == "parts" and spans:
        return sorted({span.architecture.get("type") for span in spans})
    return [str(loaded.architecture.get("type"))]


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _model_line(loaded: NvwFile, coded: bool) -> str:
    architecture = loaded.architecture
    what = f"{loaded.parameters:,} {'bytes of coded stream' if coded else 'parameters'}"
    return (
        f"model       {architecture.get('type')} "
        + ", ".join(f"{k}={_value(v)}" for k, v in sorted(architecture.items()) if k != "type")
        + f" ({what})"
    )


def _parts_lines(loaded: NvwFile) -> list[str]:
    """The line on the parts of a video learned in parts (none for one network): the
    architecture every part shares, and the keys that differ from part to part."""
    spans = getattr(loaded.model, "spans", None)
    if loaded.architecture.get("type") != "parts" or not spans:
        return []
    parts = [dict(span.architecture) for span in spans]
    shared = {k: v for k, v in parts[0].items() if all(p.get(k) == v for p in parts)}
    varied = sorted({k for p in parts for k in p} - set(shared) - {"frames"})
    line = f"parts       each {shared.get('type')} " + ", ".join(
        f"{k}={_value(val)}" for k, val in sorted(shared.items()) if k not in ("type", "frames")
    )
    return [line + (f"; per part: {', '.join(varied)}" if varied else "")]
