"""decode (a .nvw played through ffmpeg) and the helpers encode shares: devices, inputs, rates."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from nvfilter import ffio, nvw
from nvfilter.audio import STORE_SUFFIX, AudioPlan, container_of, store_format
from nvfilter.errors import NvfilterError, OptionError, VideoError
from nvfilter.outputs import atomic_file, atomic_folder
from nvfilter.progress import Console
from nvfilter.render import (
    BETWEEN_RULES,
    UPSCALERS,
    backprojects,
    check_rule,
    iter_frames,
    plan_render,
)

AUDIO_MODES = ("keep", "drop")


def resolve_device(name: str) -> str:
    """auto -> cuda, then mps, then cpu; an explicit device must be present."""
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: no CUDA GPU is available to this torch")
    if name == "mps" and not torch.backends.mps.is_available():
        raise OptionError("--device mps: Apple's MPS is not available here")
    return name


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def input_path(name: str, stack: ExitStack) -> str:
    """A path ffmpeg can probe and read twice: the file itself, or standard input spooled."""
    if name != "-":
        if not Path(name).exists():
            raise VideoError(f"{name}: no such file")
        if Path(name).is_dir():
            raise VideoError(f"{name}: is a folder, not a video")
        return name
    return str(spooled_stdin(stack, "a video", "", VideoError))


def spooled_stdin(stack: ExitStack, what: str, suffix: str, error: type[NvfilterError]) -> Path:
    """Standard input copied to a temporary file that ``stack`` removes; refuses a terminal or
    empty input with ``error``."""
    if sys.stdin.isatty():
        raise error(f"-: standard input is a terminal, not {what} (pipe one in)")
    spooled = ffio.spool_stdin(sys.stdin.buffer, suffix=suffix)
    stack.callback(spooled.unlink, missing_ok=True)
    if spooled.stat().st_size == 0:
        raise error("-: standard input is empty")
    return spooled


def rate_text(rate: Fraction) -> str:
    return f"{rate.numerator}" if rate.denominator == 1 else f"{float(rate):.3f} ({rate})"


def parse_fps(text: Any, source_rate: Fraction) -> Fraction:
    """'25', '30000/1001', '29.97' (taken as 30000/1001) or '2x' (times the source's rate)."""
    value = str(text).strip()
    try:
        if value.endswith("x"):
            rate = source_rate * Fraction(value[:-1])
        else:
            rate = Fraction(value)
            ntsc = Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)
            if "." in value and rate.denominator != 1 and abs(rate - ntsc) < Fraction(1, 100):
                rate = ntsc  # 29.97 means 30000/1001, 23.976 means 24000/1001
            elif rate.denominator > 1001:
                rate = rate.limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"fps {value!r} is not a rate (e.g. 25, 30000/1001 or 2x)") from None
    if rate <= 0:
        raise OptionError(f"fps must be positive, got {value}")
    return rate


def _fraction(name: str, value: Any) -> Fraction | None:
    if value is None:
        return None
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"{name} {value!r} is not a number") from None


def is_folder_output(output: str) -> bool:
    """A folder (existing, or named with a trailing slash) gets numbered PNG frames."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def check_output(output: str, container: str | None) -> bool:
    """Refuse an output ffmpeg could not name a container for; True for a PNG folder."""
    folder = output != "-" and is_folder_output(output)
    if output == "-" and not container:
        raise OptionError("writing to standard output needs --format (e.g. nut, matroska, mp4)")
    if not folder and output != "-" and not container and not Path(output).suffix:
        raise OptionError(
            f"{output}: no extension to tell the container: add one (.mp4, .mkv), "
            "give --format, or end the name with / for a folder of PNG frames"
        )
    return folder


def decode(
    source: str,
    output: str,
    settings: dict[str, Any],
    device_name: str,
    container: str | None,
    console: Console,
    source_label: str | None = None,
) -> None:
    """Render the .nvw at ``source`` with the merged preset/flag ``settings`` into ``output``;
    ``source_label`` names the source in messages when it is a temporary file."""
    device = resolve_device(device_name)
    with ExitStack() as stack:
        path = Path(source)
        if source == "-":
            path = spooled_stdin(stack, "a .nvw", ".nvw", OptionError)
        loaded = nvw.load(path, label=source)
    video = loaded.video
    spec = plan_render(
        video,
        width=settings.get("width"),
        height=settings.get("height"),
        spatial_scale=_fraction_float("spatial scale", settings.get("spatial_scale")),
        temporal_scale=_fraction("temporal scale", settings.get("temporal_scale")),
        num_frames=settings.get("num_frames"),
        fps=None if settings.get("fps") is None else parse_fps(settings["fps"], video.frame_rate),
    )
    codec = settings.get("codec") or ffio.default_codec(container_of(output, container))
    crf = settings.get("crf", 18 if codec in ffio.CRF_CODECS else None)
    folder = check_output(output, container)
    between = check_rule("between", settings.get("between") or "network", BETWEEN_RULES)
    upscaler = check_rule("upscaler", settings.get("upscaler") or "network", UPSCALERS)
    audio_mode = settings.get("audio") or "keep"
    if audio_mode not in AUDIO_MODES:
        raise OptionError(f"audio {audio_mode!r}: keep or drop")
    model = loaded.model.to(device)
    start = time.perf_counter()
    with ExitStack() as stack:
        sound = None
        if loaded.audio is not None and loaded.audio_codec and audio_mode == "keep" and not folder:
            stored = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nvfilter-")))
            stored_file = stored / ("audio" + STORE_SUFFIX[store_format(loaded.audio_codec)])
            stored_file.write_bytes(loaded.audio)
            sound = AudioPlan(
                path=stored_file,
                codec=loaded.audio_codec,
                source_seconds=video.duration,
                tempo=video.duration / float(spec.num_frames / spec.fps),
                container=container_of(output, container),
            )
            console.message(sound.describe())
        if output == "-":
            target = "pipe:"
        elif folder:
            target = str(stack.enter_context(atomic_folder(Path(output))) / "frame_%06d.png")
        else:
            target = str(stack.enter_context(atomic_file(Path(output))))
        args = ffio.build_write_args(
            target,
            spec.width,
            spec.height,
            spec.fps,
            video,
            codec,
            crf,
            settings.get("pix_fmt"),
            container,
            image_sequence=folder,
            audio=sound.stream() if sound else None,
        )
        writer = ffio.FrameWriter(args)
        try:
            frames = iter_frames(model, spec, video.frames, between, upscaler)
            for index, frame in enumerate(frames):
                writer.write(frame)
                console.status(
                    f"frame {index + 1}/{spec.num_frames}  "
                    f"{(index + 1) / (time.perf_counter() - start):.1f} fps"
                )
            writer.close()
        except BaseException:
            writer.abort()
            raise
    console.done()
    padded = (
        ffio.even_size(
            spec.width, spec.height, settings.get("pix_fmt") or ffio.default_pix_fmt(codec)
        )
        if not folder
        else (spec.width, spec.height)
    )
    note = (
        ""
        if padded == (spec.width, spec.height)
        else (f" (padded to {padded[0]}x{padded[1]} for the pixel format)")
    )
    console.message(
        f"decoded {source_label or source} -> {output}: {spec.num_frames} frames {spec.width}x{spec.height}"
        f"{note} at {rate_text(spec.fps)} fps ({float(spec.num_frames / spec.fps):.2f} s) in "
        f"{time.perf_counter() - start:.1f} s"
        + (", frames between source frames moved along the motion" if between == "motion" else "")
        + (
            f", upscaled from the learned {spec.learned_size[0]}x{spec.learned_size[1]} by "
            "back-projection"
            if backprojects(spec, upscaler)
            else ""
        )
    )


def _fraction_float(name: str, value: Any) -> float | None:
    fraction = _fraction(name, value)
    return None if fraction is None else float(fraction)
