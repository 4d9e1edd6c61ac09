"""Key- and tempo-invariant symbols of a line, and their n-grams.

Each note of a line (from its third on) becomes one symbol of two parts:

* the **pitch interval** from the previous note, in semitones (clipped to ±24): the same
  tune in another key gives the same intervals;
* the **rhythm ratio class**: the inter-onset interval (IOI) that ends on this note divided
  by the one before it, as ``round(2 · log2(ratio))`` (clipped to ±7): half-octave steps of
  the ratio, so 1:1 → 0, 3:2 → 1, 2:1 → 2, 3:1 → 3. The same tune played faster or slower
  gives the same ratios.

An n-gram is :data:`GRAM` consecutive symbols (so ``GRAM + 2`` notes), packed exactly into
one unsigned 64-bit integer (10 bits per symbol): no hashing, no collisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.attribution.guard.lines import Line

GRAM = 4
"""Symbols per n-gram: 4 symbols span 6 notes, about one bar of a folk tune in quavers."""

MAX_INTERVAL = 24
MAX_RATIO_CLASS = 7
NO_RHYTHM = -128
"""The rhythm class of a line's first two notes (no ratio yet): it matches any class."""
SYMBOL_BITS = 10


@dataclass(frozen=True)
class Encoded:
    """A line as the guard compares it.

    Attributes:
        pitches: ``int16[N]`` MIDI pitches.
        rhythm: ``int8[N]`` rhythm ratio class of each note (:data:`NO_RHYTHM` for the first two).
        bars: ``int32[N]`` the bar each note starts in.
        onsets: ``float32[N]`` onsets in seconds.
        rarity: ``float32[N]`` for catalog lines: how rare the patterns around each note are in
            the catalog (0 everywhere .. 1 unique); ``None`` for a line being checked.
        metered: its bars come from a time signature (``False``: a transcription, whose "bars"
            are MIDI's assumed 4/4 at 120 bpm).
    """

    pitches: np.ndarray
    rhythm: np.ndarray
    bars: np.ndarray
    onsets: np.ndarray
    rarity: np.ndarray | None = None
    metered: bool = True

    def __len__(self) -> int:
        return len(self.pitches)


DEFAULT_BAR_SECONDS = 2.0
"""A bar where a line carries no bar lines: 4/4 at 120 bpm, what MIDI assumes without a time signature."""
MAX_NOTES_PER_BAR = 16.0


def notes_per_bar(line: Encoded) -> float:
    """How many notes a bar of ``line`` holds on average: what turns a count of notes into bars.

    From the bars its notes fall in; a line of many seconds all in "bar 1" has no bar lines
    (no time signature reached it), so its bars are taken as :data:`DEFAULT_BAR_SECONDS` long.
    At least 1 and at most :data:`MAX_NOTES_PER_BAR`.
    """
    n = len(line)
    if n == 0:
        return 1.0
    bars = float(int(line.bars.max()) - int(line.bars.min()) + 1)
    seconds = float(line.onsets[-1]) - float(line.onsets[0])
    if bars == 1.0 and seconds > 2 * DEFAULT_BAR_SECONDS:
        bars = seconds / DEFAULT_BAR_SECONDS
    return float(np.clip(n / bars, 1.0, MAX_NOTES_PER_BAR))


def rhythm_classes(onsets: np.ndarray) -> np.ndarray:
    """The rhythm ratio class of every note (:data:`NO_RHYTHM` for the first two)."""
    n = len(onsets)
    out = np.full(n, NO_RHYTHM, dtype=np.int8)
    if n < 3:
        return out
    ioi = np.maximum(np.diff(np.asarray(onsets, dtype=np.float64)), 1e-4)  # ioi[k]: note k → k+1
    ratio = np.round(2.0 * np.log2(ioi[1:] / ioi[:-1]))
    out[2:] = np.clip(ratio, -MAX_RATIO_CLASS, MAX_RATIO_CLASS).astype(np.int8)
    return out


def encode(line: Line) -> Encoded:
    """A :class:`Line` as pitches, rhythm classes, bars and onsets."""
    return Encoded(
        np.asarray(line.pitches, dtype=np.int16),
        rhythm_classes(line.onsets),
        np.asarray(line.bars, dtype=np.int32),
        np.asarray(line.onsets, dtype=np.float32),
        metered=line.metered,
    )


def symbols(pitches: np.ndarray, rhythm: np.ndarray) -> np.ndarray:
    """``int64[N-2]``: one symbol per note from the third on (interval and rhythm class, 10 bits)."""
    if len(pitches) < 3:
        return np.zeros(0, dtype=np.int64)
    interval = np.clip(np.diff(pitches.astype(np.int64))[1:], -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    ratio = rhythm[2:].astype(np.int64) + MAX_RATIO_CLASS
    return interval * (2 * MAX_RATIO_CLASS + 2) + ratio


def grams(pitches: np.ndarray, rhythm: np.ndarray, n: int = GRAM) -> np.ndarray:
    """``uint64[N-n-1]``: every n-gram of the line's symbols, packed; gram ``k`` starts at note ``k``."""
    sym = symbols(pitches, rhythm)
    if len(sym) < n:
        return np.zeros(0, dtype=np.uint64)
    count = len(sym) - n + 1
    packed = np.zeros(count, dtype=np.uint64)
    for k in range(n):
        packed = (packed << np.uint64(SYMBOL_BITS)) | sym[k : k + count].astype(np.uint64)
    return packed


def grams_batch(pitches: np.ndarray, rhythm: np.ndarray, starts: np.ndarray, n: int = GRAM) -> tuple[np.ndarray, ...]:
    """The n-grams of many lines stored end to end, without a Python loop per line.

    ``starts`` (``int64[L+1]``) are the offsets of the lines in ``pitches``/``rhythm``.
    Returns ``(grams uint64[G], line int64[G])``: each gram and the line it comes from.
    """
    total = len(pitches)
    if total < n + 2:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    line_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    p = pitches.astype(np.int64)
    interval = np.zeros(total, dtype=np.int64)
    interval[1:] = np.clip(p[1:] - p[:-1], -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    sym = interval * (2 * MAX_RATIO_CLASS + 2) + (rhythm.astype(np.int64) + MAX_RATIO_CLASS)
    # a gram at note k spans notes k .. k+n+1 (symbols of notes k+2 .. k+n+1); valid inside one line
    count = total - n - 1
    packed = np.zeros(count, dtype=np.uint64)
    for k in range(n):
        packed = (packed << np.uint64(SYMBOL_BITS)) | sym[k + 2 : k + 2 + count].astype(np.uint64)
    valid = line_of[:count] == line_of[n + 1 : n + 1 + count]
    return packed[valid], line_of[:count][valid]
