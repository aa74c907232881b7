"""`--model siren` (the same network) under other training flags, side by side, fixed time each.

    python bench/siren_recipe_sweep.py [--budget 48]

PSNR of the 8-bit reconstruction of realshort.mp4 at 160x90, 24 frames after --budget seconds
of training (train.py's loop, as encode runs it), for each (precision, lr, schedule, batch).
"""

import argparse
import sys

import torch

sys.argv, ARGS = sys.argv[:1], sys.argv[1:]
import encode_bench as b  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import TrainConfig  # noqa: E402
from nvfilter.decode.render import reconstruction_mse  # noqa: E402
from nvfilter.encode.train import fit  # noqa: E402
from nvfilter.eval.metrics import psnr_from_mse  # noqa: E402

RECIPES = [
    ("bfloat16", 1e-4, "constant", 65536),
    ("bfloat16", 5e-4, "cosine", 65536),
    ("bfloat16", 1e-3, "cosine", 65536),
    ("bfloat16", 3e-4, "cosine", 16384),
    ("bfloat16", 1e-3, "cosine", 16384),
    ("bfloat16", 3e-4, "constant", 16384),
    ("bfloat16", 3e-4, "cosine", 4096),
    ("bfloat16", 1e-4, "cosine", 4096),
    ("bfloat16", 6e-4, "cosine", 4096),
    ("bfloat16", 3e-4, "cosine", 1024),
    ("float32", 3e-4, "cosine", 16384),
    ("float32", 3e-4, "cosine", 4096),
]

parser = argparse.ArgumentParser()
parser.add_argument("--budget", type=float, default=48.0)
args = parser.parse_args(ARGS)
torch.set_num_threads(2)
print(f"command: python bench/siren_recipe_sweep.py {' '.join(ARGS)}; torch {torch.__version__}")
frames = b.load("realshort.mp4", 160, 90, 24)
print("\n| precision | lr | schedule | batch | steps | PSNR |")
print("| --- | --- | --- | --- | --- | --- |")
for precision, lr, schedule, batch in RECIPES:
    torch.manual_seed(0)
    model = b.Siren()
    config = TrainConfig(
        epochs=1e9,
        batch_size=batch,
        lr=lr,
        lr_schedule=schedule,
        time_budget=args.budget,
        precision=precision,
    )
    result = fit(model, frames, config)
    psnr = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)
    print(
        f"| {precision} | {lr:g} | {schedule} | {batch} | {result.steps} | {psnr:.2f} dB |",
        flush=True,
    )
