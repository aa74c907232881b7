"""Seconds per SIREN 256x5 step at batch 65536 against the chunk size of its passes, side by side.

    python bench/chunk_sweep.py [chunk ...]     # default: 65536 16384 8192 4096 2048 1024

Each step is train.Trainer's: forward and backward each chunk of the batch (gradients add up), one
fused Adam step; float32 and bfloat16 (autocast). Best of 4 steps after one warm-up.
"""

import sys
import time

import torch

sys.argv, CHUNKS = (
    sys.argv[:1],
    [int(c) for c in sys.argv[1:]] or [65536, 16384, 8192, 4096, 2048, 1024],
)
import encode_bench as b  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import TrainConfig  # noqa: E402
from nvfilter.encode.train import Trainer  # noqa: E402

BATCH = 65536
torch.set_num_threads(2)
print(
    f"command: python bench/chunk_sweep.py {' '.join(map(str, CHUNKS))}; torch {torch.__version__}"
)
peak = {"float32": b.matmul_flops(torch.float32), "bfloat16": b.matmul_flops(torch.bfloat16)}
print(", ".join(f"{k} matmul: {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()) + "\n")
print(
    "| precision | chunk | s/step | GFLOP/s | of float32 matmul | of its own precision's matmul |"
)
print("| --- | --- | --- | --- | --- | --- |")


def step_seconds(precision: str, chunk: int) -> float:
    """Best of 4 steps of train.Trainer's pass (chunked backward, fused Adam), after a warm-up."""
    torch.manual_seed(0)
    model = b.Siren()
    model.cpu_chunk_rows = lambda: chunk  # type: ignore[method-assign]
    frames = torch.randint(0, 256, (24, 90, 160, 3), dtype=torch.uint8)
    config = TrainConfig(epochs=1e9, batch_size=BATCH, precision=precision)
    trainer = Trainer(model, frames, config)
    coords = torch.rand(BATCH, 3) * 2 - 1
    target = torch.rand(BATCH, 3)
    best = float("inf")
    for attempt in range(5):
        start = time.perf_counter()
        trainer.optimiser.zero_grad(set_to_none=True)
        trainer._backward(coords, target)
        trainer.optimiser.step()
        if attempt:
            best = min(best, time.perf_counter() - start)
    return best


for precision in ("float32", "bfloat16"):
    for chunk in CHUNKS:
        seconds = step_seconds(precision, chunk)
        flops = b.SIREN_FLOPS_PER_PIXEL * BATCH / seconds
        print(
            f"| {precision} | {chunk} | {seconds:.3f} | {flops / 1e9:.0f} | "
            f"{flops / peak['float32']:.0%} | {flops / peak[precision]:.0%} |",
            flush=True,
        )
