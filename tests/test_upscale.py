"""Back-projected upscaling (nvfilter.decode.upscale) and the renders that use it."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nvfilter import chroma
from nvfilter.config import VideoInfo
from nvfilter.coords import frame_time
from nvfilter.decode import upscale
from nvfilter.decode.render import iter_frames, plan_render
from nvfilter.errors import OptionError
from nvfilter.models.reads import render_frame
from nvfilter.models.siren import Siren


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


def picture(width: int, height: int) -> np.ndarray:
    """A sharp test picture: rings and a slanted edge, with detail near the fine grid's limit,
    kept off 0 and 255 (where clipping would stop the averages from coming back)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    radius = np.hypot(x - width * 0.4, y - height * 0.45)
    rings = 127.5 + 60 * np.cos(radius**2 / (0.9 * width))
    edge = np.where(x + 0.3 * y > 0.7 * width, 40.0, -40.0)
    rgb = np.stack([rings + edge, rings - edge / 2, 255 - rings], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def area_down(frame: np.ndarray, factor: int) -> np.ndarray:
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].double()
    return F.avg_pool2d(image, factor)[0].permute(1, 2, 0).numpy()


def bicubic(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    large = F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False)
    return large[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()


@pytest.mark.parametrize("factor", [2, 4])
def test_the_upscaled_frame_averages_back_to_the_learned_one(factor):
    truth = picture(96, 64)
    small = np.round(area_down(truth, factor)).astype(np.uint8)
    made = upscale.backproject(small, 96, 64)
    assert made.dtype == np.uint8 and made.shape == (64, 96, 3)
    # within the rounding of the 8-bit output; plain bicubic is far from it
    assert np.abs(area_down(made, factor) - small).max() <= 1.5
    assert np.abs(area_down(bicubic(small, 96, 64), factor) - small).max() > 10


@pytest.mark.parametrize("factor", [2, 4])
def test_it_is_closer_to_the_picture_than_bicubic(factor):
    truth = picture(128, 96)
    small = np.round(area_down(truth, factor)).astype(np.uint8)
    width, height = 128, 96
    gain = psnr(upscale.backproject(small, width, height), truth) - psnr(
        bicubic(small, width, height), truth
    )
    assert gain > 0.3


def test_a_flat_frame_stays_flat_and_any_size_works():
    flat = np.full((5, 7, 3), 77, np.uint8)
    assert np.array_equal(upscale.backproject(flat, 14, 10), np.full((10, 14, 3), 77, np.uint8))
    assert upscale.backproject(flat, 10, 6).shape == (6, 10, 3)  # 10/7 and 6/5: not whole


def test_enlarges_only_when_larger():
    assert upscale.enlarges((64, 48), (32, 24))
    assert upscale.enlarges((64, 24), (32, 24))
    assert not upscale.enlarges((32, 24), (32, 24))
    assert not upscale.enlarges((64, 12), (32, 24))  # one axis smaller: the network renders


def test_backproject_renders_start_from_the_learned_size():
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=3, frame_rate=Fraction(10))
    big = plan_render(video, spatial_scale=2.0)
    made = list(iter_frames(model, big, video.frames, upscaler="backproject"))
    read = list(iter_frames(model, big, video.frames))
    assert len(made) == 3 and made[0].shape == read[0].shape == (32, 48, 3)
    for k in range(video.frames):
        learned = render_frame(model, 24, 16, frame_time(k, video.frames))
        assert np.array_equal(made[k], upscale.backproject(learned, 48, 32))
    assert not np.array_equal(made[1], read[1])
    # at the learned size there is nothing to upscale: the network's own frames
    same = plan_render(video)
    projected = list(iter_frames(model, same, 3, upscaler="backproject"))
    read_same = list(iter_frames(model, same, 3))
    assert all(np.array_equal(a, b) for a, b in zip(projected, read_same, strict=True))


def test_backproject_and_motion_together():
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=3, frame_rate=Fraction(10))
    spec = plan_render(video, spatial_scale=2.0, temporal_scale=Fraction(2))
    small = plan_render(video, temporal_scale=Fraction(2))
    made = list(iter_frames(model, spec, 3, between="motion", upscaler="backproject"))
    moved = list(iter_frames(model, small, 3, between="motion"))
    assert len(made) == len(moved) == 6
    for frame, low in zip(made, moved, strict=True):
        assert np.array_equal(frame, upscale.backproject(low, 48, 32))


def test_an_unknown_upscaler_is_an_option_error():
    model = Siren(hidden_features=8, hidden_layers=1)
    spec = plan_render(VideoInfo(width=4, height=4, frames=2, frame_rate=Fraction(1)))
    with pytest.raises(OptionError, match="upscaler 'lanczos'"):
        list(iter_frames(model, spec, 2, upscaler="lanczos"))


def as_ffmpeg_gives_420(frame: np.ndarray, matrix: str | None = None) -> np.ndarray:
    """An RGB frame with its colour averaged over 2x2 blocks and repeated over them, as ffmpeg's
    RGB of a 4:2:0 video is (the luma unchanged)."""
    to_ycbcr = chroma.ycbcr_matrix(matrix).double()
    ycbcr = torch.from_numpy(frame).double() @ to_ycbcr.T
    colour = ycbcr[..., 1:].permute(2, 0, 1)[None]
    colour = F.avg_pool2d(colour, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    ycbcr[..., 1:] = colour[0].permute(1, 2, 0)
    rgb = ycbcr @ torch.linalg.inv(to_ycbcr).T
    return rgb.round().clamp(0, 255).to(torch.uint8).numpy()


def test_chroma_layout_is_found_in_the_frames():
    rng = np.random.default_rng(0)
    full = rng.integers(64, 192, (3, 16, 24, 3), dtype=np.uint8)  # in gamut once shared
    assert chroma.detect(torch.from_numpy(full), None) == "444"
    shared = np.stack([as_ffmpeg_gives_420(f, "bt709") for f in full])
    assert chroma.detect(torch.from_numpy(shared), "bt709") == "420"
    grey = np.repeat(full[..., :1], 3, axis=-1)
    assert chroma.detect(torch.from_numpy(grey), None) == "444"  # no colour to tell by


def test_colour_at_half_size_is_enlarged_at_its_own_size():
    """On frames whose colour came at half size, the 420 path is closer to the truth than
    back-projecting the repeated colour at full size, its luma averages back to the learned
    luma and its colour is repeated over 2x2 blocks as ffmpeg repeats it."""
    truth = as_ffmpeg_gives_420(picture(96, 64))
    learned = as_ffmpeg_gives_420(np.round(area_down(truth, 2)).astype(np.uint8))
    plain = upscale.backproject(learned, 96, 64)
    aware = upscale.backproject(learned, 96, 64, chroma="420")
    assert psnr(aware, truth) > psnr(plain, truth) + 0.5
    to_ycbcr = chroma.ycbcr_matrix(None).double()
    luma = torch.from_numpy(aware).double() @ to_ycbcr[0]
    back = F.avg_pool2d(luma[None, None], 2)[0, 0]
    assert (back - torch.from_numpy(learned).double() @ to_ycbcr[0]).abs().mean() < 1.0
    colour = torch.from_numpy(aware).double() @ to_ycbcr[1:].T
    assert (colour[0::2] - colour[1::2]).abs().mean() < 0.6


def test_clipped_pixels_do_not_pull_the_colour_towards_grey():
    """A pixel ffmpeg clipped to black has lost its colour: the colour of its 2x2 sample comes
    from the others, so a red area cut by a black one keeps its colour at the cut when enlarged
    (the plain average of the cut sample is half grey)."""
    learned = np.zeros((16, 16, 3), np.uint8)
    learned[..., :] = (200, 60, 40)  # a saturated red, far from 0 and 255
    learned[:, :5] = 0  # black on the left, cutting the 2x2 samples of columns 4 and 5
    to_ycbcr = chroma.ycbcr_matrix(None)
    red = torch.tensor([200.0, 60.0, 40.0]) @ to_ycbcr[1:].T

    def colour_error_at_the_cut() -> float:
        large = upscale.backproject(learned, 32, 32, chroma="420")
        colour = torch.from_numpy(large[:, 10:12].astype(np.float32)) @ to_ycbcr[1:].T
        return float((colour.mean((0, 1)) - red).abs().max())  # learned column 5, enlarged

    kept_out = colour_error_at_the_cut()
    upscale.CLIPPED_MARGIN, margin = -1, upscale.CLIPPED_MARGIN  # every pixel counted
    try:
        counted = colour_error_at_the_cut()
    finally:
        upscale.CLIPPED_MARGIN = margin
    assert kept_out < 0.6 * counted
