"""decode: play a .nvw through ffmpeg into a file, a pipe or a folder of PNG frames."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import numpy as np

from nvfilter.config import DecodeOptions, RenderSpec, VideoInfo, parse_fps
from nvfilter.decode.render import (
    backprojects,
    chosen_rules,
    iter_frames,
    makes_new_frames,
    plan_render,
)
from nvfilter.decode.upscale import enlarges
from nvfilter.device import available_memory, release_freed_memory, resolve_device
from nvfilter.errors import OptionError
from nvfilter.io import media
from nvfilter.io.audio import STORE_SUFFIX, AudioPlan, container_of, store_format
from nvfilter.io.inputs import is_folder_output, open_nvw
from nvfilter.io.nvw import NvwFile
from nvfilter.io.outputs import atomic_file, atomic_folder, check_file_output
from nvfilter.progress import Console, clock, rate_text


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
    if not folder:
        check_file_output(output)
    return folder


def render_spec(video: VideoInfo, options: DecodeOptions) -> RenderSpec:
    """The frames, size and rate ``options`` ask of this video."""
    return plan_render(
        video,
        width=options.width,
        height=options.height,
        spatial_scale=None if options.spatial_scale is None else float(options.spatial_scale),
        temporal_scale=options.temporal_scale,
        num_frames=options.num_frames,
        fps=None if options.fps is None else parse_fps(options.fps, video.frame_rate),
    )


def check_render(video: VideoInfo, options: DecodeOptions) -> None:
    """Refuse, before any learning, a render of this video that ``options`` cannot make."""
    chosen_rules(render_spec(video, options), options.between, options.upscaler, available_memory())


def decode(
    source: str,
    output: str,
    options: DecodeOptions,
    console: Console,
    source_label: str | None = None,
) -> None:
    """Render the .nvw at ``source`` ('-' for stdin) as ``options`` say into ``output``;
    ``source_label`` names the source in messages when it is a temporary file."""
    device = resolve_device(options.device)
    folder = check_output(output, options.container)
    loaded, _ = open_nvw(source)
    spec = render_spec(loaded.video, options)
    between, upscaler, note = chosen_rules(
        spec, options.between, options.upscaler, available_memory()
    )
    if note:
        console.message(note)
    speed = _speed_note(loaded.video, spec, options)
    if speed:
        console.message(speed)
    codec = options.codec or media.default_codec(container_of(output, options.container))
    model = loaded.model.to(device)
    start = time.perf_counter()
    with ExitStack() as stack:
        sound = None if folder else _audio_plan(loaded, spec, output, options, stack)
        if sound:
            console.message(sound.describe())
        target = _target(output, folder, stack)
        args = media.build_write_args(
            target,
            spec.width,
            spec.height,
            spec.fps,
            loaded.video,
            codec,
            options.crf_for(codec),
            options.pix_fmt,
            options.container,
            image_sequence=folder,
            audio=sound.stream() if sound else None,
        )
        video = loaded.video
        frames = iter_frames(model, spec, video.frames, between, upscaler,
                             (video.chroma, video.color.matrix), video.timeline)  # fmt: skip
        _write(frames, media.FrameWriter(args, output), spec.num_frames, start, console)
    console.done()
    summary = _summary(source_label or source, output, spec, options, folder, codec, start)
    console.message(summary + _made_by(spec, between, upscaler))


def _speed_note(video: VideoInfo, spec: RenderSpec, options: DecodeOptions) -> str | None:
    """A note where --fps alone changes how long the video plays (it sets the playback rate of
    the same frames; ffmpeg's -r keeps the duration), saying how to keep it."""
    if options.fps is None or options.temporal_scale or options.num_frames:
        return None
    ratio = spec.fps / video.frame_rate
    if ratio == 1:
        return None
    played = float(spec.num_frames / spec.fps)
    return (
        f"note: --fps {options.fps} plays the {spec.num_frames} frames "
        f"{'faster' if ratio > 1 else 'slower'} ({played:.2f} s instead of "
        f"{float(video.duration):.2f} s); add --num-frames {max(1, round(spec.num_frames * ratio))}"
        f" to keep the duration ({'new frames in between' if ratio > 1 else 'fewer frames'})"
    )


def _audio_plan(
    loaded: NvwFile, spec: RenderSpec, output: str, options: DecodeOptions, stack: ExitStack
) -> AudioPlan | None:
    """The stored sound, written to a temporary file and stretched to the output's duration."""
    if loaded.audio is None or not loaded.audio_codec or options.audio != "keep":
        return None
    stored = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nvfilter-")))
    stored_file = stored / ("audio" + STORE_SUFFIX[store_format(loaded.audio_codec)])
    stored_file.write_bytes(loaded.audio)
    return AudioPlan(
        path=stored_file,
        codec=loaded.audio_codec,
        source_seconds=loaded.video.duration,
        tempo=loaded.video.duration / float(spec.num_frames / spec.fps),
        container=container_of(output, options.container),
    )


def _target(output: str, folder: bool, stack: ExitStack) -> str:
    """What ffmpeg writes to: the pipe, or a hidden partial file or folder renamed when done."""
    if output == "-":
        return "pipe:"
    if folder:
        return str(stack.enter_context(atomic_folder(Path(output))) / "frame_%06d.png")
    return str(stack.enter_context(atomic_file(Path(output))))


TRIM_EVERY = 5.0
"""Seconds between two hand-backs of freed memory while decoding (device.release_freed_memory:
6 to 40 ms each at 1080p)."""


def _write(
    frames: Iterator[np.ndarray],
    writer: media.FrameWriter,
    total: int,
    start: float,
    console: Console,
) -> None:
    """Feed every frame to ffmpeg with a progress line, handing freed memory back every
    TRIM_EVERY seconds; ffmpeg is stopped on any failure."""
    trimmed = start
    try:
        for index, frame in enumerate(frames):
            writer.write(frame)
            now = time.perf_counter()
            if now - trimmed >= TRIM_EVERY:
                release_freed_memory()
                trimmed = now
            elapsed = now - start
            rate = (index + 1) / elapsed
            console.status(
                f"frame {index + 1}/{total}  {rate:.1f} fps  elapsed {clock(elapsed)}  "
                f"ETA {clock((total - index - 1) / rate)}"
            )
        writer.close()
    except BaseException:
        writer.abort()
        raise


def _summary(
    name: str,
    output: str,
    spec: RenderSpec,
    options: DecodeOptions,
    folder: bool,
    codec: str,
    start: float,
) -> str:
    """The closing line: what was written, how long it plays and how it was made."""
    size = (spec.width, spec.height)
    padded = (
        size if folder else media.even_size(*size, options.pix_fmt or media.default_pix_fmt(codec))
    )
    note = "" if padded == size else f" (padded to {padded[0]}x{padded[1]} for the pixel format)"
    seconds = float(Fraction(spec.num_frames) / spec.fps)
    return (
        f"decoded {name} -> {output}: {spec.num_frames} frame{'s' * (spec.num_frames != 1)} "
        f"{spec.width}x{spec.height}"
        f"{note} at {rate_text(spec.fps)} fps ({seconds:.2f} s) in "
        f"{time.perf_counter() - start:.1f} s"
    )


def _made_by(spec: RenderSpec, between: str, upscaler: str) -> str:
    """How the render's new frames and new pixels were made, for the closing line."""
    text = ""
    if makes_new_frames(spec):
        text += {
            "motion": ", frames between source frames moved along the motion",
            "search": ", frames between source frames moved along flows searched on them",
        }.get(between, ", frames between source frames read from the network")
    if backprojects(spec, upscaler):
        learned = spec.learned_size
        text += f", upscaled from the learned {learned[0]}x{learned[1]} by back-projection"
        if upscaler == "multiframe":
            text += " against neighbouring frames"
    elif enlarges((spec.width, spec.height), spec.learned_size):
        text += ", new pixels read from the network"
    return text
