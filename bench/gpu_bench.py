"""The encode benchmark on a GPU: throughput, precision, PSNR against time, decoding, memory.

    python bench/gpu_bench.py                    # the run recorded in BENCHMARKS.md (about 8 min)
    python bench/gpu_bench.py --part decode      # one part: training, batch or decode
    python bench/gpu_bench.py --quick --device cpu   # a few seconds per row, to try it out

Everything side by side in one process on one device. The GPU learns 50-100x faster than the
2-core CPU of encode_bench.py, so its budgets are shorter (10 s instead of 240 s):

* matrix-multiply FLOP/s of the device (8192^3) in float32, TF32 and bfloat16, and SIREN 256x5's
  training throughput at batch 65536 for the plain loop and `--model siren` in each precision;
* PSNR against training time on two real clips at 160x90, 24 frames: the plain reference loop,
  `--model siren` in float32, tf32 and bfloat16 (does PSNR hold in lower precision?), and the
  default encode (hybrid, one run per budget since its schedule follows the budget);
* the hybrid's batch size on a GPU, where a batch of 4096 leaves it idle: PSNR after the same time
  at 4096, 16384 and 65536 pixels, on a small clip and on the 720x405, 190-frame clip;
* decode frames/s at 1280x720 (network only, and `nvfilter decode` end to end), peak GPU memory;
* run-to-run reproducibility on the GPU.

PSNR is always of the 8-bit reconstruction of every frame (what decode gives), all pixels pooled;
evaluation time is excluded from training time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.argv, ARGS = sys.argv[:1], sys.argv[1:]
import encode_bench as eb  # noqa: E402  (puts the checkout on sys.path)

from nvfilter.config import (  # noqa: E402
    ORIGINAL_SIREN_RECIPE,
    EncodeOptions,
    TrainConfig,  # noqa: E402
)
from nvfilter.decode.render import reconstruction_mse, render_frame  # noqa: E402
from nvfilter.encode.train import Trainer, matmul_precision  # noqa: E402
from nvfilter.eval.metrics import psnr_from_mse  # noqa: E402
from nvfilter.io import nvw  # noqa: E402
from nvfilter.models import Siren  # noqa: E402

PRECISIONS = ("float32", "tf32", "bfloat16")
"""The precisions measured; tf32 only on CUDA."""


def precisions(device: str) -> tuple[str, ...]:
    return PRECISIONS if device.startswith("cuda") else ("float32", "bfloat16")


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_flops(device: str, precision: str, size: int = 8192, repeats: int = 10) -> float:
    """Median FLOP/s of a size^3 product of random matrices."""
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    if not device.startswith("cuda"):
        size = min(size, 2048)
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    times = []
    with matmul_precision(precision):
        for k in range(repeats + 2):
            synchronize(device)
            start = time.perf_counter()
            a @ b
            synchronize(device)
            if k >= 2:
                times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def plain_step_seconds(device: str, batch: int = 65536, steps: int = 20) -> float:
    """The seed's loop: nn.Linear + sin over the whole batch, plain Adam."""
    model = eb.PlainSiren().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    coords = torch.rand(batch, 3, device=device) * 2 - 1
    target = torch.rand(batch, 3, device=device)

    def step() -> None:
        loss = torch.mean((model(coords) - target) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(3):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def trainer_step_seconds(device: str, precision: str, steps: int = 20) -> float:
    """Seconds per step of `--model siren` as encode trains it (train.Trainer)."""
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (24, 90, 160, 3), dtype=torch.uint8)
    config = TrainConfig(epochs=1e9, batch_size=65536, lr=1e-4, precision=precision, device=device)
    trainer = Trainer(Siren(), frames, config)
    trainer.steps = 3
    warm_up = trainer.run().seconds
    trainer.steps = 3 + steps
    return (trainer.run().seconds - warm_up) / steps


def curve(model, frames, config: TrainConfig, checkpoints) -> tuple[dict[float, float], int]:
    """Train; the PSNR at each checkpoint (seconds of training) and at the end."""
    points: dict[float, float] = {}

    def evaluate(step: int, seconds: float) -> None:
        points[seconds] = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)

    torch.manual_seed(config.seed)
    result = Trainer(model, frames, config).run(checkpoints=checkpoints, on_checkpoint=evaluate)
    points[config.time_budget or result.seconds] = psnr_from_mse(
        reconstruction_mse(model, frames), peak=1.0
    )
    return points, result.steps


def table(rows: list[tuple[str, dict[float, float], int]], columns: list[float]) -> None:
    print("| method | " + " | ".join(f"PSNR at {c:g} s" for c in columns) + " | steps |")
    print("| --- |" + " --- |" * (len(columns) + 1))
    for name, points, steps in rows:
        cells = [f"{points[c]:.2f} dB" if c in points else "-" for c in columns]
        print(f"| {name} | " + " | ".join(cells) + f" | {steps} |")


def training(
    device: str, budget: float, fine: list[float], hybrid_budgets: list[float], clips: list[str]
) -> None:
    """SIREN's throughput in each precision; PSNR against time of every method on the clips."""
    print("## Training throughput, SIREN 256x5, batch 65536\n")
    matmul = {p: matmul_flops(device, p) for p in precisions(device)}
    print(
        "matrix multiply (8192^3): "
        + ", ".join(f"{p} {f / 1e12:.1f} TFLOP/s" for p, f in matmul.items())
        + "\n"
    )
    print("| loop | ms/step | pixels/s | TFLOP/s | of float32 matmul | of its own matmul |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = [("plain reference (nn.Linear + sin), float32", "float32", plain_step_seconds(device))]
    rows += [
        (f"`--model siren --precision {p}`", p, trainer_step_seconds(device, p))
        for p in precisions(device)
    ]
    for label, precision, seconds in rows:
        flops = eb.SIREN_FLOPS_PER_PIXEL * 65536 / seconds
        print(
            f"| {label} | {seconds * 1e3:.2f} | {65536 / seconds:,.0f} | {flops / 1e12:.1f} | "
            f"{flops / matmul['float32']:.0%} | {flops / matmul[precision]:.0%} |"
        )
    print(flush=True)

    for clip in clips:
        frames = eb.load(clip, 160, 90, 24)
        n, h, w, _ = frames.shape
        print(f"## {clip} at {w}x{h}, {n} frames\n")
        rows_out = []
        torch.manual_seed(0)
        points, steps = curve(
            eb.PlainSiren(),
            frames,
            eb.siren_config(budget, "float32", device, **ORIGINAL_SIREN_RECIPE),
            fine,
        )
        rows_out.append(("plain reference loop (seed SIREN), float32", points, steps))
        plain_best = points[budget]
        siren_runs = {}
        for precision in precisions(device):
            torch.manual_seed(0)
            points, steps = curve(Siren(), frames, eb.siren_config(budget, precision, device), fine)
            siren_runs[precision] = points
            rows_out.append((f"`--model siren --precision {precision}`", points, steps))
        hybrid_points: dict[float, float] = {}
        for b in hybrid_budgets:
            torch.manual_seed(0)
            checkpoints = [c for c in fine if c < b] if b == budget else []
            points, steps = curve(
                eb.hybrid(frames), frames, eb.hybrid_config(b, device=device), checkpoints
            )
            hybrid_points.update(points if b == budget else {b: points[b]})
        rows_out.append(("default encode (hybrid; one run per budget)", hybrid_points, steps))
        table(rows_out, sorted({*fine, *hybrid_budgets}))
        print(f"\n- the plain loop's {budget:g} s PSNR is {plain_best:.2f} dB")
        for precision, points in siren_runs.items():
            print(
                f"- `--model siren --precision {precision}` reaches it: "
                f"{eb.first_reach(points, plain_best)}"
            )
        print(f"- the default encode reaches it: {eb.first_reach(hybrid_points, plain_best)}")
        print(flush=True)


def batch_sweep(device: str, budget: float, large_budget: float, args: argparse.Namespace) -> None:
    """PSNR after the same time at several batch sizes of the hybrid, small and large clip."""
    print("## Hybrid batch size on this device\n")
    small = eb.load(args.clips[0], 160, 90, 24)
    large = eb.load(args.large, 720, 405, 190)
    default = EncodeOptions(model="hybrid").setting("batch_size", device)
    for clip, frames, seconds in [
        (args.clips[0], small, budget / 2),
        (args.large, large, large_budget),
    ]:
        n, h, w, _ = frames.shape
        print(f"{clip} at {w}x{h}, {n} frames, {seconds:g} s each:\n")
        checkpoints = [c for c in (1, 2, 5, 10, 20) if c < seconds]
        rows_out = []
        for batch in (4096, 16384, 65536, 262144):
            torch.manual_seed(0)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            points, steps = curve(
                eb.hybrid(frames),
                frames,
                eb.hybrid_config(seconds, device=device, batch=batch),
                checkpoints,
            )
            label = f"batch {batch}" + (" (default)" if batch == default else "")
            if device.startswith("cuda"):
                label += f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB"
            rows_out.append((label, points, steps))
        table(rows_out, [*checkpoints, seconds])
        print(flush=True)


def decoding(device: str, budget: float, args: argparse.Namespace) -> None:
    """The default encode of the large clip through the command line, then decoding it."""
    print("## The command line, decoding and reproducibility\n")
    with tempfile.TemporaryDirectory() as tmp:
        nvw_path = Path(tmp) / "large.nvw"
        command = [
            "encode",
            str(args.corpus / args.large),
            str(nvw_path),
            "--device",
            device,
            "--width",
            "720",
            "--height",
            "405",
            "--max-frames",
            "190",
            "--time-budget",
            f"{budget:g}",
        ]
        start = time.perf_counter()
        done = subprocess.run([*eb.NVFILTER, *command], cwd=eb.ROOT, capture_output=True, text=True)
        print(done.stderr.strip().splitlines()[0])
        print(done.stderr.strip().splitlines()[-1])
        done.check_returncode()
        print(
            f"- `nvfilter encode {args.large} {' '.join(command[3:])}`: {time.perf_counter() - start:.1f} s end to "
            "end (start-up, reading and writing included)"
        )
        loaded = nvw.load(nvw_path).model.to(device)
        for label, model in (
            ("the default model (hybrid) of that encode", loaded),
            ("SIREN 256x5", Siren().to(device)),
        ):
            model.eval()
            model.forget_render_cache()
            render_frame(model, 1280, 720, 0.0)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            count = 3 if args.quick else 20
            synchronize(device)
            start = time.perf_counter()
            for k in range(count):
                render_frame(model, 1280, 720, -1 + 2 * k / count)
            fps = count / (time.perf_counter() - start)
            memory = (
                f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB"
                if device.startswith("cuda")
                else ""
            )
            print(
                f"- render at 1280x720, {label}: {fps:.1f} frames/s (network, to uint8 frames in "
                f"host memory){memory}"
            )
        frames_out = 48
        start = time.perf_counter()
        subprocess.run(
            eb.decode_720p(nvw_path, Path(tmp) / "o.mp4", frames_out, "--device", device),
            check=True,
            cwd=eb.ROOT,
        )
        print(
            f"- `nvfilter decode --device {device}` to 1280x720 H.264, {frames_out} frames: "
            f"{frames_out / (time.perf_counter() - start):.1f} frames/s end to end "
            "(start-up and x264 included)"
        )

    small = eb.load(args.clips[0], 160, 90, 24)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = eb.hybrid(small)
        config = TrainConfig(
            epochs=20, batch_size=4096, lr=3e-3, lr_schedule="cosine", device=device
        )
        Trainer(model, small, config).run()
        results.append(psnr_from_mse(reconstruction_mse(model, small), peak=1.0))
    print(
        f"- reproducibility on {device}, same seed twice (hybrid, 20 epochs): "
        f"{results[0]:.4f} dB and {results[1]:.4f} dB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="short budgets, to try it out")
    parser.add_argument("--corpus", type=Path, default=eb.CORPUS)
    parser.add_argument("--clips", nargs="+", default=["realshort.mp4", "Principe_inertie.avi"])
    parser.add_argument("--large", default="oa4_launch.webm")
    parser.add_argument(
        "--part",
        choices=["all", "training", "batch", "decode"],
        default="all",
        help="training: throughput and PSNR curves; batch: the hybrid's batch sweep; "
        "decode: the command line end to end, decoding, reproducibility",
    )
    args = parser.parse_args(ARGS)
    args.corpus = args.corpus.resolve()
    eb.CORPUS = args.corpus
    device = args.device
    began = time.perf_counter()
    budget = 2.0 if args.quick else 10.0
    fine = [c for c in (0.5, 1, 2, 5) if c < budget]
    hybrid_budgets = [1.0, budget] if args.quick else [1.0, 2.0, 5.0, budget]
    large_budget = 4.0 if args.quick else 30.0

    print(f"command: python bench/{Path(__file__).name} {' '.join(ARGS)}")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.machine()
    print(
        f"device: {name}; torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"{torch.get_num_threads()} CPU threads, {time.strftime('%Y-%m-%d')}\n"
    )

    if args.part in ("all", "training"):
        training(device, budget, fine, hybrid_budgets, args.clips)
    if args.part in ("all", "batch"):
        batch_sweep(device, budget, large_budget, args)
    if args.part in ("all", "decode"):
        decoding(device, large_budget, args)
    print(f"\n(benchmark took {(time.perf_counter() - began) / 60:.1f} minutes)")


if __name__ == "__main__":
    main()
