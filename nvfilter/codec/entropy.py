"""Entropy coding: constriction's range coder, with frequency tables that adapt as a part is coded.

Every symbol is coded under the table of its context (a name and a few small numbers: the frame's
level, the plane, the coefficient's band...). A table starts from a fixed prior and, after each
group of symbols, becomes half what it was plus that group's counts, in whole numbers, on both
sides: so the model is fitted to the video as it is coded and costs no bits to send, and the
decoder's tables are the encoder's exactly (integers; constriction normalises the same integers
the same way on every machine). Nothing a table depends on comes from pixel values.

Signed values (coefficient levels, motion vectors' differences) use an alphabet of
``2 * escape + 1`` symbols around 0: the two ends stand for "at least ``escape``" that way, and
the rest of the magnitude follows as an Exp-Golomb code (its length under an adaptive table of
its own, its bits uniform), so any value fits and large ones stay rare and cheap to skip.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import constriction
import numpy as np

_MODEL = constriction.stream.model
EXTRA_BITS_MAX = 24
"""Longest Exp-Golomb tail a stream may hold: magnitudes up to 2^24 (a vector across 16384
pixels in quarter pixels is 2^16); a longer one is a corrupt stream."""
_CHUNK = 12
"""Uniform bits are coded at most this many at a time (constriction's uniform sizes < 2^24)."""
PRIOR_WEIGHT = 64
"""Total count of a fresh table: the first frames weigh it against their own counts, so a few
hundred symbols of a context outweigh it."""


class CorruptStream(ValueError):
    """The coded stream says something impossible (the reader turns it into one NvwError)."""


def prior(size: int, centre: int = 0, shift: int = 2) -> np.ndarray:
    """A fresh table over ``size`` symbols: counts falling by 2^-shift a step away from
    ``centre``, whole numbers, at least 1 each, about PRIOR_WEIGHT in all."""
    distance = np.abs(np.arange(size) - centre)
    counts = np.maximum(1, (1 << 12) >> np.minimum(30, shift * distance))
    return np.maximum(1, counts * PRIOR_WEIGHT // int(counts.sum())).astype(np.int64)


INHERIT_SHIFT = 2
"""A table first used takes a quarter of a related table's counts (Tables.relatives), so the
first frames of a kind (a new B level, a second reference) start near what the others learned
rather than from the prior, yet soon follow their own symbols."""


class Tables:
    """The adaptive frequency tables of one part, by context key. ``relatives`` names, for a
    key first used, the keys whose table to start from (the first that exists; else the prior).
    A table is made only when its symbols are first coded (never by ``bits``), so encoder and
    decoder make it at the same point of the stream, from the same counts."""

    def __init__(self, relatives: Callable[[Hashable], Iterable[Hashable]] | None = None) -> None:
        self.counts: dict[Hashable, np.ndarray] = {}
        self._models: dict[Hashable, object] = {}
        self.relatives = relatives or (lambda key: ())

    def _fresh(self, key: Hashable, size: int, centre: int) -> np.ndarray:
        for relative in self.relatives(key):
            counts = self.counts.get(relative)
            if counts is not None and len(counts) == size:
                return np.maximum(1, counts >> INHERIT_SHIFT)
        return prior(size, centre)

    def table(self, key: Hashable, size: int, centre: int = 0) -> np.ndarray:
        if key not in self.counts:
            self.counts[key] = self._fresh(key, size, centre)
        counts = self.counts[key]
        if len(counts) != size:
            raise ValueError(f"context {key!r} used with two alphabets")
        return counts

    def model(self, key: Hashable, size: int, centre: int = 0) -> object:
        if key not in self._models:
            counts = self.table(key, size, centre)
            self._models[key] = _MODEL.Categorical(counts.astype(np.float64), perfect=False)
        return self._models[key]

    def bits(self, key: Hashable, size: int, centre: int = 0) -> np.ndarray:
        """What each symbol of ``key``'s table costs now, in bits (for the encoder's choices;
        a table not yet used is costed as it would start, and not made)."""
        counts = self.counts.get(key)
        if counts is None:
            counts = self._fresh(key, size, centre)
        counts = counts.astype(np.float64)
        return np.log2(counts.sum()) - np.log2(counts)

    def update(self, key: Hashable, symbols: np.ndarray) -> None:
        counts = self.counts[key]
        seen = np.bincount(symbols, minlength=len(counts))[: len(counts)]
        self.counts[key] = np.maximum(1, (counts >> 1) + seen)
        self._models.pop(key, None)


def signed_size(escape: int) -> int:
    return 2 * escape + 1


def signed_bits(tables: Tables, key: Hashable, escape: int) -> np.ndarray:
    """Bits of each value -escape..escape under ``key``'s table (the ends: their escape symbol,
    not counting the tail), indexed by value + escape."""
    return tables.bits(key, signed_size(escape), escape)


class Writer:
    """Symbols in, one range-coded stream out (``finish``)."""

    def __init__(self, tables: Tables, spent: dict[str, int] | None = None) -> None:
        self.tables = tables
        self.coder = constriction.stream.queue.RangeEncoder()
        self.spent = spent
        """Bits written, by the first item of each key (a benchmark's breakdown), if given."""

    def symbols(self, key: Hashable, size: int, symbols: np.ndarray, centre: int = 0) -> None:
        """Whole numbers 0 .. size - 1 under ``key``'s table (then updated with them)."""
        symbols = np.ascontiguousarray(symbols, dtype=np.int32).ravel()
        if len(symbols) == 0:
            return
        before = self.coder.num_bits()
        self.coder.encode(symbols, self.tables.model(key, size, centre))
        self.tables.update(key, symbols)
        if self.spent is not None:
            name = _name(key)
            self.spent[name] = self.spent.get(name, 0) + self.coder.num_bits() - before

    def signed(self, key: Hashable, escape: int, values: np.ndarray) -> None:
        """Signed whole numbers, escaped beyond ``escape`` (module docstring)."""
        values = np.ascontiguousarray(values, dtype=np.int64).ravel()
        symbols = np.clip(values, -escape, escape) + escape
        self.symbols(key, signed_size(escape), symbols, escape)
        beyond = np.abs(values[np.abs(values) >= escape]) - escape
        if len(beyond):
            self._tail((key, "tail"), beyond)

    def unsigned(self, key: Hashable, escape: int, values: np.ndarray) -> None:
        """Whole numbers >= 0, escaped from ``escape`` on."""
        values = np.ascontiguousarray(values, dtype=np.int64).ravel()
        self.symbols(key, escape + 1, np.minimum(values, escape))
        beyond = values[values >= escape] - escape
        if len(beyond):
            self._tail((key, "tail"), beyond)

    def _tail(self, key: Hashable, magnitudes: np.ndarray) -> None:
        """Exp-Golomb: the length k of magnitude + 1 under an adaptive table, then its k low bits."""
        above = magnitudes + 1
        lengths = (np.frexp(above.astype(np.float64))[1] - 1).astype(np.int64)  # exact: < 2^53
        if lengths.max() > EXTRA_BITS_MAX:
            raise ValueError("a value too large for the stream")
        self.symbols(key, EXTRA_BITS_MAX + 1, lengths)
        low = above - (np.int64(1) << lengths)
        for start in range(0, EXTRA_BITS_MAX, _CHUNK):
            width = np.clip(lengths - start, 0, _CHUNK)
            has = width > 0
            if not has.any():
                break
            bits = (low[has] >> start) & ((np.int64(1) << width[has]) - 1)
            self.coder.encode(
                bits.astype(np.int32),
                _MODEL.Uniform(),
                (np.int64(1) << width[has]).astype(np.int32),
            )

    def finish(self) -> np.ndarray:
        """The coded words (uint32)."""
        return np.asarray(self.coder.get_compressed(), dtype=np.uint32)


def _name(key: Hashable) -> str:
    """What a key codes, for Writer.spent: its first item (a tail's: its value's)."""
    while isinstance(key, tuple) and key:
        key = key[0]
    return str(key)


class Reader:
    """``Writer`` mirrored: the same calls in the same order give back the same symbols."""

    def __init__(self, tables: Tables, words: np.ndarray) -> None:
        self.tables = tables
        self.coder = constriction.stream.queue.RangeDecoder(
            np.ascontiguousarray(words, dtype=np.uint32)
        )

    def symbols(self, key: Hashable, size: int, count: int, centre: int = 0) -> np.ndarray:
        if count == 0:
            return np.zeros(0, np.int32)
        symbols = np.asarray(
            self.coder.decode(self.tables.model(key, size, centre), count), dtype=np.int32
        )
        self.tables.update(key, symbols)
        return symbols

    def signed(self, key: Hashable, escape: int, count: int) -> np.ndarray:
        values = self.symbols(key, signed_size(escape), count, escape).astype(np.int64) - escape
        ends = np.abs(values) >= escape
        if ends.any():
            magnitudes = self._tail((key, "tail"), int(ends.sum())) + escape
            values[ends] = np.sign(values[ends]) * magnitudes
        return values

    def unsigned(self, key: Hashable, escape: int, count: int) -> np.ndarray:
        values = self.symbols(key, escape + 1, count).astype(np.int64)
        ends = values >= escape
        if ends.any():
            values[ends] = self._tail((key, "tail"), int(ends.sum())) + escape
        return values

    def _tail(self, key: Hashable, count: int) -> np.ndarray:
        lengths = self.symbols(key, EXTRA_BITS_MAX + 1, count).astype(np.int64)
        low = np.zeros(count, np.int64)
        for start in range(0, EXTRA_BITS_MAX, _CHUNK):
            width = np.clip(lengths - start, 0, _CHUNK)
            has = width > 0
            if not has.any():
                break
            sizes = (np.int64(1) << width[has]).astype(np.int32)
            bits = np.asarray(self.coder.decode(_MODEL.Uniform(), sizes), dtype=np.int64)
            low[has] |= np.minimum(bits, sizes - 1) << start
        return (np.int64(1) << lengths) + low - 1
