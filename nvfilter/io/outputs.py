"""Write outputs all at once or not at all: a temporary name beside the target, renamed at the end."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nvfilter.errors import OutputError
from nvfilter.progress import human_bytes

PARTIAL = ".nvfilter-partial-"
"""In the name of what is being written: hidden ``.{name}{PARTIAL}{pid}``, renamed when complete."""


def partial_name(target: Path) -> Path:
    """Hidden temporary sibling of target, keeping the extension (ffmpeg picks its muxer by it)."""
    return target.with_name(f".{target.stem}{PARTIAL}{os.getpid()}{target.suffix}")


def remove_partials(folder: Path) -> None:
    """Delete the hidden partial files in ``folder`` that a killed writer left (SIGKILL leaves it no
    chance to clean up): for a run that takes the folder over, as --resume does."""
    for leftover in folder.glob(f".*{PARTIAL}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces target only if the block finishes."""
    if target.is_dir():
        raise OutputError(f"{target} is a folder, not a file")
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent} does not exist")
    temp = partial_name(target)
    try:
        yield temp
        os.replace(temp, target)
    except OSError as err:  # a full disk, a quota, a file size limit: the user's path, one line
        why = err.strerror or str(err)
        raise OutputError(f"{target}: {why}", reason=why) from None
    finally:
        temp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; it becomes target (which must be absent or empty)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise OutputError(f"{target} exists and is not an empty folder")
    if not target.parent.is_dir():
        raise OutputError(f"{target.parent} does not exist")
    temp = target.with_name(f".{target.name}{PARTIAL}{os.getpid()}")
    temp.mkdir()
    try:
        yield temp
        if target.exists():
            target.rmdir()
        os.replace(temp, target)
    except OSError as err:
        why = err.strerror or str(err)
        raise OutputError(f"{target}: {why}", reason=why) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def check_file_output(output: str) -> None:
    """Refuse, before any work, an output file that cannot be written where it is named: a
    folder, or a name in a folder that does not exist ('-' is standard output)."""
    if output == "-":
        return
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir():
        raise OutputError(f"{output}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise OutputError(f"{output}: folder {path.parent} does not exist")


def check_room(needs: dict[Path, int], label: str, what: str, hint: str) -> None:
    """Refuse, before any work, writes that will not fit: ``needs`` maps folders to the bytes
    that will be written there (summed over the folders on the same disk), ``what`` says what
    they are and ``hint`` how to need less; the error names ``label``."""
    disks: dict[int, tuple[Path, int]] = {}
    for folder, need in needs.items():
        folder = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.is_dir())
        device = folder.stat().st_dev
        first, total = disks.get(device, (folder, 0))
        disks[device] = (first, total + need)
    for folder, need in disks.values():
        free = shutil.disk_usage(folder).free
        if need > free:
            raise OutputError(
                f"{label}: {what} need about {human_bytes(need)} of disk and "
                f"{human_bytes(free)} is free in {folder}; {hint}"
            )


def write_bytes(data: bytes, output: str) -> None:
    """Write data to a file atomically, or to standard output for ``-``."""
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with atomic_file(Path(output)) as temp:
        temp.write_bytes(data)


def write_chunks(chunks: Iterable[bytes], output: str) -> None:
    """Write a stream of byte strings to a file atomically (nothing is left if it fails), or to
    standard output for ``-``: one chunk in memory at a time."""
    if output == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    with atomic_file(Path(output)) as temp, temp.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
