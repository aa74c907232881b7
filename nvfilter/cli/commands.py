"""The commands: each parses its flags into options and calls the pipeline (nvfilter.api, the
decoder, eval, describe)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from nvfilter import api
from nvfilter.cli.group import main, positive_int
from nvfilter.cli.options import (
    EPOCHS_OPTION,
    FRAME_STEP_OPTION,
    MAX_FRAMES_OPTION,
    MODEL_OPTION,
    NETWORK_OPTIONS,
    NO_AUDIO_OPTION,
    PARALLEL_OPTIONS,
    QUIET_OPTION,
    RATE_OPTIONS,
    RENDER_OPTIONS,
    RUN_FOLDER_OPTIONS,
    SEED_OPTION,
    STORAGE_OPTIONS,
    TARGET_PSNR_OPTION,
    TIME_BUDGET_OPTION,
    TIMING_OPTIONS,
    decode_options,
    device_option,
    no_audio_as_audio,
    option_names,
    parse_size,
    rate_flags,
    with_options,
)
from nvfilter.config import (
    EncodeOptions,
)
from nvfilter.decode import decoder
from nvfilter.describe import info_lines
from nvfilter.errors import OptionError
from nvfilter.io import presets
from nvfilter.io.inputs import open_nvw
from nvfilter.models import spec_of
from nvfilter.progress import Console


@main.command()
@click.argument("source", metavar="IN")
@click.argument("output", metavar="OUT.nvw")
@MODEL_OPTION
@EPOCHS_OPTION
@with_options(NETWORK_OPTIONS)
@MAX_FRAMES_OPTION
@FRAME_STEP_OPTION
@click.option("--width", type=positive_int, help="Resize to this width before training.")
@click.option(
    "--height",
    type=positive_int,
    help="Resize to this height (give one of width/height to keep the aspect ratio).",
)
@TIME_BUDGET_OPTION
@TARGET_PSNR_OPTION
@with_options(RATE_OPTIONS)
@device_option("Where to train; auto picks a GPU when there is one.")
@SEED_OPTION
@with_options(STORAGE_OPTIONS)
@with_options(TIMING_OPTIONS)
@NO_AUDIO_OPTION
@with_options(RUN_FOLDER_OPTIONS)
@with_options(PARALLEL_OPTIONS)
@click.option(
    "--resume",
    metavar="DIR|CHECKPOINT",
    help="Go on with an interrupted run: its --outputs folder (latest checkpoint) or a "
    "checkpoint_*.nvw. The run's own settings are used; IN must be the same video.",
)
@QUIET_OPTION
@click.pass_context
def encode(
    ctx: click.Context,
    source: str,
    output: str,
    max_memory: str | None,
    quiet: bool,
    no_audio: bool,
    outputs: str | None,
    checkpoint_every: int | None,
    resume: str | None,
    jobs: int,
    ray: str | None,
    **flags: Any,
) -> None:
    """Learn the video IN ('-' for stdin) into the neural codec file OUT.nvw ('-' for stdout).

    Defaults in [brackets] depend on --model. The source's first audio stream is stored in
    the .nvw (compressed, as it is) unless --no-audio.
    """
    if resume:
        given = [
            name
            for name in flags
            if name != "device"
            and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if given or max_memory or no_audio:
            name = (given or ["max_memory" if max_memory else "no_audio"])[0]
            raise OptionError(
                f"--resume continues the run with its own settings: leave out "
                f"--{name.replace('_', '-')}"
            )
    result = api.encode(
        source, output, quiet=quiet,
        max_memory=parse_size(max_memory) if max_memory else None, audio=not no_audio,
        outputs=outputs, checkpoint_every=checkpoint_every, resume=resume, jobs=jobs, ray=ray,
        **rate_flags(flags.pop("bitrate"), flags),
    )  # fmt: skip
    if result.stopped_by == "interrupt":
        sys.exit(130)


@main.command()
@click.argument("source", metavar="IN.nvw")
@click.argument("output", metavar="OUT")
@with_options(RENDER_OPTIONS)
@device_option("Where to render.")
@QUIET_OPTION
def decode(
    source: str,
    output: str,
    preset: str | None,
    quiet: bool,
    device: str,
    container: str | None,
    **flags: Any,
) -> None:
    """Play IN.nvw ('-' for stdin) into OUT: a video file, '-' (stdout), or a folder of PNGs.

    Explicit flags override the preset. Output frame j samples source frame j / temporal-scale,
    so at --temporal-scale 4 output frame 4k is source frame k.
    """
    api.decode(source, output, preset, quiet, **no_audio_as_audio(flags), device=device,
               container=container)  # fmt: skip


@main.command(name="filter")
@click.argument("source", metavar="IN")
@click.argument("output", metavar="OUT")
@with_options(RENDER_OPTIONS)
@MODEL_OPTION
@TIME_BUDGET_OPTION
@EPOCHS_OPTION
@TARGET_PSNR_OPTION
@with_options(RATE_OPTIONS)
@with_options(NETWORK_OPTIONS)
@with_options(RUN_FOLDER_OPTIONS)
@with_options(PARALLEL_OPTIONS)
@MAX_FRAMES_OPTION
@FRAME_STEP_OPTION
@click.option("--learn-width", type=positive_int, help="Resize to this width before learning.")
@click.option("--learn-height", type=positive_int, help="Resize to this height before learning.")
@SEED_OPTION
@with_options(STORAGE_OPTIONS)
@with_options(TIMING_OPTIONS)
@click.option(
    "--keep-nvw", type=click.Path(dir_okay=False), help="Also keep the learned .nvw at this path."
)
@device_option("Where to learn and render.")
@QUIET_OPTION
def filter_video(
    source: str,
    output: str,
    preset: str | None,
    container: str | None,
    keep_nvw: str | None,
    device: str,
    quiet: bool,
    outputs: str | None,
    checkpoint_every: int | None,
    jobs: int,
    ray: str | None,
    **flags: Any,
) -> None:
    """Learn IN ('-' for stdin) and play it into OUT in one go, like an ffmpeg filter.

    The decode flags (--preset, --fps, --width, ...) shape the output; the encode flags
    (--model, --epochs, --lr, ...) the learning, where --learn-width and --learn-height resize.
    Ctrl-C stops learning early and still writes OUT.
    """
    learning = {name: flags.pop(name) for name in FILTER_LEARNING}
    network = {name: flags.pop(name) for name in option_names(NETWORK_OPTIONS)}
    storage = {name: flags.pop(name) for name in option_names(STORAGE_OPTIONS)}
    timing = {name: flags.pop(name) for name in option_names(TIMING_OPTIONS)}
    rates = {name: flags.pop(name) for name in option_names(RATE_OPTIONS)}
    decoding = decode_options(preset, {**flags, "device": device, "container": container})
    decoder.check_output(output, container)
    model = learning["model"]
    if network["footprint"] is None and model != "auto" and spec_of(model).footprint:
        upscaled = (decoding.spatial_scale or 1) > 1
        network["footprint"] = upscaled and decoding.upscaler == "network"
    max_memory = storage.pop("max_memory")
    options = EncodeOptions(
        width=learning.pop("learn_width"),
        height=learning.pop("learn_height"),
        device=device,
        max_memory=parse_size(max_memory) if max_memory else None,
        audio=decoding.audio != "drop",  # nothing stored that will not be played
        **learning,
        **storage,
        **timing,
        **network,
        **rate_flags(rates.pop("bitrate"), rates),
    )
    from nvfilter.encode import encoder

    run = encoder.RunOptions(outputs=outputs, checkpoint_every=checkpoint_every, jobs=jobs, ray=ray)
    console = Console(quiet)
    with tempfile.TemporaryDirectory(prefix="nvfilter-") as tmp:
        nvw_path = keep_nvw or str(Path(tmp) / "video.nvw")
        label = keep_nvw or "the learned network"
        result = encoder.encode(
            source,
            nvw_path,
            options,
            console,
            run,
            output_label=label,
            check_video=lambda video: decoder.check_render(video, decoding),
        )
        decoder.decode(nvw_path, output, decoding, console, label)
    if result.stopped_by == "interrupt":
        sys.exit(130)


FILTER_LEARNING = ("model", "time_budget", "epochs", "target_psnr", "max_frames", "frame_step",
                   "learn_width", "learn_height", "seed")  # fmt: skip
"""`filter`'s flags that shape the learning, besides the network, storage and rate ones."""


@main.command(name="eval")
@click.argument("original", metavar="ORIGINAL")
@click.argument("source", metavar="X.nvw")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--per-frame", is_flag=True, help="Also give every frame's PSNR and SSIM.")
@click.option("--vmaf", is_flag=True, help="Also compute VMAF with ffmpeg's libvmaf.")
def evaluate(original: str, source: str, as_json: bool, per_frame: bool, vmaf: bool) -> None:
    """Score X.nvw against the video it learned: decoded at the learned size and rate.

    PSNR as ffmpeg's psnr filter computes it (RGB, overall from the mean squared error of all
    frames), worst frame, SSIM (11x11 Gaussian, per RGB channel), file size and bits per pixel.
    """
    from nvfilter.eval.evaluate import evaluate as evaluate_nvw

    result = evaluate_nvw(original, source, vmaf)
    if not per_frame:
        result.pop("per_frame")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['frames']} frames {result['width']}x{result['height']}: "
        f"PSNR {result['psnr_db']:.2f} dB (worst frame {result['psnr_worst_db']:.2f} dB), "
        f"SSIM {result['ssim']:.4f} (worst {result['ssim_worst']:.4f})"
        + (f", VMAF {result['vmaf']:.2f}" if "vmaf" in result else "")
        + f"; {result['nvw_bytes']:,} bytes, {result['bits_per_pixel']:.3f} bits/pixel"
    )
    for row in result.get("per_frame", []):
        click.echo(
            f"frame {row['frame']:6d}  PSNR {row['psnr_db']:6.2f} dB  SSIM {row['ssim']:.4f}"
        )


@main.command(name="presets")
def list_presets() -> None:
    """List the shipped presets, one line each."""
    shipped = presets.available()
    width = max(len(name) for name in shipped)
    for name, path in shipped.items():
        click.echo(f"{name:<{width}}  {presets.describe(path)}")


@main.command()
@click.argument("source", metavar="X.nvw")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(source: str, as_json: bool) -> None:
    """Show what a .nvw file ('-' for stdin) holds: the video, the network and its training."""
    loaded, size = open_nvw(source)
    meta = dict(loaded.metadata)
    if as_json:
        meta["architecture"] = loaded.architecture  # type: ignore[assignment]
        if "train_settings" in meta:
            meta["train_settings"] = loaded.training.settings or {}  # type: ignore[assignment]
        click.echo(json.dumps(meta, indent=2, sort_keys=True))
        return
    click.echo("\n".join(info_lines(loaded, source, size)))


if __name__ == "__main__":
    main()
