"""SIREN (Sitzmann et al. 2020, "Implicit Neural Representations with Periodic Activation Functions").

``(x, y, t) -> SineLayer(3, F) -> [SineLayer(F, F)] x hidden_layers -> Linear(F, 3) -> Sigmoid``,
each sine layer computing ``sin(omega_0 * (W x + b))``. Initialisation as in the paper and its
reference code: first layer ``W ~ U(-1/n, 1/n)``, every later layer (the final linear one too)
``W ~ U(-sqrt(6/n)/omega_0, sqrt(6/n)/omega_0)`` with ``n`` the layer's fan-in; biases keep
PyTorch's default ``U(-1/sqrt(n), 1/sqrt(n))``. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nvfilter.models.field import VideoField
from nvfilter.models.spec import ModelSpec, register

OMEGA_0 = 30.0
"""The frequency w0 in sin(w0 (Wx + b)), first layer included (the paper's)."""


class _FusedSine(torch.autograd.Function):
    """sin(w0 (x W^T + b)) in one autograd node: the cosine for the backward pass is computed in
    place of the pre-activation, so one activation-sized tensor is kept instead of two and no
    temporaries are made. Same operations in the same order as the unfused layer.

    Under autocast (``--precision bfloat16``) it computes in the autocast type, as nn.Linear and
    torch.sin would, and hands back gradients in the weights' own type."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, omega_0: float
    ) -> torch.Tensor:
        ctx.dtypes = (x.dtype, weight.dtype)
        if torch.is_autocast_enabled(x.device.type):
            low = torch.get_autocast_dtype(x.device.type)
            x, weight, bias = x.to(low), weight.to(low), bias.to(low)
        phase = torch.addmm(bias, x, weight.t()).mul_(omega_0)
        out = torch.sin(phase)
        ctx.omega_0 = omega_0
        ctx.save_for_backward(x, weight, phase.cos_())
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight, cosine = ctx.saved_tensors
        x_dtype, weight_dtype = ctx.dtypes
        grad_phase = grad.to(cosine.dtype) * cosine
        grad_phase.mul_(ctx.omega_0)
        grad_x = (grad_phase @ weight).to(x_dtype) if ctx.needs_input_grad[0] else None
        grad_weight = (grad_phase.t() @ x).to(weight_dtype)
        return grad_x, grad_weight, grad_phase.sum(0, dtype=weight_dtype), None


class SineLayer(nn.Module):
    """``sin(omega_0 * (W x + b))`` with the SIREN initialisation for its position in the net."""

    def __init__(self, in_features: int, out_features: int, omega_0: float, is_first: bool) -> None:
        super().__init__()
        self.omega_0 = omega_0
        self.is_first = is_first
        self.linear = nn.Linear(in_features, out_features)
        self.init_weights()

    def init_weights(self) -> None:
        """Paper bound: 1/n for the first layer, sqrt(6/n)/omega_0 for the others."""
        bound = siren_weight_bound(self.linear.in_features, self.omega_0, self.is_first)
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.dim() == 2:
            return _FusedSine.apply(x, self.linear.weight, self.linear.bias, self.omega_0)
        return torch.sin(self.omega_0 * self.linear(x))


def siren_weight_bound(fan_in: int, omega_0: float, is_first: bool) -> float:
    """Half-width of the uniform weight initialisation of a SIREN layer."""
    return 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega_0


class Siren(VideoField):
    """The original SIREN video model, mapping (x, y, t) in [-1, 1]^3 to RGB in [0, 1]."""

    kind = "siren"

    def __init__(
        self,
        hidden_features: int = 256,
        hidden_layers: int = 5,
        omega_0: float = OMEGA_0,
        omega_0_initial: float = OMEGA_0,
        in_features: int = 3,
        out_features: int = 3,
    ) -> None:
        super().__init__()
        self.hidden_features = hidden_features
        self.hidden_layers = hidden_layers
        self.omega_0 = omega_0
        self.omega_0_initial = omega_0_initial
        self.in_features = in_features
        self.out_features = out_features
        layers: list[nn.Module] = [
            SineLayer(in_features, hidden_features, omega_0_initial, is_first=True)
        ]
        layers += [
            SineLayer(hidden_features, hidden_features, omega_0, is_first=False)
            for _ in range(hidden_layers)
        ]
        self.net = nn.Sequential(*layers)
        self.final = nn.Linear(hidden_features, out_features)
        bound = siren_weight_bound(hidden_features, omega_0, is_first=False)
        with torch.no_grad():
            self.final.weight.uniform_(-bound, bound)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.final(self.net(coords)))

    def plain_forward(self, coords: torch.Tensor) -> torch.Tensor:
        """The same function written with plain torch operations (no fused layer), for
        torch.compile to fuse as it sees fit (``--compile``)."""
        out = coords
        layers: list[SineLayer] = list(self.net)  # type: ignore[arg-type]
        for layer in layers:
            out = torch.sin(layer.omega_0 * layer.linear(out))
        return torch.sigmoid(self.final(out))

    def cpu_chunk_rows(self) -> int | None:
        """About 4 MB of activations per layer (4096 pixels at width 256), so each layer's
        output is still in cache when the sine and the next layer read it: 1.56x the steps/s
        of whole 65536-pixel batches in float32, 1.3x in bfloat16 (BENCHMARKS-history.md)."""
        return max(1024, 2**20 // self.hidden_features)

    def architecture(self) -> dict[str, Any]:
        """VideoField's, and the output's squashing, which SIREN's original keeps in its file."""
        return {**super().architecture(), "output": "sigmoid"}


ORIGINAL_RECIPE: dict[str, Any] = {"batch_size": 65536, "lr": 1e-4, "lr_schedule": "constant"}
"""The original design's training steps: `--batch-size 65536 --lr 1e-4 --lr-schedule constant`
gives them back on a CPU (they are the default on a GPU)."""


def build(settings: Mapping[str, Any], width: int, height: int, frames: int) -> tuple[Siren, str]:
    """The network for a video (SIREN reads coordinates only: the size does not shape it)."""
    omega_0 = settings["omega_0"]
    model = Siren(settings["hidden_features"], settings["hidden_layers"], omega_0, omega_0)
    return model, (
        f"SIREN {settings['hidden_features']} wide x {1 + settings['hidden_layers']} sine "
        f"layers, w0 {omega_0:g}"
    )


SPEC = register(
    ModelSpec(
        name="siren",
        network=Siren,
        help="the original SIREN network, exactly (Sitzmann et al. 2020)",
        # the original design's network, initialisation and epochs; its steps made smaller with
        # a decaying rate, which on a CPU reaches the original steps' 240 s PSNR 8-24x sooner
        # (BENCHMARKS-history.md)
        defaults={
            "epochs": 1000,
            "batch_size": 4096,
            "lr": 3e-4,
            "lr_schedule": "cosine",
            "hidden_features": 256,
            "hidden_layers": 5,
            "omega_0": OMEGA_0,
        },  # fmt: skip
        # the original design's steps, the SIREN setting measured on a GPU
        gpu_defaults=ORIGINAL_RECIPE,
        refuses=("footprint",),
        refuse_reason="footprint reads are the hybrid model's",
        cuda_precision="bfloat16",
        compiles=True,
        build=build,
    )
)
