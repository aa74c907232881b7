"""What a coded encode aims at: a quality or a rate the user gave, or by default the best quality
within the size of the source file, and no better than a viewer can tell.

By default the .nvw is at most the size of the file it was made from, for the same stretch of
it (the user already keeps that much), and where 45 dB (DEFAULT_PSNR) comes cheaper, that:
from there a viewer cannot tell the copy from the source, and more bits would buy nothing seen.
"""

from __future__ import annotations

import os
from typing import Any

from nvfilter.config import EncodeOptions
from nvfilter.encode.source import OpenedSource
from nvfilter.io import audio

DEFAULT_PSNR = 45.0
"""The PSNR a default encode stops at where the source's size would allow more: about where
coding noise stops being visible on a monitor (BENCHMARKS.md, codec)."""
ALLOWANCE = 16 << 10
"""Bytes of the .nvw that are neither video nor sound (its header and the parts' index, a few
KB), with ALLOWANCE_SHARE of the budget to spare; at most half the source's video, so that a
clip of a few KB is still coded well (its .nvw may then pass its size by those few KB)."""
ALLOWANCE_SHARE = 0.01
"""(A part may end this much past its budget before it is coded again: ratecontrol.SLACK.)"""


def rate_settings(
    opened: OpenedSource, options: EncodeOptions, frames: int | None, part_frames: int
) -> dict[str, Any]:
    """The coded model's ``target_psnr`` and ``bits_per_frame`` (a budget for each frame a part
    codes, its shared one counted: so the parts' own frames keep to the budget)."""
    fps = float(opened.src.frame_rate / options.frame_step)
    pixels = opened.width * opened.height
    psnr, bits = options.target_psnr, None
    if options.quality is not None:
        return {"target_psnr": None, "bits_per_frame": None}
    if options.bitrate is not None:
        bits = options.bitrate / fps
    elif options.bits_per_pixel is not None:
        bits = options.bits_per_pixel * pixels
    elif psnr is None:
        psnr = DEFAULT_PSNR
        bits = source_bits_per_frame(opened, options, frames)
    if bits is not None:
        bits *= part_frames / (part_frames + 1)
    return {"target_psnr": psnr, "bits_per_frame": bits}


def source_bits_per_frame(
    opened: OpenedSource, options: EncodeOptions, frames: int | None
) -> float | None:
    """Bits a learned frame may take for the .nvw to stay within the source file's size over the
    same duration, its sound and ALLOWANCE aside; None where the source does not say how long it
    is."""
    duration = opened.src.duration
    if not frames or not duration:
        return None
    kept = frames / float(opened.src.frame_rate / options.frame_step)
    share = min(1.0, kept / duration)
    size = os.path.getsize(opened.path) * share
    if options.audio and opened.src.audio_codec:
        sound, _ = audio.extract(opened.path, duration, opened.src.audio_codec)
        size -= len(sound or b"") * share
    video = size * (1 - ALLOWANCE_SHARE)
    video -= min(ALLOWANCE, video / 2)
    return max(8.0, 8 * video / frames)
