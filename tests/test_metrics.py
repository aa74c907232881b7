import math

import torch

from nvfilter.metrics import mse, psnr_from_mse, ssim


def test_psnr_of_known_error():
    a = torch.zeros(4, 4, 3, dtype=torch.uint8)
    b = torch.full((4, 4, 3), 10, dtype=torch.uint8)
    assert mse(a, b) == 100
    assert psnr_from_mse(100) == 10 * math.log10(255**2 / 100)
    assert psnr_from_mse(0) == math.inf


def test_ssim_is_one_for_identical_frames_and_drops_with_noise():
    torch.manual_seed(0)
    frame = (torch.rand(32, 40, 3) * 255).to(torch.uint8)
    assert abs(ssim(frame, frame) - 1) < 1e-12
    noise = torch.randn(32, 40, 3)
    scores = [
        ssim(frame, (frame.float() + noise * level).clamp(0, 255).to(torch.uint8))
        for level in (5, 20, 60)
    ]
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    flat = torch.full((32, 40, 3), 128, dtype=torch.uint8)
    darker = torch.full((32, 40, 3), 96, dtype=torch.uint8)
    # constant frames: SSIM reduces to the luminance term (2 m1 m2 + c1) / (m1^2 + m2^2 + c1)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 128 * 96 + c1) / (128**2 + 96**2 + c1)
    assert abs(ssim(flat, darker) - expected) < 1e-9
