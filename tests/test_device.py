"""Freed memory handed back to the system while decoding (device.release_freed_memory)."""

import platform
import time

import numpy as np
import pytest

from nvfilter import device
from nvfilter.decode import decoder
from nvfilter.progress import Console


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_glibc_trim_is_found_and_runs():
    assert device._malloc_trim() is not None
    device.release_freed_memory()  # twice: the function is looked up once
    device.release_freed_memory()


class _Sink:
    """Takes frames as media.FrameWriter does, and counts them."""

    def __init__(self) -> None:
        self.frames = 0
        self.closed = False

    def write(self, frame: np.ndarray) -> None:
        self.frames += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        raise AssertionError("not expected")


def test_decoding_hands_freed_memory_back_every_few_seconds(monkeypatch):
    calls = []
    monkeypatch.setattr(decoder, "release_freed_memory", lambda: calls.append(1))
    frames = (np.zeros((4, 4, 3), np.uint8) for _ in range(5))
    sink = _Sink()
    monkeypatch.setattr(decoder, "TRIM_EVERY", 3600.0)
    decoder._write(frames, sink, 5, time.perf_counter(), Console(quiet=True))  # type: ignore[arg-type]
    assert (sink.frames, sink.closed, calls) == (5, True, [])
    monkeypatch.setattr(decoder, "TRIM_EVERY", 0.0)
    frames = (np.zeros((4, 4, 3), np.uint8) for _ in range(5))
    decoder._write(frames, _Sink(), 5, time.perf_counter(), Console(quiet=True))  # type: ignore[arg-type]
    assert len(calls) == 5
