"""Everything that talks to ffmpeg, by role: process.py starts it (the one place) and reads its
complaints, probe.py reads what a video is, reading.py takes frames out, writing.py puts them in.
Argument lists are built with ffmpeg-python and returned as plain lists, so they can be tested
without running anything. The rest of nvfilter uses these names from ``nvfilter.io.media``."""

from nvfilter.config import ColorTags
from nvfilter.io.media.probe import (
    _stream_color,
    build_probe_args,
    frame_times,
    parse_frame_times,
    parse_probe,
    probe,
)
from nvfilter.io.media.process import complaint, ffmpeg_exe, ffmpeg_version, run_ffmpeg
from nvfilter.io.media.reading import (
    build_read_args,
    collect_frames,
    iter_frames,
    read_frames,
    spool_stdin,
    training_size,
)
from nvfilter.io.media.writing import (
    RGB_MATRICES,
    FrameWriter,
    build_write_args,
    default_codec,
    default_pix_fmt,
    even_size,
    yuv_color,
)

__all__ = [
    "RGB_MATRICES",
    "ColorTags",
    "FrameWriter",
    "_stream_color",
    "build_probe_args",
    "build_read_args",
    "build_write_args",
    "collect_frames",
    "complaint",
    "default_codec",
    "default_pix_fmt",
    "even_size",
    "frame_times",
    "ffmpeg_exe",
    "ffmpeg_version",
    "iter_frames",
    "parse_frame_times",
    "parse_probe",
    "probe",
    "read_frames",
    "run_ffmpeg",
    "spool_stdin",
    "training_size",
    "yuv_color",
]
