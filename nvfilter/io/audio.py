"""The source's sound: taken out of the input at encode, put back in sync at decode.

Encode copies the first audio stream, still compressed (no quality lost, nothing re-encoded),
into a small file: MP4 for the codecs it holds (its edit list keeps the encoder delay exact to the
sample), Matroska for the rest (any codec; timestamps to the millisecond). The .nvw stores those
bytes as a uint8 tensor, so the file stays self-contained. Decode gives them to ffmpeg as a second input:

* the output lasts as long as the source (reconstruct, fps-2x, upscale): the stream is copied
  when the output container can hold its codec, else re-encoded with the container's default;
* the output is longer or shorter (slow motion): ``--audio keep`` (the default) stretches it by
  ffmpeg's ``atempo`` chain, which keeps the pitch, padded with silence at the very end where
  atempo falls short, so that sound and picture end together;
  ``--audio drop`` (or ``--no-audio``) leaves it out.

Only the first audio stream is kept; subtitles, data and further audio streams are not.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from nvfilter.io.media import ffmpeg_exe, run_ffmpeg

MP4_CODECS = {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}
STORE_SUFFIX = {"mp4": ".mp4", "matroska": ".mka"}


def store_format(codec: str) -> str:
    """Container the stream is stored in: mp4 where it can hold the codec, else matroska."""
    return "mp4" if codec in MP4_CODECS else "matroska"


COPYABLE = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
    "webm": {"opus", "vorbis"},
    "matroska": None,  # anything
    "nut": {"aac", "mp3", "vorbis", "opus", "flac", "pcm_s16le", "ac3"},
    "avi": {"mp3", "ac3", "pcm_s16le"},
}
"""Codecs each container takes as they are (None: all); others are re-encoded."""

SUFFIX_CONTAINER = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".webm": "webm",
    ".mkv": "matroska",
    ".mka": "matroska",
    ".nut": "nut",
    ".avi": "avi",
}
CONTAINER_ALIASES = {"ipod": "mp4", "ismv": "mp4", "3gp": "mp4", "mkv": "matroska"}


def build_extract_args(path: str, duration: float, codec: str, target: str) -> list[str]:
    """The first audio stream of ``path``, copied, cut at ``duration`` s, into ``target``."""
    stream = ffmpeg.input(path)["a:0"]
    out = ffmpeg.output(
        stream,
        target,
        format=store_format(codec),
        acodec="copy",
        t=f"{duration:.6f}",
        fflags="+bitexact",  # no random ids or dates: the same input gives the same bytes
    )
    return list(
        out.global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-y").compile(
            cmd=ffmpeg_exe()
        )
    )


def extract(path: str, duration: float, codec: str) -> tuple[bytes | None, str]:
    """(stored stream, '') or (None, why not) for the first audio stream of ``path``."""
    with tempfile.TemporaryDirectory(prefix="nvfilter-") as folder:
        target = Path(folder) / ("audio" + STORE_SUFFIX[store_format(codec)])
        result = run_ffmpeg(build_extract_args(path, duration, codec, str(target)))
        if result.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            reason = result.stderr.decode(errors="replace").strip().splitlines()
            return None, reason[-1] if reason else "ffmpeg could not copy it"
        return target.read_bytes(), ""


def container_of(target: str, container: str | None) -> str | None:
    """ffmpeg's container name for an output, from --format or the file's extension."""
    if container:
        return CONTAINER_ALIASES.get(container, container)
    return SUFFIX_CONTAINER.get(Path(target).suffix.lower())


def tempo_chain(tempo: float) -> list[float]:
    """atempo factors (each within ffmpeg's 0.5..2 sweet spot) whose product is ``tempo``."""
    factors = []
    while tempo < 0.5:
        factors.append(0.5)
        tempo /= 0.5
    while tempo > 2.0:
        factors.append(2.0)
        tempo /= 2.0
    factors.append(tempo)
    return factors


@dataclass(frozen=True)
class AudioPlan:
    """How decode puts the stored sound into the output."""

    path: Path
    """The stored stream written out as a file for ffmpeg to read."""
    codec: str
    source_seconds: float
    """Length of the learned video: the sound is read up to here."""
    tempo: float
    """Source duration / output duration: 1 keeps it, 0.25 is 4x slower."""
    container: str | None

    @property
    def copied(self) -> bool:
        if abs(self.tempo - 1) > 1e-6 or self.container not in COPYABLE:
            return False
        allowed = COPYABLE[self.container]
        return allowed is None or self.codec in allowed

    def describe(self) -> str:
        if self.copied:
            return f"audio: {self.codec} copied"
        if abs(self.tempo - 1) > 1e-6:
            return f"audio: {self.codec} stretched {1 / self.tempo:.3g}x, pitch kept (atempo)"
        return f"audio: {self.codec} re-encoded for the container"

    def stream(self) -> tuple[Any, dict[str, Any]]:
        """The audio input for ffmpeg-python and its output options."""
        audio = ffmpeg.input(str(self.path), t=f"{self.source_seconds:.6f}").audio
        if self.copied:
            return audio, {"c:a": "copy"}
        if abs(self.tempo - 1) > 1e-6:
            for factor in tempo_chain(self.tempo):
                audio = audio.filter("atempo", f"{factor:.9g}")
            # atempo drops its last part-filled window (tens of ms, times the stretch): pad the
            # end with silence so that sound and picture end together, then cut there exactly
            end = f"{self.source_seconds / self.tempo:.6f}"
            audio = audio.filter("apad", whole_dur=end).filter("atrim", end=end)
        return audio, {}
