from fractions import Fraction

import numpy as np
import pytest
from conftest import corpus_clip, make_clip, read_video

from nvfilter.config import VideoInfo
from nvfilter.errors import VideoError
from nvfilter.io import media

SRC = "testsrc2=size=96x54:rate=24:duration=0.5,scale=97:55,setsar=1"


@pytest.fixture(scope="module")
def edge_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("edge")
    plain = make_clip(
        d / "plain.mp4", "-f", "lavfi", "-i", SRC, "-c:v", "libx264", "-pix_fmt", "yuv444p"
    )
    return {
        "plain": plain,
        "rotated": make_clip(
            d / "rot.mp4", "-display_rotation", "90", "-i", str(plain), "-c", "copy"
        ),
        "anamorphic": make_clip(
            d / "sar.mp4",
            "-f",
            "lavfi",
            "-i",
            SRC,
            "-vf",
            "setsar=16/15",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
        ),
        "offset": make_clip(
            d / "off.mp4",
            "-f",
            "lavfi",
            "-i",
            SRC,
            "-output_ts_offset",
            "0.5",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
        ),
        "tenbit": make_clip(
            d / "ten.mkv",
            "-f",
            "lavfi",
            "-i",
            SRC,
            "-pix_fmt",
            "yuv444p10le",
            "-vf",
            "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
            "-c:v",
            "libx264",
        ),
        "vfr": make_clip(
            d / "vfr.mkv",
            "-f",
            "lavfi",
            "-i",
            SRC,
            "-vf",
            "settb=1/1000,setpts='(N/24+0.02*sin(N))/TB'",
            "-fps_mode",
            "vfr",
            "-enc_time_base",
            "1/1000",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
        ),
        "audio": make_clip(d / "audio.m4a", "-f", "lavfi", "-i", "sine=duration=0.5"),
        "ntsc": make_clip(
            d / "ntsc.mp4",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=30000/1001:duration=0.5",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ),
    }


def test_probe_plain_clip(edge_clips):
    info = media.probe(str(edge_clips["plain"]))
    assert (info.width, info.height) == (97, 55)
    assert info.frame_rate == 24
    assert info.estimated_frames == 12
    assert info.sample_aspect_ratio == 1


def test_probe_exact_ntsc_rate(edge_clips):
    assert media.probe(str(edge_clips["ntsc"])).frame_rate == Fraction(30000, 1001)


def test_rotation_metadata_gives_rotated_size_and_frames(edge_clips):
    info = media.probe(str(edge_clips["rotated"]))
    assert (info.width, info.height) == (55, 97)
    frames = media.read_frames(str(edge_clips["rotated"]), info, info.width, info.height)
    assert frames.shape == (12, 97, 55, 3)
    upright = read_video(edge_clips["plain"])[0]
    # rotated 90 degrees: the rotated frame is some rot90 of the upright one
    assert (
        min(np.abs(np.rot90(upright, k).astype(int) - frames[0].numpy()).mean() for k in (1, 3)) < 3
    )


def test_anamorphic_sample_aspect_ratio(edge_clips):
    assert media.probe(str(edge_clips["anamorphic"])).sample_aspect_ratio == Fraction(16, 15)


def test_start_offset_does_not_shift_or_pad_frames(edge_clips):
    info = media.probe(str(edge_clips["offset"]))
    frames = media.read_frames(str(edge_clips["offset"]), info, 97, 55)
    reference = read_video(edge_clips["plain"])
    assert frames.shape[0] == reference.shape[0]
    assert np.abs(frames.numpy().astype(int) - reference.astype(int)).mean() < 1


def test_ten_bit_input_and_colour_tags(edge_clips):
    info = media.probe(str(edge_clips["tenbit"]))
    assert info.pix_fmt == "yuv444p10le"
    assert (info.color.range, info.color.primaries, info.color.transfer, info.color.matrix) == (
        "tv",
        "bt709",
        "bt709",
        "bt709",
    )
    frames = media.read_frames(str(edge_clips["tenbit"]), info, 97, 55)
    assert frames.shape == (12, 55, 97, 3)


def test_variable_frame_rate_is_read_at_a_constant_rate(edge_clips):
    info = media.probe(str(edge_clips["vfr"]))
    assert info.frame_rate == 24
    frames = media.read_frames(str(edge_clips["vfr"]), info, info.width, info.height)
    assert abs(frames.shape[0] - 12) <= 1


def test_frame_step_and_max_frames(edge_clips):
    path = str(edge_clips["plain"])
    info = media.probe(path)
    every = media.read_frames(path, info, 97, 55)
    stepped = media.read_frames(path, info, 97, 55, frame_step=3)
    assert stepped.shape[0] == 4
    assert np.array_equal(stepped.numpy(), every.numpy()[::3])
    limited = media.read_frames(path, info, 97, 55, frame_step=2, max_frames=2)
    assert np.array_equal(limited.numpy(), every.numpy()[0:4:2])


def test_resize_keeps_aspect_ratio():
    assert media.training_size(320, 240, 80, None) == (80, 60)
    assert media.training_size(320, 240, None, 60) == (80, 60)
    assert media.training_size(320, 240, 10, 20) == (10, 20)


def test_no_video_stream(edge_clips):
    with pytest.raises(VideoError, match="no video stream"):
        media.probe(str(edge_clips["audio"]))


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("hello\n" * 100)
    with pytest.raises(VideoError, match="not a video ffmpeg can read"):
        media.probe(str(path))


@pytest.mark.parametrize(
    "name", ["realshort.mp4", "Principe_inertie.avi", "g1.avi", "oa4_launch.webm"]
)
def test_probe_corpus(name):
    info = media.probe(str(corpus_clip(name)))
    assert info.width > 0 and info.frame_rate > 0 and info.estimated_frames > 0


def test_parse_probe_log_without_showinfo_rate():
    log = (
        "  Duration: 00:00:01.20, start: 0.000000, bitrate: 645 kb/s\n"
        "  Stream #0:0[0x1](eng): Video: h264 (High), yuv420p(progressive), 320x240, "
        "30.02 fps, 30 tbr, 90k tbn (default)\n"
        "[Parsed_showinfo_0 @ 0x1] n:   0 pts:      0 pts_time:0 duration: 1 fmt:yuv420p "
        "cl:left sar:0/1 s:320x240 i:P iskey:1\n"
        "[Parsed_showinfo_0 @ 0x1] color_range:pc color_space:unknown color_primaries:bt709 "
        "color_trc:unknown\n"
    )
    info = media.parse_probe(log)
    assert info.frame_rate == 30 and info.duration == pytest.approx(1.2)
    assert info.color.range == "pc" and info.color.matrix is None
    assert info.sample_aspect_ratio == 1 and info.codec == "h264"


def test_stream_line_colour_tags():
    tags = media._stream_color(
        "Stream #0:0: Video: hevc (Main 10), yuv420p10le(tv, "
        "bt2020nc/bt2020/smpte2084, progressive), 96x54"
    )
    assert tags == media.ColorTags("tv", "bt2020", "smpte2084", "bt2020nc")
    tags = media._stream_color("Stream #0:0: Video: h264 (High), yuv420p(pc, bt709, progressive)")
    assert tags == media.ColorTags("pc", "bt709", "bt709", "bt709")


def test_write_args_carry_colour_sar_and_even_padding():
    video = VideoInfo(
        width=97,
        height=55,
        frames=3,
        frame_rate=Fraction(24),
        sample_aspect_ratio=Fraction(16, 15),
        color=media.ColorTags("tv", "bt709", "bt709", "bt709"),
    )
    args = media.build_write_args("out.mp4", 97, 55, Fraction(24), video, "libx264", 18, None, None)
    joined = " ".join(args)
    assert "-colorspace bt709" in joined and "-color_primaries bt709" in joined
    assert "-color_trc bt709" in joined and "-color_range tv" in joined
    assert "setsar=16/15" in joined and "pad=98:56" in joined and "fillborders" in joined
    assert "-pix_fmt yuv420p" in joined and "-crf 18" in joined
    assert media.even_size(97, 55, "yuv444p") == (97, 55)


def test_packets_without_timestamps_give_no_times():
    from nvfilter.io.media import parse_frame_times

    listing = "#tb 0: 1/25\n0,          0, -9223372036854775808,        1,    42753, 0xf9\n"
    assert parse_frame_times(listing) is None
    timed = "#tb 0: 1/12288\n0, -1024, 0, 512, 6872, 0x98\n0, -512, 1024, 512, 1512, 0x9c\n"
    assert parse_frame_times(timed) == [0.0, 1024 / 12288]
