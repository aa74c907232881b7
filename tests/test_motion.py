"""Motion-compensated in-between frames: flow, warping, and frames made between two frames."""

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import square_scene as scene

from nvfilter import fast_motion, inbetween
from nvfilter.config import VideoInfo
from nvfilter.coords import frame_time
from nvfilter.decode import motion
from nvfilter.decode.render import MOTION_WORKERS, iter_frames, plan_render
from nvfilter.errors import OptionError
from nvfilter.models.reads import render_frame
from nvfilter.models.siren import Siren


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def test_flow_finds_a_known_shift():
    flow = motion.optical_flow(scene(0), scene(6))
    inside = flow[26:38, 24:36]  # the square's middle: moved 6 px right, not down
    assert np.median(inside[..., 0]) == pytest.approx(6, abs=0.5)
    assert np.median(np.abs(inside[..., 1])) < 0.5


def test_motion_beyond_dis_is_found_by_the_block_search():
    first, second = scene(0, 160, 90), scene(30, 160, 90)  # a third of the width, in one step
    middle = (slice(26, 38), slice(24, 36))
    small_first = fast_motion.shrink(motion.gray(first))
    small_second = fast_motion.shrink(motion.gray(second))
    assert small_first.shape == (fast_motion.SEARCH_HEIGHT, 85)
    searched = fast_motion.block_search(small_first, small_second)
    scale = 85 / 160  # the shift in shrunk pixels, whole pixels only
    inside = searched[round(32 * 48 / 90), round(30 * scale)]
    assert inside.tolist() == [round(30 * scale), 0]
    forward, backward = motion.flows_both_ways(first, second)
    assert np.median(forward[middle][..., 0]) == pytest.approx(30, abs=0.5)
    assert np.median(backward[26:38, 54:66][..., 0]) == pytest.approx(-30, abs=0.5)
    assert np.median(np.abs(forward[..., :20, :][..., 0])) < 0.5  # the background stays still
    made = motion.FramePair.estimate(first, second).at(0.5)
    faded = ((first.astype(np.float64) + second) / 2).round()
    truth = scene(15, 160, 90)
    assert psnr(made, truth) > psnr(faded, truth) + 3


def pooled_block_search(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """block_search written plainly: every displacement's absolute differences pooled by
    block_means, the least per block, the 3 x 3 median, enlarged."""
    height, width = first.shape
    reach = height // 2
    side = 2 * reach + 1
    padded = torch.nn.functional.pad(second[None, None], (reach,) * 4, mode="replicate")[0, 0]
    costs = torch.stack(
        [
            fast_motion.block_means(
                (first - padded[dy : dy + height, dx : dx + width]).abs()[None, None]
            )[0, 0]
            for dy in range(side)
            for dx in range(side)
        ]
    )
    best = costs.argmin(0)
    flow = torch.stack([best % side, best // side]).float() - reach
    rows, cols = flow.shape[1:]
    smooth = torch.nn.functional.pad(flow[None], (1, 1, 1, 1), mode="replicate")[0]
    flow = smooth.unfold(1, 3, 1).unfold(2, 3, 1).reshape(2, rows, cols, 9).median(-1).values
    return torch.nn.functional.interpolate(flow[None], size=(height, width))[0].permute(1, 2, 0)


@pytest.mark.parametrize("size", [(96, 64), (83, 47), (53, 30), (12, 9)])
def test_the_block_search_by_cells_chooses_as_pooling_every_block(size):
    width, height = size
    first = torch.from_numpy(scene(0, width, height)[..., 0].astype(np.float32))
    second = torch.from_numpy(scene(5, width, height)[..., 0].astype(np.float32))
    second = second.roll(2, 0)  # the square 5 right, everything 2 down
    assert torch.equal(fast_motion.block_search(first, second), pooled_block_search(first, second))


def test_the_block_search_keeps_what_dis_found():
    still = scene(0)
    small = fast_motion.shrink(motion.gray(still))
    zero = fast_motion.block_search(small, small)
    assert not zero.any()
    dis_flow = motion.optical_flow(still, still)
    assert fast_motion.searched_start(dis_flow, small, small, zero, zero) is None  # nothing better
    forward, _ = motion.flows_both_ways(scene(0), scene(6))
    assert np.median(forward[26:38, 24:36][..., 0]) == pytest.approx(6, abs=0.5)


def test_splat_spreads_each_value_over_the_four_pixels_around_where_it_lands():
    values = torch.zeros(2, 4, 5)
    values[:, 1, 1] = torch.tensor([10.0, -4.0])
    flow = torch.zeros(4, 5, 2)
    flow[1, 1] = torch.tensor([1.5, 0.25])  # lands at x = 2.5, y = 1.25
    weight = torch.zeros(4, 5)
    weight[1, 1] = 2.0
    summed, total = inbetween.splat(values, flow, weight)
    expected = torch.zeros(4, 5)
    expected[1, 2] = expected[1, 3] = 0.75 * 0.5 * 2
    expected[2, 2] = expected[2, 3] = 0.25 * 0.5 * 2
    assert torch.allclose(total, expected)
    assert torch.allclose(summed[0], 10 * expected) and torch.allclose(summed[1], -4 * expected)
    off = torch.full((4, 5, 2), 9.0)  # everything lands outside the frame
    assert inbetween.splat(values, off, torch.ones(4, 5))[1].sum() == 0


def test_flows_from_the_middle_of_a_steady_motion_point_half_way_each_way():
    shift = torch.zeros(64, 96, 2)
    shift[..., 0] = 4.0
    still = torch.zeros(3, 64, 96)
    pair = motion.FramePair(
        first=still,
        second=still,
        forward=shift,
        backward=-shift,
        hidden_in_second=torch.zeros(64, 96),
        hidden_in_first=torch.zeros(64, 96),
        forward_weight=torch.ones(64, 96),
        backward_weight=torch.ones(64, 96),
        faded_error=torch.zeros(64, 96),
    )
    to_first, to_second = pair.flows_from(0.25)
    assert torch.allclose(to_first[:, 8:-8], torch.tensor([-1.0, 0.0]).expand(64, 80, 2))
    assert torch.allclose(to_second[:, 8:-8], torch.tensor([3.0, 0.0]).expand(64, 80, 2))


def test_warp_by_zero_is_the_image_and_by_one_pixel_shifts_it():
    image = torch.rand(3, 10, 12)
    zero = torch.zeros(10, 12, 2)
    assert torch.allclose(inbetween.warp(image, zero), image, atol=1e-6)
    one = zero.clone()
    one[..., 0] = 1.0
    assert torch.allclose(inbetween.warp(image, one)[:, :, :-1], image[:, :, 1:], atol=1e-5)


def test_occlusion_is_zero_for_a_consistent_flow_and_one_where_it_does_not_come_back():
    forward = torch.full((8, 8, 2), 0.5)
    assert inbetween.occlusion(forward, -forward).sum() == 0
    assert inbetween.occlusion(forward, torch.zeros(8, 8, 2)).sum() == 0  # 0.5 px^2 slack
    assert inbetween.occlusion(3 * forward, 3 * forward).all()


def test_the_frame_halfway_shows_the_square_halfway():
    pair = motion.FramePair.estimate(scene(0), scene(8))
    truth = scene(4)
    faded = ((scene(0).astype(np.float64) + scene(8)) / 2).round()
    made = pair.at(0.5)
    assert made.dtype == np.uint8 and made.shape == truth.shape
    assert psnr(made, truth) > psnr(faded, truth) + 6


def test_identical_frames_give_the_frame_back():
    frame = scene(0)
    pair = motion.FramePair.estimate(frame, frame)
    for s in (0.25, 0.5, 0.75):
        assert np.array_equal(pair.at(s), frame)


def test_motion_renders_keep_the_source_frames_and_count():
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=3, frame_rate=Fraction(10))
    spec = plan_render(video, temporal_scale=Fraction(4))
    moved = list(iter_frames(model, spec, video.frames, between="motion"))
    read = list(iter_frames(model, spec, video.frames))
    assert len(moved) == len(read) == 12
    for k in range(video.frames):
        source = render_frame(model, 24, 16, frame_time(k, video.frames))
        assert np.array_equal(moved[4 * k], source)
        assert np.array_equal(read[4 * k], source)
    assert not np.array_equal(moved[2], read[2])  # made another way
    assert all(np.array_equal(frame, moved[8]) for frame in moved[9:])  # held at the end


def test_a_motion_render_shares_the_cores_between_its_workers_and_gives_the_threads_back():
    import cv2

    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=3, frame_rate=Fraction(10))
    spec = plan_render(video, temporal_scale=Fraction(2))
    threads, opencv = torch.get_num_threads(), cv2.getNumThreads()
    for cores in (2, 4):
        torch.set_num_threads(cores)
        cv2.setNumThreads(cores)
        try:
            frames = iter_frames(model, spec, video.frames, between="motion")
            next(frames)
            share = cores // MOTION_WORKERS
            assert torch.get_num_threads() == share and cv2.getNumThreads() == share
            rest = list(frames)
            assert torch.get_num_threads() == cores and cv2.getNumThreads() == cores
            assert len(rest) == 5
        finally:
            torch.set_num_threads(threads)
            cv2.setNumThreads(opencv)


def test_each_new_frame_is_made_from_its_own_pair_while_the_next_pair_is_found_ahead():
    """The flows of the next pair are found in a worker thread: every frame of a render at an
    uneven rate (pairs skipped, some with two new frames) is still its own pair's frame."""
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    video = VideoInfo(width=24, height=16, frames=6, frame_rate=Fraction(10))
    spec = plan_render(video, temporal_scale=Fraction(5, 3))
    moved = list(iter_frames(model, spec, video.frames, between="motion"))
    sources = [render_frame(model, 24, 16, frame_time(k, video.frames)) for k in range(6)]
    for j, frame in enumerate(moved):
        position = min(j * 3 / 5, video.frames - 1)
        whole = int(position)
        if position == whole:
            assert np.array_equal(frame, sources[whole])
        else:
            pair = motion.FramePair.estimate(sources[whole], sources[whole + 1])
            assert np.array_equal(frame, pair.at(position - whole)), j


def test_an_unknown_rule_is_an_option_error():
    model = Siren(hidden_features=8, hidden_layers=1)
    spec = plan_render(VideoInfo(width=4, height=4, frames=2, frame_rate=Fraction(1)))
    with pytest.raises(OptionError, match="between 'warp'"):
        list(iter_frames(model, spec, 2, between="warp"))


def test_motion_under_a_pixel_counts_as_none():
    flow = torch.zeros(16, 16, 2)
    flow[..., 1] = 1.5  # a steady drift around the four vectors tested
    flow[8, 4:8] = torch.tensor([[0.9, 0.0], [0.6, -0.7], [1.1, 0.0], [0.8, 0.8]])
    still = inbetween.still_as_zero(flow)
    assert still[8, 4:6].abs().sum() == 0  # 0.9 and 0.92 pixels
    assert torch.equal(still[8, 6:8], flow[8, 6:8])  # 1.1 and 1.13 pixels
    assert torch.equal(still[:8], flow[:8])


def test_patches_of_a_pixel_or_two_in_a_slow_drift_count_as_none():
    flow = torch.zeros(32, 32, 2)
    flow[..., 1] = 0.6  # a slow tilt, under a pixel
    flow[10:14, 10:14] = torch.tensor([1.2, 0.9])  # DIS's noise: a patch of 1.5 pixels
    assert inbetween.still_as_zero(flow).abs().sum() == 0


def test_a_small_fast_object_still_moves():
    flow = torch.zeros(32, 32, 2)
    flow[10:14, 10:14] = torch.tensor([3.0, 0.0])  # 4 x 4 pixels among still ones
    still = inbetween.still_as_zero(flow)
    assert torch.equal(still, flow)


def test_a_drift_just_over_a_pixel_moves_everywhere():
    flow = torch.zeros(32, 32, 2)
    flow[..., 0] = 1.05
    assert torch.equal(inbetween.still_as_zero(flow), flow)


def test_frames_twice_the_flow_height_are_halved_for_their_flows():
    assert motion.flow_factor(2 * motion.FLOW_MIN_HEIGHT - 1) == 1
    assert motion.flow_factor(2 * motion.FLOW_MIN_HEIGHT) == 2
    assert motion.flow_factor(2160) == 2


def test_a_large_pair_moves_its_frames_by_flows_found_at_half_size():
    height = 2 * motion.FLOW_MIN_HEIGHT
    first, second = scene(0, 192, height), scene(8, 192, height)
    pair = motion.FramePair.estimate(first, second)
    assert pair.forward.shape == (height // 2, 96, 2) and pair.first.shape == (3, height, 192)
    inside = pair.forward[13:19, 12:18]  # the square's middle at half size: 4 of its pixels
    assert inside[..., 0].median() == pytest.approx(4, abs=0.5)
    made = pair.at(0.5)
    assert made.shape == first.shape
    truth = scene(4, 192, height)
    faded = ((first.astype(np.float64) + second) / 2).round()
    assert psnr(made, truth) > psnr(faded, truth) + 6


def test_motion_under_a_pixel_of_the_frame_counts_as_none_at_half_size():
    flow = torch.zeros(16, 16, 2)
    flow[..., 0] = 0.6  # in pixels of a flow at half size: 1.2 of the frame's
    assert torch.equal(inbetween.still_as_zero(flow, pixel=2.0), flow)
    assert inbetween.still_as_zero(flow).abs().sum() == 0


def test_the_mean_difference_in_eight_bits_is_the_float_planes_one():
    rng = np.random.default_rng(3)
    first, second = (rng.integers(0, 256, (37, 53, 3), dtype=np.uint8) for _ in range(2))
    expected = (inbetween.planes(first) - inbetween.planes(second)).abs().mean(0)
    assert torch.equal(inbetween.mean_difference(first, second), expected)


def test_a_reused_dis_search_gives_what_a_new_one_gives():
    frames = [scene(offset) for offset in (0, 3, 7, 12)]
    start = np.full((64, 96, 2), 2.0, dtype=np.float32)
    other = scene(5, 160, 90), scene(9, 160, 90)  # another size first, as a process meets it
    motion.optical_flow(*other)
    motion.optical_flow(*other, np.full((90, 160, 2), 1.0, dtype=np.float32))
    motion.optical_flow(frames[0], frames[1])  # this thread's searches now hold earlier runs
    motion.optical_flow(frames[1], frames[2], start)
    in_this_thread = motion.optical_flow(frames[2], frames[3])
    started_here = motion.optical_flow(frames[3], frames[2], start)
    with ThreadPoolExecutor(1) as fresh:  # a new thread makes new searches
        new = fresh.submit(motion.optical_flow, frames[2], frames[3]).result()
        new_started = fresh.submit(motion.optical_flow, frames[3], frames[2], start).result()
    assert np.array_equal(in_this_thread, new)
    assert np.array_equal(started_here, new_started)
