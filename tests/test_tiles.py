"""The tiles model: its fit is each tile's best low-rank fit with the ranks shared out by the error
they explain, it stores at most a number per pixel, frame and point reads agree, and a file of it
reads back the same (a tampered one is refused in one line)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from conftest import assert_frame_and_point_reads_agree

from nvfilter.config import TrainConfig, TrainResult, VideoInfo, pick_model
from nvfilter.coords import frame_time, rows_coords
from nvfilter.encode.train import Trainer
from nvfilter.errors import NvwError
from nvfilter.io import nvw
from nvfilter.metrics import psnr_from_mse
from nvfilter.models import count_parameters
from nvfilter.models import tiles as tiles_module
from nvfilter.models.reads import reconstruction_mse
from nvfilter.models.tiles import (
    TileField,
    _projection,
    component_budget,
    eigh_on_threads,
    own_frames,
    to_shared,
)


def moving_video(frames=9, height=21, width=37, seed=0) -> torch.Tensor:
    """uint8 (N, H, W, 3): a random texture drifting sideways over a still half, a black band
    at the bottom (sizes that are not whole tiles)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 3, (width + 2 * frames) // 3, generator=generator)
    texture = torch.nn.functional.interpolate(
        coarse, size=(height, width + 2 * frames), mode="bilinear"
    )[0].permute(1, 2, 0)
    video = torch.stack([texture[:, 2 * k : 2 * k + width] for k in range(frames)])
    video[:, :, : width // 2] = texture[None, :, : width // 2]  # the left half stands still
    video[:, -5:] = 0.0
    return (video * 255).round().to(torch.uint8)


def fitted(video: torch.Tensor, follow_camera: bool = False, **arch) -> TileField:
    """A network fitted to ``video``; by default kept from following the camera (the tests of
    the path say so), so that the tests of the tiles' own fit see the frame's own tiles."""
    n, h, w, _ = video.shape
    model = TileField(w, h, n, **arch)
    model.follow_camera = follow_camera
    model.start_from(video)
    return model.eval()


def psnr(model: TileField, video: torch.Tensor) -> float:
    return psnr_from_mse(reconstruction_mse(model, video), peak=1.0)


def numbers_per_own_pixel(model: TileField) -> float:
    return count_parameters(model) / (model.width * model.height * own_frames(model.frames))


def test_fit_is_each_tiles_best_low_rank_fit():
    """The fit's error is what the SVD of each tile's frames says the kept ranks leave."""
    video = moving_video()
    model = fitted(video, tile=4)
    n, h, w, _ = video.shape
    tiles = model._tiles(video).double() / 255  # (tiles, n, values)
    singular = torch.linalg.svdvals(tiles)  # (tiles, n), descending
    ranks = model.ranks.long()
    left = sum(float((singular[j, ranks[j] :] ** 2).sum()) for j in range(len(ranks)))
    padded = model.rows * 4 * model.columns * 4
    pictures = torch.stack([model.native_picture(k) for k in range(n)])  # unclamped
    source = video.permute(0, 3, 1, 2).double() / 255
    error = float(((pictures.double() - source) ** 2).sum())
    assert error <= left + 1e-6  # cropping the padding only drops error
    assert error >= left * (h * w) / padded * 0.5


def test_ranks_go_where_the_video_needs_them():
    video = moving_video()
    model = fitted(video, tile=4)
    ranks = model.ranks.view(model.rows, model.columns)
    moving, still, black = ranks[:3, -3:], ranks[:3, :3], ranks[-1, :]
    assert moving.float().mean() > still.float().mean() >= 1
    assert int(black.max()) == 0  # a black tile needs no component


@pytest.mark.parametrize("ceiling", [1.0, 0.5, 0.25])
def test_stores_at_most_its_numbers_per_pixel(ceiling):
    video = moving_video(frames=12)
    model = fitted(video, numbers_per_pixel=ceiling)
    assert 0.7 * ceiling < numbers_per_own_pixel(model) <= ceiling
    assert model.components == component_budget(37, 21, 12, 8, ceiling)


def test_more_numbers_fit_better_and_a_target_stops_early():
    video = moving_video(frames=12)
    scores = [psnr(fitted(video, numbers_per_pixel=c), video) for c in (0.25, 0.5, 1.0)]
    assert scores[0] < scores[1] < scores[2]
    still = video.float().mean(0, keepdim=True).round()  # every frame as the mean frame
    assert scores[2] > psnr_from_mse(float(((video - still) ** 2).mean()) / 255**2, peak=1.0) + 5
    aimed = fitted(video, target_psnr=scores[1] - 3)
    assert aimed.components < fitted(video).components
    assert psnr(aimed, video) >= scores[1] - 3 - 0.3  # the estimate counts the padding too


@pytest.mark.parametrize("size", [(37, 21), (74, 42), (20, 11)])
@pytest.mark.parametrize("position", [0.0, 2.0, 3.5, 8.0])
def test_frame_reads_and_point_reads_agree(size, position):
    model = fitted(moving_video())
    assert_frame_and_point_reads_agree(model, size, position)


@pytest.mark.parametrize("chroma", ["444", "420"])
@pytest.mark.parametrize("size", [(37, 21), (74, 42)])
def test_frames_read_together_are_the_frames_read_one_at_a_time(monkeypatch, chroma, size):
    """render_images: one sparse product for several positions (rows per tile and position),
    in reads of two here, gives each frame as a read of its own does, to the bit."""
    model = fitted(moving_video(), chroma=chroma)
    monkeypatch.setattr(tiles_module, "frames_per_read", lambda pixels: 2)
    width, height = size
    times = [frame_time(p, model.frames) for p in (0.0, 2.5, 2.5, 3.0, 8.0)]
    with torch.inference_mode():
        together = [image.clone() for image in model.render_images(times, width, height)]
        alone = []
        for t in times:
            model.forget_render_cache()
            alone.append(model.render_image(t, width, height).clone())
    assert len(together) == len(times)
    for a, b in zip(together, alone, strict=True):
        assert a.shape == (3, height, width) and torch.equal(a, b)


def test_a_read_of_several_frames_holds_a_bounded_size():
    from nvfilter.models.field import READ_BYTES, READ_FRAMES, frames_per_read

    assert frames_per_read(160 * 90) == READ_FRAMES
    assert frames_per_read(3840 * 2160) == 1
    for pixels in (160 * 90, 1280 * 720, 1920 * 1080, 7680 * 4320):
        assert frames_per_read(pixels) == 1 or frames_per_read(pixels) * 12 * pixels <= READ_BYTES


def test_between_frames_the_weights_are_linear():
    model = fitted(moving_video())
    halfway = model.native_picture(3.5)
    assert torch.allclose(
        halfway, (model.native_picture(3.0) + model.native_picture(4.0)) / 2, atol=1e-5
    )


def test_the_trainer_takes_no_steps_and_says_so():
    video = moving_video()
    model = TileField(37, 21, 9)
    trainer = Trainer(model, video, TrainConfig(epochs=0, batch_size=1, lr=0.0))
    result = trainer.run()
    assert (result.steps, result.stopped_by) == (0, "fitted")
    assert psnr(model, video) == pytest.approx(psnr(fitted(video), video), abs=1e-9)


def to_file(model: TileField, path: Path, dtype: str = "float32") -> Path:
    video = VideoInfo(model.width, model.height, model.frames, Fraction(24))
    path.write_bytes(nvw.to_bytes(model, video, TrainResult(0, 0.0, 0.0, "fitted"), dtype))
    return path


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_file_reads_back_the_same_frames(tmp_path, dtype):
    model = fitted(moving_video())
    loaded = nvw.load(to_file(model, tmp_path / "t.nvw", dtype))
    assert loaded.metadata["format_version"] == "5"
    assert loaded.architecture["components"] == model.components
    tolerance = 1e-6 if dtype == "float32" else 4e-3
    for t in (frame_time(0, 9), frame_time(4.5, 9)):
        model.forget_render_cache()
        a = model.render_image(t, 50, 30)
        b = loaded.model.render_image(t, 50, 30)
        assert torch.allclose(a, b, atol=tolerance)


def tampered(path: Path, change) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)
    return path


def assert_refused_when_tampered(model: TileField, tmp_path: Path, change, tensor: str) -> None:
    """A file of ``model`` whose tensors ``change`` spoils is refused on reading, naming
    ``tensor``."""
    path = tampered(to_file(model, tmp_path / "t.nvw"), change)
    with pytest.raises(NvwError, match=f"do not fit its architecture.*{tensor}"):
        nvw.load(path)


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["ranks"].add_(0.5),
        lambda t: t["ranks"].__setitem__(0, t["ranks"][0] + 1),
        lambda t: t["ranks"].__setitem__(0, -1.0),
        lambda t: t["ranks"].__setitem__(0, math.nan),
    ],
    ids=["fractional", "sum", "negative", "nan"],
)
def test_ranks_that_do_not_add_up_are_refused(tmp_path, change):
    assert_refused_when_tampered(fitted(moving_video()), tmp_path, change, "ranks")


def test_architecture_bounds_are_refused():
    with pytest.raises(ValueError, match="components"):
        TileField(16, 16, 4, tile=8, components=4 * 4 + 1)
    with pytest.raises(ValueError, match="tiles of at most"):
        TileField(16, 16, 4, tile=1000)


def test_auto_picks_the_codec_and_a_name_picks_its_model():
    assert pick_model("auto") == "codec"
    assert pick_model("tiles") == "tiles" and pick_model("hybrid") == "hybrid"


def test_a_black_video_keeps_no_components():
    model = fitted(torch.zeros(9, 21, 37, 3, dtype=torch.uint8))
    assert model.components == 0 and psnr(model, torch.zeros(9, 21, 37, 3)) == math.inf


@pytest.mark.parametrize("layout", [(2, 2), (1, 2)], ids=["420", "422"])
def test_shared_colour_coordinates_are_an_orthogonal_projection(layout):
    matrix = _projection(8, {(2, 2): "420", (1, 2): "422"}[layout]).double()
    assert torch.allclose(matrix.T @ matrix, torch.eye(matrix.shape[1], dtype=torch.float64),
                          atol=1e-6)  # orthonormal: the render's transpose takes them back  # fmt: skip
    pixels = torch.rand(6, 8, 8, 3, dtype=torch.float64)
    coords = to_shared(pixels, *layout)
    assert torch.allclose(pixels.reshape(6, -1) @ matrix, coords.reshape(6, -1), atol=1e-6)
    projected = (coords.reshape(6, -1) @ matrix.T).view(6, 8, 8, 3)
    assert torch.allclose(to_shared(projected, *layout), coords)  # idempotent
    assert torch.allclose(coords.square().sum(), projected.square().sum())  # no scaling
    blocks = projected.unflatten(1, (4, 2)).unflatten(3, (4, 2)) if layout == (2, 2) else None
    if blocks is not None:  # the colour (RGB less its grey mean) is the same over each block
        colour = blocks - blocks.mean(-1, keepdim=True)
        assert torch.allclose(colour, colour[:, :, :1, :, :1].expand_as(colour))


def shared_colour_video(frames=9, height=24, width=40, noise=False) -> torch.Tensor:
    """uint8 frames whose colour is shared by each 2x2 block (as ffmpeg gives a 4:2:0 video): of
    moving_video, or of noise new in every frame."""
    if noise:
        generator = torch.Generator().manual_seed(0)
        video = torch.randint(0, 256, (frames, height, width, 3), generator=generator).double()
    else:
        video = moving_video(frames, height, width).double()
    blocks = video.unflatten(1, (height // 2, 2)).unflatten(3, (width // 2, 2))
    grey = blocks.mean(-1, keepdim=True)
    colour = (blocks - grey).mean((2, 4), keepdim=True)
    shared = (grey + colour).flatten(3, 4).flatten(1, 2)
    return shared.clamp(0, 255).round().to(torch.uint8)


def test_a_420_network_holds_more_of_a_420_video_in_the_same_numbers(tmp_path):
    video = shared_colour_video()
    rgb, shared = fitted(video), fitted(video, chroma="420")
    assert shared.components > 1.5 * rgb.components
    assert numbers_per_own_pixel(shared) <= 1.0
    assert psnr(shared, video) > psnr(rgb, video) + 1.0
    loaded = nvw.load(to_file(shared, tmp_path / "s.nvw"))
    assert loaded.architecture["chroma"] == "420"
    t = frame_time(2.5, 9)
    shared.forget_render_cache()
    assert torch.allclose(shared.render_image(t, 80, 48), loaded.model.render_image(t, 80, 48),
                          atol=1e-6)  # fmt: skip
    with torch.inference_mode():
        frame = shared.render_rows(t, 50, 30, 0, 30)
        points = shared(rows_coords(50, 30, t, 0, 30))
    assert torch.allclose(frame, points, atol=1e-5)


def test_frames_far_off_the_shared_colour_layout_are_fitted_in_rgb():
    """Colours clipped hard (as a saturated 4:2:0 video's are when ffmpeg makes RGB) leave the
    shared-colour layout; the fit then keeps RGB, which holds them better."""
    video = (shared_colour_video().double() * 3 - 200).clamp(0, 255).round().to(torch.uint8)
    shared = fitted(video, chroma="420", numbers_per_pixel=2.0)
    rgb = fitted(video, numbers_per_pixel=2.0)
    assert shared.chroma == "444"
    assert psnr(shared, video) == pytest.approx(psnr(rgb, video), abs=1e-9)
    tight = fitted(video, chroma="420")  # at one number a pixel the layout still pays here
    assert tight.chroma == "420" and psnr(tight, video) > psnr(fitted(video), video)


def test_rgb_decomposed_first_gives_the_same_network_and_spares_the_layout(monkeypatch):
    """Where a sample says RGB is likely, RGB is decomposed first; when what it leaves out is
    under the layout's floor the layout is never decomposed, and either way the network is the
    one the layout-first order gives (a wrong guess costs time, not the fit)."""
    far = (shared_colour_video().double() * 3 - 200).clamp(0, 255).round().to(torch.uint8)
    calls = []
    decompose = TileField._decompose

    def counted(self, tiles):
        calls.append(self.chroma)
        return decompose(self, tiles)

    monkeypatch.setattr(TileField, "_decompose", counted)
    for video, per_pixel, kept in ((far, 2.0, "444"), (far, 1.0, "420")):
        networks = {}
        for likely in (False, True):
            monkeypatch.setattr(TileField, "_rgb_likely", lambda self, tiles, guess=likely: guess)
            calls.clear()
            networks[likely] = fitted(video, chroma="420", numbers_per_pixel=per_pixel)
            if likely and kept == "444":
                assert calls == ["444"]  # the layout never decomposed
        first, second = networks[False], networks[True]
        assert first.chroma == second.chroma == kept
        assert torch.equal(first.ranks, second.ranks)
        assert torch.equal(first.basis, second.basis) and torch.equal(first.weights, second.weights)


def test_the_guess_from_a_sample_of_tiles_is_the_whole_frames_rule(monkeypatch):
    """The guess asks on every LAYOUT_SAMPLE-th tile, with that share of the budget, what the
    layout-first order asks on all of them: does the layout's floor outweigh what its
    components leave out?"""
    far = (shared_colour_video().double() * 3 - 200).clamp(0, 255).round().to(torch.uint8)
    guesses = []
    noise = shared_colour_video(height=96, width=160, noise=True)  # 240 tiles: a sample of 15
    for video, per_pixel in ((far.repeat(1, 4, 4, 1), 2.0), (noise, 1.0)):
        n, h, w, _ = video.shape
        model = TileField(w, h, n, chroma="420", numbers_per_pixel=per_pixel)
        tiles = model._tiles(video)
        eigenvalues, _, floor = model._decompose(tiles)
        whole = floor > model._dropped(eigenvalues, model._share_out(eigenvalues, floor))
        assert model._rgb_likely(tiles) is whole
        monkeypatch.setattr(tiles_module, "LAYOUT_SAMPLE", 1)
        assert model._rgb_likely(tiles) is whole
        monkeypatch.undo()
        guesses.append(whole)
    assert guesses == [True, False]


def test_eigh_on_threads_decomposes_every_matrix_and_gives_the_threads_back():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        data = torch.randn(9, 5, 7, dtype=torch.float64)
        gram = data @ data.transpose(1, 2)
        values, vectors = eigh_on_threads(gram)
        assert torch.get_num_threads() == 2
        assert torch.allclose(values, torch.linalg.eigvalsh(gram))
        rebuilt = vectors @ torch.diag_embed(values) @ vectors.transpose(1, 2)
        assert torch.allclose(rebuilt, gram)
    finally:
        torch.set_num_threads(threads)
