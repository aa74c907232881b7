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
