"""Tiles that follow the camera (nvfilter/camera.py, TileField's canvas): the path of a pan is found,
the canvas holds the scene, a panning video fits better along it within the same numbers, a still
one keeps its frame, reads agree, and a file of it reads back (a tampered one is refused)."""

from __future__ import annotations

import math
import re
import subprocess

import numpy as np
import pytest
import torch
from conftest import assert_frame_and_point_reads_agree, run
from test_tiles import assert_refused_when_tampered, fitted, psnr, to_file

from nvfilter.camera import camera_path, canvas_frames, canvas_pixels
from nvfilter.coords import frame_time
from nvfilter.io import nvw
from nvfilter.io.media import ffmpeg_exe
from nvfilter.models import count_parameters
from nvfilter.models import tiles as tiles_module
from nvfilter.models.tiles import TileField, own_frames

PAN = (2, 1)
"""Pixels the panning video's camera moves right and down a frame."""


def scene(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """uint8 (height, width, 3): a detailed random texture."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 2, width // 2, generator=generator)
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")
    return (fine[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8)


def panning_video(frames: int = 9, height: int = 48, width: int = 80) -> torch.Tensor:
    """uint8 (frames, height, width, 3): a camera panning over ``scene`` by PAN a frame."""
    dx, dy = PAN
    texture = scene(height + dy * (frames - 1), width + dx * (frames - 1))
    return torch.stack([texture[dy * k : dy * k + height, dx * k : dx * k + width]
                        for k in range(frames)])  # fmt: skip


def test_the_path_of_a_pan_is_each_frames_place_in_the_scene():
    places = camera_path(panning_video().numpy())
    assert places is not None
    assert places.tolist() == [[PAN[0] * k, PAN[1] * k] for k in range(9)]


def test_a_still_camera_has_no_path():
    still = panning_video()[:1].expand(9, -1, -1, -1).contiguous()
    assert camera_path(still.numpy()) is None


def test_the_canvas_is_the_scene_and_its_pixels_read_alone_agree():
    video = panning_video()
    places = camera_path(video.numpy())
    assert places is not None
    canvas = canvas_frames(video.numpy(), places)
    n, height, width, _ = canvas.shape
    shown = np.zeros((height, width), bool)  # by some frame (a diagonal pan leaves two corners)
    for x, y in places:
        shown[y : y + 48, x : x + 80] = True
    whole = scene(height, width).numpy()
    assert all(np.array_equal(canvas[k][shown], whole[shown]) for k in range(n))
    assert 0 < (~shown).sum() < 0.1 * shown.size
    rows = np.random.default_rng(0).integers(0, height, 200)
    columns = np.random.default_rng(1).integers(0, width, 200)
    alone = canvas_pixels(video.numpy(), places, rows, columns)
    assert np.array_equal(alone, canvas[:, rows, columns])


def test_an_uncovered_pixel_shows_the_nearest_frame_that_covers_it():
    frames = np.stack([np.full((16, 16, 3), 10 * k, np.uint8) for k in range(5)])
    places = np.array([[0, 0], [2, 0], [4, 0], [6, 0], [8, 0]])
    canvas = canvas_frames(frames, places)
    assert canvas.shape == (5, 16, 24, 3)
    assert canvas[0, 0, 17, 0] == 10  # frame 1 (columns 2-17) is frame 0's nearest there
    assert canvas[4, 0, 0, 0] == 0  # only frame 0 covers column 0
    assert canvas[2, 0, 1, 0] == 0 and canvas[2, 0, 3, 0] == 10  # the earlier on a tie: frame 1


def test_a_pan_fits_better_along_the_path_within_the_same_numbers():
    video = panning_video()
    along, still = fitted(video, follow_camera=True), fitted(video)
    assert along.canvas is not None and still.canvas is None
    assert psnr(along, video) > psnr(still, video) + 3
    per_pixel = count_parameters(along) / (80 * 48 * own_frames(9))
    assert per_pixel <= along.numbers_per_pixel


def test_a_video_the_path_does_not_help_keeps_its_frame(monkeypatch):
    """Half the frame pans and half stands still: a path is found, and following it would
    lose (the still half would move), so the fit keeps its frame."""
    video = panning_video()
    video[:, :, :40] = video[0, :, :40]
    assert camera_path(video.numpy()) is not None
    kept = fitted(video, follow_camera=True)
    assert kept.canvas is None
    monkeypatch.setattr(tiles_module, "PATH_BELOW", math.inf)  # follow whatever the sample says
    forced = fitted(video, follow_camera=True)
    assert forced.canvas is not None and psnr(forced, video) < psnr(kept, video)


@pytest.mark.parametrize("size", [(80, 48), (120, 70)])
@pytest.mark.parametrize("position", [0.0, 3.0, 3.5, 8.0])
def test_frame_reads_and_point_reads_agree_on_a_canvas(size, position):
    model = fitted(panning_video(), follow_camera=True)
    assert model.canvas is not None
    assert_frame_and_point_reads_agree(model, size, position)


def test_between_frames_the_picture_moves_with_the_camera():
    """Half-way between two frames of a pan, the read is the scene half-way along the path:
    near what a camera there shows, not a cross-fade of the two."""
    video = panning_video(frames=9, height=48, width=80)
    model = fitted(video, follow_camera=True)
    dx, dy = PAN
    truth = scene(48 + dy * 8, 80 + dx * 8).float()
    halfway = (truth[3:51, 7:87] + truth[4:52, 7:87]) / 2  # the place half-way: (7, 3.5)
    with torch.inference_mode():
        read = model.native_picture(3.5).permute(1, 2, 0) * 255
    faded = (video[3].float() + video[4].float()) / 2
    assert (read - halfway).abs().mean() < 0.5 * (faded - halfway).abs().mean()


def test_frames_read_together_are_the_frames_read_one_at_a_time(monkeypatch):
    model = fitted(panning_video(), follow_camera=True)
    monkeypatch.setattr(tiles_module, "frames_per_read", lambda pixels: 2)
    times = [frame_time(p, model.frames) for p in (0.0, 2.5, 3.0, 8.0)]
    with torch.inference_mode():
        together = [image.clone() for image in model.render_images(times, 80, 48)]
        alone = []
        for t in times:
            model.forget_render_cache()
            alone.append(model.render_image(t, 80, 48).clone())
    assert all(torch.equal(a, b) for a, b in zip(together, alone, strict=True))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_file_of_it_reads_back_the_same_frames(tmp_path, dtype):
    model = fitted(panning_video(), follow_camera=True)
    loaded = nvw.load(to_file(model, tmp_path / "t.nvw", dtype))
    assert loaded.metadata["format_version"] == "6"
    assert loaded.architecture["canvas_width"] == model.canvas[0]
    assert torch.equal(loaded.model.places, model.places)
    tolerance = 1e-6 if dtype == "float32" else 4e-3
    for t in (frame_time(0, 9), frame_time(4.5, 9)):
        model.forget_render_cache()
        assert torch.allclose(
            model.render_image(t, 80, 48), loaded.model.render_image(t, 80, 48), atol=tolerance
        )


def test_a_network_that_keeps_its_frame_is_written_as_before(tmp_path):
    loaded = nvw.load(to_file(fitted(panning_video()), tmp_path / "t.nvw"))
    assert loaded.metadata["format_version"] == "5"
    assert "canvas_width" not in loaded.architecture


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["places"].add_(0.5),
        lambda t: t["places"].__setitem__((0, 0), -2.0),
        lambda t: t["places"].__setitem__((0, 0), 10_000.0),
        lambda t: t["places"].__setitem__((0, 1), math.nan),
    ],
    ids=["fractional", "negative", "off-canvas", "nan"],
)
def test_places_off_the_canvas_are_refused(tmp_path, change):
    model = fitted(panning_video(), follow_camera=True)
    assert model.canvas is not None  # the places are a canvas network's
    assert_refused_when_tampered(model, tmp_path, change, "places")


def test_a_canvas_far_beyond_the_frame_is_refused():
    with pytest.raises(ValueError, match="canvas"):
        TileField(80, 48, 9, canvas_width=80 * 4, canvas_height=48)
    with pytest.raises(ValueError, match="canvas"):
        TileField(80, 48, 9, canvas_width=79, canvas_height=48)
    with pytest.raises(ValueError, match="canvas"):
        TileField(80, 48, 9, canvas_width=96)


def test_a_pan_encodes_along_the_camera_and_info_says_which_parts_do(tmp_path):
    """Through the command line: a panning clip (lossless) learned by tiles in parts follows
    the camera in the part that pans, plays back its frames, and `info` lists what differs
    from part to part rather than the first part's values as every part's."""
    pan = panning_video(frames=17, height=80, width=160)  # a path of 32 x 16 pixels
    still = pan[-1:].expand(16, -1, -1, -1)  # then the camera stops
    frames = torch.cat((pan, still)).contiguous().numpy()
    clip = tmp_path / "pan.mkv"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo",
                    "-pix_fmt", "rgb24", "-s", "160x80", "-r", "24", "-i", "-", "-c:v", "ffv1",
                    "-pix_fmt", "bgr0", str(clip)], input=frames.tobytes(), check=True)  # fmt: skip
    out = tmp_path / "pan.nvw"
    encoded = run("encode", clip, out, "--model", "tiles", "--segment-frames", "16", "-q")
    assert encoded.exit_code == 0, encoded.stderr
    loaded = nvw.load(out)
    assert loaded.metadata["format_version"] == "6"
    following = ["canvas_width" in span.architecture for span in loaded.model.spans]
    assert following[0] and not all(following)
    info = run("info", out).stdout
    assert re.search(r"^parts +each tiles .*; per part: canvas_height, canvas_width", info, re.M)
    assert loaded.training.psnr > 40
