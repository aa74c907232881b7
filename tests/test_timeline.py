"""Time, cuts and repeated frames: the timeline's reads, what finds cuts and repeats in frames,
variable-rate sources, and the .nvw keeping it all (older files have none and play as before)."""

from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest
from conftest import make_clip, psnr, read_video, run

import nvfilter
from nvfilter.codec import bitstream
from nvfilter.config import VideoInfo
from nvfilter.decode.render import plan_render, source_positions
from nvfilter.encode.part_plan import cut_parts
from nvfilter.encode.shots import ShotFinder
from nvfilter.io import media
from nvfilter.timeline import Timeline, evenly

# ---- the timeline's reads ----------------------------------------------------------------------


def test_evenly_spaced_frames_read_as_before():
    timeline = evenly(5)
    assert timeline.even
    assert [timeline.position(t) for t in (0, 0.5, 2.25, 4, 9)] == [0, 0.5, 2.25, 4, 4]


def test_a_read_across_a_cut_shows_the_nearer_frame_and_elsewhere_moves_between():
    timeline = Timeline((0.0, 1.0, 2.0, 3.0), played=4, cuts=(2,))
    assert timeline.position(1.3) == 1.0
    assert timeline.position(1.7) == 2.0
    assert timeline.position(0.5) == 0.5
    assert timeline.position(2.5) == 2.5


def test_frames_at_their_own_times_are_read_by_time():
    timeline = Timeline((0.0, 1.0, 4.0), played=5, variable=True)
    assert timeline.position(2.5) == pytest.approx(1.5)  # halfway through the long gap
    assert timeline.position(4.5) == 2.0  # held at the end


def test_frames_far_apart_are_the_pairs_whose_flow_is_searched():
    timeline = Timeline((0.0, 1.0, 4.0, 5.5), played=6, variable=True)
    assert timeline.far_pairs(2.0) == {1}


def test_a_render_plays_every_frame_period_of_a_timeline():
    timeline = Timeline((0.0, 1.0, 4.0), played=5, variable=True)
    video = VideoInfo(width=8, height=8, frames=3, frame_rate=Fraction(10), timeline=timeline)
    assert video.duration == 0.5
    spec = plan_render(video, temporal_scale=Fraction(2))
    assert spec.num_frames == 10
    positions = source_positions(spec, video.frames, timeline)
    assert positions[:4] == [0.0, 0.5, 1.0, pytest.approx(1 + 1 / 6)]


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"times": [0, 1], "played": 2, "cuts": [], "variable": false}',
        '{"times": [0, 2, 1], "played": 3, "cuts": [], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [1, 2, 3], "played": 4, "cuts": [], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": 2, "cuts": [], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": 3, "cuts": [0], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": 3, "cuts": [5], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": 3, "cuts": ["1"], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": "3", "cuts": [], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": 3, "cuts": [], "variable": 1, "repeats": 0, "sources": null}',
        '{"times": [0, 1], "played": 3, "cuts": [], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 1e300], "played": 3, "cuts": [], "variable": false, "repeats": 0, "sources": null}',
        '{"times": [0, 1, 2], "played": 999999999, "cuts": [], "variable": false, "repeats": 0, "sources": null}',
    ],
)
def test_a_malformed_timeline_is_refused(text):
    with pytest.raises(ValueError):
        Timeline.from_json(text, 3)


def test_a_timeline_round_trips_and_whole_times_are_not_written():
    cut = Timeline((0.0, 1.0, 2.0), played=3, cuts=(1,))
    assert json.loads(cut.to_json())["times"] is None
    assert Timeline.from_json(cut.to_json(), 3) == cut
    varied = Timeline((0.0, 1.5, 3.25), played=5, variable=True, repeats=1)
    assert Timeline.from_json(varied.to_json(), 3) == varied


# ---- finding cuts and repeats ------------------------------------------------------------------


def texture(seed: int, size: tuple[int, int] = (240, 160)) -> np.ndarray:
    """A picture with features of several sizes (blurred noise), uint8 RGB."""
    noise = np.random.default_rng(seed).random((size[1], size[0], 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 6)
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (blurred * 255).astype(np.uint8)


def shot(seed: int, frames: int, step: int = 2) -> list[np.ndarray]:
    """A camera panning over a picture, ``step`` pixels a frame."""
    picture = texture(seed, (240 + step * frames, 160))
    return [picture[:, k * step : k * step + 240] for k in range(frames)]


def found(frames: list[np.ndarray], **settings) -> tuple[list[np.ndarray], ShotFinder]:
    finder = ShotFinder(**settings)
    return list(finder.frames(iter(frames))), finder


def test_cuts_between_shots_are_found_and_none_inside_them():
    frames = shot(1, 12) + shot(2, 10, step=6) + shot(3, 9)
    kept, finder = found(frames)
    assert len(kept) == len(frames)
    timeline = finder.timeline()
    assert timeline is not None and timeline.cuts == (12, 22)


def test_fast_motion_a_dissolve_and_a_still_scene_are_not_cuts():
    fast = shot(4, 16, step=14)
    first, second = shot(5, 12), shot(6, 12)
    dissolve = [
        (a * (1 - k / 11) + b * (k / 11)).astype(np.uint8)
        for k, (a, b) in enumerate(zip(first, second, strict=True))
    ]
    still = [texture(7)] * 8
    for frames in (fast, dissolve, still):
        kept, finder = found(frames)
        assert len(kept) == len(frames)
        assert finder.timeline() is None  # nothing evenly spaced frames do not say


def test_cuts_are_not_looked_for_when_turned_off():
    _, finder = found(shot(1, 6) + shot(2, 6), cut_threshold=None)
    assert finder.timeline() is None
    doubled = [frame for frame in shot(3, 8, step=4) for _ in range(2)] + shot(4, 6)
    kept, passing = found(doubled, cut_threshold=None, keep_repeats=True)
    assert len(kept) == len(doubled) and passing.timeline() is None


def test_every_third_frame_repeated_is_left_out_and_the_rest_spread_evenly():
    original = shot(8, 20, step=4)
    doubled = [frame for k, frame in enumerate(original) for _ in range(2 if k % 2 else 1)]
    kept, finder = found(doubled)
    timeline = finder.timeline()
    assert timeline is not None
    assert timeline.repeats >= 8 and len(kept) == len(doubled) - timeline.repeats
    assert timeline.played == len(doubled)
    steps = np.diff(timeline.times[3:-3])
    assert np.all(np.abs(steps - 1.5) < 0.2), steps  # the frames' own spacing: 1.5 periods

    kept_all, keeping = found(doubled, keep_repeats=True)
    assert len(kept_all) == len(doubled) and keeping.timeline() is None


def test_a_variable_rate_gap_is_kept_and_is_no_cut():
    frames = shot(9, 16, step=3)
    times = [float(k) for k in range(6)] + [float(k) for k in range(11, 21)]
    kept, finder = found(frames, times=times)
    timeline = finder.timeline()
    assert timeline is not None and timeline.variable and not timeline.cuts
    assert timeline.times == tuple(times) and timeline.played == 21


def test_a_part_ends_at_a_cut_so_the_next_starts_with_the_new_shot():
    stream = (np.full((2, 2, 3), k, np.uint8) for k in range(40))
    parts = list(cut_parts(stream, 16, cuts=[12, 14, 30]))
    firsts = [int(part[0, 0, 0, 0]) for part in parts]
    lasts = [int(part[-1, 0, 0, 0]) for part in parts]
    assert firsts == [0, 12, 30] and lasts == [12, 30, 39]  # 14 is too soon after 12 to end one
    ending = list(cut_parts((np.full((2, 2, 3), k, np.uint8) for k in range(20)), 16, [19]))
    assert [len(part) for part in ending] == [20]  # a cut on the last frame: no part of it alone


# ---- from a file to a file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """A spliced clip (three shots, two cuts), a variable-rate one and one with every third
    frame repeated (a 20 to 30 frames/s conversion), small, with the bundled ffmpeg."""
    d = tmp_path_factory.mktemp("edited")
    moving = "testsrc2=size=96x64:rate=24:duration=1"
    spliced = make_clip(
        d / "spliced.mkv", "-f", "lavfi", "-i", moving, "-f", "lavfi",
        "-i", "mandelbrot=size=96x64:rate=24", "-f", "lavfi",
        "-i", "testsrc=size=96x64:rate=24",
        "-filter_complex",
        "[0:v]trim=end_frame=10,format=yuv444p[a];[1:v]trim=end_frame=10,format=yuv444p[b];"
        "[2:v]trim=end_frame=10,format=yuv444p[c];[a][b][c]concat=n=3:v=1[v]",
        "-map", "[v]", "-c:v", "ffv1",
    )  # fmt: skip
    variable = make_clip(
        d / "variable.mkv", "-f", "lavfi", "-i", moving,
        "-vf", "select='not(between(n\\,6\\,9))'", "-fps_mode", "vfr", "-c:v", "ffv1",
    )  # fmt: skip
    repeated = make_clip(
        d / "repeated.mkv", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=20:duration=1",
        "-vf", "fps=30", "-c:v", "ffv1",
    )  # fmt: skip
    return {"spliced": spliced, "variable": variable, "repeated": repeated, "dir": d}


def test_a_spliced_clip_keeps_its_cuts_and_its_new_frames_never_mix_two_shots(edited):
    out = edited["dir"] / "spliced.nvw"
    run("encode", edited["spliced"], out, "-q")
    video = nvfilter.open(out)
    assert video.cuts == [10, 20]
    assert [(span.first, span.frames) for span in video.model.spans] == [(0, 30)]  # coded: one
    assert new_shots(video) == (10, 20)  # ... part, each new shot's first frame coded intra
    info = run("info", out).output
    assert "cuts before frames 10, 20" in info
    slow = edited["dir"] / "spliced-2x.mkv"
    run("decode", out, slow, "-q", "--temporal-scale", "2", "--preset", "lossless")
    frames = read_video(slow)
    assert len(frames) == 60
    for cut in (10, 20):
        between = frames[2 * cut - 1]  # halfway from the last frame of a shot to the next's first
        either = max(psnr(between, frames[2 * cut - 2]), psnr(between, frames[2 * cut]))
        assert either > 35, (cut, either)
    tiles = edited["dir"] / "spliced-tiles.nvw"
    run("encode", edited["spliced"], tiles, "-q", "--model", "tiles")
    assert [(span.first, span.frames) for span in nvfilter.open(tiles).model.spans] == [
        (0, 11), (10, 11), (20, 10)]  # a learned model's parts end at the cuts  # fmt: skip
    none = edited["dir"] / "spliced-nocuts.nvw"
    run("encode", edited["spliced"], none, "-q", "--no-cuts")
    assert nvfilter.open(none).cuts == [] and new_shots(nvfilter.open(none)) == ()
    strict = edited["dir"] / "spliced-strict.nvw"
    run("encode", edited["spliced"], strict, "-q", "--cut-threshold", "1000")
    assert nvfilter.open(strict).cuts == []


def new_shots(video: nvfilter.Video) -> tuple[int, ...]:
    """The frames a coded file's one part codes intra as the start of a new shot."""
    return bitstream.unpack(video.model.part(0).stream.numpy().tobytes())[0].starts


def test_a_variable_rate_clip_keeps_its_frames_times(edited):
    listed = media.frame_times(str(edited["variable"]))
    assert listed is not None and len(listed) == 20
    out = edited["dir"] / "variable.nvw"
    run("encode", edited["variable"], out, "-q")
    video = nvfilter.open(out)
    assert video.frames == 20 and video.info.timeline is not None
    assert video.info.timeline.variable and video.info.timeline.played == 24
    assert [round(t * 24) for t in video.times[5:8]] == [5, 10, 11]
    assert "variable rate" in run("info", out).output
    scored = json.loads(run("eval", edited["variable"], out, "--json").output)
    assert scored["psnr_db"] == pytest.approx(video.file.training.psnr, abs=0.05)
    played = edited["dir"] / "variable-1x.mkv"
    run("decode", out, played, "-q", "--preset", "lossless")
    frames = read_video(played)
    assert len(frames) == 24  # the gap played at the source's rate, new frames in it
    assert psnr(frames[7], frames[5]) < 60 and psnr(frames[7], frames[10]) < 60


def test_repeated_frames_are_left_out_and_the_sound_keeps_its_length(edited):
    out = edited["dir"] / "repeated.nvw"
    run("encode", edited["repeated"], out, "-q")
    video = nvfilter.open(out)
    timeline = video.info.timeline
    assert timeline is not None and timeline.repeats >= 8 and timeline.played == 30
    assert video.info.duration == pytest.approx(1.0)
    scored = json.loads(run("eval", edited["repeated"], out, "--json").output)
    assert scored["frames"] == video.frames  # each learned frame against the frame it is
    assert scored["psnr_db"] == pytest.approx(video.file.training.psnr, abs=0.05)
    kept = edited["dir"] / "repeated-kept.nvw"
    run("encode", edited["repeated"], kept, "-q", "--keep-repeats")
    assert nvfilter.open(kept).info.timeline is None


def test_a_file_without_a_timeline_plays_its_frames_evenly(clips, tmp_path):
    out = tmp_path / "plain.nvw"
    run("encode", clips["testsrc"], out, "-q")
    video = nvfilter.open(out)
    assert video.info.timeline is None and video.cuts == []
    assert video.times == [k / 24 for k in range(video.frames)]
    assert "constant rate, no cut found" in run("info", out).output
