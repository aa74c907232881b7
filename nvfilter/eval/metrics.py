"""Quality metrics on 8-bit RGB frames: PSNR (as ffmpeg's psnr filter computes it) and SSIM."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared error of two uint8 frames (or videos), in 8-bit units squared."""
    diff = a.to(torch.float64) - b.to(torch.float64)
    return float(torch.mean(diff * diff))


def psnr_from_mse(value: float, peak: float = 255.0) -> float:
    """PSNR in dB; infinite for identical frames."""
    return math.inf if value <= 0 else 10.0 * math.log10(peak * peak / value)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004) of two uint8 (height, width, 3) frames: 11x11 Gaussian window,
    sigma 1.5, K1 = 0.01, K2 = 0.03, computed per RGB channel over the valid window positions and
    averaged (as scikit-image's ``structural_similarity(..., gaussian_weights=True)``)."""
    x = a.to(torch.float64).permute(2, 0, 1)[None]
    y = b.to(torch.float64).permute(2, 0, 1)[None]
    size = min(11, x.shape[-1], x.shape[-2])
    size -= 1 - size % 2
    window = _gaussian_window(size)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window, groups=3)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    # unbiased covariances, as scikit-image does
    n = size * size
    vx, vy, cov = (v * n / (n - 1) for v in (vx, vy, cov))
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
