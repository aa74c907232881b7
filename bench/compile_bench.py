"""--compile against the fused layers for `--model siren`, side by side, through train.Trainer.

    python bench/compile_bench.py       # 2 threads, batch 65536, alternating rounds

Seconds per training step (sampling, chunked passes, fused Adam) of SIREN 256x5 on random
160x90x24 frames, in float32 and bfloat16, with and without --compile, and the share of the
machine's matrix-multiply FLOP/s (measured in the same process) that each reaches.
"""

import statistics
import sys

import torch

sys.argv = sys.argv[:1]
import encode_bench as b  # noqa: E402  (puts the checkout on sys.path)

torch.set_num_threads(2)
print("command: python bench/compile_bench.py; 2 threads, torch " + torch.__version__)
fp32, bf16 = b.matmul_flops(torch.float32), b.matmul_flops(torch.bfloat16)
print(f"matrix multiply (4096^3): float32 {fp32 / 1e9:.0f} GFLOP/s, bfloat16 {bf16 / 1e9:.0f}\n")
print("| precision | compile | s/step | GFLOP/s | of float32 matmul | of its own matmul |")
print("| --- | --- | --- | --- | --- | --- |")
for precision, own in (("float32", fp32), ("bfloat16", bf16)):
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for compiled in (False, True):
            times[compiled].append(b.trainer_step_seconds(precision, steps=3, compile=compiled))
    for compiled in (False, True):
        seconds = statistics.median(times[compiled])
        flops = b.SIREN_FLOPS_PER_PIXEL * 65536 / seconds
        print(
            f"| {precision} | {'yes' if compiled else 'no'} | {seconds:.3f} | {flops / 1e9:.0f} | "
            f"{flops / fp32:.0%} | {flops / own:.0%} |",
            flush=True,
        )
