"""What every part of a streamed encode is: the frames cut into parts, the model and settings
each is learned with, and the disk the parts will need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from nvfilter.config import EncodeOptions, TrainConfig, VideoInfo
from nvfilter.encode.source import OpenedSource
from nvfilter.io.outputs import check_room as check_disk_room
from nvfilter.models import ModelSpec, spec_of
from nvfilter.models.parts import longest_part, part_spans
from nvfilter.models.spec import PartShape

SHOT_PART_LEAST = 8
"""A cut ends the part where the part has at least this many frames before it (a part for
every flash of a strobe would cost an intra frame each)."""


def cut_parts(
    frames: Iterator[np.ndarray], part_frames: int, cuts: Collection[int] = ()
) -> Iterator[np.ndarray]:
    """Consecutive parts (n, height, width, 3) of a frame stream as models.parts.part_spans
    cuts them: ``part_frames`` apart, each ending on the next one's first frame, a tail shorter
    than half a part joined to the last; and at a cut (``cuts``: the frames that start a shot,
    known by the time each comes, encode/shots.py), a part ends on the new shot's first frame,
    so the next part starts with it. Holds at most 1.5 parts of frames while it reads (a part's
    frames move into it one by one), and beside a part handed on only the frames read past it
    (the consumer lets each part go before asking for the next: a part of 1920x1080 is a
    gigabyte)."""
    longest = longest_part(part_frames)
    buffer: list[np.ndarray] = []
    first = 0  # the stream's index of buffer[0]
    for frame in frames:
        buffer.append(frame)
        if first + len(buffer) - 1 in cuts and len(buffer) > SHOT_PART_LEAST:
            ending = len(buffer)
        elif len(buffer) > longest:
            ending = part_frames + 1
        else:
            continue
        part = _gathered(buffer, ending)
        first += ending - 1
        yield part
        del part  # not held while the next part is read
    if len(buffer) > 1 or first == 0:  # not a cut's frame alone: the last part holds it
        yield _gathered(buffer, len(buffer))


def _gathered(buffer: list[np.ndarray], ending: int) -> np.ndarray:
    """``buffer[:ending]`` as one array, each frame taken out of ``buffer`` once copied but the
    last (the next part's first): np.stack would hold every frame beside the part it makes."""
    part = np.empty((ending, *buffer[0].shape), buffer[0].dtype)
    for k in range(ending - 1):
        part[k] = buffer.pop(0)
    part[-1] = buffer[0]
    return part


@dataclasses.dataclass(frozen=True)
class PartsPlan:
    """What every part is learned with: the part length, the model and its settings."""

    part_frames: int
    options: EncodeOptions
    config: TrainConfig
    width: int
    height: int
    frame_rate: Fraction
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Every encode setting, the model's defaults filled in (and a coded model's budget)."""

    @property
    def spec(self) -> ModelSpec:
        return spec_of(self.options.model)

    def shape(self, frames: int, chroma: str = "444") -> PartShape:
        return PartShape(self.width, self.height, frames, self.part_frames, chroma, self.settings)

    def architecture(self, frames: int, chroma: str = "444") -> dict[str, Any]:
        """A part's network before its start (a closed-form network's contents are its fit)."""
        assert self.spec.part_architecture is not None
        return self.spec.part_architecture(self.shape(frames, chroma))

    def describe(self, frames_estimate: int | None) -> str:
        parts = len(part_spans(frames_estimate, self.part_frames)) if frames_estimate else 0
        count = f"{parts} part{'s' * (parts != 1)}" if frames_estimate else "parts"
        assert self.spec.describe_parts is not None
        return self.spec.describe_parts(self.shape(self.part_frames + 1), count)

    def training(self) -> str:
        """How each part is learned, for the start line."""
        if self.spec.closed_form:
            return "no optimiser steps"
        return f"{self.config.describe()}; each part starts from a principal-component fit of its frames"


def kept_video(plan: PartsPlan, frames: int) -> VideoInfo:
    """A part of ``frames`` frames as a video of its own (its .nvw's)."""
    return VideoInfo(plan.width, plan.height, frames, plan.frame_rate)


def check_room(
    opened: OpenedSource,
    frames: int,
    plan: PartsPlan,
    parts: Path,
    output: str,
    label: str | None,
) -> None:
    """Refuse, before any work, an encode of about ``frames`` frames whose parts (in the folder
    ``parts``) and joined .nvw will not fit on the disk, where the model knows its size before
    the fit (ModelSpec.stored_bytes): the parts stay until they are joined."""
    size = plan.spec.stored_bytes(plan.settings, opened.width, opened.height, frames)
    if size is None:
        return
    needs = {Path(output).parent: size} if output != "-" else {}  # named first on one disk
    needs[parts] = needs.get(parts, 0) + size
    check_disk_room(
        needs,
        label or output,
        f"{frames} frames at {opened.width}x{opened.height} (its file, and the parts again "
        "until they are joined)",
        "give --target-psnr (40 dB stored a fifth of that for tour.mp4), or fewer pixels "
        "with --width, --max-frames or --frame-step",
    )
