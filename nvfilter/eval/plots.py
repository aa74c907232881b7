"""The pictures an encode writes into --outputs: training curves and frame comparisons.

matplotlib draws them (off screen, the Agg backend), imported only when a picture is made, so
encode and decode without --outputs never load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from nvfilter.metrics import mse, psnr_from_mse


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def side_by_side(original: np.ndarray, recon: np.ndarray, caption: str, path: Path) -> None:
    """original | reconstruction as one PNG at the pixels' own size, a caption strip above."""
    height, width, _ = original.shape
    strip = 14
    canvas = Image.new("RGB", (2 * width + 4, height + strip), (0, 0, 0))
    canvas.paste(Image.fromarray(original), (0, strip))
    canvas.paste(Image.fromarray(recon), (width + 4, strip))
    ImageDraw.Draw(canvas).text((2, 1), caption, fill=(255, 255, 255))
    canvas.save(path)


def comparison(original: np.ndarray, recon: np.ndarray, title: str, path: Path) -> None:
    """original | reconstruction | error map, the frame's PSNR on each panel."""
    plt = _pyplot()
    error = np.abs(original.astype(np.float32) - recon.astype(np.float32)).mean(axis=2)
    psnr = psnr_from_mse(mse(torch.from_numpy(original), torch.from_numpy(recon)))
    height, width, _ = original.shape
    panel = max(2.5, min(6.0, width / 100))
    fig, axes = plt.subplots(
        1, 3, figsize=(3 * panel + 1.2, panel * height / width + 0.9), constrained_layout=True
    )
    axes[0].imshow(original, interpolation="nearest")
    axes[0].set_title("original")
    axes[1].imshow(recon, interpolation="nearest")
    axes[1].set_title(f"reconstruction, PSNR {psnr:.2f} dB")
    shown = axes[2].imshow(error, cmap="inferno", vmin=0, vmax=max(8.0, float(error.max())))
    axes[2].set_title(f"|error|, mean {error.mean():.2f} levels")
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    fig.colorbar(shown, ax=axes[2], shrink=0.8, label="8-bit levels, mean of R, G, B")
    fig.suptitle(f"{title}: PSNR {psnr:.2f} dB")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_progress(records: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Loss and PSNR against step and against training time, from metrics.jsonl records."""
    plt = _pyplot()
    logged = [r for r in records if "loss" in r]
    full = [r for r in records if "full_psnr_db" in r]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for column, (key, label) in enumerate((("step", "step"), ("seconds", "training time (s)"))):
        loss_axis, psnr_axis = axes[0][column], axes[1][column]
        loss_axis.plot([r[key] for r in logged], [r["loss"] for r in logged], lw=1)
        loss_axis.set_yscale("log")
        loss_axis.set_xlabel(label)
        loss_axis.set_ylabel("batch loss (MSE, RGB in [0, 1])")
        loss_axis.grid(True, which="both", alpha=0.3)
        psnr_axis.plot(
            [r[key] for r in logged],
            [r["psnr_db"] for r in logged],
            lw=1,
            label="running estimate from batches",
        )
        if full:
            psnr_axis.plot(
                [r[key] for r in full],
                [r["full_psnr_db"] for r in full],
                "o-",
                ms=4,
                label="all frames, 8-bit (checkpoints)",
            )
        psnr_axis.set_xlabel(label)
        psnr_axis.set_ylabel("PSNR (dB)")
        psnr_axis.grid(True, alpha=0.3)
        psnr_axis.legend(loc="lower right")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
