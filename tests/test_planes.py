import pytest
import torch
import torch.nn.functional as F

from nvfilter.models import build_model
from nvfilter.models.planes import GRID_LR_SCALE, PlaneField, auto_channels, plane_shapes
from nvfilter.models.reads import render_frame


def reference_features(model: PlaneField, coords: torch.Tensor) -> torch.Tensor:
    """The same features through torch's grid_sample (bilinear, pixel centres, border clamp)."""
    levels = []
    for level in range(model.levels):
        product = None
        for k, pair in enumerate(((0, 1), (0, 2), (1, 2))):
            a, b = model.sizes[3 * level + k].long().tolist()
            offset = int(model.offsets[3 * level + k])
            plane = model.table[offset : offset + a * b].view(b, a, -1).permute(2, 0, 1)[None]
            read = F.grid_sample(
                plane,
                coords[:, pair].view(1, 1, -1, 2),
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )[0, :, 0].T
            product = read if product is None else product * read
        levels.append(product)
    return torch.cat(levels, -1)


def test_plane_reads_match_grid_sample_inside_and_outside_the_frame():
    torch.manual_seed(0)
    model = PlaneField(13, 7, 5, channels=3, levels=2)
    with torch.no_grad():
        model.table.uniform_(-1, 1)
    coords = torch.rand(200, 3) * 2.4 - 1.2
    assert torch.allclose(model.features(coords), reference_features(model, coords), atol=1e-6)


def test_plane_layout_and_initialisation():
    assert plane_shapes(16, 8, 4, 2) == [(16, 8), (16, 4), (8, 4), (8, 4), (8, 4), (4, 4)]
    model = PlaneField(16, 8, 4, channels=2, levels=2)
    assert model.table.shape == (128 + 64 + 32 + 32 + 32 + 16, 2)
    xy = model.table[:128]
    assert xy.min() >= 0.1 and xy.max() <= 0.5
    assert torch.all(model.table[128:192] == 1)


def test_output_range_and_gradients_reach_planes_and_head():
    model = PlaneField(10, 6, 3, channels=4)
    out = model(torch.rand(64, 3) * 2 - 1)
    assert out.shape == (64, 3) and out.min() >= 0 and out.max() <= 1
    out.sum().backward()
    assert model.table.grad is not None and model.table.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.head.parameters())


def test_param_groups_give_planes_a_larger_rate():
    model = PlaneField(10, 6, 3, channels=4)
    groups = model.param_groups(1e-3)
    assert groups[0]["params"] == [model.table] and groups[0]["lr"] == 1e-3 * GRID_LR_SCALE
    assert groups[1]["lr"] == 1e-3


def test_architecture_rebuilds_the_same_network():
    model = PlaneField(10, 6, 3, channels=4, levels=2, head_features=8, head_layers=1)
    rebuilt = build_model(model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    coords = torch.rand(20, 3) * 2 - 1
    assert torch.equal(model(coords), rebuilt(coords))


def test_auto_channels_shrinks_for_large_videos():
    assert auto_channels(160, 90, 24) == 16
    assert auto_channels(1280, 720, 300) == 8


@pytest.mark.parametrize("footprint", [False, True])
def test_grid_rendering_equals_pointwise_queries_at_any_size_and_time(footprint):
    from nvfilter.coords import rows_coords

    torch.manual_seed(0)
    model = PlaneField(13, 7, 5, channels=3, levels=3, footprint=footprint)
    with torch.no_grad():
        model.table.uniform_(0, 1)
    for width, height, t, start, stop in [
        (13, 7, -0.6, 0, 7),
        (26, 14, 0.13, 3, 11),
        (40, 9, 0.99, 0, 9),
        (5, 3, -1.0, 1, 2),
    ]:
        grid = model.render_rows(t, width, height, start, stop)
        pixel = (13 / width, 7 / height)  # the output pixel in learned pixels
        points = model(rows_coords(width, height, t, start, stop), pixel)
        assert torch.allclose(grid, points, atol=1e-6), (width, height, t)


def test_footprint_taps_average_the_linear_interpolant_over_the_pixel():
    from nvfilter.models.planes import _footprint_taps

    cells, weights = _footprint_taps(10, torch.tensor([4.0, 0.0, 9.0]), 1.0)
    assert cells.tolist() == [[3, 4, 5], [0, 0, 1], [8, 9, 9]]  # edge cells repeated outward
    assert torch.allclose(weights, torch.tensor([1 / 8, 3 / 4, 1 / 8]).expand(3, 3))
    positions = torch.rand(200) * 9
    for width in (1.0, 0.5, 0.25):
        cells, weights = _footprint_taps(10, positions, width)
        assert torch.allclose(weights.sum(-1), torch.ones(200))
        # against the average of 2001 point reads of the linear interpolant across the pixel
        values = torch.rand(10)
        offsets = torch.linspace(-width / 2, width / 2, 2001)
        inside = (positions.unsqueeze(-1) + offsets).clamp(0, 9)
        lower = inside.floor().clamp(max=8).long()
        frac = inside - lower
        samples = values[lower] * (1 - frac) + values[lower + 1] * frac
        assert torch.allclose((values[cells] * weights).sum(-1), samples.mean(-1), atol=2e-4)
    _, weights = _footprint_taps(10, torch.tensor([4.3]), 1e-9)  # a point: linear weights
    assert torch.allclose(weights, torch.tensor([[0.0, 0.7, 0.3]]), atol=0.01)


def test_footprint_reads_at_the_learned_size_blur_point_reads_by_one_eighth():
    """Training reads a full-resolution cell as 3/4 of itself and 1/8 of each neighbour on each
    axis; older files (no ``footprint`` in the architecture) read points as before."""
    torch.manual_seed(0)
    point = PlaneField(8, 6, 3, channels=2, levels=1, head_features=4)
    area = build_model({**point.architecture(), "footprint": True})
    assert area.footprint and not point.footprint
    with torch.no_grad():  # xy random; the time planes stay at their neutral 1
        point.table[:48].uniform_(0, 1)
        area.load_state_dict(point.state_dict())
        xy = point.table[:48].view(6, 8, 2).permute(2, 0, 1).unsqueeze(1)  # (C, 1, h, w)
        kernel = torch.tensor([1 / 8, 3 / 4, 1 / 8])
        blurred = torch.nn.functional.conv2d(
            torch.nn.functional.pad(xy, (1, 1, 1, 1), mode="replicate"),
            (kernel[:, None] * kernel[None, :]).view(1, 1, 3, 3),
        )
        point.table[:48] = blurred.squeeze(1).permute(1, 2, 0).reshape(48, 2)
    centres = torch.tensor(
        [[(2 * i + 1) / 8 - 1, (2 * j + 1) / 6 - 1, 0.0] for i in range(8) for j in range(6)]
    )
    assert torch.allclose(area.features(centres), point.features(centres), atol=1e-6)


def test_decode_cache_gives_the_same_frames_and_follows_weight_changes():
    from nvfilter.models.reads import render_frame

    torch.manual_seed(0)
    model = PlaneField(13, 7, 5, channels=3)
    with torch.inference_mode():
        cached = render_frame(model, 26, 14, 0.2)
        again = render_frame(model, 26, 14, 0.2)
    assert (cached == again).all()
    assert (cached == render_frame.__wrapped__(model, 26, 14, 0.2)).all()  # no cache
    with torch.no_grad():
        model.table.mul_(0.5)
    model.forget_render_cache()
    with torch.inference_mode():
        changed = render_frame(model, 26, 14, 0.2)
    assert (changed == render_frame.__wrapped__(model, 26, 14, 0.2)).all()
    assert not (changed == cached).all()


def test_render_jobs_see_weights_changed_by_any_optimiser():
    """torch's fused Adam updates weights without bumping their version counter: a render job
    must still see the new weights (each job drops the cache)."""
    from nvfilter.models.reads import reconstruction_mse

    torch.manual_seed(0)
    model = PlaneField(12, 8, 4, channels=3)
    frames = (torch.rand(4, 8, 12, 3) * 255).to(torch.uint8)
    before = reconstruction_mse(model, frames)
    try:
        optimiser = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    except (RuntimeError, TypeError):
        optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.rand(64, 3) * 2 - 1).sum().backward()
    optimiser.step()
    after = reconstruction_mse(model, frames)
    fresh = PlaneField(12, 8, 4, channels=3)
    fresh.load_state_dict(model.state_dict())
    assert after == reconstruction_mse(fresh, frames) and after != before


def test_decode_cache_is_kept_per_device():
    """The xy planes kept between frames belong to one device, so a model rendered, moved and
    rendered again recomputes them (test_cuda.py renders on a CPU, then on a GPU)."""
    torch.manual_seed(0)
    model = PlaneField(8, 6, 3, channels=2, levels=2, head_features=8)
    model.eval()
    render_frame(model, 16, 12, 0.0)
    assert model._xy_cache_key == (16, 12, torch.device("cpu"))
