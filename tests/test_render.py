from fractions import Fraction

import numpy as np
import pytest
import torch

from nvfilter.config import ColorTags, VideoInfo, parse_fps
from nvfilter.decode.render import (
    AHEAD_FRAMES,
    _MovedFrames,
    check_decode_memory,
    chosen_rules,
    decode_memory,
    makes_new_frames,
    plan_render,
    source_positions,
)
from nvfilter.errors import OptionError
from nvfilter.models.reads import reconstruct, render_frame
from nvfilter.models.siren import Siren

VIDEO = VideoInfo(width=40, height=30, frames=10, frame_rate=Fraction(30000, 1001))


def test_default_plan_is_the_source():
    spec = plan_render(VIDEO)
    assert (spec.width, spec.height, spec.num_frames, spec.fps) == (40, 30, 10, VIDEO.frame_rate)


def test_temporal_scale_gives_n_times_s_frames_and_frame_sk_is_source_frame_k():
    spec = plan_render(VIDEO, temporal_scale=Fraction(4))
    assert spec.num_frames == 40
    positions = source_positions(spec, VIDEO.frames)
    for k in range(VIDEO.frames):
        assert positions[4 * k] == k
    assert positions[1] == 0.25
    assert positions[-3:] == [9, 9, 9]  # past the last source frame: held


def test_num_frames_and_sizes():
    spec = plan_render(VIDEO, num_frames=5, spatial_scale=2)
    assert (spec.width, spec.height, spec.num_frames) == (80, 60, 5)
    assert source_positions(spec, VIDEO.frames) == [0, 2, 4, 6, 8]
    assert (plan_render(VIDEO, width=100).height) == 75
    assert (plan_render(VIDEO, height=15).width) == 20
    assert (plan_render(VIDEO, width=7, height=9).width) == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"spatial_scale": -1.0},
        {"width": 100000},
        {"num_frames": 0},
        {"temporal_scale": Fraction(-2)},
        {"fps": Fraction(5000)},
    ],
)
def test_bad_render_values_are_option_errors(kwargs):
    with pytest.raises(OptionError):
        plan_render(VIDEO, **kwargs)


def test_parse_fps():
    assert parse_fps("25", Fraction(24)) == 25
    assert parse_fps("30000/1001", Fraction(24)) == Fraction(30000, 1001)
    assert parse_fps("29.97", Fraction(24)) == Fraction(30000, 1001)
    assert parse_fps("2x", Fraction(30000, 1001)) == Fraction(60000, 1001)
    for bad in ("fast", "0", "-3", "1/0"):
        with pytest.raises(OptionError):
            parse_fps(bad, Fraction(24))


def test_render_in_small_batches_equals_one_batch():
    torch.manual_seed(0)
    model = Siren(hidden_features=16, hidden_layers=1)
    whole = render_frame(model, 33, 17, 0.1, points_per_batch=10**6)
    banded = render_frame(model, 33, 17, 0.1, points_per_batch=50)
    assert whole.dtype == np.uint8 and whole.shape == (17, 33, 3)
    assert np.array_equal(whole, banded)


def test_decode_memory_grows_with_the_frame_and_refuses_what_does_not_fit():
    video = VideoInfo(64, 36, 10, Fraction(24), Fraction(1), ColorTags(None, None, None, None))
    small = plan_render(video, width=640, height=360)
    huge = plan_render(video, width=16384, height=16384, temporal_scale=Fraction(2))
    assert decode_memory(huge, "network", "network") > 100 * decode_memory(
        small, "network", "network"
    )
    slow = plan_render(video, width=640, height=360, temporal_scale=Fraction(2))
    assert decode_memory(slow, "motion", "network") > decode_memory(slow, "network", "network")
    # motion costs nothing where no frame lies between two source frames
    assert decode_memory(small, "motion", "network") == decode_memory(small, "network", "network")
    check_decode_memory(slow, "motion", "network", available=2**30)
    with pytest.raises(OptionError, match="16384x16384 render needs about .* GB of memory"):
        check_decode_memory(huge, "motion", "network", available=20 * 2**30)


def test_auto_rules_are_motion_and_backprojection_and_give_way_where_memory_is_short():
    video = VideoInfo(640, 360, 10, Fraction(24), Fraction(1), ColorTags(None, None, None, None))
    assert not makes_new_frames(plan_render(video))
    assert not makes_new_frames(plan_render(video, temporal_scale=Fraction(1, 2)))
    assert makes_new_frames(plan_render(video, temporal_scale=Fraction(3, 2)))
    still = VideoInfo(640, 360, 1, Fraction(24), Fraction(1), ColorTags(None, None, None, None))
    assert not makes_new_frames(plan_render(still, temporal_scale=Fraction(2)))
    spec = plan_render(video, spatial_scale=4, temporal_scale=Fraction(2))
    best = decode_memory(spec, "motion", "backproject")
    assert chosen_rules(spec, "auto", "auto", best) == ("motion", "backproject", None)
    # a little short: back-projection (the larger need at 4x) gives way first
    assert decode_memory(spec, "motion", "network") < best
    between, upscaler, note = chosen_rules(spec, "auto", "auto", best - 1)
    assert (between, upscaler) == ("motion", "network")
    assert note is not None and "back-projection would need about" in note
    reads = decode_memory(spec, "network", "network")
    between, upscaler, note = chosen_rules(spec, "auto", "auto", reads)
    assert (between, upscaler) == ("network", "network")
    assert note is not None and "back-projection and motion" in note
    # rules given by name are kept, or refused, never swapped
    assert chosen_rules(spec, "network", "auto", best)[:2] == ("network", "backproject")
    with pytest.raises(OptionError, match="needs about"):
        chosen_rules(spec, "motion", "backproject", best - 1)
    with pytest.raises(OptionError, match="needs about"):
        chosen_rules(spec, "auto", "auto", reads - 1)
    # nothing to give up where the render makes no new frames or pixels
    same = plan_render(video)
    assert chosen_rules(same, "auto", "auto", decode_memory(same, "network", "network"))[2] is None


def test_stopping_a_reconstruction_early_leaves_gradients_on():
    """reconstruct renders in inference mode; a caller that stops early (eval, on an original
    that ends short) must not be left with gradients off."""
    model = Siren(hidden_features=8, hidden_layers=1)
    frames = reconstruct(model, 8, 6, 3)
    next(frames)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    frames.close()


def test_a_few_frames_between_far_apart_hold_no_frames_up_to_the_next():
    """A 1x decode of a source with a repeat left out here and there makes a frame between only
    at those gaps: starting the next pairs early must not read (and hold) every source frame up
    to them (a minute of 1080p held 2 GB so)."""
    model = Siren(hidden_features=8, hidden_layers=1)
    positions = [float(k) for k in range(40)]
    positions[3:3] = [2.5]
    positions[33:33] = [31.5]
    moved = _MovedFrames(model, positions, 40, "motion", 16, 12, set())
    held = []
    for _ in moved.frames():
        held.append(len(moved.rendered))
    assert len(held) == len(positions)
    assert max(held) <= AHEAD_FRAMES + 2
