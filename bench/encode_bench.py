"""Encode/decode speed and quality benchmark: prints Markdown tables and the command that made them.

    python bench/encode_bench.py                 # the full run recorded in BENCHMARKS.md
    python bench/encode_bench.py --quick         # a few seconds per row, to try it out

Everything is measured in one process, on the same machine and thread count, side by side:

* the machine's matrix-multiply FLOP/s (float32, 4096^3) and the training throughput of SIREN
  256x5 at batch 65536 (the original design), plain (unfused) and as `--model siren` runs it;
* PSNR against training time on real clips at 160x90, 24 frames: the plain reference loop (the
  seed's SIREN, random pixel batches, original defaults), `--model siren`, `--model hybrid` (one
  run per time budget since its schedule follows the budget), and the default encode (tiles: a
  closed-form fit, no budget);
* a larger clip (720x405, 190 frames) under `--model hybrid` for 5 minutes (real sizes have
  their own benchmark, real_size_bench.py);
* decode frames/s at 1280x720 with that hybrid model, peak memory of encode and decode (fresh
  processes), and run-to-run reproducibility.

PSNR is always of the 8-bit reconstruction of every frame (what decode gives), all pixels pooled.
Evaluation time is excluded from training time.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import CORPUS, ROOT  # noqa: E402  (puts the checkout on sys.path)
from torch import nn

from nvfilter.config import (  # noqa: E402
    MODEL_DEFAULTS,
    ORIGINAL_SIREN_RECIPE,
    EncodeOptions,
    TrainConfig,  # noqa: E402
)
from nvfilter.decode.render import reconstruction_mse, render_frame  # noqa: E402
from nvfilter.encode.train import Trainer, fit  # noqa: E402
from nvfilter.eval.metrics import psnr_from_mse  # noqa: E402
from nvfilter.io import media as ffio  # noqa: E402
from nvfilter.models import VideoField, count_parameters  # noqa: E402
from nvfilter.models.planes import PlaneField, auto_channels  # noqa: E402
from nvfilter.models.siren import Siren
from nvfilter.models.tiles import TileField  # noqa: E402

NVFILTER = [sys.executable, "-m", "nvfilter"]
"""The command under test, from this checkout, whether or not it is installed on PATH."""
SIREN_FLOPS_PER_PIXEL = 3 * 2 * (3 * 256 + 5 * 256 * 256 + 256 * 3)
"""Multiply-adds x 2 x (forward + 2 backward matmuls) of SIREN 256x5 per pixel."""


class PlainSiren(VideoField):
    """The seed's SIREN: nn.Linear + torch.sin, plain autograd, same initialisation."""

    def __init__(self) -> None:
        super().__init__()
        reference = Siren()
        self.layers = nn.ModuleList(layer.linear for layer in reference.net)
        self.final = reference.final

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        out = coords
        for layer in self.layers:
            out = torch.sin(30.0 * layer(out))
        return torch.sigmoid(self.final(out))

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": list(self.parameters()), "lr": lr}]

    def render_rows(self, t: float, width: int, height: int, start: int, stop: int):
        from nvfilter.coords import rows_coords

        device = self.final.weight.device
        return self(rows_coords(width, height, t, start, stop, device))


def load(name: str, width: int, height: int | None, frames: int) -> torch.Tensor:
    path = str(CORPUS / name)
    src = ffio.probe(path)
    w, h = ffio.training_size(src.width, src.height, width, height)
    return ffio.read_frames(path, src, w, h, 1, frames)


def matmul_flops(dtype: torch.dtype, size: int = 4096, repeats: int = 5) -> float:
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def siren_step_seconds(model: nn.Module, batch: int = 65536, steps: int = 3) -> float:
    """Seconds per step of the plain loop: one forward and backward of the whole batch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    coords = torch.rand(batch, 3) * 2 - 1
    target = torch.rand(batch, 3)

    def step() -> None:
        loss = torch.mean((model(coords) - target) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def trainer_step_seconds(
    precision: str, batch: int = 65536, steps: int | None = None, compile: bool = False
) -> float:
    """Seconds per step of `--model siren` as encode trains it (train.Trainer: sampling,
    chunked passes, fused Adam), on random 160x90x24 frames; by default over as many pixels
    as 3 steps of 65536."""
    steps = steps or 3 * max(1, 65536 // batch)
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (24, 90, 160, 3), dtype=torch.uint8)
    config = TrainConfig(
        epochs=1e9, batch_size=batch, lr=1e-4, precision=precision, compile=compile
    )
    trainer = Trainer(Siren(), frames, config)
    trainer.steps = 1
    warm_up = trainer.run().seconds
    trainer.steps = 1 + steps
    return (trainer.run().seconds - warm_up) / steps


def psnr_curve(model, frames, config: TrainConfig, checkpoints) -> tuple[dict, int]:
    """Train, evaluating the full 8-bit PSNR at each checkpoint (seconds of training)."""
    curve: dict[float, float] = {}

    def evaluate(step: int, seconds: float) -> None:
        curve[seconds] = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)

    torch.manual_seed(config.seed)
    result = fit(model, frames, config, checkpoints=checkpoints, on_checkpoint=evaluate)
    return curve, result.steps


def first_reach(curve: dict[float, float], target: float) -> str:
    for seconds in sorted(curve):
        if curve[seconds] >= target:
            return f"{seconds:g} s"
    return f"not within {max(curve):g} s"


def hybrid(frames: torch.Tensor) -> PlaneField:
    n, h, w, _ = frames.shape
    d = MODEL_DEFAULTS["hybrid"]
    return PlaneField(
        w, h, n, auto_channels(w, h, n), d["levels"], d["hidden_features"], d["hidden_layers"]
    )


def hybrid_config(
    budget: float, seed: int = 0, device: str = "cpu", batch: int | None = None
) -> TrainConfig:
    """The default encode's settings on this device, for a time budget."""
    d = EncodeOptions(model="hybrid").setting
    return TrainConfig(
        epochs=1e9,
        batch_size=batch or d("batch_size", device),
        lr=d("lr"),
        lr_schedule=d("lr_schedule"),
        time_budget=budget,
        seed=seed,
        device=device,
    )


def siren_config(
    budget: float, precision: str = "float32", device: str = "cpu", **recipe: Any
) -> TrainConfig:
    """`--model siren`'s settings on the device (or the ``recipe`` given), for a time budget."""
    d = EncodeOptions(model="siren").setting
    settings = {name: d(name, device) for name in ("batch_size", "lr", "lr_schedule")} | recipe
    return TrainConfig(
        epochs=1e9, time_budget=budget, precision=precision, device=device, **settings
    )


ORIGINAL_FLAGS = "--batch-size 65536 --lr 1e-4 --lr-schedule constant"
"""The flags that give `--model siren` the original design's steps on a CPU."""


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run a command in a fresh process; its peak resident memory (MB) and wall time (s)."""
    start = time.perf_counter()
    code = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return int(out.stdout.split()[-1]) / 1024, time.perf_counter() - start


def decode_720p(nvw_path: Path, output: Path, frames: int, *flags: str) -> list[str]:
    """The `nvfilter decode` command line that renders ``frames`` frames at 1280x720."""
    return [
        *NVFILTER, "decode", str(nvw_path), str(output), "-q", *flags,
        "--width", "1280", "--height", "720", "--num-frames", str(frames),
    ]  # fmt: skip


# ---- SIREN sweeps (--part chunks|compile|precision|recipes), quoted in BENCHMARKS.md ----------

SWEEP_RECIPES = [
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
"""(precision, lr, schedule, batch) of the recipe sweep that picked `--model siren`'s CPU steps."""


def rate_row(label: str, seconds: float, batch: int, fp32: float, own: float) -> str:
    """A table row: seconds per step, GFLOP/s, and the share of the float32 and own matmul."""
    flops = SIREN_FLOPS_PER_PIXEL * batch / seconds
    return (
        f"| {label} | {seconds:.3f} | {flops / 1e9:.0f} | {flops / fp32:.0%} | {flops / own:.0%} |"
    )


def chunk_sweep(chunks: list[int], batch: int = 65536) -> None:
    """Seconds per SIREN 256x5 step at batch 65536 against the chunk size of its passes (train.
    Trainer's chunked backward and fused Adam), float32 and bfloat16; best of 4 after a warm-up."""
    fp32, bf16 = matmul_flops(torch.float32), matmul_flops(torch.bfloat16)
    print("| precision, chunk | s/step | GFLOP/s | of float32 matmul | of its own matmul |")
    print("| --- | --- | --- | --- | --- |")
    frames = torch.randint(0, 256, (24, 90, 160, 3), dtype=torch.uint8)
    for precision, own in (("float32", fp32), ("bfloat16", bf16)):
        for chunk in chunks:
            torch.manual_seed(0)
            model = Siren()
            model.cpu_chunk_rows = lambda chunk=chunk: chunk  # type: ignore[method-assign]
            trainer = Trainer(model, frames, TrainConfig(1e9, batch, precision=precision))
            coords, target = torch.rand(batch, 3) * 2 - 1, torch.rand(batch, 3)
            best = math.inf
            for attempt in range(5):
                start = time.perf_counter()
                trainer.optimiser.zero_grad(set_to_none=True)
                trainer._backward(coords, target)
                trainer.optimiser.step()
                if attempt:
                    best = min(best, time.perf_counter() - start)
            print(rate_row(f"{precision}, {chunk}", best, batch, fp32, own), flush=True)


def compile_sweep(batch: int) -> None:
    """--compile against the fused layers for `--model siren`, side by side in alternating
    rounds (median of 3), float32 and bfloat16."""
    fp32, bf16 = matmul_flops(torch.float32), matmul_flops(torch.bfloat16)
    print(f"batch {batch}\n")
    print("| precision, compile | s/step | GFLOP/s | of float32 matmul | of its own matmul |")
    print("| --- | --- | --- | --- | --- |")
    for precision, own in (("float32", fp32), ("bfloat16", bf16)):
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(3):
            for compiled in (False, True):
                times[compiled].append(trainer_step_seconds(precision, batch, compile=compiled))
        for compiled in (False, True):
            seconds = statistics.median(times[compiled])
            label = f"{precision}, {'yes' if compiled else 'no'}"
            print(rate_row(label, seconds, batch, fp32, own), flush=True)


def precision_sweep(budget: float = 180) -> None:
    """--precision bfloat16 against float32 for SIREN at the original steps: PSNR against time
    on realshort.mp4 at 160x90, 24 frames."""
    frames = load("realshort.mp4", 160, 90, 24)
    marks = [c for c in (15, 30, 60, 120, 180) if c <= budget]
    print("| precision | steps | pixels/s | " + " | ".join(f"{c} s" for c in marks) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in marks) + " |")
    for precision in ("float32", "bfloat16"):
        config = siren_config(budget, precision, **ORIGINAL_SIREN_RECIPE)
        curve, steps = psnr_curve(Siren(), frames, config, marks)
        cells = " | ".join(f"{curve[c]:.2f} dB" if c in curve else "" for c in marks)
        pixels = steps * config.batch_size / budget
        print(f"| {precision} | {steps} | {pixels:,.0f} | {cells} |", flush=True)


def recipe_sweep(budget: float) -> None:
    """`--model siren` (the same network) under each of SWEEP_RECIPES for ``budget`` seconds:
    PSNR of realshort.mp4 at 160x90, 24 frames."""
    frames = load("realshort.mp4", 160, 90, 24)
    print("| precision | lr | schedule | batch | steps | PSNR |")
    print("| --- | --- | --- | --- | --- | --- |")
    for precision, lr, schedule, batch in SWEEP_RECIPES:
        torch.manual_seed(0)
        model = Siren()
        config = siren_config(budget, precision, batch_size=batch, lr=lr, lr_schedule=schedule)
        result = fit(model, frames, config)
        psnr = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)
        print(
            f"| {precision} | {lr:g} | {schedule} | {batch} | {result.steps} | {psnr:.2f} dB |",
            flush=True,
        )


SWEEPS = {
    "chunks": lambda args: chunk_sweep(args.chunks),
    "compile": lambda args: compile_sweep(
        args.batch or EncodeOptions(model="siren").setting("batch_size")
    ),
    "precision": lambda args: precision_sweep(args.budget or 180),
    "recipes": lambda args: recipe_sweep(args.budget or 48),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short budgets, to try it out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", nargs="+", default=["realshort.mp4", "Principe_inertie.avi"])
    parser.add_argument("--large", default="oa4_launch.webm")
    parser.add_argument(
        "--part",
        choices=["all", "siren", "throughput", *SWEEPS],
        default="all",
        help="siren: only the throughput table and the SIREN rows (no hybrid, decode, memory); "
        "throughput: only the throughput table; chunks, compile, precision, recipes: the SIREN "
        "sweeps quoted in BENCHMARKS.md",
    )
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[65536, 16384, 8192, 4096, 2048, 1024]
    )
    parser.add_argument("--batch", type=int, help="compile: pixels a step [siren's CPU batch]")
    parser.add_argument("--budget", type=float, help="precision, recipes: seconds [180, 48]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in SWEEPS:
        print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
        print(f"{args.threads} threads, torch {torch.__version__}\n")
        SWEEPS[args.part](args)
        return
    budgets = [2, 5, 10] if args.quick else [15, 30, 60, 240]
    longest = budgets[-1]
    large_budget = 20 if args.quick else 300
    fine = sorted({0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240, 300, longest / 5})

    print(f"command: python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}\n"
    )

    fp32 = matmul_flops(torch.float32)
    bf16 = matmul_flops(torch.bfloat16)
    big = ORIGINAL_SIREN_RECIPE["batch_size"]
    small = EncodeOptions(model="siren").setting("batch_size")
    rows = [
        ("plain reference (nn.Linear + sin, whole batch)", big, siren_step_seconds(PlainSiren())),
        ("`--model siren`, float32", big, trainer_step_seconds("float32")),
        ("`--model siren`, float32", small, trainer_step_seconds("float32", batch=small)),
        ("`--model siren --precision bfloat16`", big, trainer_step_seconds("bfloat16")),
        (
            "`--model siren --precision bfloat16`",
            small,
            trainer_step_seconds("bfloat16", batch=small),
        ),
        ("`--model siren --compile`, float32", big, trainer_step_seconds("float32", compile=True)),
        (
            "`--model siren --compile`, float32",
            small,
            trainer_step_seconds("float32", batch=small, compile=True),
        ),
        (
            "`--model siren --compile --precision bfloat16`",
            big,
            trainer_step_seconds("bfloat16", compile=True),
        ),
    ]
    print("## Training throughput, SIREN 256x5\n")
    print(
        f"matrix multiply (4096^3): float32 {fp32 / 1e9:.0f} GFLOP/s, "
        f"bfloat16 {bf16 / 1e9:.0f} GFLOP/s\n"
    )
    print("| loop | batch | s/step | pixels/s | GFLOP/s | of float32 matmul |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, batch, seconds in rows:
        flops = SIREN_FLOPS_PER_PIXEL * batch / seconds
        extra = f" / {flops / bf16:.0%} of bfloat16" if "bfloat16" in name else ""
        print(
            f"| {name} | {batch} | {seconds:.3f} | {batch / seconds:,.0f} | {flops / 1e9:.0f} | "
            f"{flops / fp32:.0%}{extra} |"
        )
    print()
    if args.part == "throughput":
        return

    for clip in args.clips:
        frames = load(clip, 160, 90, 24)
        n, h, w, _ = frames.shape
        print(f"## {clip} at {w}x{h}, {n} frames\n")
        plain_curve, plain_steps = psnr_curve(
            PlainSiren(),
            frames,
            siren_config(longest, **ORIGINAL_SIREN_RECIPE),
            [c for c in fine if c <= longest],
        )
        torch.manual_seed(0)
        original_curve, original_steps = psnr_curve(
            Siren(),
            frames,
            siren_config(longest, **ORIGINAL_SIREN_RECIPE),
            [c for c in fine if c <= longest],
        )
        # the defaults get a fifth of the time: their cosine schedule ends with the budget, and
        # the target is the plain loop's PSNR at least 5x sooner
        fast_budget = longest / 5
        fast_runs = {}
        for precision in ("float32", "bfloat16"):
            torch.manual_seed(0)
            fast = Siren()
            curve, steps = psnr_curve(
                fast,
                frames,
                siren_config(fast_budget, precision),
                [c for c in fine if c < fast_budget],
            )
            curve[fast_budget] = psnr_from_mse(reconstruction_mse(fast, frames), peak=1.0)
            flags = "" if precision == "float32" else " --precision bfloat16"
            fast_runs[f"`--model siren{flags} --time-budget {fast_budget:g}`"] = (curve, steps)
        hybrid_at = {}
        hybrid_curve: dict[float, float] = {}
        for budget in budgets if args.part == "all" else []:
            torch.manual_seed(0)
            model = hybrid(frames)
            checkpoints = [c for c in fine if c < budget] if budget == longest else []
            curve, steps = psnr_curve(model, frames, hybrid_config(budget), checkpoints)
            hybrid_at[budget] = (psnr_from_mse(reconstruction_mse(model, frames), peak=1.0), steps)
            if budget == longest:
                hybrid_curve = {**curve, budget: hybrid_at[budget][0]}
        tiles = TileField(w, h, n)
        begin = time.perf_counter()
        tiles.start_from(frames)
        tiles_seconds = time.perf_counter() - begin
        tiles_psnr = psnr_from_mse(reconstruction_mse(tiles, frames), peak=1.0)
        columns = sorted({*budgets, fast_budget})
        print("| method | " + " | ".join(f"PSNR at {b:g} s" for b in columns) + " | steps |")
        print("| --- |" + " --- |" * (len(columns) + 1))
        for name, curve, steps in (
            ("plain reference loop (seed SIREN, original settings)", plain_curve, plain_steps),
            (f"`--model siren {ORIGINAL_FLAGS}`", original_curve, original_steps),
            *((name, curve, steps) for name, (curve, steps) in fast_runs.items()),
        ):
            cells = [f"{curve[b]:.2f} dB" if b in curve else "-" for b in columns]
            print(f"| {name} | " + " | ".join(cells) + f" | {steps} |")
        if hybrid_at:
            params = sum(p.numel() for p in hybrid(frames).parameters())
            cells = [f"{hybrid_at[b][0]:.2f} dB" if b in hybrid_at else "-" for b in columns]
            print(
                f"| `--model hybrid` ({params:,} parameters; one run per budget) | "
                + " | ".join(cells)
                + f" | {hybrid_at[longest][1]} |"
            )
        print(
            f"| default encode (`--model auto`: tiles, {count_parameters(tiles):,} numbers, fitted "
            f"in closed form in {tiles_seconds:.2f} s, so the same at every budget) | "
            + " | ".join(f"{tiles_psnr:.2f} dB" for _ in columns)
            + " | 0 |"
        )
        plain_best = plain_curve[max(plain_curve)]
        print(f"\n- the plain loop's {longest:g} s PSNR is {plain_best:.2f} dB")
        if hybrid_curve:
            print(
                f"- `--model hybrid` reaches it after {first_reach(hybrid_curve, plain_best)} "
                f"(in its {longest:g} s run)"
            )
        print(
            f"- `--model siren {ORIGINAL_FLAGS}` reaches it after "
            f"{first_reach(original_curve, plain_best)}"
        )
        for name, (curve, _) in fast_runs.items():
            print(f"- {name} reaches it after {first_reach(curve, plain_best)}")
        if hybrid_curve:
            best = hybrid_curve[max(hybrid_curve)]
            print(
                f"- the plain loop reaches `--model hybrid`'s best ({best:.2f} dB) "
                f"{first_reach(plain_curve, best).replace('not within', 'not within its')}"
            )
        print()

    if args.part == "siren":
        print(f"(benchmark took {time.process_time() / 60:.0f} CPU minutes)")
        return

    frames = load(args.large, 720, 405, 190)
    n, h, w, _ = frames.shape
    torch.manual_seed(0)
    model = hybrid(frames)
    checkpoints = [c for c in fine if c < large_budget]
    curve, steps = psnr_curve(model, frames, hybrid_config(large_budget), checkpoints)
    final = psnr_from_mse(reconstruction_mse(model, frames), peak=1.0)
    print(f"## {args.large} at {w}x{h}, {n} frames, `--model hybrid` for {large_budget} s\n")
    print(
        "| training time | "
        + " | ".join(f"{c:g} s" for c in checkpoints)
        + f" | {large_budget} s |"
    )
    print("| --- |" + " --- |" * (len(checkpoints) + 1))
    print("| PSNR | " + " | ".join(f"{curve[c]:.2f}" for c in checkpoints) + f" | {final:.2f} |")
    print(f"\n{steps} steps; {sum(p.numel() for p in model.parameters()):,} parameters\n")

    model.eval()
    model.forget_render_cache()
    render_frame(model, 1280, 720, 0.0)
    start = time.perf_counter()
    count = 3 if args.quick else 10
    for k in range(count):
        render_frame(model, 1280, 720, -1 + 2 * k / count)
    render_fps = count / (time.perf_counter() - start)
    print("## Decoding and memory\n")
    print(
        f"- render at 1280x720, the hybrid model of the clip above: {render_fps:.1f} frames/s "
        "(network only)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        nvw_path = Path(tmp) / "r.nvw"
        source = str(CORPUS / args.clips[0])
        budget = "5" if args.quick else "30"
        enc_mb, _ = peak_rss_mb(
            [*NVFILTER, "encode", source, str(nvw_path), "-q", "--time-budget", budget]
        )
        info = ffio.probe(source)
        raw_mb = info.width * info.height * 3 * (info.estimated_frames or 0) / 2**20
        frames_out = 24
        dec_mb, dec_s = peak_rss_mb(decode_720p(nvw_path, Path(tmp) / "o.mp4", frames_out))
        print(
            f"- `nvfilter decode` to 1280x720 H.264, {frames_out} frames: "
            f"{frames_out / dec_s:.1f} frames/s end to end (start-up and x264 included)"
        )
        print(
            f"- peak memory, encode of {args.clips[0]} ({raw_mb:.1f} MB raw frames): "
            f"{enc_mb:.0f} MB (target: 1.5 x raw + 600 MB = {1.5 * raw_mb + 600:.0f} MB)"
        )
        print(f"- peak memory, decode to 1280x720: {dec_mb:.0f} MB")

    frames = load(args.clips[0], 160, 90, 24)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = hybrid(frames)
        config = TrainConfig(epochs=20, batch_size=4096, lr=3e-3, lr_schedule="cosine")
        fit(model, frames, config)
        results.append(psnr_from_mse(reconstruction_mse(model, frames), peak=1.0))
    print(
        f"- reproducibility, same seed twice (20 epochs): {results[0]:.4f} dB and "
        f"{results[1]:.4f} dB"
    )
    print(f"\n(benchmark took {time.process_time() / 60:.0f} CPU minutes)")


if __name__ == "__main__":
    main()
