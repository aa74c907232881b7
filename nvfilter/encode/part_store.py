"""Where a streamed encode keeps its parts until they are joined: one .nvw and one record of
error sums a finished part, the training part's checkpoint; in the run's --outputs folder, or
a hidden one beside the output.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from nvfilter.config import TrainResult
from nvfilter.encode.run_folder import read_state
from nvfilter.encode.train import Trainer
from nvfilter.encode.workers import (
    PartJob,
    PartResult,
)
from nvfilter.errors import OutputError
from nvfilter.io import nvw
from nvfilter.io.outputs import PARTIAL, write_bytes


class PartStore:
    """The finished parts (``part_000003.nvw``, written last, with ``part_000003.json`` of its
    error sums), the training part's checkpoint and optimiser state. ``stands_for``: the path a
    failed write is reported as (the output, for the hidden folder beside it that the user never
    named), or None to name the part's own file (a --outputs folder)."""

    def __init__(self, path: Path, stands_for: str | None = None) -> None:
        self.path = path
        self.stands_for = stands_for

    def _write(self, data: bytes, path: Path) -> None:
        try:
            write_bytes(data, str(path))
        except OutputError as err:
            if self.stands_for is None or err.reason is None:
                raise
            raise OutputError(f"{self.stands_for}: {err.reason}", err.reason) from None

    def part(self, k: int) -> Path:
        return self.path / f"part_{k:06d}.nvw"

    def checkpoint(self, k: int) -> Path:
        return self.path / f"part_{k:06d}.checkpoint.nvw"

    def state(self, k: int) -> Path:
        return self.path / f"part_{k:06d}.checkpoint.optim.safetensors"

    def finished(self, k: int) -> dict[str, Any] | None:
        """A finished part's record (frames, error sums, seconds, steps), or None."""
        if not self.part(k).is_file():
            return None
        return dict(json.loads((self.path / f"part_{k:06d}.json").read_text()))

    def save(self, result: PartResult, frames: int) -> None:
        record = {"frames": frames, "squared_error": result.squared_error,
                  "pixels": result.pixels, "seconds": result.seconds, "steps": result.steps,
                  "stopped_by": result.stopped_by}  # fmt: skip
        self._write(json.dumps(record).encode(), self.path / f"part_{result.index:06d}.json")
        self._write(result.nvw_bytes, self.part(result.index))
        for stale in (self.checkpoint(result.index), self.state(result.index)):
            stale.unlink(missing_ok=True)

    def save_checkpoint(self, k: int, trainer: Trainer, job: PartJob) -> None:
        """The training part's network and optimiser state (the state first: a checkpoint
        present always has its state)."""
        tensors, metadata = trainer.state()
        self._write(save(tensors, metadata=metadata), self.state(k))
        result = TrainResult(trainer.step, trainer.elapsed, math.nan, "checkpoint",
                             dataclasses.asdict(trainer.config))  # fmt: skip
        self._write(nvw.to_bytes(trainer.model, job.video, result), self.checkpoint(k))

    def resume_point(
        self, k: int
    ) -> tuple[Any, tuple[dict[str, torch.Tensor], dict[str, str]]] | None:
        """Part k's last checkpoint (network, optimiser state), if it has one."""
        if not (self.checkpoint(k).is_file() and self.state(k).is_file()):
            return None
        return nvw.load(self.checkpoint(k)).model, read_state(self.checkpoint(k))


def parts_folder(output: str, outputs: str | None, stack: ExitStack) -> Path:
    """Where finished parts go: the --outputs folder, else a hidden folder beside the output
    (the system's temporary folder for standard output), removed when ``stack`` closes."""
    if outputs:
        return Path(outputs)
    beside = Path(output).parent if output != "-" else None
    folder = Path(tempfile.mkdtemp(prefix=f".nvfilter-parts{PARTIAL}{os.getpid()}-", dir=beside))
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    return folder
