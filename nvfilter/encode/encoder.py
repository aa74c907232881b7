"""encode: read the video, build or resume the network, train it, write the .nvw (and --outputs).

Reading frames and sound is media.py and audio.py, training is train.py, the file is nvw.py, the
--outputs folder is run_folder.py; this module decides what goes where and says so on stderr.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch

from nvfilter.config import (
    UNTIL_BUDGET_EPOCHS,
    EncodeOptions,
    TrainConfig,
    TrainResult,
    VideoInfo,
    pick_model,
    storage_dtype,
)
from nvfilter.coords import frame_time
from nvfilter.device import resolve_device
from nvfilter.encode.finish import finish_fit
from nvfilter.encode.parts import PARTS_RUN, encode_parts
from nvfilter.encode.run_folder import (
    RunFolder,
    RunOptions,
    checkpoint_name,
    find_checkpoint,
    read_state,
    run_config,
    versions,
)
from nvfilter.encode.source import OpenedSource, Source, open_source, read_source
from nvfilter.encode.train import Progress, Trainer, compile_pays, resolve_precision
from nvfilter.errors import OptionError
from nvfilter.io import nvw
from nvfilter.io.outputs import check_file_output, write_bytes
from nvfilter.metrics import psnr_from_mse
from nvfilter.models import REGISTRY, ModelSpec, count_parameters, spec_of
from nvfilter.models.field import VideoField
from nvfilter.models.reads import reconstruction_mse, render_frame
from nvfilter.progress import Console, human_bytes, rate_text

FLAG_NAMES = {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size",
              "lr_schedule": "--lr-schedule", "channels": "--channels", "levels": "--levels",
              "hidden_features": "--hidden-features", "hidden_layers": "--hidden-layers",
              "footprint": "--footprint", "time_budget": "--time-budget", "dtype": "--dtype",
              "precision": "--precision", "compile": "--compile"}  # fmt: skip
"""The encode settings a model may refuse or leave unused, as their flags are spelled."""
STEP_SETTINGS = ("epochs", "lr", "batch_size", "lr_schedule")
"""The settings of optimiser steps, none of a model fitted in closed form."""
STREAM_SETTINGS = ("time_budget", "dtype", "precision", "compile")
"""What a coded stream has no use for: it is not trained and holds bytes, not floats."""


def check_model_flags(options: EncodeOptions, spec: ModelSpec) -> None:
    """Refuse the settings the model says make no sense for it (ModelSpec.refuses)."""
    for name in spec.refuses:
        if getattr(options, name):
            raise OptionError(f"{FLAG_NAMES[name]} is not for --model {spec.name} "
                              f"({spec.refuse_reason})")  # fmt: skip


def note_unused_flags(
    options: EncodeOptions, spec: ModelSpec, console: Console, auto: bool
) -> None:
    """Name the step settings a closed-form model leaves unused, and with ``--model auto`` the
    settings it refuses too (a named model refuses them, check_model_flags), and how to get a
    model that uses them."""
    names = (*(STEP_SETTINGS if spec.closed_form else ()), *(spec.refuses if auto else ()),
             *(STREAM_SETTINGS if spec.coded else ()))  # fmt: skip
    defaults = {field.name: field.default for field in dataclasses.fields(EncodeOptions)}
    unused = [FLAG_NAMES[name] for name in names if getattr(options, name) != defaults[name]]
    if unused:
        how = ("a coded stream, not trained" if spec.coded
               else "fitted in closed form" if spec.closed_form else spec.refuse_reason)  # fmt: skip
        console.message(
            f"note: {', '.join(dict.fromkeys(unused))}: unused, the {spec.name} model is {how}"
            + (" (give --model hybrid to train a network)" if auto else "")
        )


RATE_FLAGS = {"quality": "--quality", "bitrate": "--bitrate", "bits_per_pixel": "--bits-per-pixel"}


def check_rate_flags(options: EncodeOptions, spec: ModelSpec) -> None:
    """Refuse a quality or rate for a model that does not code to one, and two ways of saying
    how good or how large at once (--target-psnr with a rate: the PSNR within that rate)."""
    given = [flag for name, flag in RATE_FLAGS.items() if getattr(options, name) is not None]
    if given and not spec.coded:
        coded = ", ".join(name for name, each in REGISTRY.items() if each.coded)
        raise OptionError(f"{given[0]} is for --model {coded}, not --model {spec.name}")
    if len(given) > 1 or (options.quality is not None and options.target_psnr is not None):
        both = given + (["--target-psnr"] if options.target_psnr is not None else [])
        raise OptionError(f"{both[0]} and {both[1]} both say how good or how large: give one")


def create_model(options: EncodeOptions, video: VideoInfo) -> tuple[VideoField, str]:
    """The network to train and a one-line description of it (saying what was auto-picked)."""
    spec = spec_of(options.model)
    check_model_flags(options, spec)
    if spec.build is None:
        raise OptionError(f"--model {spec.name} is learned in parts, not as one network")
    model, text = spec.build(options.settings(), video.width, video.height, video.frames)
    return model, f"{text}, {count_parameters(model):,} parameters"


def is_parts_run(resume: str) -> bool:
    """Whether --resume names the --outputs folder of a streamed (parts) run."""
    config = Path(resume) / "config.json"
    if not config.is_file():
        return False
    try:
        return bool(json.loads(config.read_text()).get("kind") == PARTS_RUN)
    except (OSError, ValueError):
        return False


def parts_run_options(resume: str, device: str) -> EncodeOptions:
    """The options a streamed run was started with (the device stays the caller's)."""
    saved = json.loads((Path(resume) / "config.json").read_text())["options"]
    return dataclasses.replace(EncodeOptions(**saved), device=device)


def train_config(options: EncodeOptions, device: str) -> TrainConfig:
    """The training settings: the options, else the model's defaults; a segments run with a
    --time-budget and no --epochs trains for the whole budget; a tiles network takes no steps."""
    spec = spec_of(options.model)
    epochs = options.setting("epochs", device)
    if spec.trains_until_budget and options.epochs is None and options.time_budget:
        epochs = UNTIL_BUDGET_EPOCHS
    closed = spec.closed_form  # no optimiser steps: their settings are none of its
    return TrainConfig(
        epochs=0 if closed else epochs,
        batch_size=1 if closed else options.setting("batch_size", device),
        lr=0.0 if closed else options.setting("lr", device),
        lr_schedule="constant" if closed else options.setting("lr_schedule", device),
        time_budget=options.time_budget,
        target_psnr=options.target_psnr,
        seed=options.seed,
        device=device,
        precision=resolve_precision(options.precision, device, options.model),
        compile=bool(options.compile),
    )


def encode(
    source: str,
    output: str,
    options: EncodeOptions,
    console: Console,
    run: RunOptions | None = None,
    output_label: str | None = None,
    check_video: Callable[[VideoInfo], None] | None = None,
) -> TrainResult:
    """Learn the video at ``source`` and write the .nvw to ``output`` (``-``: stdin/stdout);
    ``output_label`` names the output in messages when it is a temporary file; ``check_video``
    sees the video's facts before any learning (`filter` plans its output with it).

    With ``run.resume`` the network, the optimiser and the settings come from that checkpoint
    (``options.device`` still applies) and training goes on where it stopped.
    """
    run = run or RunOptions()
    check_file_output(output)
    parts_resume = bool(run.resume) and is_parts_run(run.resume or "")
    if parts_resume:
        options = parts_run_options(run.resume or "", options.device)
    with ExitStack() as stack:
        if parts_resume:
            opened = open_source(source, options, stack)
            config = train_config(options, resolve_device(options.device))
            return encode_parts(opened, source, output, options, config, console, run,
                                output_label, check_video)  # fmt: skip
        resumed = None
        if run.resume:
            options, run, resumed = resume_point(options, run)
        device = resolve_device(options.device)
        resolve_precision(options.precision, device, options.model)  # refused before reading
        picked = pick_model(options.model)
        spec = spec_of(picked)
        streamed = [name for name, each in REGISTRY.items() if each.streamed]
        if (run.jobs > 1 or run.ray) and (not spec.streamed or resumed):
            raise OptionError("--jobs and --ray learn a video in parts "
                              f"(--model {', '.join(streamed)} or auto)")  # fmt: skip
        check_rate_flags(options, spec)
        opened = open_source(source, options, stack)
        if check_video is not None:  # a render refused before any note on the learning
            check_video(opened.video(opened.kept_estimate(options) or 1, options))
        if not resumed and spec.streamed:
            if options.model == picked:
                check_model_flags(options, spec)
            note_unused_flags(options, spec, console, auto=options.model != picked)
            options = dataclasses.replace(
                options, model=picked, footprint=None, dtype=storage_dtype(options.dtype, picked)
            )
            config = train_config(options, device)
            return encode_parts(opened, source, output, options, config, console, run,
                                output_label, check_video)  # fmt: skip
        options = dataclasses.replace(
            options, model=picked, dtype=storage_dtype(options.dtype, picked)
        )
        return _encode_whole(opened, source, output, options, console, run, output_label,
                             check_video, resumed, device)  # fmt: skip


def _model_for(
    options: EncodeOptions, video: VideoInfo, source: str, checkpoint: Path | None
) -> tuple[VideoField, str]:
    """The network to train and its description: new, or the checkpoint's (which must have
    learned this video)."""
    if checkpoint is None:
        return create_model(options, video)
    loaded = nvw.load(checkpoint)
    learned = (loaded.video.width, loaded.video.height, loaded.video.frames)
    if learned != (video.width, video.height, video.frames):
        raise OptionError(
            f"--resume: {source} gives {video.frames} frames {video.width}x{video.height}, "
            f"but the checkpoint learned {loaded.video.frames} frames "
            f"{loaded.video.width}x{loaded.video.height}: not the same video"
        )
    return loaded.model, f"{loaded.architecture['type']} from {checkpoint}"


def _compiled_or_not(
    config: TrainConfig, options: EncodeOptions, model: VideoField, frames: torch.Tensor,
    console: Console,
) -> TrainConfig:  # fmt: skip
    """The config with --compile decided where it was not given (compile_pays), said when on."""
    if options.compile is None:
        pixels = config.epochs * frames.shape[0] * frames.shape[1] * frames.shape[2]
        auto = compile_pays(model, config.device, pixels, config.time_budget)
        config = dataclasses.replace(config, compile=auto)
    if config.compile:
        by_default = ", on for long SIREN runs on a CPU; --no-compile skips it"
        console.message(
            f"compiling the network (torch.compile{by_default if options.compile is None else ''}) ..."
        )
    return config


def _encode_whole(
    opened: OpenedSource,
    source: str,
    output: str,
    options: EncodeOptions,
    console: Console,
    run: RunOptions,
    output_label: str | None,
    check_video: Callable[[VideoInfo], None] | None,
    resumed: tuple[Path, tuple[dict[str, torch.Tensor], dict[str, str]]] | None,
    device: str,
) -> TrainResult:
    """Learn the whole video with one network (the hybrid or SIREN): every frame in memory."""
    folder = _run_folder(run, resumed)
    src = read_source(opened, source, options, console)
    frames, video = src.frames, src.video
    if check_video is not None:
        check_video(video)
    torch.manual_seed(options.seed)
    model, description = _model_for(options, video, source, resumed[0] if resumed else None)
    config = _compiled_or_not(train_config(options, device), options, model, frames, console)
    if not resumed and model.training_views() is not None:
        console.message(f"{model.kind}: starting from a principal-component fit of each segment")
    trainer = Trainer(model, frames, config, start=not resumed)
    if trainer.compile_note:
        console.message(trainer.compile_note)
    if resumed:
        trainer.load_state(*resumed[1])
    console.message(
        f"encode: {video.frames} frames {video.width}x{video.height} at "
        f"{rate_text(video.frame_rate)} fps ({video.duration:.2f} s, "
        f"{human_bytes(frames.numel())} raw" + (f", {src.audio[1]} audio" if src.audio else "")
        + f") -> {description}; {trainer.config.describe()}"
        + (f"; resuming at step {trainer.step}" if resumed else "")
    )  # fmt: skip
    recorder = None
    if folder is not None:
        folder.write_config(
            run_config(source, output, options, config, model, video, run, versions())
        )
        recorder = Recorder(folder, trainer, src, options, run)
    fitted = trainer.run(console.training, **(recorder.hooks() if recorder else {}))
    console.done()
    if fitted.stopped_by == "interrupt":
        console.message("interrupted: saving what was learned so far")
    finished = finish_fit(model, frames, video, fitted, trainer.config, options.dtype, src.audio)
    result, data, psnr = finished.result, finished.data, finished.result.psnr
    if recorder is not None:
        recorder.finish(result)
    write_bytes(data, output)
    bpp = len(data) * 8 / (video.width * video.height * video.frames)
    console.message(
        f"encoded {source} -> {output_label or output}: PSNR {psnr:.2f} dB after {fitted.steps} steps in "
        f"{fitted.seconds:.1f} s ({fitted.stopped_by}), {human_bytes(len(data))}, "
        f"{bpp:.3f} bits/pixel"
        + (f" ({src.audio[1]} audio, {human_bytes(len(src.audio[0]))})" if src.audio else "")
    )
    return result


def _run_folder(
    run: RunOptions, resumed: tuple[Path, tuple[dict[str, torch.Tensor], dict[str, str]]] | None
) -> RunFolder | None:
    """The folder the run records itself in (--outputs, or the folder of the run resumed)."""
    outputs = run.outputs or (
        str(resumed[0].parent) if resumed and Path(run.resume or "").is_dir() else None
    )
    if not outputs:
        return None
    return RunFolder(Path(outputs), resuming_step=int(resumed[1][1]["step"]) if resumed else None)


def resume_point(
    options: EncodeOptions, run: RunOptions
) -> tuple[EncodeOptions, RunOptions, tuple[Path, tuple[dict[str, torch.Tensor], dict[str, str]]]]:
    """The settings of the run that ``run.resume`` names (the device stays the caller's), and
    its checkpoint with the optimiser state beside it."""
    checkpoint = find_checkpoint(run.resume or "")
    state = read_state(checkpoint)
    saved = json.loads(state[1]["options"])
    options = dataclasses.replace(EncodeOptions(**saved), device=options.device)
    if run.checkpoint_every is None and "run" in state[1]:
        saved_every = json.loads(state[1]["run"]).get("checkpoint_every")
        run = dataclasses.replace(run, checkpoint_every=saved_every)
    return options, run, (checkpoint, state)


class Recorder:
    """Fills the --outputs folder as training goes: log lines, checkpoints, pictures."""

    def __init__(
        self,
        folder: RunFolder,
        trainer: Trainer,
        src: Source,
        options: EncodeOptions,
        run: RunOptions,
    ) -> None:
        self.folder, self.trainer, self.src = folder, trainer, src
        self.options, self.run = options, run

    def hooks(self) -> dict[str, Any]:
        """Trainer.run's keyword arguments: callbacks and how often they are called."""
        hooks: dict[str, Any] = {
            "on_log": self.on_log,
            "log_every": self.run.log_every,
            "on_checkpoint": self.on_checkpoint,
        }
        budget = self.trainer.config.time_budget
        if self.run.checkpoint_every is not None:
            hooks["checkpoint_every"] = self.run.checkpoint_every
        elif budget is not None:  # ten checkpoints over the budget
            hooks["checkpoints"] = [budget * k / 10 for k in range(1, 10)]
        else:
            hooks["checkpoint_every"] = max(1, self.trainer.steps // 10)
        return hooks

    def on_log(self, progress: Progress) -> None:
        self.folder.log(
            {
                "step": progress.step,
                "seconds": round(progress.elapsed, 4),
                "loss": progress.loss,
                "psnr_db": round(progress.psnr, 4),
                "lr": progress.lr,
            }
        )

    def on_checkpoint(self, step: int, seconds: float) -> None:
        self.save("checkpoint")

    def save(self, stopped_by: str, psnr: float | None = None) -> None:
        """A checkpoint .nvw, its optimiser state, a sample reconstruction and a log line."""
        trainer, frames, video = self.trainer, self.src.frames, self.src.video
        model = trainer.model
        if psnr is None:
            psnr = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)
        result = TrainResult(
            trainer.step, trainer.elapsed, psnr, stopped_by, dataclasses.asdict(trainer.config)
        )
        tensors, metadata = trainer.state()
        metadata["options"] = json.dumps(dataclasses.asdict(self.options))
        metadata["run"] = json.dumps(dataclasses.asdict(self.run))
        nvw_bytes = nvw.to_bytes(model, video, result, self.options.dtype, self.src.audio)
        self.folder.checkpoint(trainer.step, nvw_bytes, (tensors, metadata))
        middle = video.frames // 2
        model.forget_render_cache()
        recon = render_frame(model, video.width, video.height, frame_time(middle, video.frames))
        self.folder.recon_sample(
            trainer.step,
            frames[middle].numpy(),
            recon,
            f"step {trainer.step}, {trainer.elapsed:.1f} s: {psnr:.2f} dB (all frames)",
        )
        self.folder.log(
            {
                "step": trainer.step,
                "seconds": round(trainer.elapsed, 4),
                "full_psnr_db": round(psnr, 4),
                "checkpoint": checkpoint_name(trainer.step),
            }
        )

    def finish(self, result: TrainResult) -> None:
        """The last checkpoint (so --resume can go on from an interrupt), curves, comparisons."""
        video, frames, model = self.src.video, self.src.frames, self.trainer.model
        self.save(result.stopped_by, result.psnr)
        self.folder.progress_plot(
            f"{video.width}x{video.height}, {video.frames} frames: "
            f"{result.psnr:.2f} dB after {result.steps} steps ({result.seconds:.1f} s)"
        )
        model.forget_render_cache()
        for index in sorted({0, video.frames // 2, video.frames - 1}):
            t = frame_time(index, video.frames)
            recon = render_frame(model, video.width, video.height, t)
            self.folder.comparison(index, frames[index].numpy(), recon)
