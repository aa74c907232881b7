"""The command line's options, each declared once and shared by the commands that take it, and
what turns them into the options objects (sizes and rates parsed, presets merged)."""

from __future__ import annotations

from typing import Any

import click

from nvfilter.cli.group import positive_float, positive_int
from nvfilter.config import (
    AUDIO_MODES,
    AUTO,
    AUTO_MODEL,
    BETWEEN_RULES,
    PRECISIONS,
    UPSCALERS,
    DecodeOptions,
    EncodeOptions,
)
from nvfilter.errors import OptionError
from nvfilter.io import nvw, presets
from nvfilter.models import REGISTRY
from nvfilter.models.siren import OMEGA_0

SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str, flag: str = "--max-memory", example: str = "2G, 500M") -> int:
    """'1500M', '2G', '800000000' -> bytes (or bits, for a rate)."""
    value = text.strip().lower().removesuffix("b").removesuffix("/s")
    unit = value[-1:] if value[-1:] in SIZE_UNITS else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise OptionError(f"{flag} {text!r} is not a number (e.g. {example})") from None
    if not number > 0 or number == float("inf"):
        raise OptionError(f"{flag} must be positive")
    return int(number * SIZE_UNITS[unit])


def rate_flags(bitrate: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    """--bitrate parsed (2M, 800k: bits a second) into the encode options' ``bitrate``."""
    return {**flags, "bitrate": parse_size(bitrate, "--bitrate", "2M, 800k") if bitrate else None}


# Options that encode, filter (and decode, for the device and quiet ones) share.
MODEL_OPTION = click.option(
    "--model",
    type=click.Choice(["auto", *sorted(REGISTRY)]),
    default="auto",
    show_default=True,
    help="; ".join(f"{name}: {spec.help}" for name, spec in sorted(REGISTRY.items()))
    + f"; auto: {AUTO_MODEL}.",
)
RATE_OPTIONS = [
    click.option(
        "--quality",
        type=click.FloatRange(0, 100),
        help="codec: a fixed quality from 0 to 100 (50: about 40 dB, 100: near lossless), "
        "whatever size it takes.",
    ),
    click.option(
        "--bitrate",
        metavar="RATE",
        help="codec: bits a second to aim at, as ffmpeg's -b:v (e.g. 2M, 800k).",
    ),
    click.option(
        "--bits-per-pixel",
        type=positive_float,
        help="codec: bits a pixel to aim at (0.1 is a tenth of a bit).",
    ),
]
"""How good or how large a coded encode is (default: 45 dB or the source file's size, whichever
is smaller): shared by `encode` and `filter`."""
EPOCHS_OPTION = click.option(
    "--epochs",
    type=positive_float,
    help="Training length; one epoch samples as many pixels as the video has "
    "[segments 3, or the whole --time-budget; hybrid 100 (1600 on a CUDA GPU), siren 1000].",
)
MAX_FRAMES_OPTION = click.option(
    "--max-frames", type=positive_int, help="Learn at most this many frames."
)
FRAME_STEP_OPTION = click.option(
    "--frame-step",
    type=positive_int,
    default=1,
    show_default=True,
    help="Keep every Nth frame (the learned frame rate is divided by N).",
)
TIME_BUDGET_OPTION = click.option(
    "--time-budget",
    type=positive_float,
    metavar="SECONDS",
    help="Stop training after this many seconds.",
)
TARGET_PSNR_OPTION = click.option(
    "--target-psnr",
    type=positive_float,
    metavar="DB",
    help="Stop once the running PSNR estimate reaches this many dB (tiles: keep the fewest "
    "components that reach it).",
)
SEED_OPTION = click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the initialisation and of pixel sampling.",
)
NO_AUDIO_OPTION = click.option(
    "--no-audio", is_flag=True, help="Leave the sound out (encode: not stored; decode: not played)."
)
QUIET_OPTION = click.option(
    "-q", "--quiet", is_flag=True, help="No progress or summary, errors only."
)


def device_option(help_text: str) -> Any:
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda", "mps"]),
        default="auto",
        show_default=True,
        help=help_text,
    )


NETWORK_OPTIONS = [
    click.option(
        "--hidden-features",
        type=positive_int,
        help="SIREN layer width, or the hybrid's head width [siren 256, hybrid 32].",
    ),
    click.option(
        "--hidden-layers",
        type=click.IntRange(min=0),
        help="SIREN sine layers after the first, or hybrid head layers [siren 5, hybrid 2].",
    ),
    click.option(
        "--omega-0",
        type=positive_float,
        help=f"SIREN frequency w0 in sin(w0 (Wx + b)) [siren {OMEGA_0:g}].",
    ),
    click.option(
        "--channels",
        type=positive_int,
        help="Hybrid and segments: features per plane [picked from the video's size: segments "
        "21 at full size and 27 at coarser levels for 32-frame parts, fewer for shorter ones; "
        "hybrid 16, or 8 for large planes].",
    ),
    click.option(
        "--levels",
        type=positive_int,
        help="Hybrid and segments: plane resolutions [segments 4, hybrid 3].",
    ),
    click.option(
        "--segment-frames",
        type=click.IntRange(1, 4096),
        help="Tiles and segments: frames per part, each with its own network (+1 shared with "
        "the next) [32].",
    ),
    click.option(
        "--batch-size",
        type=positive_int,
        help="Random pixels per optimiser step [hybrid and siren 4096, 65536 on a CUDA GPU; the "
        "original design: siren 65536; segments 1, in pixels rounded to whole frames].",
    ),
    click.option(
        "--lr",
        type=positive_float,
        help="Adam learning rate [siren 3e-4 (1e-4 on a CUDA GPU and in the original design); hybrid "
        "3e-3 for the head, 10x for the planes; segments 2e-4].",
    ),
    click.option(
        "--lr-schedule",
        type=click.Choice(["constant", "cosine"]),
        help="Learning rate over the run [cosine; siren on a CUDA GPU and in the original design: "
        "constant].",
    ),
    click.option(
        "--precision",
        type=click.Choice(list(PRECISIONS)),
        default="auto",
        show_default=True,
        help="Training arithmetic: auto (float32; bfloat16 for SIREN on an NVIDIA GPU), "
        "float32, tf32 (NVIDIA GPUs) or bfloat16 (the forward pass under autocast: 1.5x "
        "the steps/s of --model siren on CPUs with AVX-512 BF16); weights stay float32.",
    ),
    click.option(
        "--compile/--no-compile",
        default=None,
        help="SIREN: train through torch.compile (1.1-1.3x the steps/s on a CPU, 1.1-1.2x on a "
        "GPU; compiling takes 5-20 s at the start and needs a C compiler on a CPU) [on for "
        "SIREN runs of 2 minutes or more on a CPU, else off].",
    ),
    click.option(
        "--footprint/--no-footprint",
        default=None,
        help="hybrid: read the full-resolution planes as the average over each pixel, so the "
        "learned video upscales sharper with --upscaler network (4x: ahead of bicubic on every "
        "benchmark clip) at some cost at the learned size in the same training time [encode: "
        "off; filter: on when the output is upscaled (--spatial-scale over 1) by --upscaler network].",
    ),
]
"""How the network is built and trained: shared by `encode` and `filter`."""


RUN_FOLDER_OPTIONS = [
    click.option(
        "--outputs",
        metavar="DIR",
        help="Write the run here as it trains: config.json, checkpoints, sample frames, "
        "metrics.jsonl, training_progress.png, comparison frames.",
    ),
    click.option(
        "--checkpoint-every",
        type=positive_int,
        metavar="STEPS",
        help="Steps between checkpoints in --outputs [a tenth of the run].",
    ),
]
"""The --outputs folder of a training run: shared by `encode` and `filter`."""

PARALLEL_OPTIONS = [
    click.option(
        "--jobs",
        type=positive_int,
        default=1,
        show_default=True,
        metavar="N",
        help="Train N parts of the video at once in local worker processes (GPUs on a CUDA "
        "machine); for the models learned in parts (tiles, segments).",
    ),
    click.option(
        "--ray",
        metavar="ADDRESS",
        help="Train the parts as Ray tasks: local (start Ray here), auto (the running cluster) "
        'or a cluster address; needs pip install "nvfilter[ray]".',
    ),
]
"""Where the parts of a streamed encode train: shared by `encode` and `filter`."""


def option_names(options: list[Any]) -> list[str]:
    """The parameter names of a list of click option decorators."""

    def probe() -> None:
        pass

    return [param.name for param in with_options(options)(click.command()(probe)).params]


def with_options(options: list[Any]) -> Any:
    """A decorator adding a list of click options to a command, in the list's order."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


STORAGE_OPTIONS = [
    click.option(
        "--dtype",
        type=click.Choice(["auto", *sorted(nvw.DTYPES)]),
        default=EncodeOptions.dtype,
        show_default=True,
        help="Precision of the weights stored in the .nvw; auto: float16 for the tiles model "
        "(half the size, within 0.02 dB), float32 for the others.",
    ),
    click.option(
        "--max-memory",
        metavar="SIZE",
        help="Memory the raw frames may take (e.g. 2G); default: what is free now.",
    ),
]
"""How the frames are held and the weights stored: shared by `encode` and `filter`."""


TIMING_OPTIONS = [
    click.option(
        "--cuts/--no-cuts",
        default=EncodeOptions.cuts,
        show_default=True,
        help="Find the cuts between shots and keep them in the file: a frame read between two "
        "shots shows the nearer one, never a mix.",
    ),
    click.option(
        "--cut-threshold",
        type=positive_float,
        default=EncodeOptions.cut_threshold,
        show_default=True,
        help="A cut changes its frame this many times more than the frames around it change "
        "theirs (lower finds more).",
    ),
    click.option(
        "--keep-repeats",
        is_flag=True,
        help="Learn repeated frames (a rate conversion's doubles) as they are; by default they "
        "are left out and the motion is read evenly across them.",
    ),
]
"""How the source's time is read (cuts, repeated frames): shared by `encode` and `filter`."""


RENDER_OPTIONS = [
    click.option(
        "--preset", help="A shipped preset name (see `nvfilter presets`) or a .toml path."
    ),
    click.option("--fps", help="Output frame rate: 25, 30000/1001, or 2x (times the source's)."),
    click.option("--width", type=click.IntRange(min=1), help="Output width in pixels."),
    click.option(
        "--height",
        type=click.IntRange(min=1),
        help="Output height (give one of width/height to keep the aspect ratio).",
    ),
    click.option(
        "--spatial-scale", type=positive_float, help="Output size as a multiple of the source's."
    ),
    click.option(
        "--temporal-scale",
        type=positive_float,
        help="Output frames per source frame (4 = 4x slow motion at the same fps).",
    ),
    click.option(
        "--num-frames",
        type=click.IntRange(min=1),
        help="Exact number of output frames, spread over the source's time.",
    ),
    click.option(
        "--between",
        type=click.Choice((AUTO, *BETWEEN_RULES)),
        help="New frames between the source's: auto (the default: motion, or network where "
        "motion would not fit in the free memory), motion (the two nearest source frames moved "
        "along the motion the file keeps, or their optical flow, and blended), search (moved "
        "along optical flow searched on them even where the file keeps motion: slower, better "
        "on fast motion) or network (the network read at their time: with the tiles model a "
        "cross-fade; faster).",
    ),
    click.option(
        "--upscaler",
        type=click.Choice((AUTO, *UPSCALERS)),
        help="New pixels, when the output is larger than the learned size: auto (the default: "
        "backproject, or network where it would not fit in the free memory), backproject (each "
        "frame made at the learned size, upscaled and corrected until its pixel areas average "
        "back to it), multiframe (corrected against its neighbouring frames too, moved along "
        "the optical flow: sharper where the camera moves, about 5x slower) or network (the "
        "network read at the output's pixels: with the tiles model a bilinear resize; "
        "faster).",
    ),
    click.option("--codec", help="Any ffmpeg video encoder: libx264 (default), libx265, ffv1, ..."),
    click.option(
        "--crf",
        type=click.IntRange(min=0, max=63),
        help="Quality for x264/x265/vp9/av1 (default 18).",
    ),
    click.option(
        "--pix-fmt",
        help="Output pixel format (default yuv420p for x264, x265, VP8/9, AV1, MPEG-4/2; "
        "else ffmpeg's choice).",
    ),
    click.option(
        "-f",
        "--format",
        "container",
        help="Container for OUT, needed with '-' (nut, matroska, mp4, ...).",
    ),
    click.option(
        "--audio",
        type=click.Choice(AUDIO_MODES),
        help="Sound stored in the .nvw: keep (default: copied, or time-stretched with the pitch "
        "kept when the duration changes) or drop.",
    ),
    NO_AUDIO_OPTION,
]
"""The decode options, shared by `decode` and `filter`."""


def no_audio_as_audio(flags: dict[str, Any]) -> dict[str, Any]:
    """The decode flags with --no-audio said as --audio drop."""
    flags = dict(flags)
    if flags.pop("no_audio", False):
        flags["audio"] = "drop"
    return flags


def decode_options(preset: str | None, flags: dict[str, Any]) -> DecodeOptions:
    """The preset's settings overridden by the decode flags given (--no-audio is --audio drop),
    checked."""
    settings = presets.merge(presets.load(preset) if preset else {}, no_audio_as_audio(flags))
    return DecodeOptions.from_settings(settings)
