"""What a video is, read off ffmpeg's log: there is no ffprobe in imageio-ffmpeg's bundle, so a
probe decodes the first frame through the ``showinfo`` filter and parses what it logs."""

from __future__ import annotations

import re
from fractions import Fraction

import ffmpeg

from nvfilter.config import ColorTags, SourceInfo
from nvfilter.errors import VideoError
from nvfilter.io.media.process import complaint, ffmpeg_exe, run_ffmpeg


def build_probe_args(path: str) -> list[str]:
    """Decode the first frame of the first video stream, logging its properties with showinfo."""
    stream = ffmpeg.input(path).video.filter("showinfo")
    out = ffmpeg.output(stream, "-", format="null", **{"frames:v": 1})
    return list(out.global_args("-hide_banner", "-nostdin").compile(cmd=ffmpeg_exe()))


_RATE = re.compile(r"config in time_base: \S+, frame_rate: (\d+)/(\d+)")


_FRAME = re.compile(r"n:\s*0 .*?fmt:(\S+) .*?sar:(\d+)/(\d+) s:(\d+)x(\d+)")


_COLOR = re.compile(r"color_range:(\S+) color_space:(\S+) color_primaries:(\S+) color_trc:(\S+)")


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


_VIDEO_LINE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+)")


_AUDIO_LINE = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")


_TBR = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr")


def _tag(value: str) -> str | None:
    return None if value in ("unknown", "unspecified", "reserved") else value


def _stream_color(line: str) -> ColorTags:
    """Colour tags from a stream line: 'yuv420p(tv, bt709/bt2020/smpte2084, progressive)'."""
    match = re.search(r"Video: [^,]+, \w+\(([^)]*)\)", line)
    if not match:
        return ColorTags()
    rng = None
    matrix = primaries = trc = None
    for item in (part.strip() for part in match.group(1).split(",")):
        if item in ("tv", "pc"):
            rng = item
        elif "/" in item:
            matrix, primaries, trc = (_tag(v) for v in (item.split("/") + ["", ""])[:3])
        elif item not in (
            "progressive",
            "top first",
            "bottom first",
            "top coded first",
            "bottom coded first",
        ) and re.fullmatch(r"[\w-]+", item):
            matrix = primaries = trc = _tag(item)
    return ColorTags(range=rng, primaries=primaries, transfer=trc, matrix=matrix)


def parse_probe(log: str) -> SourceInfo:
    """Read a probe's ffmpeg log into a SourceInfo; raises VideoError when a part is missing."""
    video_line = _VIDEO_LINE.search(log)
    frame = _FRAME.search(log)
    if video_line is None:
        raise VideoError("no video stream")
    if frame is None:
        raise VideoError("the video stream has no frames")
    pix_fmt, sar_num, sar_den, width, height = frame.groups()
    rate = Fraction(0)
    rate_match = _RATE.search(log)
    if rate_match and int(rate_match.group(2)) > 0:
        rate = Fraction(int(rate_match.group(1)), int(rate_match.group(2)))
    if rate <= 0:
        tbr = _TBR.search(log)
        if tbr:
            rate = Fraction(tbr.group(1)).limit_denominator(1001) * (1000 if tbr.group(2) else 1)
    if rate <= 0:
        rate = Fraction(25)
    duration = None
    dur = _DURATION.search(log)
    if dur:
        hours, minutes, seconds = dur.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    color = _stream_color(log[video_line.start() :].split("\n", 1)[0])
    col = _COLOR.search(log)
    if col:  # the decoded frame's own tags win where it has them
        rng, matrix, primaries, trc = (_tag(v) for v in col.groups())
        color = ColorTags(
            range=rng or color.range,
            primaries=primaries or color.primaries,
            transfer=trc or color.transfer,
            matrix=matrix or color.matrix,
        )
    sar = Fraction(int(sar_num), int(sar_den)) if int(sar_num) > 0 else Fraction(1)
    return SourceInfo(
        width=int(width),
        height=int(height),
        frame_rate=rate,
        duration=duration,
        sample_aspect_ratio=sar,
        color=color,
        codec=video_line.group(1),
        pix_fmt=pix_fmt,
        audio_codec=audio_line.group(1) if (audio_line := _AUDIO_LINE.search(log)) else None,
    )


def probe(path: str, label: str | None = None) -> SourceInfo:
    """Probe a video file; raises VideoError with one clear line when it is not a usable video.

    ``label`` names the input in messages (``-`` for standard input spooled to ``path``).
    """
    label = label or path
    result = run_ffmpeg(build_probe_args(path))
    log = result.stderr.decode(errors="replace")
    if result.returncode != 0 and "Video:" not in log:
        if "matches no streams" in log or "does not contain any stream" in log:
            raise VideoError(f"{label}: no video stream")
        if "End of file" in log:
            raise VideoError(f"{label}: empty or cut short: no frames could be read")
        raise VideoError(f"{label}: not a video ffmpeg can read ({complaint(log)})")
    try:
        return parse_probe(log)
    except VideoError as err:
        raise VideoError(f"{label}: {err}") from None


_TIME_BASE = re.compile(r"^#tb 0: (\d+)/(\d+)$", re.MULTILINE)
_PACKET = re.compile(r"^0,\s*(-?\d+|NOPTS),\s*(-?\d+|NOPTS),", re.MULTILINE)


NO_TIMESTAMP = str(-(2**63))
"""How framecrc writes a packet with no presentation timestamp (an AVI's, say)."""


def build_times_args(path: str) -> list[str]:
    """The first video stream's packets listed, not decoded (``framecrc``: each packet's
    decode and presentation timestamps in the stream's time base)."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", path,
            "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]  # fmt: skip


def parse_frame_times(listing: str) -> list[float] | None:
    """Each frame's presentation time in seconds from the first, in presentation order, from a
    ``framecrc`` listing; None where a packet has no timestamp or there is none."""
    base = _TIME_BASE.search(listing)
    packets = _PACKET.findall(listing)
    if base is None or int(base.group(2)) == 0 or not packets:
        return None
    if any(pts in ("NOPTS", NO_TIMESTAMP) for _, pts in packets):
        return None
    unit = Fraction(int(base.group(1)), int(base.group(2)))
    stamps = sorted(int(pts) for _, pts in packets)
    return [float((stamp - stamps[0]) * unit) for stamp in stamps]


def frame_times(path: str) -> list[float] | None:
    """The video frames' own presentation times (seconds from the first, in order), read from
    the container without decoding; None where it does not keep them."""
    result = run_ffmpeg(build_times_args(path))
    if result.returncode != 0:
        return None
    return parse_frame_times(result.stdout.decode(errors="replace"))
