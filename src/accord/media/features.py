"""Musical statistics of a MIDI file, and distances between two sets of pieces.

Everything starts from :func:`read_performance`, which parses a MIDI file with symusic
and converts it to seconds. The statistics are pure functions of its note table:

* :func:`notes`: one row per note, ``(onset_s, duration_s, pitch, velocity, program)``;
  drum notes (GM channel 10) carry program ``-1``, as miditok writes them;
* :func:`pitch_class_histogram`, :func:`note_density`, :func:`pitch_range`;
* :func:`key_estimate`: Krumhansl-Schmuckler with the Krumhansl-Kessler profiles;
* :func:`key_consistency`: the share of 4-second windows in the global key;
* :func:`repetition`: the share of melodic 4-note interval patterns heard again;
* :func:`describe`: all of them at once, as a JSON-ready dict;
* :func:`compare`: distances between generated and reference descriptions (lower is better).

Pitch statistics leave drum notes out: a drum note's "pitch" picks an instrument.

Every function that takes a MIDI file takes its bytes, a path to it, or a
:class:`Performance` already read (so :func:`describe` parses once).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import numpy as np
from symusic.core import ScoreSecond, ScoreTick

from accord.errors import ValidationError

DRUM_PROGRAM = -1
"""The ``program`` column of drum notes (GM channel 10 has no program)."""

GM_PROGRAM_NAMES: tuple[str, ...] = (
    # Piano
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    # Chromatic percussion
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    # Organ
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    # Guitar
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    # Bass
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    # Strings
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    # Ensemble
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    # Brass
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    # Reed
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    # Pipe
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    # Synth lead
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    # Synth pad
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    # Synth effects
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    # Ethnic
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    # Percussive
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    # Sound effects
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)  # fmt: skip
"""The 128 General MIDI level 1 program names, indexed by program number (0-based)."""

NOTE_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Pitch-class names, with the spelling most keys use (F#, not Gb; Bb, not A#)."""

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

KEY_WINDOW_SECONDS = 4.0
"""Window length for :func:`key_consistency`: about two bars at a moderate tempo."""

REPETITION_NOTES = 4
"""Notes per pattern for :func:`repetition`: 4 notes, so 3 melodic intervals."""

_ONSET_GRID_S = 0.01  # onsets closer than 10 ms count as one chord when finding the top line


def gm_program_name(program: int) -> str:
    """The General MIDI name of ``program`` (0-127), or ``"Drums"`` for :data:`DRUM_PROGRAM`."""
    if program == DRUM_PROGRAM:
        return "Drums"
    if not 0 <= program < len(GM_PROGRAM_NAMES):
        msg = f"program={program!r}: expected a General MIDI program 0-127 or {DRUM_PROGRAM} for drums"
        raise ValidationError(msg, field="program", value=program)
    return GM_PROGRAM_NAMES[program]


@dataclass(frozen=True)
class Instrument:
    """One track of a MIDI file.

    Attributes:
        name: the track's name in the file (``""`` when it has none).
        program: its GM program (0-127), or :data:`DRUM_PROGRAM` for drums.
        notes: how many notes it plays.
    """

    name: str
    program: int
    notes: int

    @property
    def label(self) -> str:
        """``"Melody — Violin"`` or just ``"Violin"``: for legends and reports."""
        gm = gm_program_name(self.program)
        return f"{self.name} — {gm}" if self.name and self.name != gm else gm


@dataclass(frozen=True)
class Performance:
    """A MIDI file read into seconds.

    Attributes:
        notes: ``float64[N, 5]`` rows ``(onset_s, duration_s, pitch, velocity, program)``,
            sorted by onset, then pitch, then track.
        track: ``int64[N]``: the index into ``instruments`` of each note.
        instruments: the tracks that play at least one note, in file order.
        downbeats: the start of every bar in seconds (from the time signatures).
        seconds: the end of the file in seconds (last note-off or last event).
        metered: the file states a time signature; without one, ``downbeats`` are MIDI's
            assumed 4/4 and say nothing about the music's bars (a transcription, a raw take).
    """

    notes: np.ndarray
    track: np.ndarray
    instruments: tuple[Instrument, ...]
    downbeats: np.ndarray
    seconds: float
    metered: bool = True

    @property
    def pitched(self) -> np.ndarray:
        """The note rows without drum notes."""
        return self.notes[self.notes[:, 4] != DRUM_PROGRAM]


MidiSource = bytes | Path | Performance


def read_performance(midi: bytes | Path) -> Performance:
    """Parse a MIDI file (bytes or a path) into a :class:`Performance` in seconds.

    Raises:
        ValidationError: when the bytes are not a MIDI file symusic can read.
    """
    try:
        score = ScoreTick.from_file(str(midi)) if isinstance(midi, Path) else ScoreTick.from_midi(midi)
        seconds_score = cast(ScoreSecond, score.to("second"))  # the stubs type to() as object
    except (RuntimeError, ValueError, OSError) as error:
        what = str(midi) if isinstance(midi, Path) else f"{len(midi)} bytes"
        msg = f"midi={what}: expected a Standard MIDI File symusic can read ({error})"
        raise ValidationError(msg, field="midi", value=what) from error
    rows: list[np.ndarray] = []
    tracks: list[np.ndarray] = []
    instruments: list[Instrument] = []
    for track in seconds_score.tracks:
        arrays = track.notes.numpy()
        count = len(arrays["time"])
        if count == 0:
            continue
        program = DRUM_PROGRAM if track.is_drum else int(track.program)
        block = np.empty((count, 5), dtype=np.float64)
        block[:, 0] = arrays["time"]
        block[:, 1] = arrays["duration"]
        block[:, 2] = arrays["pitch"]
        block[:, 3] = arrays["velocity"]
        block[:, 4] = program
        rows.append(block)
        tracks.append(np.full(count, len(instruments), dtype=np.int64))
        instruments.append(Instrument(name=str(track.name).strip(), program=program, notes=count))
    if rows:
        table = np.concatenate(rows)
        track_of = np.concatenate(tracks)
        # Sort by onset, then pitch, then track, so the table does not depend on track order in ties.
        order = np.lexsort((track_of, table[:, 2], table[:, 0]))
        table, track_of = table[order], track_of[order]
        last_off = float((table[:, 0] + table[:, 1]).max())
    else:
        table, track_of, last_off = np.zeros((0, 5)), np.zeros(0, dtype=np.int64), 0.0
    end = max(last_off, float(seconds_score.end()))
    downbeats = np.asarray(seconds_score.get_downbeats(), dtype=np.float64) if end > 0 else np.zeros(0)
    return Performance(
        notes=table,
        track=track_of,
        instruments=tuple(instruments),
        downbeats=downbeats[downbeats <= end],
        seconds=end,
        metered=len(score.time_signatures) > 0,
    )


def _performance(midi: MidiSource) -> Performance:
    return midi if isinstance(midi, Performance) else read_performance(midi)


def notes(midi: MidiSource) -> np.ndarray:
    """Every note as ``(onset_s, duration_s, pitch, velocity, program)``, ``float64[N, 5]``, by onset.

    Drum notes carry program :data:`DRUM_PROGRAM` (``-1``).
    """
    return _performance(midi).notes


def pitch_class_histogram(midi: MidiSource, *, weight: Literal["count", "duration"] = "count") -> np.ndarray:
    """The share of pitched notes (or of sounding time) in each pitch class C..B; sums to 1 (zeros if none)."""
    pitched = _performance(midi).pitched
    return _pc_histogram(pitched[:, 2], pitched[:, 1] if weight == "duration" else None)


def _pc_histogram(pitches: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    hist = np.bincount(pitches.astype(np.int64) % 12, weights=weights, minlength=12).astype(np.float64)
    total = hist.sum()
    return hist / total if total > 0 else hist


def note_density(midi: MidiSource) -> float:
    """Pitched notes per second, over the span from the first onset to the last note-off (0.0 if none)."""
    pitched = _performance(midi).pitched
    if len(pitched) == 0:
        return 0.0
    span = float((pitched[:, 0] + pitched[:, 1]).max() - pitched[:, 0].min())
    return len(pitched) / span if span > 0 else 0.0


class PitchRange(NamedTuple):
    """The span of the pitched notes: ``semitones = highest - lowest`` (all 0 when there are none)."""

    semitones: int
    lowest: int
    highest: int


def pitch_range(midi: MidiSource) -> PitchRange:
    """The lowest and highest pitched note and the semitones between them."""
    pitches = _performance(midi).pitched[:, 2]
    if len(pitches) == 0:
        return PitchRange(0, 0, 0)
    low, high = int(pitches.min()), int(pitches.max())
    return PitchRange(high - low, low, high)


def _key_of_histogram(hist: np.ndarray) -> tuple[str, float]:
    """Krumhansl-Schmuckler: the key whose rotated profile correlates best with ``hist``."""
    if hist.sum() <= 0 or np.ptp(hist) == 0:
        return "", 0.0  # no notes, or every pitch class equally often: no key to find
    best_name, best_r = "", -2.0
    # Fixed order (majors C..B, then minors C..B): ties go to the first, so results are stable.
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1])
            if r > best_r + 1e-12:
                best_name, best_r = f"{NOTE_NAMES[tonic]} {mode}", r
    return best_name, best_r


def key_estimate(midi: MidiSource) -> tuple[str, float]:
    """The most likely key, e.g. ``("C major", 0.89)``, and its Pearson correlation.

    Krumhansl-Schmuckler: the duration-weighted pitch-class histogram is correlated with
    the Krumhansl-Kessler major and minor profiles in all 12 transpositions. Returns
    ``("", 0.0)`` when there is nothing to decide on (no pitched notes, or a flat histogram).
    """
    pitched = _performance(midi).pitched
    return _key_of_histogram(_pc_histogram(pitched[:, 2], pitched[:, 1]))


def tonic_relative_histogram(histogram: np.ndarray | Sequence[float], key: str) -> np.ndarray:
    """``histogram`` rotated so the tonic of ``key`` (``"A minor"``) is first; unchanged when ``key`` is ``""``.

    Pieces in different keys become comparable: scale degrees instead of pitch classes.
    """
    h = np.asarray(histogram, dtype=np.float64)
    if not key:
        return h
    tonic = NOTE_NAMES.index(key.split()[0])
    return np.roll(h, -tonic)


def key_consistency(midi: MidiSource, *, window_s: float = KEY_WINDOW_SECONDS) -> float:
    """The share of ``window_s`` windows whose own key estimate is the piece's global key.

    Windows are consecutive and do not overlap; each note counts in a window for the time
    it sounds there. Windows with no sounding pitched note are skipped. A relative minor
    counts as a different key (so a piece that modulates to it scores lower). 1.0 for a piece
    that stays in one key throughout, 0.0 when there is no key to find.
    """
    if window_s <= 0:
        msg = f"window_s={window_s!r}: expected a positive number of seconds"
        raise ValidationError(msg, field="window_s", value=window_s)
    pitched = _performance(midi).pitched
    global_key, _ = _key_of_histogram(_pc_histogram(pitched[:, 2], pitched[:, 1]))
    if not global_key:
        return 0.0
    onsets, offsets = pitched[:, 0], pitched[:, 0] + pitched[:, 1]
    windows = math.ceil(float(offsets.max()) / window_s)
    matches = counted = 0
    for w in range(windows):
        start, stop = w * window_s, (w + 1) * window_s
        overlap = np.clip(np.minimum(offsets, stop) - np.maximum(onsets, start), 0.0, None)
        if overlap.sum() <= 0:
            continue
        counted += 1
        matches += _key_of_histogram(_pc_histogram(pitched[:, 2], overlap))[0] == global_key
    return matches / counted if counted else 0.0


def top_line_indices(onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the notes heard on top, in time order (any time unit; ``tolerance`` in the same).

    At each distinct onset (onsets closer than ``tolerance`` are one onset), the highest
    note starting there is on top unless a higher note struck earlier is still sounding
    (a held soprano note keeps an inner voice that moves under it off the line).
    """
    if len(onsets) == 0:
        return np.zeros(0, dtype=np.int64)
    grid = np.round(np.asarray(onsets, dtype=np.float64) / tolerance).astype(np.int64)
    order = np.lexsort((-np.asarray(pitches), grid))  # by onset, highest pitch first
    sorted_grid = grid[order]
    group_starts = np.flatnonzero(np.r_[True, sorted_grid[1:] != sorted_grid[:-1]])
    group_ends = np.r_[group_starts[1:], len(order)]
    sounding_until = np.full(129, -np.inf)  # latest note-off so far, by pitch (one spare slot)
    line: list[int] = []
    for first, last in zip(group_starts, group_ends, strict=True):
        top = order[first]
        onset, pitch = float(onsets[top]), int(pitches[top])
        if not np.any(sounding_until[pitch + 1 :] > onset + tolerance):
            line.append(int(top))
        for i in order[first:last]:
            p = int(pitches[i])
            sounding_until[p] = max(sounding_until[p], float(onsets[i] + durations[i]))
    return np.asarray(line, dtype=np.int64)


def top_line(pitched: np.ndarray) -> np.ndarray:
    """The melody heard on top (see :func:`top_line_indices`): rows of ``pitched``, in time order."""
    return pitched[top_line_indices(pitched[:, 0], pitched[:, 1], pitched[:, 2], _ONSET_GRID_S)]


def repetition(midi: MidiSource, *, n: int = REPETITION_NOTES) -> float:
    """The share of melodic ``n``-note patterns in the top line that occur more than once.

    A pattern is the tuple of the ``n - 1`` intervals between consecutive notes of the top
    line (:func:`top_line`), so a motif repeated at another pitch still counts. 0.0 for
    uniformly random pitches (patterns almost never recur), near 1.0 for a piece built
    from one repeated motif; 0.0 when the line has fewer than ``n`` notes.
    """
    if n < 2:
        msg = f"n={n!r}: expected at least 2 notes per pattern (one interval)"
        raise ValidationError(msg, field="n", value=n)
    line = top_line(_performance(midi).pitched)[:, 2].astype(np.int64)
    intervals = np.diff(line)
    k = n - 1
    if len(intervals) < k:
        return 0.0
    grams = [tuple(intervals[i : i + k].tolist()) for i in range(len(intervals) - k + 1)]
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def describe(midi: MidiSource) -> dict[str, Any]:
    """Every statistic of one piece, JSON-ready (lists and plain numbers).

    Keys: ``seconds``, ``notes``, ``pitched_notes``, ``instruments`` (labels),
    ``programs``, ``pitch_class_histogram`` (12 shares, by count, C first),
    ``scale_degree_histogram`` (the same, tonic of ``key`` first), ``note_density``,
    ``pitch_range``, ``lowest_pitch``, ``highest_pitch``, ``key``, ``key_correlation``,
    ``key_consistency``, ``repetition``, ``mean_velocity``.
    """
    perf = _performance(midi)
    pitched = perf.pitched
    span = pitch_range(perf)
    key, correlation = key_estimate(perf)
    histogram = pitch_class_histogram(perf)
    return {
        "seconds": round(perf.seconds, 6),
        "notes": len(perf.notes),
        "pitched_notes": len(pitched),
        "instruments": [i.label for i in perf.instruments],
        "programs": sorted({i.program for i in perf.instruments}),
        "pitch_class_histogram": [round(float(x), 6) for x in histogram],
        "scale_degree_histogram": [round(float(x), 6) for x in tonic_relative_histogram(histogram, key)],
        "note_density": round(note_density(perf), 6),
        "pitch_range": span.semitones,
        "lowest_pitch": span.lowest,
        "highest_pitch": span.highest,
        "key": key,
        "key_correlation": round(correlation, 6),
        "key_consistency": round(key_consistency(perf), 6),
        "repetition": round(repetition(perf), 6),
        "mean_velocity": round(float(perf.notes[:, 3].mean()), 3) if len(perf.notes) else 0.0,
    }
