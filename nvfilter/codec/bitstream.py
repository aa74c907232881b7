"""The byte layout of one coded part (a ``codec`` network's ``stream`` tensor), apart from the maths.

All numbers little-endian::

    offset  size            field
    0       4               magic b"NVC1"
    4       1               stream version: 3 (frames deblocked: loopfilter.py; intra blocks
                            predicted: intra.py); older files hold 1, or 2 where a part
                            holds a new shot (below)
    5       1               chroma: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0 (planes.py)
    6       2               0
    8       2               width of the frames (before padding)
    10      2               height
    12      4               frames in the part
    16      4               groups: how many anchors follow the intra frame (structure.py)
    20      4               CRC-32 (zlib) of every byte from offset 24 to the end
    24      groups          each group's frames, from one anchor to the next (uint8, 1 .. 64),
                            plus 128 where its anchor starts a new shot, coded intra (version 2
                            and up)
    ...     frames          each frame's quantiser parameter, in coding order (uint8)
    ...     0-3             zeros, to a multiple of 4 bytes
    ...     4 * frames      each frame's length in 32-bit words, in coding order (uint32)
    ...     4 * sum         the frames' range-coded words, one after another, in coding order

A frame's words decode (entropy.Reader) into, in this order: for a frame with two references its
modes (motion.py); for each reference its motion field; then the grey plane's coefficients and
the two colour planes' (residual.py). The coding order and references follow from the frame
count and the groups (structure.py), so the stream does not repeat them. Versions 1 and 2 are
read as they were written: without the loop filter, each intra block's mean coded as its
difference from its left neighbour's (residual.py); version 1 without a new shot inside a part.
In version 3 an intra frame's words hold, for each plane, its blocks' modes (intra.py) and then
its coefficients as a predicted frame's are coded.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from nvfilter.codec.entropy import CorruptStream
from nvfilter.codec.structure import MAX_GOP
from nvfilter.codec.transform import QP_MAX

MAGIC = b"NVC1"
STREAM_VERSION = 3
"""The newest version written and read: version 3 deblocks its frames and predicts its intra
blocks (TOOLS_FROM); version 2 does neither; version 1 has no new shot inside a part either."""
TOOLS_FROM = 3
"""The first version whose frames are deblocked (loopfilter.py) and whose intra frames' blocks are
predicted from their neighbours (intra.py)."""
NEW_SHOT = 128
"""Added to a group's size where its anchor starts a new shot (structure.coding_order)."""
CHROMA_CODES = {"444": 0, "422": 1, "420": 2}
_HEADER = struct.Struct("<4sBBHHHIII")


@dataclass(frozen=True)
class PartHeader:
    width: int
    height: int
    frames: int
    chroma: str
    groups: list[int]
    starts: tuple[int, ...] = ()
    """Frames that start a new shot inside the part: anchors coded intra."""
    version: int = STREAM_VERSION
    """TOOLS_FROM and up: the newest tools; 1 or 2: as an older nvfilter wrote it (2 where a
    part holds a new shot)."""


def pack(header: PartHeader, qps: list[int], frames: list[np.ndarray]) -> bytes:
    """The part's bytes from its header and each frame's quantiser and words (coding order)."""
    anchors = np.cumsum(header.groups)
    flagged = np.asarray(header.groups) + NEW_SHOT * np.isin(anchors, header.starts)
    table = flagged.astype(np.uint8).tobytes() + np.asarray(qps, np.uint8).tobytes()
    table += b"\0" * (-len(table) % 4)
    table += np.asarray([len(words) for words in frames], "<u4").tobytes()
    body = table + b"".join(np.asarray(words, "<u4").tobytes() for words in frames)
    version = header.version if header.version >= TOOLS_FROM else 2 if header.starts else 1
    head = _HEADER.pack(MAGIC, version, CHROMA_CODES[header.chroma], 0, header.width,
                        header.height, header.frames, len(header.groups), zlib.crc32(body))  # fmt: skip
    return head + body


def unpack(data: bytes) -> tuple[PartHeader, np.ndarray, list[np.ndarray]]:
    """(header, quantisers, each frame's words) of a part's bytes; CorruptStream if they are
    not a whole, unchanged part."""
    if len(data) < _HEADER.size:
        raise CorruptStream("the coded stream is shorter than its header")
    magic, version, chroma, _, width, height, frames, count, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptStream("the coded stream does not start with NVC1")
    if not 1 <= version <= STREAM_VERSION:
        raise CorruptStream(f"coded stream version {version} is not one this nvfilter reads")
    names = {code: name for name, code in CHROMA_CODES.items()}
    if chroma not in names or min(width, height, frames) < 1 or not count < frames:
        raise CorruptStream("the coded stream's header is out of range")
    body = memoryview(data)[_HEADER.size :]
    if zlib.crc32(body) != crc:
        raise CorruptStream("the coded stream is corrupt (its CRC does not match)")
    head = count + frames
    table = head + (-head % 4) + 4 * frames
    if len(body) < table:
        raise CorruptStream("the coded stream is shorter than its frame table")
    flagged = np.frombuffer(body[:count], np.uint8).astype(np.int64)
    new_shot = flagged >= NEW_SHOT if version >= 2 else np.zeros(count, bool)
    groups = (flagged - NEW_SHOT * new_shot).tolist()
    if sum(groups) != frames - 1 or min(groups, default=1) < 1 or max(groups, default=1) > MAX_GOP:
        raise CorruptStream("the coded stream's groups do not cover its frames")
    starts = tuple(np.cumsum(groups, dtype=np.int64)[new_shot].tolist())
    qps = np.frombuffer(body[count:head], np.uint8)
    lengths = np.frombuffer(body[table - 4 * frames : table], "<u4").astype(np.int64)
    if int(qps.max()) > QP_MAX:
        raise CorruptStream("a frame's quantiser is out of range")
    if 4 * int(lengths.sum()) != len(body) - table:
        raise CorruptStream("the coded stream's frame lengths do not add up to its size")
    words = np.frombuffer(body[table:], "<u4")
    ends = np.cumsum(lengths)
    parts = [words[end - length : end] for end, length in zip(ends, lengths, strict=True)]
    header = PartHeader(width, height, frames, names[chroma], groups, starts, version)
    return header, qps, parts
