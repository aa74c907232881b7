"""encode and decode: wiring ffmpeg I/O, the model, training, rendering and the .nvw file together."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from nvfilter import ffio, nvw
from nvfilter.config import TrainConfig, TrainResult, VideoInfo
from nvfilter.errors import NvfilterError, OptionError, VideoError
from nvfilter.hybrid import PlaneField, auto_channels
from nvfilter.metrics import psnr_from_mse
from nvfilter.model import Siren, VideoField, count_parameters
from nvfilter.outputs import atomic_file, atomic_folder, write_bytes
from nvfilter.progress import Console
from nvfilter.render import iter_frames, plan_render, reconstruction_mse
from nvfilter.train import fit

MEMORY_MARGIN = 600 * 2**20
"""Memory kept free for the network, its activations and Python beside the raw frames."""


MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # the original design, kept exactly
    "siren": {
        "epochs": 1000,
        "batch_size": 65536,
        "lr": 1e-4,
        "lr_schedule": "constant",
        "hidden_features": 256,
        "hidden_layers": 5,
    },
    # the best quality per CPU second measured (BENCHMARKS.md)
    "hybrid": {
        "epochs": 100,
        "batch_size": 4096,
        "lr": 3e-3,
        "lr_schedule": "cosine",
        "hidden_features": 32,
        "hidden_layers": 2,
        "levels": 3,
    },
}
"""Defaults per model for every setting the user leaves out."""


@dataclass(frozen=True)
class EncodeOptions:
    """Everything `nvfilter encode` takes, after parsing; None means the model's default."""

    model: str = "hybrid"
    hidden_features: int | None = None
    """SIREN layer width, or the hybrid's head width."""
    hidden_layers: int | None = None
    omega_0: float = 30.0
    channels: int | None = None
    """Hybrid only: features per plane; None picks from the video's size."""
    levels: int | None = None
    """Hybrid only: plane resolutions (full, 1/2, 1/4, ...)."""
    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    time_budget: float | None = None
    target_psnr: float | None = None
    seed: int = 0
    device: str = "auto"
    width: int | None = None
    height: int | None = None
    max_frames: int | None = None
    frame_step: int = 1
    dtype: str = "float32"
    max_memory: int | None = None
    """Bytes the raw frames may take; default: the memory available now, less a margin."""

    def setting(self, name: str) -> Any:
        """The option as given, else the model's default."""
        value = getattr(self, name)
        return MODEL_DEFAULTS[self.model].get(name) if value is None else value


def create_model(options: EncodeOptions, video: VideoInfo) -> tuple[VideoField, str]:
    """The network to train and a one-line description of it (saying what was auto-picked)."""
    if options.model == "siren":
        model: VideoField = Siren(
            options.setting("hidden_features"),
            options.setting("hidden_layers"),
            options.omega_0,
            options.omega_0,
        )
        text = (
            f"SIREN {options.setting('hidden_features')} wide x "
            f"{1 + options.setting('hidden_layers')} sine layers, "
            f"w0 {options.omega_0:g}"
        )
    elif options.model == "hybrid":
        channels = options.channels or auto_channels(video.width, video.height, video.frames)
        model = PlaneField(
            video.width,
            video.height,
            video.frames,
            channels,
            options.setting("levels"),
            options.setting("hidden_features"),
            options.setting("hidden_layers"),
        )
        picked = " (picked for this video size)" if options.channels is None else ""
        text = (
            f"hybrid planes: {model.levels} levels x {channels} channels{picked}, "
            f"head {model.head_features} x {model.head_layers}"
        )
    else:
        raise OptionError(f"unknown model {options.model!r} (hybrid or siren)")
    return model, f"{text}, {count_parameters(model):,} parameters"


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


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def _input_path(name: str, stack: ExitStack) -> str:
    """A path ffmpeg can probe and read twice: the file itself, or standard input spooled."""
    if name != "-":
        if not Path(name).exists():
            raise VideoError(f"{name}: no such file")
        if Path(name).is_dir():
            raise VideoError(f"{name}: is a folder, not a video")
        return name
    return str(_spooled_stdin(stack, "a video", "", VideoError))


def _spooled_stdin(stack: ExitStack, what: str, suffix: str, error: type[NvfilterError]) -> Path:
    """Standard input copied to a temporary file that ``stack`` removes; refuses a terminal or
    empty input with ``error``."""
    if sys.stdin.isatty():
        raise error(f"-: standard input is a terminal, not {what} (pipe one in)")
    spooled = ffio.spool_stdin(sys.stdin.buffer, suffix=suffix)
    stack.callback(spooled.unlink, missing_ok=True)
    if spooled.stat().st_size == 0:
        raise error("-: standard input is empty")
    return spooled


def encode(source: str, output: str, options: EncodeOptions, console: Console) -> TrainResult:
    """Learn the video at ``source`` and write the .nvw to ``output`` (``-``: stdin/stdout)."""
    device = resolve_device(options.device)
    with ExitStack() as stack:
        path = _input_path(source, stack)
        src = ffio.probe(path, label=source)
        width, height = ffio.training_size(src.width, src.height, options.width, options.height)
        if width > 16384 or height > 16384:
            raise OptionError(f"training size {width}x{height} is too large")
        estimate = src.estimated_frames or 0
        kept = -(-estimate // options.frame_step)
        if options.max_frames is not None:
            kept = min(kept, options.max_frames)
        raw_bytes = kept * width * height * 3
        limit = options.max_memory or max(0, available_memory() - MEMORY_MARGIN)
        if raw_bytes > limit:
            raise VideoError(
                f"{source}: {kept} frames at {width}x{height} need about {human_bytes(raw_bytes)} "
                f"of memory but only {human_bytes(limit)} is available; make it smaller with "
                "--width, --max-frames or --frame-step"
            )
        frames = ffio.read_frames(
            path, src, width, height, options.frame_step, options.max_frames, label=source
        )
    sar = src.sample_aspect_ratio * Fraction(height * src.width, width * src.height)
    video = VideoInfo(
        width=width,
        height=height,
        frames=frames.shape[0],
        frame_rate=src.frame_rate / options.frame_step,
        sample_aspect_ratio=sar,
        color=src.color,
    )
    torch.manual_seed(options.seed)
    model, description = create_model(options, video)
    train_config = TrainConfig(
        epochs=options.setting("epochs"),
        batch_size=options.setting("batch_size"),
        lr=options.setting("lr"),
        lr_schedule=options.setting("lr_schedule"),
        time_budget=options.time_budget,
        target_psnr=options.target_psnr,
        seed=options.seed,
        device=device,
    )
    console.message(
        f"encode: {video.frames} frames {width}x{height} at {_rate(video.frame_rate)} fps "
        f"({video.duration:.2f} s, {human_bytes(frames.numel())} raw) -> {description}; "
        f"{train_config.epochs:g} epochs of batches of {train_config.batch_size}, "
        f"lr {train_config.lr:g} {train_config.lr_schedule}, on {device}"
    )
    fitted = fit(model, frames, train_config, console.training)
    console.done()
    if fitted.stopped_by == "interrupt":
        console.message("interrupted: saving what was learned so far")
    psnr = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)
    result = TrainResult(
        steps=fitted.steps, seconds=fitted.seconds, psnr=psnr, stopped_by=fitted.stopped_by
    )
    data = nvw.to_bytes(model, video, result, options.dtype)
    write_bytes(data, output)
    bpp = len(data) * 8 / (video.width * video.height * video.frames)
    console.message(
        f"encoded {source} -> {output}: PSNR {psnr:.2f} dB after {fitted.steps} steps in "
        f"{fitted.seconds:.1f} s ({fitted.stopped_by}), {human_bytes(len(data))}, "
        f"{bpp:.3f} bits/pixel"
    )
    return result


def _rate(rate: Fraction) -> str:
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
) -> None:
    """Render the .nvw at ``source`` with the merged preset/flag ``settings`` into ``output``."""
    device = resolve_device(device_name)
    with ExitStack() as stack:
        path = Path(source)
        if source == "-":
            path = _spooled_stdin(stack, "a .nvw", ".nvw", OptionError)
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
    codec = settings.get("codec") or "libx264"
    crf = settings.get("crf", 18 if codec in ffio.CRF_CODECS else None)
    folder = check_output(output, container)
    model = loaded.model.to(device)
    start = time.perf_counter()
    with ExitStack() as stack:
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
        )
        writer = ffio.FrameWriter(args)
        try:
            for index, frame in enumerate(iter_frames(model, spec, video.frames)):
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
        f"decoded {source} -> {output}: {spec.num_frames} frames {spec.width}x{spec.height}"
        f"{note} at {_rate(spec.fps)} fps ({float(spec.num_frames / spec.fps):.2f} s) in "
        f"{time.perf_counter() - start:.1f} s"
    )


def _fraction_float(name: str, value: Any) -> float | None:
    fraction = _fraction(name, value)
    return None if fraction is None else float(fraction)
