"""The condition tokens' vocabulary: style, key, tempo band and length bucket of a piece.

A token sequence starts with ``STYLE_<genre> KEY_<tonic>_<mode> TEMPO_<band> LEN_<bars>``
(:mod:`accord.model.tokenizer`); this module turns catalog metadata and notes into those
values: keys are read from the catalog (:func:`parse_key`) or estimated from the notes with
Krumhansl-Schmuckler (:func:`estimate_key`), tempos fall into :data:`TEMPO_BANDS`, lengths
into :data:`LEN_BUCKETS`.
"""

from __future__ import annotations

import re

import numpy as np
from symusic.core import ScoreTick

from accord.errors import ValidationError

TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""One spelling per pitch class, used in token names and returned key names."""

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MAJOR_MODES = frozenset({"major", "ionian", "mixolydian", "lydian"})
_MINOR_MODES = frozenset({"minor", "aeolian", "dorian", "phrygian", "locrian"})

# Krumhansl & Kessler (1982) probe-tone profiles, C major and C minor.
_KS_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KS_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

TEMPO_BANDS: tuple[tuple[str, float, float], ...] = (
    # (band, lower bound in quarter notes per minute, the tempo a decoded file gets)
    ("slow", 0.0, 70.0),
    ("moderate", 80.0, 96.0),
    ("lively", 110.0, 124.0),
    ("fast", 140.0, 152.0),
)
LEN_BUCKETS = (8, 16, 32, 64)
"""Upper bounds of the length buckets in bars; longer pieces are ``LEN_long``."""

UNKNOWN = "unknown"
N_CONDITIONS = 4
"""Condition tokens before every body: style, key, tempo, length."""


def style_slug(genre: str) -> str:
    """A genre as it appears in a token name: ``"slip jig"`` → ``"slip-jig"``; empty is ``unknown``."""
    slug = re.sub(r"[^a-z0-9]+", "-", genre.strip().lower()).strip("-")
    return slug or UNKNOWN


def parse_key(text: str) -> tuple[int, str]:
    """``"F# minor"`` → ``(6, "minor")``; church modes map to the major or minor with their tonic."""
    parts = text.strip().replace("♯", "#").replace("♭", "b").split()
    if len(parts) != 2 or not parts[0] or parts[0][0].upper() not in _LETTER_PC:
        msg = f"key: {text!r} is not '<tonic> <mode>' like 'G major' or 'F# minor'"
        raise ValidationError(msg, field="key", value=text)
    tonic, mode = parts[0], parts[1].lower()
    pc = _LETTER_PC[tonic[0].upper()]
    for accidental in tonic[1:]:
        if accidental not in "#b-":
            msg = f"key: {text!r} has tonic {tonic!r}; expected a letter A-G with # or b"
            raise ValidationError(msg, field="key", value=text)
        pc += 1 if accidental == "#" else -1
    if mode in _MAJOR_MODES:
        return pc % 12, "major"
    if mode in _MINOR_MODES:
        return pc % 12, "minor"
    msg = f"key: {text!r} has mode {mode!r}; expected major, minor or a church mode"
    raise ValidationError(msg, field="key", value=text)


def key_name(pc: int, mode: str) -> str:
    return f"{TONICS[pc % 12]} {mode}"


def estimate_key(score: ScoreTick) -> str:
    """Krumhansl-Schmuckler: the key whose profile best correlates with the duration-weighted pitch classes."""
    histogram = np.zeros(12)
    for track in score.tracks:
        if track.is_drum or not len(track.notes):
            continue
        notes = track.notes.numpy()
        np.add.at(histogram, notes["pitch"] % 12, notes["duration"].astype(np.float64))
    if not histogram.any():
        msg = "key: the piece has no pitched notes to estimate a key from"
        raise ValidationError(msg, field="key", value=None)
    best = max(
        (
            (float(np.corrcoef(histogram, np.roll(profile, pc))[0, 1]), pc, mode)
            for mode, profile in (("major", _KS_MAJOR), ("minor", _KS_MINOR))
            for pc in range(12)
        ),
        key=lambda c: (c[0], -c[1], c[2] == "major"),  # ties: lower tonic, major first (deterministic)
    )
    return key_name(best[1], best[2])


def tempo_band(bpm: float) -> str:
    band = TEMPO_BANDS[0][0]
    for name, lower, _ in TEMPO_BANDS:
        if bpm >= lower:
            band = name
    return band


def len_bucket(bars: int) -> str:
    return next((str(bound) for bound in LEN_BUCKETS if bars <= bound), "long")


def score_tempo(score: ScoreTick) -> float:
    """The piece's opening tempo in quarter notes per minute (MIDI's default 120 when none is set)."""
    return float(score.tempos[0].qpm) if len(score.tempos) else 120.0
