import io

from nvfilter.encode.train import Progress
from nvfilter.progress import Console, clock


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_step_loss_psnr_and_eta_on_a_terminal():
    stream = FakeTerminal()
    console = Console(stream=stream)
    console.training(
        Progress(step=50, total_steps=200, loss=1e-3, psnr=30.0, elapsed=10.0, time_budget=None)
    )
    line = stream.getvalue()
    assert line.startswith("\r") and "step 50/200" in line and "loss 1.000e-03" in line
    assert "PSNR 30.00 dB" in line and "ETA 0:30" in line
    console.training(Progress(50, 200, 1e-3, 30.0, 10.0, time_budget=15.0))
    assert stream.getvalue().endswith("ETA 0:05\033[K")  # the budget ends first


def test_quiet_console_prints_nothing():
    stream = FakeTerminal()
    console = Console(quiet=True, stream=stream)
    console.message("hello")
    console.training(Progress(1, 2, 0.1, 10.0, 1.0, None))
    assert stream.getvalue() == ""


def test_clock():
    assert clock(5) == "0:05" and clock(125) == "2:05" and clock(3725) == "1:02:05"


def test_decode_progress_gives_the_rate_elapsed_and_eta():
    import time

    import numpy as np

    from nvfilter.decode import decoder

    class Writer:
        def __init__(self):
            self.frames = 0

        def write(self, frame):
            self.frames += 1

        def close(self):
            pass

        def abort(self):
            raise AssertionError("not aborted")

    stream = FakeTerminal()
    console = Console(stream=stream)
    writer = Writer()
    frames = (np.zeros((2, 2, 3), np.uint8) for _ in range(4))
    decoder._write(frames, writer, 4, time.perf_counter() - 2.0, console)
    lines = stream.getvalue().split("\r")
    assert writer.frames == 4 and len(lines) == 5
    assert "frame 1/4" in lines[1] and "elapsed 0:02" in lines[1] and "ETA 0:06" in lines[1]
    assert "frame 4/4" in lines[4] and "ETA 0:00" in lines[4]
