"""Frozen dataclasses for what flows between the modules: video facts, training and render settings."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class ColorTags:
    """ffmpeg's colour tags of the source, ``None`` where the source leaves one unspecified."""

    range: str | None = None
    """``tv`` (limited) or ``pc`` (full)."""
    primaries: str | None = None
    """e.g. ``bt709``, ``bt2020``."""
    transfer: str | None = None
    """e.g. ``bt709``, ``smpte2084``."""
    matrix: str | None = None
    """YCbCr matrix (ffmpeg's ``colorspace``), e.g. ``bt709``, ``bt470bg``, ``bt2020nc``."""


@dataclass(frozen=True)
class VideoInfo:
    """The video as nvfilter learns it: frames as they come out of ffmpeg (rotation applied)."""

    width: int
    """Stored width in pixels (after rotation and any --width/--height resize)."""
    height: int
    """Stored height in pixels."""
    frames: int
    """Number of frames learned (after --frame-step and --max-frames)."""
    frame_rate: Fraction
    """Frames per second of the learned frames, exact (30000/1001, never 29.97)."""
    sample_aspect_ratio: Fraction = Fraction(1)
    """Shape of one pixel (width/height); 1 for square pixels."""
    color: ColorTags = ColorTags()

    @property
    def duration(self) -> float:
        """Seconds covered by the learned frames: frames / frame_rate."""
        return float(self.frames / self.frame_rate)


@dataclass(frozen=True)
class SourceInfo:
    """What a probe of the input file tells before any frame is read."""

    width: int
    """Width of decoded (rotated) frames."""
    height: int
    frame_rate: Fraction
    """Constant rate the frames are read at (variable-rate input is resampled to it)."""
    duration: float | None
    """Seconds, from the container; None when unknown."""
    sample_aspect_ratio: Fraction
    color: ColorTags
    codec: str
    pix_fmt: str
    audio_codec: str | None = None
    """Codec of the first audio stream (``aac``, ``opus``, ...), None when there is none."""

    @property
    def estimated_frames(self) -> int | None:
        """Frame count implied by duration and rate, or None when the duration is unknown."""
        if self.duration is None:
            return None
        return max(1, round(self.duration * float(self.frame_rate)))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings for one encode; the defaults are the original design's (the
    command line's per model are `encoding.MODEL_DEFAULTS`)."""

    epochs: float = 1000
    """One epoch samples as many random pixels as the video has."""
    batch_size: int = 65536
    lr: float = 1e-4
    lr_schedule: str = "constant"
    """``constant`` or ``cosine`` (down to 0.05x at the end of the run)."""
    time_budget: float | None = None
    """Stop after this many seconds of training."""
    target_psnr: float | None = None
    """Stop once the running PSNR estimate reaches this many dB."""
    seed: int = 0
    device: str = "cpu"
    precision: str = "float32"
    """``auto``, ``float32``, ``tf32`` (CUDA) or ``bfloat16``: the forward pass under autocast
    (weights stay float32)."""
    compile: bool = False
    """SIREN: train through torch.compile of its plain form (falls back to the fused layers)."""

    def describe(self) -> str:
        """The settings in one phrase, as the encoder's start line and `nvfilter info` give them."""
        return (
            f"{self.epochs:g} epochs of batches of {self.batch_size}, "
            f"lr {self.lr:g} {self.lr_schedule}, on {self.device} in {self.precision}"
            + (", compiled" if self.compile else "")
        )


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: stored in the .nvw metadata and printed in the summary."""

    steps: int
    seconds: float
    psnr: float
    """PSNR in dB of the full reconstruction at the training size, frames quantised to 8 bits."""
    stopped_by: str
    """``epochs``, ``time-budget``, ``target-psnr`` or ``interrupt``."""
    settings: dict[str, Any] | None = None
    """The TrainConfig it ran with, as a dict; None for a .nvw written before files kept it."""


@dataclass(frozen=True)
class RenderSpec:
    """Which frames to draw, at what size, and at what rate to play them."""

    width: int
    height: int
    num_frames: int
    fps: Fraction
    temporal_scale: Fraction
    """Output frames per source frame: output frame j samples source position j / temporal_scale."""
    learned_size: tuple[int, int]
    """(width, height) the network learned the video at."""
