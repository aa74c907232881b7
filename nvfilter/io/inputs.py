"""Where the inputs come from: a path, or standard input ('-') spooled to a temporary file."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

from nvfilter.errors import NvfilterError, NvwError, VideoError
from nvfilter.io import media, nvw


def input_path(name: str, stack: ExitStack) -> str:
    """A path ffmpeg can probe and read twice: the file itself, or standard input spooled."""
    if name != "-":
        if not Path(name).exists():
            raise VideoError(f"{name}: no such file")
        if Path(name).is_dir():
            raise VideoError(f"{name}: is a folder, not a video")
        return name
    return str(spooled_stdin(stack, "a video", "", VideoError))


def spooled_stdin(stack: ExitStack, what: str, suffix: str, error: type[NvfilterError]) -> Path:
    """Standard input copied to a temporary file that ``stack`` removes; refuses a terminal or
    empty input with ``error``."""
    if sys.stdin.isatty():
        raise error(f"-: standard input is a terminal, not {what} (pipe one in)")
    spooled = media.spool_stdin(sys.stdin.buffer, suffix=suffix)
    stack.callback(spooled.unlink, missing_ok=True)
    if spooled.stat().st_size == 0:
        raise error("-: standard input is empty")
    return spooled


def open_nvw(name: str) -> tuple[nvw.NvwFile, int]:
    """The .nvw at path ``name``, or read from standard input for '-', with its size in bytes;
    messages name it as the user did."""
    with ExitStack() as stack:
        path = Path(name)
        if name == "-":
            path = spooled_stdin(stack, "a .nvw", ".nvw", NvwError)
        elif path.is_dir():
            raise NvwError(f"{name}: is a folder, not a .nvw")
        loaded = nvw.load(path, label=name)
        return loaded, path.stat().st_size


def is_folder_output(output: str) -> bool:
    """A folder (existing, or named with a trailing slash) gets numbered PNG frames."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()
