"""`encode --outputs DIR`: what a training run writes while it goes, and what `--resume` reads.

::

    DIR/
      config.json                        every setting used, the video, the versions
      checkpoint_0000500.nvw             the network at step 500: a .nvw that decode plays
      checkpoint_0000500.optim.safetensors   Adam's moments, the sampler, step and clock (resume)
      recon_step_0000500.png             original | reconstruction of the middle frame
      metrics.jsonl                      one JSON line per logged step and per checkpoint
      training_progress.png              loss and PSNR against step and training time
      comparison_frame_000000.png        original | reconstruction | error map (first, middle,
                                         last frame), written at the end

The optimiser state lives beside each checkpoint, never in the .nvw a user ships. Every file is
written under a temporary name and renamed, so a killed run leaves only whole files.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from nvfilter.config import EncodeOptions, TrainConfig, VideoInfo
from nvfilter.errors import OptionError, OutputError
from nvfilter.eval import plots
from nvfilter.io.outputs import atomic_file, remove_partials, write_bytes
from nvfilter.models import count_parameters
from nvfilter.models.field import VideoField
from nvfilter.version import __version__

STATE_SUFFIX = ".optim.safetensors"
CHECKPOINT_PATTERN = re.compile(r"checkpoint_(\d+)\.nvw$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint_{step:07d}.nvw"


def state_path(checkpoint: Path) -> Path:
    """Where the optimiser state of a checkpoint lies: beside it, same stem."""
    return checkpoint.with_name(checkpoint.stem + STATE_SUFFIX)


def versions() -> dict[str, str]:
    """The versions that shape a run's numbers, for config.json."""
    from nvfilter.io import media

    return {
        "nvfilter": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "ffmpeg": media.ffmpeg_version(),
        "platform": platform.platform(),
        "torch_threads": str(torch.get_num_threads()),
    }


class RunFolder:
    """The --outputs folder of one encode (new, or the one being resumed)."""

    def __init__(self, path: Path, resuming_step: int | None = None) -> None:
        self.path = path
        if path.exists() and not path.is_dir():
            raise OutputError(f"--outputs {path}: exists and is not a folder")
        if resuming_step is None and path.is_dir() and any(path.iterdir()):
            raise OutputError(
                f"--outputs {path}: the folder is not empty; give a new folder, "
                f"or continue that run with --resume {path}"
            )
        if not path.parent.is_dir():
            raise OutputError(f"--outputs {path}: {path.parent} does not exist")
        path.mkdir(exist_ok=True)
        if resuming_step is not None:
            remove_partials(path)  # what a killed run was writing when it stopped
        self.metrics = path / "metrics.jsonl"
        self.records: list[dict[str, Any]] = []
        if resuming_step is not None and self.metrics.exists():
            self.records = [
                record
                for record in read_metrics(self.metrics)
                if record.get("step", 0) <= resuming_step
            ]
            lines = "".join(json.dumps(r) + "\n" for r in self.records)
            write_bytes(lines.encode(), str(self.metrics))

    def write_config(self, config: dict[str, Any]) -> None:
        write_bytes((json.dumps(config, indent=2) + "\n").encode(), str(self.path / "config.json"))

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl (flushed at once, so a killed run keeps it)."""
        self.records.append(record)
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def checkpoint(
        self,
        step: int,
        nvw_bytes: bytes,
        state: tuple[dict[str, torch.Tensor], dict[str, str]],
    ) -> Path:
        """Write the optimiser state, then the .nvw (so a .nvw present always has its state)."""
        target = self.path / checkpoint_name(step)
        tensors, metadata = state
        write_bytes(save(tensors, metadata=metadata), str(state_path(target)))
        write_bytes(nvw_bytes, str(target))
        return target

    def recon_sample(
        self, step: int, original: np.ndarray, recon: np.ndarray, caption: str
    ) -> None:
        with atomic_file(self.path / f"recon_step_{step:07d}.png") as temp:
            plots.side_by_side(original, recon, caption, temp)

    def comparison(self, index: int, original: np.ndarray, recon: np.ndarray) -> None:
        with atomic_file(self.path / f"comparison_frame_{index:06d}.png") as temp:
            plots.comparison(original, recon, f"frame {index}", temp)

    def progress_plot(self, title: str) -> None:
        with atomic_file(self.path / "training_progress.png") as temp:
            plots.training_progress(self.records, title, temp)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a last line cut short by a kill is left out."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def find_checkpoint(resume: str) -> Path:
    """The checkpoint --resume names: a checkpoint .nvw, or a folder's latest one with a state."""
    path = Path(resume)
    if path.is_dir():
        found = sorted(
            (int(match.group(1)), candidate)
            for candidate in path.iterdir()
            if (match := CHECKPOINT_PATTERN.match(candidate.name))
            and state_path(candidate).is_file()
        )
        if not found:
            raise OptionError(f"--resume {resume}: no checkpoint with its optimiser state there")
        return found[-1][1]
    if not path.is_file():
        raise OptionError(f"--resume {resume}: no such file or folder")
    if not state_path(path).is_file():
        raise OptionError(
            f"--resume {resume}: no optimiser state beside it ({state_path(path).name})"
        )
    return path


def read_state(checkpoint: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The optimiser state saved beside ``checkpoint``."""
    target = state_path(checkpoint)
    try:
        with safe_open(str(target), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise OptionError(f"--resume: {target} is not readable ({err})") from None
    if "options" not in metadata or "step" not in metadata:
        raise OptionError(f"--resume: {target} is not an nvfilter optimiser state")
    return tensors, metadata


@dataclass(frozen=True)
class RunOptions:
    """Where an encode keeps its run: --outputs, --checkpoint-every, --resume."""

    outputs: str | None = None
    checkpoint_every: int | None = None
    """Steps between checkpoints; default: a tenth of the run's steps."""
    resume: str | None = None
    """A checkpoint .nvw, or a folder whose latest checkpoint is taken."""
    log_every: int = 100
    jobs: int = 1
    """Parts trained at once in local worker processes (--jobs; GPUs on a CUDA machine)."""
    ray: str | None = None
    """Run the parts as Ray tasks: ``local``, ``auto`` or a cluster address (--ray)."""


def run_config(
    source: str,
    output: str,
    options: EncodeOptions,
    config: TrainConfig,
    model: VideoField | None,
    video: VideoInfo,
    run: RunOptions,
    versions: dict[str, str],
) -> dict[str, Any]:
    """config.json: every setting used (defaults filled in), the video, the run, the versions."""
    resolved = {
        field.name: options.setting(field.name, config.device)
        for field in dataclasses.fields(EncodeOptions)
    }
    return {
        "command": {"input": source, "output": output},
        "encode": resolved,
        "train": dataclasses.asdict(config),
        "model": model.architecture() if model is not None else {"type": "parts"},  # type: ignore[operator]
        "parameters": count_parameters(model) if model is not None else None,
        "video": {
            "width": video.width,
            "height": video.height,
            "frames": video.frames,
            "frame_rate": str(video.frame_rate),
            "duration": video.duration,
            "sample_aspect_ratio": str(video.sample_aspect_ratio),
            "color": dataclasses.asdict(video.color),
        },
        "run": dataclasses.asdict(run),
        "versions": versions,
    }
