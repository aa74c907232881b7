"""Which torch device a run uses (auto picks CUDA, then Apple's MPS, then the CPU), the memory
this machine has free, freed memory handed back to it, and torch's and OpenCV's threads where
Python threads share the cores."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterator

import torch

from nvfilter.errors import OptionError


def resolve_device(name: str) -> str:
    """auto -> cuda, then mps, then cpu; an explicit device must be present."""
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: no CUDA GPU is available to this torch")
    if name == "mps" and not torch.backends.mps.is_available():
        raise OptionError("--device mps: Apple's MPS is not available here")
    return name


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Hand back to the system the pages glibc's heap keeps after arrays are freed
    (malloc_trim): a long 1080p decode otherwise keeps hundreds of megabytes of freed frames'
    pages beside the arrays it uses (BENCHMARKS.md, a minute of 1920x1080). Nothing where the C
    library is not glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def library_threads(
    count: int, get: Callable[[], int], put: Callable[[int], None]
) -> Iterator[None]:
    """Inside, a library's thread count (read by ``get``, set by ``put``) is ``count``; what it
    was is put back on leaving."""
    threads = get()
    put(count)
    try:
        yield
    finally:
        put(threads)


def torch_threads(count: int) -> contextlib.AbstractContextManager[None]:
    """Inside, torch runs each operation on ``count`` threads. For work that Python threads
    already spread over the cores, where sharing each operation between all of them as well
    costs more than it gives."""
    return library_threads(count, torch.get_num_threads, torch.set_num_threads)


def opencv_threads(count: int) -> contextlib.AbstractContextManager[None]:
    """Inside, OpenCV runs each call on ``count`` threads (1: on the thread that makes it). Two
    Python threads each calling DIS with OpenCV's pool of two threads behind it kept more
    threads busy than this machine's two cores: 96 frames of 1280x720 by motion took 23.8 s of
    CPU with the pool and 20.6 s without, for the same frames. OpenCV is imported here: only
    decoding with motion needs it."""
    import cv2

    return library_threads(count, cv2.getNumThreads, cv2.setNumThreads)
