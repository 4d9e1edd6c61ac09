"""The melody and bass lines of a piece: what the symbolic guard compares.

A copied song is recognised by its tune and its bass, not by its chords' voicing, so each
piece is reduced to two monophonic lines (drums left out):

* the **melody**: the notes heard on top (:func:`accord.media.features.top_line_indices`:
  the highest note at each onset, unless a higher note struck earlier still sounds);
* the **bass**: the same rule upside down (the lowest note at each onset).

A line keeps, per note, its pitch, its onset in seconds and the bar it starts in (from the
file's time signatures), so evidence can say "bars 5-12" rather than "notes 40-71".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.media.features import MidiSource, Performance, read_performance, top_line_indices

ONSET_TOLERANCE_S = 0.01  # onsets closer than 10 ms are one chord
MIN_LINE_NOTES = 6  # shorter lines carry no evidence (one n-gram needs 6-7 notes)
LINE_KINDS = ("melody", "bass")


@dataclass(frozen=True)
class Line:
    """One monophonic line of a piece.

    Attributes:
        kind: ``"melody"`` or ``"bass"``.
        pitches: ``int16[N]`` MIDI pitches, in time order.
        onsets: ``float64[N]`` onsets in seconds.
        bars: ``int32[N]`` the 1-based bar each note starts in.
        metered: the bars come from the file's time signature (``False``: MIDI's assumed 4/4).
    """

    kind: str
    pitches: np.ndarray
    onsets: np.ndarray
    bars: np.ndarray
    metered: bool = True

    def __len__(self) -> int:
        return len(self.pitches)


def _bars_of(onsets: np.ndarray, downbeats: np.ndarray) -> np.ndarray:
    if len(downbeats) == 0:
        return np.ones(len(onsets), dtype=np.int32)
    # a note a hair before a downbeat (float rounding) belongs to the bar it starts
    return np.maximum(np.searchsorted(downbeats, onsets + 1e-6, side="right"), 1).astype(np.int32)


def line_from_notes(kind: str, pitches: np.ndarray, onsets: np.ndarray, bars: np.ndarray | None = None) -> Line:
    """A :class:`Line` from plain arrays (bars 1-based; all bar 1 when not given)."""
    p = np.asarray(pitches, dtype=np.int16)
    o = np.asarray(onsets, dtype=np.float64)
    b = np.ones(len(p), dtype=np.int32) if bars is None else np.asarray(bars, dtype=np.int32)
    return Line(kind, p, o, b)


def extract_lines(midi: MidiSource) -> tuple[Line, ...]:
    """The melody and bass lines of a MIDI file (bytes, path or :class:`Performance`).

    A line shorter than :data:`MIN_LINE_NOTES` is left out; a monophonic piece has a bass
    line equal to its melody, so only the melody is kept.
    """
    perf = midi if isinstance(midi, Performance) else read_performance(midi)
    pitched = perf.pitched
    if len(pitched) == 0:
        return ()
    onsets, durations, pitches = pitched[:, 0], pitched[:, 1], pitched[:, 2]
    top = top_line_indices(onsets, durations, pitches, ONSET_TOLERANCE_S)
    bottom = top_line_indices(onsets, durations, 127.0 - pitches, ONSET_TOLERANCE_S)
    lines = []
    for kind, idx in (("melody", top), ("bass", bottom)):
        if len(idx) < MIN_LINE_NOTES:
            continue
        if kind == "bass" and len(idx) == len(top) and np.array_equal(idx, top):
            continue  # monophonic: the bass is the melody
        o = onsets[idx]
        lines.append(Line(kind, pitches[idx].astype(np.int16), o, _bars_of(o, perf.downbeats), perf.metered))
    return tuple(lines)
