"""w0 folded into the sine layer's matrix products against the separate multiplications, side by side.

    python bench/sine_fold_bench.py                  # CPU, 2 threads
    python bench/sine_fold_bench.py --device cuda

One training step of SIREN 256x5 on a batch of 65536 (forward and backward; on a CPU in chunks
of 4096, as train.py runs it), each layer as the fused sine layer of model.py, with the phase
w0 (x W^T + b) computed as one addmm whose alpha and beta are w0 ("folded") or as addmm then a
multiplication by w0, and the backward's w0 likewise in the products or in a pass of its own
("separate": model.py's layer). Alternating rounds; the median of each. ``--compile`` also times
the plain layers (nn.Linear + sin) under torch.compile against model.py's layer.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from nvfilter.models.siren import Siren, _FusedSine


class _FoldedSine(torch.autograd.Function):
    """The fused sine layer with w0 folded into its matrix products (tried, not kept)."""

    @staticmethod
    def forward(ctx: Any, x, weight, bias, omega_0):  # type: ignore[override]
        ctx.dtypes = (x.dtype, weight.dtype)
        if torch.is_autocast_enabled(x.device.type):
            low = torch.get_autocast_dtype(x.device.type)
            x, weight, bias = x.to(low), weight.to(low), bias.to(low)
        phase = torch.addmm(bias, x, weight.t(), beta=omega_0, alpha=omega_0)
        out = torch.sin(phase)
        ctx.omega_0 = omega_0
        ctx.save_for_backward(x, weight, phase.cos_())
        return out

    @staticmethod
    def backward(ctx: Any, grad):  # type: ignore[override]
        x, weight, cosine = ctx.saved_tensors
        x_dtype, weight_dtype = ctx.dtypes
        w0 = ctx.omega_0
        grad_phase = grad.to(cosine.dtype) * cosine
        zero = grad_phase.new_zeros(())
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.addmm(zero, grad_phase, weight, beta=0, alpha=w0).to(x_dtype)
        grad_weight = torch.addmm(zero, grad_phase.t(), x, beta=0, alpha=w0).to(weight_dtype)
        return grad_x, grad_weight, grad_phase.sum(0, dtype=weight_dtype).mul_(w0), None


def step_seconds(model: Siren, sine: type, device: str, precision: str, chunk: int) -> float:
    coords = torch.rand(65536, 3, device=device) * 2 - 1
    target = torch.rand(65536, 3, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for lo in range(0, 65536, chunk):
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            out = coords[lo : lo + chunk]
            for layer in model.net:
                out = sine.apply(out, layer.linear.weight, layer.linear.bias, layer.omega_0)
            out = torch.sigmoid(model.final(out))
        (out.float() - target[lo : lo + chunk]).square().sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile of the plain layers"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"command: python bench/sine_fold_bench.py --device {args.device}; torch {torch.__version__}"
    )
    model = Siren().to(args.device)
    chunk = 4096 if args.device == "cpu" else 65536
    print("\n| precision | separate w0 (s/step) | folded w0 (s/step) | speed-up |")
    print("| --- | --- | --- | --- |")
    for precision in ("float32", "bfloat16"):
        times: dict[str, list[float]] = {"separate": [], "folded": []}
        for round_ in range(args.rounds + 1):
            for name, sine in (("separate", _FusedSine), ("folded", _FoldedSine)):
                seconds = step_seconds(model, sine, args.device, precision, chunk)
                if round_:  # the first round warms up
                    times[name].append(seconds)
        a, b = (statistics.median(times[k]) for k in ("separate", "folded"))
        print(f"| {precision} | {a:.4f} | {b:.4f} | {a / b:.2f}x |", flush=True)
    if args.compile:
        compiled_steps(model, args.device, chunk, args.rounds)


def compiled_steps(model: Siren, device: str, chunk: int, rounds: int) -> None:
    """The plain layers (nn.Linear + sin) under torch.compile, against model.py's fused layer."""

    def plain(coords: torch.Tensor) -> torch.Tensor:
        out = coords
        for layer in model.net:
            out = torch.sin(layer.omega_0 * layer.linear(out))
        return torch.sigmoid(model.final(out))

    compiled = torch.compile(plain)
    coords = torch.rand(65536, 3, device=device) * 2 - 1
    target = torch.rand(65536, 3, device=device)
    print("\n| precision | compile time (s) | compiled (s/step) | fused layer (s/step) |")
    print("| --- | --- | --- | --- |")
    for precision in ("float32", "bfloat16"):

        def step(precision: str = precision) -> float:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for lo in range(0, 65536, chunk):
                with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                    out = compiled(coords[lo : lo + chunk])
                (out.float() - target[lo : lo + chunk]).square().sum().backward()
            if device == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - start

        first = step()
        times = [step() for _ in range(rounds)]
        fused = [step_seconds(model, _FusedSine, device, precision, chunk) for _ in range(rounds)]
        print(
            f"| {precision} | {first:.1f} | {statistics.median(times):.4f} | "
            f"{statistics.median(fused):.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
