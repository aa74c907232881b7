"""The optimisation loop: uint8 frames in, fitted network out. Writes no files.

Each step draws ``batch_size`` random pixels (with replacement) from the whole video, makes their
(x, y, t) coordinates from the indices (see coords.py), and takes one Adam step on the mean squared
error in [0, 1] RGB (on a CPU, in chunks of the model's ``cpu_chunk_rows`` whose gradients add up
to the batch's). A model trained on whole frames (``training_views``) instead draws random views,
``batch_size`` pixels rounded to whole frames (at least one), each rendered densely. One epoch is
as many sampled pixels as the video has (as many views as the model has, for whole frames). The learning rate is
constant (the original SIREN design) or follows a cosine from 1x down to 0.05x over the run, the
run's end being whichever comes first of the epochs and the time budget.

The arithmetic is ``--precision`` (float32, TF32 products on CUDA, or the forward pass under
bfloat16 autocast; weights and Adam always float32); ``--compile`` runs SIREN's passes through
torch.compile. On a GPU the loss is read back every GPU_SYNC_EVERY steps, not every step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from nvfilter.config import PRECISIONS, TrainConfig
from nvfilter.coords import index_coords
from nvfilter.errors import OptionError
from nvfilter.metrics import psnr_from_mse
from nvfilter.models import count_parameters
from nvfilter.models.field import VideoField
from nvfilter.progress import Progress

CUDA_AUTO_PRECISION = {"siren": "bfloat16"}
"""What ``auto`` trains each model in on an NVIDIA GPU, where measured to pay and to hold PSNR
(BENCHMARKS-history.md, GPU section); float32 for the rest and everywhere else."""
COMPILE_PAYS_AFTER = 120.0
"""Seconds of training from which SIREN compiles by default on a CPU, where compiled it steps
1.14-1.34x faster in float32 and 1.03-1.31x in bfloat16 at batch 4096 (BENCHMARKS-history.md): the 20 s
of a first compile (1-3 s once torch's cache holds it) are then soon paid back."""
CPU_FLOPS_ESTIMATE = 1e11
"""FLOP/s of uncompiled float32 training assumed when estimating a run's length (2 cores of this
project's machine reach 110-135 GFLOP/s)."""
GPU_SYNC_EVERY = 25
"""On a GPU the loss is read back every this many steps (one wait for the GPU instead of one a
step, so the CPU queues the next steps while the GPU works); reports and checkpoints read it too."""


def compile_pays(model: VideoField, device: str, pixels: float, time_budget: float | None) -> bool:
    """Whether training compiles when ``--compile`` is not given: SIREN on a CPU for a run of
    ``pixels`` pixel passes estimated at COMPILE_PAYS_AFTER seconds or more (at float32's rate,
    the slower one). On a GPU it is left to the flag: compiling there was not timed in the
    trainer."""
    if model.kind != "siren" or torch.device(device).type != "cpu":
        return False
    flops = 6 * count_parameters(model) * pixels
    seconds = flops / CPU_FLOPS_ESTIMATE
    return min(seconds, time_budget if time_budget is not None else math.inf) >= COMPILE_PAYS_AFTER


def resolve_precision(precision: str, device: str, model: str) -> str:
    """``auto`` -> the measured best for this model on this kind of device; refuses tf32 off
    NVIDIA GPUs."""
    if precision not in PRECISIONS:
        raise OptionError(f"--precision {precision}: not one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "auto":
        return CUDA_AUTO_PRECISION.get(model, "float32") if kind == "cuda" else "float32"
    if precision == "tf32" and kind != "cuda":
        raise OptionError("--precision tf32 is for NVIDIA GPUs (--device cuda)")
    return precision


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """TF32 matrix products on CUDA while training with ``tf32``; restored afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


class _Clock:
    """Training seconds: wall time since ``start``, less the pauses (checkpoints)."""

    def __init__(self, start: float) -> None:
        self.start = start

    def now(self) -> float:
        return time.perf_counter() - self.start

    def pause(self, seconds: float) -> None:
        self.start += seconds


@dataclass(frozen=True)
class FitResult:
    steps: int
    seconds: float
    stopped_by: str
    """``epochs``, ``time-budget``, ``target-psnr``, ``interrupt`` or ``fitted`` (a closed-form
    network: no steps)."""


@contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """While training: the first Ctrl-C or SIGTERM asks the loop to stop at the end of the step
    in progress (so a resumed run goes on bit for bit); a second one stops at once, and nothing
    is saved. Yields a function that says whether a stop was asked."""
    asked: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(asked)
    finally:
        for sig, previous in before.items():
            signal.signal(sig, previous)


def cosine_scale(done: float, floor: float = 0.05) -> float:
    """Learning-rate multiplier after a fraction ``done`` of training: 1 down to floor, cosine."""
    done = min(max(done, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))


def total_steps(num_pixels: int, config: TrainConfig) -> int:
    return max(1, math.ceil(config.epochs * num_pixels / config.batch_size))


def views_per_step(batch_size: int, width: int, height: int) -> int:
    """Whole-frame views in a step of ``batch_size`` pixels: rounded, at least one."""
    return max(1, round(batch_size / (width * height)))


def make_optimiser(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam over the model's parameter groups; torch's fused kernel where it runs (one pass over
    all parameters per step instead of several per tensor: 0.65 against 4.7 ms a step for the
    hybrid's 2.2 million parameters at 320x240). Both compute the same update and share a state
    layout."""
    groups = model.param_groups(lr)  # type: ignore[operator]
    try:
        return torch.optim.Adam(groups, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype the fused kernel does not cover
        return torch.optim.Adam(groups)


class Trainer:
    """The state of one training run (network, optimiser, sampler, step and clock): run it, stop
    it, save it with ``state()`` and pick it up again with ``load_state()``."""

    def __init__(
        self, model: VideoField, frames: torch.Tensor, config: TrainConfig, start: bool = True,
        fit_progress: Callable[[int], None] | None = None, cuts: Sequence[int] = (),
    ) -> None:  # fmt: skip
        """``start``: let the model initialise itself from the frames (``start_from``; its time
        counts as training time); False when the weights come from a checkpoint.
        ``fit_progress``: told each frame a closed-form fit is done with; ``cuts``: the frames
        that start a new shot."""
        self.model = model
        self.config = config
        self.device = torch.device(config.device)
        self.precision = resolve_precision(config.precision, config.device, model.kind)
        self.sync_every = 1 if self.device.type == "cpu" else GPU_SYNC_EVERY
        """Steps between reads of the loss (each read waits for the device)."""
        self.num_frames, self.height, self.width, _ = frames.shape
        colors = frames.reshape(-1, 3)
        self.colors = colors.to(self.device) if self.device.type != "cpu" else colors
        self.num_pixels = self.colors.shape[0]
        self.views = model.training_views()
        """Whole-frame training views, or None: random pixels."""
        self.steps = total_steps(self.num_pixels, config)
        if self.views is not None:
            self.views_per_step = views_per_step(config.batch_size, self.width, self.height)
            self.steps = max(1, math.ceil(config.epochs * self.views / self.views_per_step))
        if model.closed_form:
            self.steps = 0  # start_from is the whole fit
        began = time.perf_counter()
        if start:
            model.start_from(frames, fit_progress, cuts)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        model.to(self.device)
        self.base_lrs = [group["lr"] for group in model.param_groups(config.lr)]
        self.step = 0
        self.elapsed = time.perf_counter() - began if start else 0.0
        self.started = self.elapsed
        """Seconds the model's start from the frames took (0 when resumed)."""
        """Seconds of training so far (the start from the frames included), checkpoint and
        logging time excluded."""
        self.smoothed_mse: float | None = None
        self.network: Callable[[torch.Tensor], torch.Tensor] = model
        """What the training passes call: the model, or its compiled plain form."""
        self.compile_note: str | None = None
        """Why ``config.compile`` was not applied, when it was asked for and was not."""
        if config.compile:
            self.network, self.compile_note = self._compiled_network()
            if self.network is model:
                self.config = dataclasses.replace(config, compile=False)

    def _compiled_network(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], str | None]:
        """torch.compile of the model's plain form, tried once on a pass of the training size
        (compiling happens then, in seconds); the model itself where that fails."""
        plain = getattr(self.model, "plain_forward", None)
        if plain is None:
            return self.model, f"--compile: the {self.model.kind} model trains uncompiled"
        compiled = torch.compile(plain)
        try:
            probe = torch.zeros(self._pass_rows(self.config.batch_size), 3, device=self.device)
            with self._autocast():
                compiled(probe).float().sum().backward()
        except Exception as error:  # no C compiler, an unsupported device, ...
            reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
            return (
                self.model,
                f"note: torch.compile failed ({type(error).__name__}: {reason}); training uncompiled",
            )
        finally:
            self.model.zero_grad(set_to_none=True)
        return compiled, None

    def _pass_rows(self, rows: int) -> int:
        """Pixels per forward/backward pass for a batch of ``rows``."""
        chunk = self.model.cpu_chunk_rows() if self.device.type == "cpu" else None
        return min(rows, chunk or rows)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"
        )

    @functools.cached_property
    def optimiser(self) -> torch.optim.Optimizer:
        """Adam over the model's parameter groups, made when first used: a closed-form fit never
        steps, and the first Adam of a process imports torch's compiler (1.1-1.3 s)."""
        return make_optimiser(self.model, self.config.lr)

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group now."""
        return float(self.optimiser.param_groups[0]["lr"])

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Everything beyond the weights that resuming needs, as safetensors tensors and
        string metadata: Adam's moments, the sampler's generator, step, clock, running loss."""
        tensors: dict[str, torch.Tensor] = {
            "generator": self.generator.get_state().cpu(),
        }
        saved = self.optimiser.state_dict()
        for index, slots in saved["state"].items():
            for name, value in slots.items():
                tensors[f"adam.{index}.{name}"] = torch.as_tensor(value).detach().cpu()
        metadata = {
            "step": str(self.step),
            "elapsed": repr(self.elapsed),
            "smoothed_mse": repr(self.smoothed_mse),
            "lrs": json.dumps([group["lr"] for group in self.optimiser.param_groups]),
        }
        return tensors, metadata

    def load_state(self, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
        """Continue from ``state()`` saved by a run with the same model, frames and config."""
        self.generator.set_state(tensors["generator"])
        current = self.optimiser.state_dict()
        lrs = json.loads(metadata["lrs"])
        if len(lrs) != len(current["param_groups"]):
            raise ValueError("optimiser state has a different number of parameter groups")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("adam."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        for group, lr in zip(current["param_groups"], lrs, strict=True):
            group["lr"] = lr
        self.optimiser.load_state_dict({"state": state, "param_groups": current["param_groups"]})
        self.step = int(metadata["step"])
        self.elapsed = float(metadata["elapsed"])
        smoothed = metadata["smoothed_mse"]
        self.smoothed_mse = None if smoothed == "None" else float(smoothed)

    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        report_every: float = 0.5,
        checkpoints: Sequence[float] = (),
        on_checkpoint: Callable[[int, float], None] | None = None,
        checkpoint_every: int | None = None,
        on_log: Callable[[Progress], None] | None = None,
        log_every: int = 100,
    ) -> FitResult:
        """Train until the epochs, the time budget or the target PSNR is reached, or Ctrl-C.

        ``on_checkpoint(step, seconds)`` runs once the training time passes each of
        ``checkpoints`` (seconds) and every ``checkpoint_every`` steps; the clock is stopped
        while it runs, so it may evaluate the model or save the run. ``on_log`` gets every
        ``log_every``-th step and the last one.
        """
        self.model.train()
        clock = _Clock(time.perf_counter() - self.elapsed)
        last_report = -math.inf
        stopped_by = "fitted" if self.model.closed_form else "epochs"
        pending = sorted(c for c in checkpoints if c > self.elapsed)
        losses: list[torch.Tensor] = []
        """Batch losses not read back yet (a GPU runs ahead of the loop)."""
        psnr = math.nan
        with matmul_precision(self.precision), stop_requests() as stop_asked:
            while self.step < self.steps:
                if stop_asked():
                    stopped_by = "interrupt"
                    break
                losses.append(self._step())
                self.elapsed = clock.now()
                report_due = bool(on_progress) and (
                    self.elapsed - last_report >= report_every or self.step == self.steps
                )
                log_due = bool(on_log) and (self.step % log_every == 0 or self.step == self.steps)
                checkpoint_due = bool(checkpoint_every) and self.step % checkpoint_every == 0  # type: ignore[operator]
                if (
                    self.step % self.sync_every == 0
                    or report_due
                    or log_due
                    or checkpoint_due
                    or (pending and self.elapsed >= pending[0])
                ):
                    report = self._progress(losses)
                    psnr = report.psnr
                    if on_progress and report_due:
                        last_report = self.elapsed
                        on_progress(report)
                    if on_log and log_due:
                        on_log(report)
                if on_checkpoint:
                    self._checkpoints(on_checkpoint, checkpoint_due, pending, clock)
                reached = self._reached(psnr)
                if reached:
                    stopped_by = reached
                    break
        self._read_losses(losses)
        if self.device.type != "cpu" and stopped_by != "interrupt":
            self.elapsed = clock.now()  # the GPU's queued steps count too
        self.model.eval()
        return FitResult(steps=self.step, seconds=self.elapsed, stopped_by=stopped_by)

    def _progress(self, losses: list[torch.Tensor]) -> Progress:
        """Where the fit stands, the batch losses not read back yet read (and emptied)."""
        mse = self._read_losses(losses)
        psnr = psnr_from_mse(self.smoothed_mse, peak=1.0)  # type: ignore[arg-type]
        return Progress(self.step, self.steps, mse, psnr, self.elapsed, self.config.time_budget,
                        self.lr, self.started)  # fmt: skip

    def _reached(self, psnr: float) -> str | None:
        """Why the fit stops now ("time-budget", "target-psnr"), or None: it goes on."""
        config = self.config
        if config.time_budget is not None and self.elapsed >= config.time_budget:
            return "time-budget"
        if config.target_psnr is not None and psnr >= config.target_psnr:
            return "target-psnr"
        return None

    def _step(self) -> torch.Tensor:
        """One optimiser step on a random batch of pixels or of whole-frame views; returns its
        loss (not read back)."""
        self.optimiser.zero_grad(set_to_none=True)
        if self.views is not None:
            loss = self._views_backward()
        else:
            index = torch.randint(
                self.num_pixels,
                (self.config.batch_size,),
                device=self.device,
                generator=self.generator,
            )
            coords = index_coords(index, self.width, self.height, self.num_frames)
            loss = self._backward(coords, self.colors[index].to(torch.float32) / 255.0)
        self.optimiser.step()
        self.step += 1
        if self.config.lr_schedule == "cosine":
            self._follow_schedule()
        return loss

    def _views_backward(self) -> torch.Tensor:
        """The mean squared error of random whole-frame views (each one a dense render), its
        gradient added to the weights' ``.grad`` view by view."""
        assert self.views is not None
        views = torch.randint(
            self.views, (self.views_per_step,), device=self.device, generator=self.generator
        ).tolist()
        frames = self.colors.view(self.num_frames, self.height, self.width, 3)
        total = torch.zeros((), device=self.device)
        for view in views:
            target = frames[self.model.view_frame(view)].permute(2, 0, 1).reshape(3, -1)
            with self._autocast():
                predicted = self.model.render_view(view)
            error = predicted.float() - target.to(torch.float32) / 255.0
            loss = error.square().sum() / (error.numel() * len(views))
            loss.backward()
            total += loss.detach()
        return total

    def _checkpoints(
        self,
        on_checkpoint: Callable[[int, float], None],
        every_due: bool,
        pending: list[float],
        clock: _Clock,
    ) -> None:
        """Run the checkpoints due now (the step count's, then the training times passed) with
        the clock stopped."""
        while every_due or (pending and self.elapsed >= pending[0]):
            paused = time.perf_counter()
            on_checkpoint(self.step, self.elapsed if every_due else pending.pop(0))
            every_due = False
            self.model.train()
            clock.pause(time.perf_counter() - paused)

    def _read_losses(self, losses: list[torch.Tensor]) -> float:
        """Fold the batch losses not read yet into the running MSE (one wait for the device);
        returns the last one, or NaN when there was none."""
        if not losses:
            return math.nan
        values = torch.stack(losses).tolist() if len(losses) > 1 else [losses[0].item()]
        losses.clear()
        for mse in values:
            previous = self.smoothed_mse
            self.smoothed_mse = mse if previous is None else 0.9 * previous + 0.1 * mse
        return values[-1]

    def _backward(self, coords: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The batch's mean squared error, its gradient added to the weights' ``.grad``: in
        passes of the model's CPU chunk size where it has one (the same sum, in cache)."""
        rows = coords.shape[0]
        chunk = self._pass_rows(rows)
        total = torch.zeros((), device=self.device)
        for start in range(0, rows, chunk):
            with self._autocast():
                predicted = self.network(coords[start : start + chunk])
            error = predicted.float() - target[start : start + chunk]
            loss = error.square().sum() / target.numel()
            loss.backward()
            total += loss.detach()
        return total

    def _follow_schedule(self) -> None:
        done = self.step / self.steps
        if self.config.time_budget is not None:
            budget = self.config.time_budget
            done = max(done, self.elapsed / budget if budget > 0 else 1.0)
        scale = cosine_scale(done)
        for group, base in zip(self.optimiser.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * scale


def fit(
    model: nn.Module,
    frames: torch.Tensor,
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    report_every: float = 0.5,
    checkpoints: Sequence[float] = (),
    on_checkpoint: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Fit ``model`` to ``frames`` (uint8, (frames, height, width, 3)) in place.

    Stops after ``config.epochs``, the time budget or the target PSNR, whichever comes first;
    Ctrl-C stops it too (``stopped_by='interrupt'``) and the model keeps what it learned.
    ``on_checkpoint(step, seconds)`` is called once the training time passes each of
    ``checkpoints`` (seconds); the clock is stopped while it runs, so it may evaluate the model.
    """
    trainer = Trainer(model, frames, config)  # type: ignore[arg-type]
    return trainer.run(on_progress, report_every, checkpoints, on_checkpoint)
