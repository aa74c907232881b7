"""Where the parts of a streamed encode train: in this process, in local worker processes
(``--jobs N``), or as Ray tasks (``--ray``). All three run ``train_part`` on a ``PartJob`` and give
back its ``PartResult``, so the same seed and settings give the same part wherever it ran.

The part's frames travel with the job (pickled to a local worker; through Ray's object store to a
Ray worker), so a Ray worker needs nvfilter installed but no path shared with the caller.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nvfilter.config import TrainConfig, VideoInfo
from nvfilter.coords import frame_time
from nvfilter.encode.finish import finish_fit
from nvfilter.encode.train import Progress, Trainer
from nvfilter.errors import OptionError
from nvfilter.models import build_model
from nvfilter.models.field import VideoField

RAY_INSTALL = 'pip install "nvfilter[ray]"'


@dataclass(frozen=True)
class PartJob:
    """One part to learn: its frames and everything its training needs."""

    index: int
    frames: np.ndarray
    """uint8 (n, height, width, 3)."""
    architecture: dict[str, Any]
    config: TrainConfig
    """The part's settings: its share of the time budget, its own seed, its device."""
    video: VideoInfo
    """The part as a video of its own (its frame count), for its .nvw."""
    dtype: str
    threads: int | None = None
    """torch threads for the part (a worker's share of the cores); None: as they are."""
    cuts: tuple[int, ...] = ()
    """The part's frames that start a new shot (VideoField.start_from)."""


@dataclass(frozen=True)
class PartResult:
    """A learned part: its .nvw bytes and how its frames came out."""

    index: int
    nvw_bytes: bytes
    steps: int
    seconds: float
    stopped_by: str
    squared_error: float
    """Sum of squared 8-bit errors (in [0, 1] units) over the frames this part alone plays: all
    but its last and, after the first part, its first (a join's shared frame is played as both
    parts' average, and the encode scores it from ``first_frame`` and ``last_frame``)."""
    pixels: int
    """Pixel values (x 3 colours) that ``squared_error`` sums over."""
    first_frame: np.ndarray | None
    """The part's float (H, W, 3) picture of its first frame (after the first part), else None."""
    last_frame: np.ndarray
    """The part's float (H, W, 3) picture of its last frame."""


Checkpoint = Callable[[Trainer], None]


def train_part(
    job: PartJob,
    on_progress: Callable[[Progress], None] | None = None,
    resume: tuple[VideoField, tuple[dict[str, torch.Tensor], dict[str, str]]] | None = None,
    checkpoint: Checkpoint | None = None,
    checkpoint_seconds: float = 15.0,
) -> PartResult:
    """Learn one part: start from its frames (or from ``resume``: a checkpoint's network and
    optimiser state), train it, and measure it. ``checkpoint`` is called every
    ``checkpoint_seconds`` of training with the trainer (only in this process)."""
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    torch.manual_seed(job.config.seed)
    frames = torch.from_numpy(job.frames)
    model = resume[0] if resume else build_model(job.architecture)
    began, done = time.perf_counter(), [0]

    def fitted_frame(index: int) -> None:
        """A closed-form fit's frame done, as a step of the part's progress."""
        done[0] += 1
        if on_progress is not None:
            elapsed = time.perf_counter() - began
            on_progress(Progress(done[0], len(frames), math.nan, math.nan, elapsed, None))

    trainer = Trainer(model, frames, job.config, start=resume is None, fit_progress=fitted_frame,
                      cuts=job.cuts)  # fmt: skip
    if resume:
        trainer.load_state(*resume[1])
    hooks: dict[str, Any] = {}
    if checkpoint is not None:
        budget = job.config.time_budget or 3600.0
        times = np.arange(checkpoint_seconds, budget, checkpoint_seconds).tolist()
        hooks = {"checkpoints": times, "on_checkpoint": lambda step, seconds: checkpoint(trainer)}
    fitted = trainer.run(on_progress, **hooks)
    model = trainer.model.cpu()
    # scored, and its join pictures made, as it is stored
    finished = finish_fit(model, frames, job.video, fitted, trainer.config, job.dtype)
    counted = finished.errors[1 if job.index > 0 else 0 : len(finished.errors) - 1]
    pixels_per_frame = job.video.width * job.video.height * 3
    first, last = edge_pictures(model, job.video, job.index > 0)
    return PartResult(job.index, finished.data, fitted.steps, fitted.seconds, fitted.stopped_by,
                      sum(counted) * pixels_per_frame, len(counted) * pixels_per_frame, first,
                      last)  # fmt: skip


def edge_pictures(
    model: VideoField, video: VideoInfo, with_first: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """A part's float (H, W, 3) pictures of its first frame (if asked) and its last frame, as
    decode reads them before averaging a join's shared frame."""

    def picture(k: int) -> np.ndarray:
        image = model.render_image(frame_time(k, video.frames), video.width, video.height)
        assert image is not None, "parts are networks that make whole frames"
        return image.permute(1, 2, 0).numpy().copy()

    model.forget_render_cache()
    with torch.inference_mode():
        return (picture(0) if with_first else None), picture(video.frames - 1)


class Executor:
    """Runs part jobs: ``submit`` returns a future of a PartResult; ``slots`` is how many run
    at once (the caller keeps no more in flight, so memory stays bounded)."""

    slots: int = 1

    def submit(self, job: PartJob) -> concurrent.futures.Future[PartResult]:
        raise NotImplementedError

    def device(self, slot: int, device: str) -> str:
        """The device a job in ``slot`` trains on: one GPU per slot on a CUDA machine."""
        if device.startswith("cuda") and torch.cuda.device_count() > 1:
            return f"cuda:{slot % torch.cuda.device_count()}"
        return device

    def close(self) -> None:
        """Stop the workers (jobs in flight are abandoned)."""


class LocalPool(Executor):
    """``--jobs N``: N worker processes on this machine, each with its share of the cores."""

    def __init__(self, jobs: int) -> None:
        self.slots = jobs
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(self, job: PartJob) -> concurrent.futures.Future[PartResult]:
        return self.pool.submit(train_part, dataclasses.replace(job, threads=self.threads))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RayPool(Executor):
    """``--ray ADDRESS``: parts as Ray tasks (one CPU each, or one GPU on a CUDA device):
    ``local`` starts a Ray instance on this machine, ``auto`` joins the running cluster, any
    other value is ray.init's address."""

    def __init__(self, address: str, jobs: int | None, device: str) -> None:
        try:
            import ray
        except ImportError:
            raise OptionError(f"--ray needs Ray: {RAY_INSTALL}") from None
        self.ray = ray
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address == "local":
            kwargs["num_cpus"] = jobs or os.cpu_count() or 1
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OptionError(f"--ray {address}: could not start or join Ray ({first})") from None
        gpus = device.startswith("cuda")
        resources = ray.cluster_resources()
        self.slots = max(1, int(resources.get("GPU" if gpus else "CPU", 1)))
        if jobs:
            self.slots = min(self.slots, jobs)
        self.task = ray.remote(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0)(train_part)

    def submit(self, job: PartJob) -> concurrent.futures.Future[PartResult]:
        threads = None if job.config.device.startswith("cuda") else 1
        ref = self.task.remote(dataclasses.replace(job, threads=threads))
        return ref.future()  # type: ignore[no-any-return]

    def device(self, slot: int, device: str) -> str:
        return "cuda" if device.startswith("cuda") else device  # Ray picks the GPU

    def close(self) -> None:
        self.ray.shutdown()
