"""--compile against the fused layers for `--model siren`, side by side, through train.Trainer.

    python bench/compile_bench.py                 # 2 threads, SIREN's CPU batch, alternating rounds
    python bench/compile_bench.py --batch 65536   # the original design's batch

Seconds per training step (sampling, chunked passes, fused Adam) of SIREN 256x5 on random
160x90x24 frames, in float32 and bfloat16, with and without --compile, and the share of the
machine's matrix-multiply FLOP/s (measured in the same process) that each reaches.
"""

import argparse
import statistics
import sys

import torch

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--batch", type=int, help="pixels per step [`--model siren`'s CPU default]")
args = parser.parse_args()
sys.argv = sys.argv[:1]
import encode_bench as b  # noqa: E402  (puts the checkout on sys.path)

batch = args.batch or b.EncodeOptions(model="siren").setting("batch_size")
torch.set_num_threads(2)
print(
    f"command: python bench/compile_bench.py{f' --batch {args.batch}' if args.batch else ''}; "
    f"batch {batch}, 2 threads, torch {torch.__version__}"
)
fp32, bf16 = b.matmul_flops(torch.float32), b.matmul_flops(torch.bfloat16)
print(f"matrix multiply (4096^3): float32 {fp32 / 1e9:.0f} GFLOP/s, bfloat16 {bf16 / 1e9:.0f}\n")
print("| precision | compile | s/step | GFLOP/s | of float32 matmul | of its own matmul |")
print("| --- | --- | --- | --- | --- | --- |")
for precision, own in (("float32", fp32), ("bfloat16", bf16)):
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for compiled in (False, True):
            times[compiled].append(b.trainer_step_seconds(precision, batch, compile=compiled))
    for compiled in (False, True):
        seconds = statistics.median(times[compiled])
        flops = b.SIREN_FLOPS_PER_PIXEL * batch / seconds
        print(
            f"| {precision} | {'yes' if compiled else 'no'} | {seconds:.3f} | {flops / 1e9:.0f} | "
            f"{flops / fp32:.0%} | {flops / own:.0%} |",
            flush=True,
        )
