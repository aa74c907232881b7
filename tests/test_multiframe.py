"""Multi-frame back-projection (nvfilter.decode.multiframe) and the renders that use it."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nvfilter.config import VideoInfo
from nvfilter.decode import multiframe, upscale
from nvfilter.decode.render import decode_memory, iter_frames, plan_render
from nvfilter.models.siren import Siren

pytest.importorskip("cv2")

HEIGHT, WIDTH = 96, 128


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


def texture(seed: int, height: int = 160, width: int = 200) -> np.ndarray:
    """Grey detail down to a couple of pixels (blurred noise), away from 0 and 255."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.uniform(0, 255, (1, 1, height + 6, width + 6)))
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16
    blurred = F.conv2d(noise, (kernel[:, None] * kernel[None, :])[None, None])
    grey = blurred[0, 0, 1:-1, 1:-1]
    grey = (grey - grey.mean()) / grey.std() * 40 + 128
    return grey.clamp(10, 245)[..., None].expand(-1, -1, 3).numpy()


def area_down(frame: np.ndarray) -> np.ndarray:
    image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].double()
    return np.round(F.avg_pool2d(image, 2)[0].permute(1, 2, 0).numpy()).astype(np.uint8)


def panning(picture: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` frames of a camera panning over ``picture`` by 1.5 and 1 fine pixels a frame:
    three in four of the small frames sample the detail at other places than the first."""
    return [picture[k : k + HEIGHT, k * 3 // 2 : k * 3 // 2 + WIDTH] for k in range(count)]


def interior(frame: np.ndarray, margin: int = 8) -> np.ndarray:
    return frame[margin:-margin, margin:-margin]


def test_a_pan_gives_back_detail_no_single_frame_holds():
    truth = panning(texture(0), 6)
    small = [area_down(frame) for frame in truth]
    multi = list(multiframe.upscale_frames(small, WIDTH, HEIGHT))
    single = [upscale.backproject(frame, WIDTH, HEIGHT) for frame in small]
    assert len(multi) == 6 and all(f.shape == (HEIGHT, WIDTH, 3) for f in multi)
    for k in range(6):
        gain = psnr(interior(multi[k]), interior(truth[k])) - psnr(
            interior(single[k]), interior(truth[k])
        )
        assert gain > 3, (k, gain)  # about 6 dB measured


def test_a_cut_costs_almost_nothing():
    """Frames that share nothing (a cut) are not made to agree: each side's neighbours across
    it count where they agree at low frequency, which unrelated pictures do not."""
    truth = panning(texture(1), 3) + panning(texture(2), 3)
    small = [area_down(frame) for frame in truth]
    multi = list(multiframe.upscale_frames(small, WIDTH, HEIGHT))
    for k in (2, 3):  # beside the cut: one neighbour on its side, two across it
        single = upscale.backproject(small[k], WIDTH, HEIGHT)
        assert (
            psnr(interior(multi[k]), interior(truth[k]))
            > psnr(interior(single), interior(truth[k])) - 0.2
        )


def test_a_still_video_stays_as_one_frame_makes_it():
    picture = texture(3)[:HEIGHT, :WIDTH]
    small = [area_down(picture)] * 4
    multi = list(multiframe.upscale_frames(small, WIDTH, HEIGHT))
    single = upscale.backproject(small[0], WIDTH, HEIGHT)
    assert all(psnr(frame, single) > 45 for frame in multi)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_frame_comes_out_once_in_order(count):
    truth = panning(texture(4), count)
    small = [area_down(frame) for frame in truth]
    upscaler = multiframe.MultiFrameUpscaler(WIDTH, HEIGHT)
    out = []
    for frame in small:
        out += [work() for work in upscaler.feed(frame)]
        assert len(upscaler.frames) <= 2 * multiframe.NEIGHBOURS + 1  # memory stays bounded
    out += [work() for work in upscaler.finish()]
    assert len(out) == count
    for k in range(count):  # each is its own frame, not a neighbour's
        assert psnr(interior(out[k]), interior(truth[k])) > 25
    if count == 1:  # no neighbour: the single-frame back-projection
        assert np.array_equal(out[0], upscale.backproject(small[0], WIDTH, HEIGHT))


def test_multiframe_renders_start_from_the_learned_size():
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=3, frame_rate=Fraction(10))
    big = plan_render(video, spatial_scale=2.0)
    learned = list(iter_frames(model, plan_render(video), video.frames))
    made = list(iter_frames(model, big, video.frames, upscaler="multiframe"))
    expected = list(multiframe.upscale_frames(learned, 48, 32))
    assert len(made) == 3
    assert all(np.array_equal(a, b) for a, b in zip(made, expected, strict=True))
    # and it is counted in the memory a decode needs
    assert decode_memory(big, "network", "multiframe") > decode_memory(
        big, "network", "backproject"
    )


@pytest.mark.parametrize("small,large", [((1, 1), (2, 2)), ((3, 5), (7, 11)), ((6, 40), (12, 80))])
def test_tiny_frames_upscale_too(small, large):
    """Frames too small for the optical flow (DIS needs 12 pixels) are still upscaled."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*small, 3), dtype=np.uint8) for _ in range(4)]
    out = list(multiframe.upscale_frames(frames, large[1], large[0]))
    assert len(out) == 4 and all(frame.shape == (*large, 3) for frame in out)


def test_multiframe_and_motion_together():
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=3, frame_rate=Fraction(10))
    spec = plan_render(video, spatial_scale=2.0, temporal_scale=Fraction(2))
    moved = list(iter_frames(model, plan_render(video, temporal_scale=Fraction(2)), 3, "motion"))
    made = list(iter_frames(model, spec, 3, between="motion", upscaler="multiframe"))
    expected = list(multiframe.upscale_frames(moved, 48, 32))
    assert len(made) == len(expected) == 6
    assert all(np.array_equal(a, b) for a, b in zip(made, expected, strict=True))
    assert torch.get_num_threads() == threads  # put back as it was
