"""--precision bfloat16 against float32 for `--model siren` at its original defaults, side by side.

    python bench/precision_bench.py     # 180 s each on realshort.mp4 at 160x90, 24 frames

Prints steps, pixels/s and the PSNR of the 8-bit reconstruction of all frames at 15, 30, 60, 120
and 180 s of training (evaluation time excluded), for each precision.
"""

import sys

import torch

sys.argv = sys.argv[:1]
import encode_bench as b  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import TrainConfig  # noqa: E402
from nvfilter.decode.render import reconstruction_mse  # noqa: E402
from nvfilter.encode.train import Trainer  # noqa: E402
from nvfilter.eval.metrics import psnr_from_mse  # noqa: E402

torch.set_num_threads(2)
print("command: python bench/precision_bench.py; 2 threads, torch " + torch.__version__)
frames = b.load("realshort.mp4", 160, 90, 24)
budget = 180
for precision in ("float32", "bfloat16"):
    torch.manual_seed(0)
    m = b.Siren()
    curve = {}

    def ev(step, sec, m=m, curve=curve):
        curve[sec] = psnr_from_mse(reconstruction_mse(m, frames), peak=1.0)

    cfg = TrainConfig(
        epochs=1000, batch_size=65536, lr=1e-4, time_budget=budget, precision=precision
    )
    r = Trainer(m, frames, cfg).run(checkpoints=[15, 30, 60, 120, 180], on_checkpoint=ev)
    m.eval()
    final = psnr_from_mse(reconstruction_mse(m, frames), peak=1.0)
    print(
        precision,
        r.steps,
        "steps",
        f"{r.steps * 65536 / r.seconds:,.0f} px/s",
        {k: round(v, 2) for k, v in curve.items()},
        f"final {final:.2f}",
        flush=True,
    )
