"""The segments model: its frame reads and point reads agree, its start is the principal-component
fit it claims, it stores at most a number per pixel, it trains reproducibly, and joins do not jump."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_frame_and_point_reads_agree

from nvfilter.config import TrainConfig, pick_model
from nvfilter.coords import frame_time
from nvfilter.encode.train import Trainer
from nvfilter.metrics import psnr_from_mse
from nvfilter.models import count_parameters
from nvfilter.models.reads import reconstruction_mse
from nvfilter.models.segments import (
    TIME_SHRINK,
    SegmentField,
    auto_channels,
    parameter_count,
    segment_spans,
)


def random_field(width=20, height=14, frames=11, **sizes) -> SegmentField:
    """A field whose planes and decoders are random (not the start from frames)."""
    torch.manual_seed(3)
    sizes = {"segment_frames": 4, "channels": 6, "coarse_channels": 3, "levels": 3, **sizes}
    model = SegmentField(width, height, frames, **sizes)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1)
    return model.eval()


def moving_video(frames=12, height=16, width=24, seed=0) -> torch.Tensor:
    """uint8 (N, H, W, 3): a smooth random picture drifting sideways with a changing colour."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, height // 4, width // 2 + frames, generator=generator)
    big = torch.nn.functional.interpolate(base, size=(height, width + 2 * frames), mode="bilinear")
    shots = [big[0, :, :, 2 * k : 2 * k + width] * (0.8 + 0.02 * k) for k in range(frames)]
    return (torch.stack(shots).permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.mark.parametrize("size", [(20, 14), (40, 28), (13, 9)])
@pytest.mark.parametrize("position", [0.0, 3.0, 4.0, 5.25, 10.0])
def test_frame_reads_and_point_reads_agree(size, position):
    model = random_field()
    assert_frame_and_point_reads_agree(model, size, position)


def test_training_view_is_the_frame_read_unclamped():
    model = random_field()
    for view in (0, 4, len(model.views) - 1):
        g, q = model.views[view]
        t = frame_time(model.spans[g][0] + q, model.frames)
        with torch.inference_mode():
            model.forget_render_cache()
            frame = model.render_rows(t, model.width, model.height, 0, model.height)
        dense = model.render_view(view).detach().T.clamp(0, 1)
        assert torch.allclose(dense, frame, atol=1e-5)
        assert model.view_frame(view) == model.spans[g][0] + q


def test_segments_cover_every_frame_and_share_their_boundaries():
    for frames, length in [(1, 32), (2, 32), (33, 32), (194, 32), (270, 32), (100, 7)]:
        spans = segment_spans(frames, length)
        assert spans[0][0] == 0 and sum(n for _, n in spans) - (len(spans) - 1) == frames
        for (first, count), (after, _) in zip(spans, spans[1:], strict=False):
            assert after == first + count - 1  # the boundary frame belongs to both
        counts = [n for _, n in spans]
        assert max(counts) - min(counts) <= 1


def test_start_is_exact_for_video_of_few_components():
    """Frames that are a mean picture plus two pictures weighted per frame: the start holds
    exactly that (PCA recovers it), so the first output is the video itself."""
    generator = torch.Generator().manual_seed(1)
    mean, first, second = torch.rand(3, 10, 16, 3, generator=generator) * 0.3
    weights = torch.rand(9, 2, generator=generator)
    video = mean + weights[:, :1, None, None] * first + weights[:, 1:, None, None] * second
    frames = (video * 255).round().to(torch.uint8)
    model = SegmentField(16, 10, 9, segment_frames=8, channels=9, coarse_channels=3, levels=2)
    model.start_from(frames)
    assert psnr_from_mse(reconstruction_mse(model, frames), peak=1.0) > 50


def test_start_beats_the_mean_frame_and_training_improves_it_reproducibly():
    frames = moving_video()
    mean_mse = ((frames.float() - frames.float().mean(0)) ** 2).mean().item() / 255**2
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SegmentField(24, 16, 12, segment_frames=6, channels=6, coarse_channels=6, levels=2)
        config = TrainConfig(epochs=20, batch_size=1, lr=1e-3, lr_schedule="cosine")
        trainer = Trainer(model, frames, config)
        start = reconstruction_mse(model, frames)
        trainer.run()
        results.append((start, reconstruction_mse(model, frames), model.state_dict()))
    (start, end, weights), (_, end_again, weights_again) = results
    assert start < mean_mse / 2
    assert end < start
    assert end == end_again
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)


def test_a_resumed_trainer_keeps_the_weights_it_is_given():
    frames = moving_video()
    model = random_field(24, 16, 12)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, frames, TrainConfig(epochs=1, batch_size=1), start=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_joins_do_not_jump_more_than_the_source():
    frames = moving_video(frames=17)
    model = SegmentField(24, 16, 17, segment_frames=4, channels=9, coarse_channels=6, levels=2)
    model.start_from(frames)
    with torch.inference_mode():
        decoded = [
            model.render_rows(frame_time(k, 17), 24, 16, 0, 16).reshape(16, 24, 3) * 255
            for k in range(17)
        ]
    source = frames.float()
    for first, _ in model.spans[1:]:  # the last frame of one segment, then the next one's
        for k in (first - 1, first):
            jump = (decoded[k + 1] - decoded[k]).abs().mean().item()
            change = (source[k + 1] - source[k]).abs().mean().item()
            assert jump <= change + 3, (k, jump, change)


@pytest.mark.parametrize(
    "size", [(720, 405, 270), (640, 360, 194), (1280, 720, 120), (160, 90, 24), (17, 9, 3)]
)
def test_auto_channels_store_at_most_one_number_per_pixel(size):
    width, height, frames = size
    fine, coarse = auto_channels(width, height, frames, 32, 4, TIME_SHRINK)
    count = parameter_count(width, height, frames, 32, [fine] + [coarse] * 3, TIME_SHRINK)
    assert count <= width * height * frames or (fine, coarse) == (3, 3)
    with torch.device("meta"):
        model = SegmentField(width, height, frames, 32, fine, coarse, 4)
    assert count_parameters(model) == count


def test_architecture_bounds_are_refused():
    for sizes in ({"segment_frames": 0}, {"levels": 50}, {"channels": 0}):
        with pytest.raises(ValueError):
            SegmentField(8, 8, 10, **sizes)
    with pytest.raises(ValueError, match="segments"):
        SegmentField.tensor_count({"frames": 10**7, "segment_frames": 1, "levels": 2})


def test_segments_is_picked_when_named_only():
    assert pick_model("segments") == "segments"
    assert pick_model("siren") == "siren"
