"""The alignment's substitution scores, learnt from the catalog, and the exact-run score.

**Substitution scores.** Under a transposition, a pair of notes (one from the checked line,
one from a catalog line) falls in one of :data:`PITCH_CLASSES` × :data:`RHYTHM_CLASSES`
classes: how far apart the pitches are (0, 1, 2, 3+ semitones) and the rhythm ratio classes
(equal, one apart, further). Its score is the **log-odds** (in bits) of that class in two
aligned versions of one tune against two notes drawn at random from the same two lines, as
BLOSUM learns amino-acid scores from aligned blocks (Henikoff & Henikoff 1992; Bountouridis
et al. 2017 do it for melodies):

    s(class) = log2( f_copy(class) / f_random(class) )

``f_copy`` mixes (:data:`DIVERGENCE`) the aligned pairs of the catalog's same-tune pairs (one tune printed
under two titles, one chorale melody harmonised twice: the calibration finds them), and
``f_random`` every pairing of the same two lines' notes under the same transposition. A note
one line has and the other lacks (a gap) costs as much as the worst class, so an inserted
note is no cheaper than a wrong one. Until a catalog is calibrated, :data:`DEFAULT_TABLE`
holds (the hand-set scores the guard used before: +1, +½ for the same pitch in another rhythm,
−½ otherwise, gap ¾).

**Exact runs.** The longest run of consecutive notes whose interval *and* rhythm ratio both
agree exactly (the symbols of :mod:`.ngrams`), scored by its information content: each symbol
weighs ``−log2`` of its frequency in the catalog, so eight stock scale steps in even quavers
are worth less than eight notes of leaps and dotted rhythms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accord.attribution.guard.ngrams import MAX_INTERVAL, MAX_RATIO_CLASS, NO_RHYTHM, Encoded, symbols

PITCH_CLASSES = 4  # 0, 1, 2, 3+ semitones apart
RHYTHM_CLASSES = 3  # ratio classes equal (or unknown), one apart, further
SYMBOLS = (2 * MAX_INTERVAL + 1) * (2 * MAX_RATIO_CLASS + 2)
PSEUDOCOUNT = 1.0
DIVERGENCE = 0.0
"""The share of a copy's note pairs taken as unrelated when learning: the catalog's same-tune pairs
are near-identical (one tune printed twice), a disguised copy is not, so the target frequencies
are ``(1 − DIVERGENCE)·f_same_tune + DIVERGENCE·f_random``, as PAM extrapolates to more distant
relatives. 0: measured on the demo catalog (2026-12-03), 0.3 lowered the recall of 8-bar copies
with 20% of notes edited at 0.1% false alarms from 0.20 to 0.05 (chance alignments gained more
than copies)."""


@dataclass(frozen=True)
class Scoring:
    """The substitution scores of the alignment.

    Attributes:
        table: ``[PITCH_CLASSES][RHYTHM_CLASSES]`` score of a pair of notes (bits when learnt).
        gap: the cost of a note present in one line only (positive).
        learnt_from: aligned pairs counted (0: the hand-set default).
    """

    table: tuple[tuple[float, ...], ...]
    gap: float
    learnt_from: int = 0

    def matrix(self) -> np.ndarray:
        return np.asarray(self.table, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"table": [list(r) for r in self.table], "gap": self.gap, "learnt_from": self.learnt_from}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scoring:
        table = tuple(tuple(float(v) for v in row) for row in data["table"])
        if len(table) != PITCH_CLASSES or any(len(r) != RHYTHM_CLASSES for r in table):
            msg = f"scoring table: {len(table)} rows; expected {PITCH_CLASSES} rows of {RHYTHM_CLASSES}"
            raise ValueError(msg)
        return cls(table, float(data["gap"]), int(data.get("learnt_from", 0)))


DEFAULT_TABLE = Scoring(table=((1.0, 1.0, 0.5), (-0.5, -0.5, -0.5), (-0.5, -0.5, -0.5), (-0.5, -0.5, -0.5)), gap=0.75)


def pair_classes(query: Encoded, catalog: Encoded, transposition: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pitch class, rhythm class)`` of every pair ``(i, j)``, each ``int[m, n]``."""
    dp = np.abs(query.pitches[:, None].astype(np.int32) - transposition - catalog.pitches[None, :].astype(np.int32))
    qr, cr = query.rhythm.astype(np.int32), catalog.rhythm.astype(np.int32)
    dr = np.abs(qr[:, None] - cr[None, :])
    unknown = (qr[:, None] == NO_RHYTHM) | (cr[None, :] == NO_RHYTHM)
    return np.minimum(dp, PITCH_CLASSES - 1), np.where(unknown, 0, np.minimum(dr, RHYTHM_CLASSES - 1))


def learn(aligned: np.ndarray, background: np.ndarray, divergence: float = DIVERGENCE) -> Scoring:
    """The log-odds scores from class counts of aligned same-tune pairs and of random pairings
    (both ``[PITCH_CLASSES, RHYTHM_CLASSES]``), with a pseudocount per class, for relatives at
    ``divergence`` (:data:`DIVERGENCE`)."""
    same = (aligned + PSEUDOCOUNT) / (aligned.sum() + PSEUDOCOUNT * aligned.size)
    bg = (background + PSEUDOCOUNT) / (background.sum() + PSEUDOCOUNT * background.size)
    rel = (1.0 - divergence) * same + divergence * bg
    table = np.round(np.log2(rel / bg), 3)
    gap = round(float(max(-table.min(), 0.5)), 3)
    return Scoring(tuple(tuple(float(v) for v in row) for row in table), gap, int(aligned.sum()))


def symbol_information(pitches: np.ndarray, rhythm: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``float64[SYMBOLS]``: ``−log2`` frequency of each symbol over the catalog's lines (``starts``:
    where each line begins in ``pitches``/``rhythm``), with a pseudocount per symbol."""
    counts = np.zeros(SYMBOLS, dtype=np.float64)
    for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        counts += np.bincount(symbols(pitches[a:b], rhythm[a:b]), minlength=SYMBOLS)[:SYMBOLS]
    return -np.log2((counts + PSEUDOCOUNT) / (counts.sum() + PSEUDOCOUNT * SYMBOLS))


@dataclass(frozen=True)
class ExactRun:
    """The most informative run of notes two lines share exactly (intervals and rhythm).

    Attributes:
        information: the run's score: the catalog information of its symbols, in bits.
        notes: symbols in the run (each symbol is one note and its step from the one before).
        query_notes: ``(first, last)`` note of the run in the checked line.
        catalog_notes: the same in the catalog line.
    """

    information: float
    notes: int
    query_notes: tuple[int, int]
    catalog_notes: tuple[int, int]


def exact_run(query: Encoded, catalog: Encoded, information: np.ndarray) -> ExactRun | None:
    """The run of identical symbols with the most information (``None``: no symbol in common).

    ``R[i, j] = (R[i−1, j−1] + info(c_j)) · [q_i = c_j]``, one row at a time.
    """
    sq, sc = symbols(query.pitches, query.rhythm), symbols(catalog.pitches, catalog.rhythm)
    if len(sq) == 0 or len(sc) == 0:
        return None
    # a symbol with an unknown rhythm (a line's first notes) never counts as agreeing
    valid_q = query.rhythm[2:] != NO_RHYTHM
    valid_c = catalog.rhythm[2:] != NO_RHYTHM
    weight = information[sc] * valid_c
    run = np.zeros(len(sc) + 1)
    length = np.zeros(len(sc) + 1, dtype=np.int64)
    best, at = 0.0, (0, 0, 0)
    for i in range(len(sq)):
        eq = (sc == sq[i]) & valid_c & bool(valid_q[i])
        new_run = np.where(eq, run[:-1] + weight, 0.0)
        new_len = np.where(eq, length[:-1] + 1, 0)
        run[1:], length[1:] = new_run, new_len
        j = int(np.argmax(new_run))
        if new_run[j] > best:
            best, at = float(new_run[j]), (i, j, int(new_len[j]))
    if best <= 0:
        return None
    i, j, n = at
    # symbol k belongs to note k + 2; the run's first note is the one its first step starts from
    return ExactRun(round(best, 3), n, (i + 2 - n, i + 2), (j + 2 - n, j + 2))


def count_classes(pairs: Sequence[tuple[int, int]], pitch: np.ndarray, rhythm: np.ndarray) -> np.ndarray:
    """Class counts (``[PITCH_CLASSES, RHYTHM_CLASSES]``) of the aligned ``pairs``."""
    out = np.zeros((PITCH_CLASSES, RHYTHM_CLASSES))
    if pairs:
        i, j = np.asarray(pairs).T
        np.add.at(out, (pitch[i, j], rhythm[i, j]), 1.0)
    return out


def all_classes(pitch: np.ndarray, rhythm: np.ndarray) -> np.ndarray:
    """Class counts of every pairing of the two lines' notes (the random-pairing background)."""
    out = np.zeros((PITCH_CLASSES, RHYTHM_CLASSES))
    np.add.at(out, (pitch.ravel(), rhythm.ravel()), 1.0)
    return out


__all__ = [
    "DEFAULT_TABLE",
    "ExactRun",
    "Scoring",
    "all_classes",
    "count_classes",
    "exact_run",
    "learn",
    "pair_classes",
    "symbol_information",
]
