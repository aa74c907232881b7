"""Frozen dataclasses for what flows between the modules: video facts, training and render settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nvfilter.errors import OptionError
from nvfilter.timeline import Timeline


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
    chroma: str = "444"
    """The learned frames' colour layout (chroma.detect): ``420`` or ``422`` when their colour
    came at half the size of their brightness (a 4:2:0 or 4:2:2 source), else ``444``."""

    timeline: Timeline | None = None
    """When each learned frame is shown, and the cuts (nvfilter.timeline); None: the frames
    evenly spaced at frame_rate, no cut."""

    @property
    def played_frames(self) -> int:
        """Frames a play at frame_rate shows: the learned ones, and the repeats left out or the
        gaps of a variable-rate source."""
        return self.frames if self.timeline is None else self.timeline.played

    @property
    def duration(self) -> float:
        """Seconds covered by the learned frames: played_frames / frame_rate."""
        return float(self.played_frames / self.frame_rate)

    def position(self, time: float) -> float:
        """The learned-frame position shown at ``time`` frame periods (Timeline.position)."""
        if self.timeline is None:
            return min(max(time, 0.0), float(self.frames - 1))
        return self.timeline.position(time)


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


UNTIL_BUDGET_EPOCHS = 1e6
"""Epochs of a run that its time budget ends (a segments run given --time-budget, no --epochs)."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings for one encode; the defaults are the original design's (the
    command line's per model are each model's ModelSpec.defaults, nvfilter/models)."""

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
        length = (
            "until the time budget, batches"
            if self.time_budget is not None and self.epochs >= UNTIL_BUDGET_EPOCHS
            else f"{self.epochs:g} epochs of batches"
        )
        return (
            f"{length} of {self.batch_size}, "
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
    """``epochs``, ``time-budget``, ``target-psnr``, ``interrupt`` or ``fitted`` (a network
    fitted in closed form, no steps)."""
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
    source_frames: int = 1
    """Frames the network learned (positions past the last are held)."""


AUTO_MODEL = "codec"
"""What ``--model auto`` learns every video with: the coded stream, smaller than its source at
the best quality that size allows (BENCHMARKS.md, codec); the networks are there to study."""


def pick_model(model: str) -> str:
    """The model ``--model`` names, ``auto`` resolved (AUTO_MODEL)."""
    return AUTO_MODEL if model == "auto" else model


def storage_dtype(dtype: str, model: str) -> str:
    """The precision a .nvw of ``model`` stores its floating-point tensors in for ``--dtype``
    (``auto``: the model's own, ModelSpec.dtype)."""
    from nvfilter.models import spec_of

    return spec_of(model).dtype if dtype == "auto" else dtype


@dataclass(frozen=True)
class EncodeOptions:
    """Everything `nvfilter encode` takes, after parsing; None means the model's default."""

    model: str = "auto"
    """``auto`` (pick_model) or a registered model's name (nvfilter.models)."""
    hidden_features: int | None = None
    """SIREN layer width, or the hybrid's head width."""
    hidden_layers: int | None = None
    omega_0: float | None = None
    """SIREN's w0; None: its default (models/siren.OMEGA_0)."""
    channels: int | None = None
    """Hybrid only: features per plane; None picks from the video's size."""
    levels: int | None = None
    """Hybrid and segments: plane resolutions (full, 1/2, 1/4, ...)."""
    segment_frames: int | None = None
    """Segments only: frames per segment (neighbours share one more)."""
    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    time_budget: float | None = None
    target_psnr: float | None = None
    seed: int = 0
    device: str = "auto"
    width: int | None = None
    height: int | None = None
    max_frames: int | None = None
    frame_step: int = 1
    dtype: str = "auto"
    """``auto`` (storage_dtype), ``float16`` or ``float32``."""
    max_memory: int | None = None
    """Bytes the raw frames may take; default: the memory available now, less a margin."""
    audio: bool = True
    """Store the source's first audio stream in the .nvw."""
    cuts: bool = True
    """Find the cuts between shots (encode/shots.py) and keep them in the file."""
    cut_threshold: float = 3.0
    """A cut changes its frame this many times more than the frames around it change theirs
    (tour.mp4's fastest turn: 1.1; oa4_launch.webm's cut: 51)."""
    keep_repeats: bool = False
    """Learn repeated frames as they are, instead of leaving them out."""
    precision: str = "auto"
    """Training arithmetic: auto, float32, tf32 (CUDA) or bfloat16 (autocast); weights stay
    float32."""
    compile: bool | None = None
    """SIREN: train through torch.compile of its plain form; None: where it pays
    (train.compile_pays)."""
    footprint: bool | None = None
    """Hybrid: read the full-resolution planes as averages over each pixel (sharper upscaling);
    None: off."""
    quality: float | None = None
    """Codec: a quality from 0 to 100 (a fixed quantiser; models/codec.QUALITY_QP)."""
    bitrate: float | None = None
    """Codec: bits a second to aim at (as ffmpeg's -b:v)."""
    bits_per_pixel: float | None = None
    """Codec: bits a pixel to aim at."""

    def setting(self, name: str, device: str = "cpu") -> Any:
        """The option as given, else the model's default for that device."""
        value = getattr(self, name)
        if value is not None:
            return value
        from nvfilter.models import spec_of

        return spec_of(self.model).default(name, device)

    def settings(self, device: str = "cpu") -> dict[str, Any]:
        """Every option, the model's defaults filled in."""
        return {field.name: self.setting(field.name, device) for field in dataclasses.fields(self)}


BETWEEN_RULES = ("network", "motion", "search")
"""How frames between the source's are made: the network read at their time, or the two source
frames moved along their motion (the motion the file keeps, else flows searched on them), or
moved along flows searched on them even where the file keeps motion (slower, and better on fast
motion: BENCHMARKS.md, frames between)."""
MOVING_RULES = ("motion", "search")
"""The rules that move source frames along a flow."""
UPSCALERS = ("network", "backproject", "multiframe")
"""How pixels beyond the learned size are made: the network read there, or back-projection of
each frame alone, or of each frame with its neighbours (decode/multiframe.py)."""
AUTO = "auto"
"""The default of ``--between`` and ``--upscaler``: motion and back-projection, which score
above the network's own reads (a cross-fade and a bilinear resize with the tiles model) and
above ffmpeg's filters on every benchmark, where the memory allows them
(render.chosen_rules)."""
AUDIO_MODES = ("keep", "drop")
PRECISIONS = ("auto", "float32", "tf32", "bfloat16")
"""``--precision`` values: the training arithmetic (the weights and Adam stay float32)."""
MAX_SIDE = 16384
"""Largest output width or height decode accepts."""
MAX_FRAMES = 10_000_000
"""Most output frames decode accepts."""
MAX_FPS = 1000
"""Highest frame rate accepted, for an output or in a .nvw."""
CRF_CODECS = frozenset({"libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"})
"""Encoders that take --crf."""
DEFAULT_CRF = 18


@dataclass(frozen=True)
class DecodeOptions:
    """Everything `nvfilter decode` takes (flags over a preset, or `filter`'s decode flags),
    checked once by ``DecodeOptions.from_settings``; None means "as the source" or the codec's
    default."""

    fps: str | None = None
    """Output rate as given: 25, 30000/1001, 29.97 or 2x (parsed against the source's rate)."""
    width: int | None = None
    height: int | None = None
    spatial_scale: Fraction | None = None
    temporal_scale: Fraction | None = None
    num_frames: int | None = None
    between: str = AUTO
    upscaler: str = AUTO
    codec: str | None = None
    crf: int | None = None
    pix_fmt: str | None = None
    container: str | None = None
    audio: str = "keep"
    device: str = "auto"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> DecodeOptions:
        """Check merged preset/flag settings (types, ranges, choices); raises OptionError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise OptionError(f"unknown decode setting {unknown[0]!r}")
        values = {k: v for k, v in settings.items() if v is not None}
        for name in ("width", "height", "num_frames", "crf"):
            if name in values:
                values[name] = _whole(name, values[name])
        for name, limit in (("width", MAX_SIDE), ("height", MAX_SIDE), ("num_frames", MAX_FRAMES)):
            if name in values and values[name] > limit:
                raise OptionError(f"{_flag(name)} {values[name]} is too large (at most {limit})")
            if name in values and values[name] < 1:
                raise OptionError(f"{_flag(name)} must be at least 1, got {values[name]}")
        if "crf" in values and not 0 <= values["crf"] <= 63:
            raise OptionError(f"crf {values['crf']}: 0 to 63")
        for name in ("spatial_scale", "temporal_scale"):
            if name in values:
                values[name] = _positive_fraction(name, values[name])
        if values.get("spatial_scale") is not None and values["spatial_scale"] > MAX_SIDE:
            raise OptionError(f"spatial-scale {values['spatial_scale']}: at most {MAX_SIDE}")
        if "fps" in values:
            values["fps"] = str(values["fps"]).strip()
            parse_fps(values["fps"], Fraction(1))  # the syntax, before any work
        for name, rules in (("between", BETWEEN_RULES), ("upscaler", UPSCALERS)):
            if name in values:
                check_rule(name, values[name], (AUTO, *rules))
        if "audio" in values and values["audio"] not in AUDIO_MODES:
            raise OptionError(f"audio {values['audio']!r}: keep or drop")
        for name in ("codec", "pix_fmt", "container", "device"):
            if name in values and not (isinstance(values[name], str) and values[name].strip()):
                raise OptionError(f"{_flag(name)} {values[name]!r} is not a name")
        return cls(**values)

    def crf_for(self, codec: str) -> int | None:
        """The quality setting ffmpeg gets: as given, else DEFAULT_CRF where the codec takes one."""
        if self.crf is not None:
            return self.crf
        return DEFAULT_CRF if codec in CRF_CODECS else None


def check_rule(option: str, rule: str, rules: tuple[str, ...]) -> str:
    """``rule`` if it is one of ``rules`` (BETWEEN_RULES, UPSCALERS), else an OptionError naming
    ``option`` and them."""
    if rule not in rules:
        raise OptionError(f"{option} {rule!r}: one of {', '.join(rules)}")
    return rule


def _flag(name: str) -> str:
    """A setting's name as its flag is spelled (without the dashes)."""
    return name.replace("_", "-")


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"{_flag(name)} {value!r} is not a whole number")
    return value


def _positive_fraction(name: str, value: Any) -> Fraction:
    try:
        if isinstance(value, bool):
            raise ValueError
        fraction = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"{_flag(name)} {value!r} is not a number") from None
    if fraction <= 0:
        raise OptionError(f"{_flag(name)} must be positive, got {value}")
    return fraction


def parse_fps(text: Any, source_rate: Fraction) -> Fraction:
    """'25', '30000/1001', '29.97' (taken as 30000/1001) or '2x' (times the source's rate)."""
    value = str(text).strip()
    try:
        if value.endswith("x"):
            rate = source_rate * Fraction(value[:-1])
        else:
            rate = Fraction(value)
            ntsc = Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)
            if "." in value and rate.denominator != 1 and abs(rate - ntsc) < Fraction(1, 100):
                rate = ntsc  # 29.97 means 30000/1001, 23.976 means 24000/1001
            elif rate.denominator > 1001:
                rate = rate.limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"fps {value!r} is not a rate (e.g. 25, 30000/1001 or 2x)") from None
    if rate <= 0:
        raise OptionError(f"fps must be positive, got {value}")
    if rate > MAX_FPS:
        raise OptionError(f"fps {value}: at most {MAX_FPS} frames a second")
    return rate
