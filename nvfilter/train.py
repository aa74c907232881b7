"""The optimisation loop: uint8 frames in, fitted network out. Writes no files.

Each step draws ``batch_size`` random pixels (with replacement) from the whole video, makes their
(x, y, t) coordinates from the indices (see coords.py), and takes one Adam step on the mean squared
error in [0, 1] RGB. One epoch is as many sampled pixels as the video has. The learning rate is
constant (the original SIREN design) or follows a cosine from 1x down to 0.05x over the run, the
run's end being whichever comes first of the epochs and the time budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nvfilter.config import TrainConfig
from nvfilter.coords import index_coords
from nvfilter.metrics import psnr_from_mse


@dataclass(frozen=True)
class Progress:
    """One report from the loop, for a progress bar."""

    step: int
    total_steps: int
    loss: float
    psnr: float
    """Running PSNR estimate in dB from recent batches."""
    elapsed: float
    time_budget: float | None


@dataclass(frozen=True)
class FitResult:
    steps: int
    seconds: float
    stopped_by: str
    """``epochs``, ``time-budget``, ``target-psnr`` or ``interrupt``."""


def cosine_scale(done: float, floor: float = 0.05) -> float:
    """Learning-rate multiplier after a fraction ``done`` of training: 1 down to floor, cosine."""
    done = min(max(done, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))


def total_steps(num_pixels: int, config: TrainConfig) -> int:
    return max(1, math.ceil(config.epochs * num_pixels / config.batch_size))


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
    device = torch.device(config.device)
    num_frames, height, width, _ = frames.shape
    colors = frames.reshape(-1, 3)
    if device.type != "cpu":
        colors = colors.to(device)
    num_pixels = colors.shape[0]
    steps = total_steps(num_pixels, config)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.param_groups(config.lr))  # type: ignore[operator]
    base_lrs = [group["lr"] for group in optimiser.param_groups]
    smoothed_mse = None
    start = time.perf_counter()
    last_report = -math.inf
    stopped_by = "epochs"
    step = 0
    pending = sorted(checkpoints)
    try:
        while step < steps:
            index = torch.randint(
                num_pixels, (config.batch_size,), device=device, generator=generator
            )
            coords = index_coords(index, width, height, num_frames)
            target = colors[index].to(torch.float32) / 255.0
            loss = torch.mean((model(coords) - target) ** 2)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            elapsed = time.perf_counter() - start
            if config.lr_schedule == "cosine":
                done = step / steps
                if config.time_budget is not None:
                    done = max(done, elapsed / config.time_budget)
                scale = cosine_scale(done)
                for group, base in zip(optimiser.param_groups, base_lrs, strict=True):
                    group["lr"] = base * scale
            mse = loss.item()
            smoothed_mse = mse if smoothed_mse is None else 0.9 * smoothed_mse + 0.1 * mse
            psnr = psnr_from_mse(smoothed_mse, peak=1.0)
            if on_progress and (elapsed - last_report >= report_every or step == steps):
                last_report = elapsed
                on_progress(Progress(step, steps, mse, psnr, elapsed, config.time_budget))
            while pending and elapsed >= pending[0] and on_checkpoint is not None:
                paused = time.perf_counter()
                on_checkpoint(step, pending.pop(0))
                model.train()
                start += time.perf_counter() - paused
            if config.time_budget is not None and elapsed >= config.time_budget:
                stopped_by = "time-budget"
                break
            if config.target_psnr is not None and psnr >= config.target_psnr:
                stopped_by = "target-psnr"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    model.eval()
    return FitResult(steps=step, seconds=time.perf_counter() - start, stopped_by=stopped_by)
