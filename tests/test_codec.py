"""The codec (nvfilter/codec): its entropy coder, bitstream, motion fields and parts round trip,
and the codec model's reads (models/codec.py)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from conftest import assert_frame_and_point_reads_agree, psnr, square_scene

from nvfilter.codec import bitstream, entropy, motion, residual
from nvfilter.codec.decoder import PartDecoder
from nvfilter.codec.encoder import PartEncoder, encode_part, trim_tails
from nvfilter.codec.planes import Layout, to_planes, to_rgb, to_uint8
from nvfilter.codec.ratecontrol import Coded, Target, next_qp
from nvfilter.codec.structure import coding_order, pair_source, regular_groups
from nvfilter.codec.transform import quantise
from nvfilter.decode.render import frames_between
from nvfilter.inbetween import FramePair
from nvfilter.models import build_model
from nvfilter.models.codec import FLOW_SHRINK_FROM, CodedField


def moving_clip(
    frames: int = 10, width: int = 64, height: int = 48, step: float = 1.5
) -> np.ndarray:
    """A textured picture panning ``step`` pixels a frame to the right, uint8 (n, h, w, 3)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    out = []
    for k in range(frames):
        x = xs - step * k
        red = 128 + 90 * np.sin(x / 5.0) * np.cos(ys / 7.0)
        green = 128 + 80 * np.cos((x + ys) / 9.0)
        blue = 128 + 70 * np.sin((x - 2 * ys) / 11.0)
        out.append(np.stack([red, green, blue], -1))
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


def test_entropy_round_trip_with_escapes_and_adapting_tables():
    rng = np.random.default_rng(0)
    values = np.rint(rng.laplace(0, 3, 2000)).astype(np.int64)
    values[::97] = rng.integers(-100000, 100000, len(values[::97]))  # far past the escape
    small = rng.integers(0, 5, 300)
    writer = entropy.Writer(entropy.Tables())
    for group in np.array_split(values, 4):  # the same context four times: it adapts
        writer.signed(("a",), 16, group)
    writer.unsigned(("b",), 8, np.abs(values[:500]))
    writer.symbols(("c",), 5, small)
    words = writer.finish()
    reader = entropy.Reader(entropy.Tables(), words)
    back = np.concatenate([reader.signed(("a",), 16, len(g)) for g in np.array_split(values, 4)])
    assert np.array_equal(back, values)
    assert np.array_equal(reader.unsigned(("b",), 8, 500), np.abs(values[:500]))
    assert np.array_equal(reader.symbols(("c",), 5, 300), small)
    assert 32 * len(words) < 8 * values.size  # well under a byte a value


def test_bitstream_round_trip_and_every_corruption_is_one_error():
    header = bitstream.PartHeader(40, 30, 5, "420", [2, 2])
    frames = [np.arange(k + 1, dtype=np.uint32) for k in range(5)]
    data = bitstream.pack(header, [30, 31, 32, 33, 34], frames)
    back, qps, words = bitstream.unpack(data)
    assert back == header and qps.tolist() == [30, 31, 32, 33, 34]
    assert [w.tolist() for w in words] == [f.tolist() for f in frames]
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    for bad in (data[:10], data[:-4], bytes(flipped), b"XXXX" + data[4:]):
        with pytest.raises(entropy.CorruptStream):
            bitstream.unpack(bad)
    # a lying header: frames the groups do not cover, with its CRC made to match
    lying = bitstream.pack(bitstream.PartHeader(40, 30, 5, "420", [2, 3]), [30] * 5, frames)
    with pytest.raises(entropy.CorruptStream, match="groups"):
        bitstream.unpack(lying)
    # deblocked: version 3; an older stream's header is read as it was written
    assert data[4] == 3
    for starts, version in (((), 1), ((2,), 2)):
        old_header = bitstream.PartHeader(40, 30, 5, "420", [2, 2], starts, version)
        old_data = bitstream.pack(old_header, [30] * 5, frames)
        assert old_data[4] == version and bitstream.unpack(old_data)[0] == old_header
    # a new shot: its anchor's group flagged; the flag in a version 1 stream is a lie
    shot = bitstream.PartHeader(40, 30, 5, "420", [2, 2], (2,), 2)
    data = bitstream.pack(shot, [30] * 5, frames)
    assert data[4] == 2 and bitstream.unpack(data)[0] == shot
    old = bytearray(data)
    old[4] = 1
    old[20:24] = zlib.crc32(bytes(old[24:])).to_bytes(4, "little")
    with pytest.raises(entropy.CorruptStream, match="groups"):
        bitstream.unpack(bytes(old))


@pytest.mark.parametrize("groups", [[8, 3], [1] * 11, [4, 4, 3]], ids=["b", "p", "b4"])
def test_every_neighbouring_pair_has_its_motion_in_the_stream(groups):
    order = coding_order(12, groups)
    assert sorted(f.index for f in order) == list(range(12))
    for first in range(11):
        holder, reference = pair_source(order, first)
        assert {holder, reference} == {first, first + 1}


def test_motion_fields_round_trip_against_a_prior_and_unused_blocks():
    rng = np.random.default_rng(1)
    height, width = 48, 80
    levels = []
    for side in motion.PYRAMID:
        rows, cols = motion.grid(height, width, side)
        levels.append(rng.integers(-40, 40, (rows, cols, 2)))
    prior = [field + 3 for field in levels]
    used = rng.random(motion.grid(height, width, 8)) > 0.3
    levels[-1] = np.where(
        used[..., None], levels[-1], motion.expected(levels, prior, 3, used.shape)
    )
    writer = entropy.Writer(entropy.Tables())
    motion.write_field(writer, levels, 2, 0, used, prior)
    reader = entropy.Reader(entropy.Tables(), writer.finish())
    back = motion.read_field(reader, height, width, 2, 0, used, 10_000, prior)
    for ours, theirs in zip(levels, back, strict=True):
        assert np.array_equal(ours, theirs)


def test_a_lone_far_one_is_trimmed_and_nothing_else_changes():
    """trim_tails zeroes a block's final +-1 where it puts right little (a coefficient just past
    the dead zone, far along the zigzag); a final level of 2 or more, a +-1 that puts right a
    whole step squared, and every level before a block's last stay as they are."""
    step = 10.0
    coefficients = np.zeros((4, 64))
    coefficients[:, :3] = [40.0, -25.0, 12.0]  # levels 4, -2, 1 at the start of each block
    coefficients[0, 60] = 0.7 * step  # a lone 1 far along: little error for many bits
    coefficients[1, 60] = 2.4 * step  # a final 2: never trimmed
    coefficients[2, 60] = -0.68 * step  # a lone -1: trimmed too
    coefficients[3, 3] = 1.0 * step  # a 1 right after the others, exactly a step: kept
    levels = quantise(coefficients, step, 0.33)
    trimmed = trim_tails(coefficients, levels, step, entropy.Tables(), (2, 2), 2, 0)
    assert trimmed[0, 60] == 0 and trimmed[2, 60] == 0
    assert trimmed[1, 60] == 2 and trimmed[3, 3] == 1
    untouched = np.ones_like(levels, bool)
    untouched[[0, 2], 60] = False
    assert np.array_equal(trimmed[untouched], levels[untouched])


def test_residual_planes_round_trip_intra_and_predicted():
    rng = np.random.default_rng(2)
    grid = (5, 7)
    levels = np.zeros((35, 64), np.int64)
    chosen = rng.random((35, 64)) < 0.08
    levels[chosen] = rng.integers(-30, 30, chosen.sum())
    levels[:, 0] = rng.integers(-200, 200, 35)
    for intra in (True, False):
        writer = entropy.Writer(entropy.Tables())
        residual.write_plane(writer, levels, grid, 2, 0, intra)
        reader = entropy.Reader(entropy.Tables(), writer.finish())
        assert np.array_equal(residual.read_plane(reader, grid, 2, 0, intra), levels)


@pytest.mark.parametrize("chroma", ["420", "444"])
def test_planes_hold_a_420_frame_to_its_rounding(chroma):
    frame = moving_clip(1)[0]
    if chroma == "420":  # colour shared by 2x2 blocks, as ffmpeg makes RGB from 4:2:0
        mean = frame.reshape(24, 2, 32, 2, 3).mean((1, 3), keepdims=True)
        grey = frame.mean(-1, keepdims=True).reshape(24, 2, 32, 2, 1)
        frame = np.clip(np.rint(mean - mean.mean(-1, keepdims=True) + grey), 0, 255)
        frame = frame.reshape(48, 64, 3).astype(np.uint8)
    layout = Layout(64, 48, chroma)
    back = to_uint8(to_rgb(to_planes(frame, layout), layout))
    assert np.abs(back.astype(int) - frame).max() <= 1


@pytest.mark.parametrize(("gop", "version"), [(None, 3), (1, 3), (8, 3), (8, 1)])
def test_a_part_decodes_to_what_the_encoder_scored(gop, version):
    frames = moving_clip(11)
    layout = Layout(64, 48, "444")
    encoded = PartEncoder(layout, 30, gop, version=version).encode(frames)
    assert data_version(encoded.data) == version  # 1: as an older nvfilter wrote it
    decoded = {}
    for frame in PartDecoder(encoded.data, layout, len(frames)).frames():
        decoded[frame.frame.index] = to_uint8(to_rgb(frame.planes, layout))
    assert sorted(decoded) == list(range(11))
    for index, error in enumerate(encoded.squared_errors):
        ours = np.square(decoded[index].astype(np.float64) - frames[index]).sum()
        assert ours == pytest.approx(error, rel=1e-3, abs=len(frames[index]))
    assert psnr(np.stack([decoded[k] for k in range(11)]), frames) > 38
    assert len(encoded.data) < frames.size / 10  # a tenth of a byte a value or less


def spliced_clip() -> np.ndarray:
    """Two shots cut together: a pan, then another picture panning the other way from frame 7."""
    second = moving_clip(6, step=-2.0)[:, ::-1, :, ::-1]  # upside down, colours turned round
    return np.concatenate([moving_clip(7), np.ascontiguousarray(second)])


@pytest.mark.parametrize("gop", [None, 8])
def test_a_new_shot_inside_a_part_is_coded_intra_and_decodes_to_what_was_scored(gop):
    frames = spliced_clip()
    layout = Layout(64, 48, "444")
    encoded = PartEncoder(layout, 30, gop, starts=[7]).encode(frames)
    header, _, _ = bitstream.unpack(encoded.data)
    assert header.starts == (7,) and data_version(encoded.data) == 3
    decoder = PartDecoder(encoded.data, layout, len(frames))
    order = {frame.index: frame for frame in decoder.order}
    assert order[7].references == ()  # nothing predicted across the cut, either way
    assert all((r < 7) == (frame.index < 7) for frame in decoder.order for r in frame.references)
    assert pair_source(decoder.order, 6) is None and pair_source(decoder.order, 7) is not None
    for frame in decoder.frames():
        ours = to_uint8(to_rgb(frame.planes, layout))
        error = np.square(ours.astype(np.float64) - frames[frame.frame.index]).sum()
        assert error == pytest.approx(encoded.squared_errors[frame.frame.index], rel=1e-3)
    plain = PartEncoder(layout, 30, gop).encode(frames)
    old = PartEncoder(layout, 30, gop, starts=[7], version=2).encode(frames)
    assert data_version(old.data) == 2  # as version 2 wrote it, and read back as it was
    for frame in PartDecoder(old.data, layout, len(frames)).frames():
        ours = to_uint8(to_rgb(frame.planes, layout))
        error = np.square(ours.astype(np.float64) - frames[frame.frame.index]).sum()
        assert error == pytest.approx(old.squared_errors[frame.frame.index], rel=1e-3)
    # the intra frame costs more than predicting across the cut, and is closer to the shot
    assert encoded.squared_errors[7] < plain.squared_errors[7]


def data_version(data: bytes) -> int:
    return data[4]


def test_the_stream_version_says_which_tools_decode_it():
    """Version 3's tools (the loop filter, intra prediction) code a coarse quantiser's frames
    better than version 1's did; a version 3 stream relabelled as version 1 is refused or
    decodes to other frames than the encoder scored."""
    frames = moving_clip(9)
    layout = Layout(64, 48, "420")
    new = PartEncoder(layout, 44, 8).encode(frames)
    old = PartEncoder(layout, 44, 8, version=1).encode(frames)
    assert sum(new.squared_errors) < sum(old.squared_errors)
    assert len(new.data) < len(old.data) * 1.05
    relabelled = bytearray(new.data)
    relabelled[4] = 1
    relabelled[20:24] = zlib.crc32(bytes(relabelled[24:])).to_bytes(4, "little")
    right = [frame.planes[0] for frame in PartDecoder(new.data, layout, 9).frames()]
    try:
        wrong = [frame.planes[0] for frame in PartDecoder(bytes(relabelled), layout, 9).frames()]
    except entropy.CorruptStream:
        return
    assert not all(np.array_equal(a, b) for a, b in zip(right, wrong, strict=True))


def test_a_read_across_a_cut_is_the_nearer_frame_never_a_mix():
    frames = spliced_clip()
    model = CodedField(64, 48, len(frames), "444", target_qp=28)
    model.start_from(torch.from_numpy(frames), cuts=[7])
    assert model.pair_flows(6) is None and model.pair_flows(7) is not None
    assert np.array_equal(model.picture(6.3), model.decoded(6))
    assert np.array_equal(model.picture(6.5), model.decoded(6))  # a tie: the earlier
    assert np.array_equal(model.picture(6.7), model.decoded(7))
    rebuilt = build_model(model.architecture())
    rebuilt.load_state_dict(model.state_dict(), assign=True)
    assert np.array_equal(rebuilt.picture(6.7), model.decoded(7))


def test_a_budget_is_a_ceiling_and_a_psnr_is_aimed_at():
    frames = moving_clip(12)
    layout = Layout(64, 48, "444")
    budget = 2000.0  # bits a frame
    capped = encode_part(frames, layout, Target(psnr=60.0, bits_per_frame=budget))
    assert sum(capped.bits) <= budget * len(frames)
    aimed = encode_part(frames, layout, Target(psnr=36.0))
    reached = 10 * math.log10(255**2 * frames.size / sum(aimed.squared_errors))
    assert 33.5 < reached < 39


def test_a_psnr_target_turns_finer_before_harder_frames_not_coarser_before_easier():
    samples = 64 * 48 * 3
    at_target = samples * 8 * 255.0**2 * 10 ** (-40 / 10)  # 8 frames' error, right on 40 dB
    target = Target(psnr=40.0)

    def steered(recent: float, coming: float) -> int:
        coded = Coded(9, 1e5, at_target, 8, 1e5, at_target, samples,
                      recent_complexity=recent, coming_complexity=coming)  # fmt: skip
        return next_qp(target, 30, coded, 40)

    assert steered(0.0, 0.0) == 30  # on target, nothing known of what comes: stays
    assert steered(2.0, 2.0) == 30
    assert steered(2.0, 8.0) < 30  # four times harder frames next: finer now
    assert steered(8.0, 2.0) == 30  # easier ones: no coarser on that alone


def test_a_budget_spent_to_its_aim_turns_the_quantiser_coarser_for_easy_frames_too():
    samples = 64 * 48 * 3
    target = Target(psnr=45.0, bits_per_frame=1000.0)
    aimed = 0.97 * 1000.0 * 40  # ratecontrol.AIM of the part's budget, spent by frame 36
    coded = Coded(36, aimed, samples * 36 * 10.0, 8, 8000.0, samples * 8 * 10.0, samples,
                  spent_units=36 * 2.0 * 2 ** (-30 / 6), spent_bits=aimed,
                  left_complexity=4 * 0.5)  # fmt: skip
    assert next_qp(target, 30, coded, 40) > 30


def fitted(frames: np.ndarray, **target) -> CodedField:
    model = CodedField(frames.shape[2], frames.shape[1], len(frames), "444", **target)
    model.start_from(torch.from_numpy(frames))
    return model


def test_the_codec_model_rebuilds_from_its_architecture_and_stream():
    frames = moving_clip(9)
    model = fitted(frames, target_qp=28)
    rebuilt = build_model(model.architecture())
    rebuilt.load_state_dict(model.state_dict(), assign=True)
    for index in (0, 4, 8):
        assert np.array_equal(rebuilt.decoded(index), model.decoded(index))
    assert model.fit_squared_errors() is not None
    with pytest.raises(TypeError):  # a number written as a string is refused, not passed on
        build_model({**model.architecture(), "frames": "9"})


def test_reads_between_frames_move_along_the_stored_motion():
    frames = moving_clip(9, step=3.0)
    model = fitted(frames, target_qp=24)
    first, second = model.decoded(4), model.decoded(5)
    flows = model.pair_flows(4)
    assert flows is not None
    forward, backward = flows
    # the picture moves right: frame 4's pixel is 3 to the right in frame 5, and back
    assert np.median(forward[..., 0]) == pytest.approx(3.0, abs=0.3)
    assert np.median(backward[..., 0]) == pytest.approx(-3.0, abs=0.3)
    made = model.picture(4.5)
    assert np.array_equal(made, FramePair.from_flows(first, second, *flows).at(0.5))
    truth = moving_clip(19, step=1.5)[9]  # the pan half way between
    faded = ((first.astype(np.float64) + second) / 2).round()
    assert psnr(made[:, 8:-8], truth[:, 8:-8]) > psnr(faded[:, 8:-8], truth[:, 8:-8]) + 3


def test_motion_too_fast_for_dis_is_stored_and_read_between():
    """A square crossing 30 pixels a frame (a fifth of the width; DIS alone finds under 2): the
    encoder's proposals start again from the block search (fast_motion), so the stored motion
    and the frame read between carry the square half way."""
    frames = np.stack([square_scene(offset, 160, 96) for offset in (0, 30, 60)])
    model = fitted(frames, target_qp=24)
    forward, _ = model.pair_flows(0)
    assert np.median(forward[26:38, 24:36, 0]) == pytest.approx(30, abs=1)
    assert np.median(np.abs(forward[:, 120:, 0])) < 0.5  # the background stays
    made, truth = model.picture(0.5), square_scene(15, 160, 96)
    faded = ((model.decoded(0).astype(np.float64) + model.decoded(1)) / 2).round()
    assert psnr(made, truth) > psnr(faded, truth) + 3


def test_tall_frames_move_along_flows_at_half_size():
    """From FLOW_SHRINK_FROM rows the stored motion is read as a flow at half the size, in
    half-size pixels, and decode moves the frames along it as it is."""
    frames = moving_clip(5, 96, FLOW_SHRINK_FROM, step=3.0)
    model = fitted(frames, target_qp=24)
    forward, backward = model.pair_flows(1)
    assert forward.shape == (FLOW_SHRINK_FROM // 2, 48, 2)
    assert np.median(forward[..., 0]) == pytest.approx(1.5, abs=0.2)  # 3 pixels, at half size
    made = frames_between(model.decoded(1), model.decoded(2), [0.5], (forward, backward))[0]
    assert np.array_equal(made, model.picture(1.5))
    truth = moving_clip(10, 96, FLOW_SHRINK_FROM, step=1.5)[3]
    faded = ((model.decoded(1).astype(np.float64) + model.decoded(2)) / 2).round()
    assert psnr(made[:, 8:-8], truth[:, 8:-8]) > psnr(faded[:, 8:-8], truth[:, 8:-8]) + 3


@pytest.mark.parametrize("position", [3.0, 3.5])
def test_codec_frame_and_point_reads_agree(position):
    model = fitted(moving_clip(6), target_qp=30)
    assert_frame_and_point_reads_agree(model, (64, 48), position)
    assert_frame_and_point_reads_agree(model, (32, 24), position)


def test_a_part_of_one_frame_and_of_two():
    for count in (1, 2):
        frames = moving_clip(count)
        model = fitted(frames, target_qp=26)
        assert psnr(model.decoded(count - 1), frames[-1]) > 40
        assert regular_groups(count, 8) == ([1] if count == 2 else [])


@pytest.mark.parametrize("size", [(8, 6), (32, 24), (40, 12)])
def test_frames_smaller_than_the_searches_code_and_decode(size):
    width, height = size
    frames = moving_clip(5, width, height)
    model = fitted(frames, target_psnr=36.0, bits_per_frame=width * height * 8.0)
    assert model.decoded(4).shape == frames[4].shape
    assert psnr(model.decoded(4), frames[4]) > 30
