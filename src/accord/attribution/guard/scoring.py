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
agree exactly (the symbols of :mod:`.ngrams`), scored by its information content: each note
weighs ``−log2`` of its probability *after the two notes before it* under a model of the other
catalog lines (:func:`conditional_information`), so eight stock scale steps in even quavers,
each the catalog's usual next step, are worth less than eight notes of leaps and dotted
rhythms, and so is a cadence every tune ends with, even where its single steps are rare. (Until
policy format 5 each symbol weighed ``−log2`` of its catalog frequency alone,
:func:`symbol_information`, which is still the query's *composition*.)
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


CONTEXT_PRIOR = 4.0
"""Pseudo-observations of the shorter context's estimate in each longer context's (Dirichlet
smoothing of the symbol model below): a context seen a few times leans on the shorter one."""


def _count(codes: np.ndarray, line: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each position, how often its ``codes`` value occurs at ``valid`` positions of the
    *other* lines (0 where not valid): the catalog count with the position's own line left out."""
    out = np.zeros(len(codes), dtype=np.float64)
    if not valid.any():
        return out
    c, li = codes[valid], line[valid]
    _, inv, total = np.unique(c, return_inverse=True, return_counts=True)
    # one key per (code, line): codes stay under 784**3 and lines under ~10**6, well inside int64
    _, inv_own, own = np.unique(c * (int(line[-1]) + 1) + li, return_inverse=True, return_counts=True)
    out[valid] = total[inv] - own[inv_own]
    return out


def conditional_information(pitches: np.ndarray, rhythm: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``float64[N]`` per note: ``−log2 P(symbol | the two symbols before it)`` under a model of
    the catalog's *other* lines (0 where the note has no symbol or its rhythm is unknown).

    What an exact run of notes is worth: a stock cadence or scale run is predictable from the
    catalog (each step follows the last as in hundreds of tunes) and weighs little; a figure no
    other line has weighs a lot — the n-gram's rarity by catalog frequency, counted note by note
    so that a long run is the sum of its notes' surprise. The model is a trigram over the
    symbols of :mod:`.ngrams`, smoothed towards the bigram and the unigram
    (:data:`CONTEXT_PRIOR`), and each line's own notes are left out of its counts: otherwise a
    figure only one tune has would be "predictable" from that very tune, and a copy of it would
    weigh nothing.
    """
    total = len(pitches)
    out = np.zeros(total, dtype=np.float64)
    if total < 3:
        return out
    line = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    p = pitches.astype(np.int64)
    sym = np.full(total, -1, dtype=np.int64)
    interval = np.clip(p[1:] - p[:-1], -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    ratio = rhythm[1:].astype(np.int64) + MAX_RATIO_CLASS
    same_line = line[1:] == line[:-1]
    known = (rhythm[1:] != NO_RHYTHM) & same_line
    sym[1:] = np.where(known, interval * (2 * MAX_RATIO_CLASS + 2) + ratio, -1)
    s0 = sym
    s1 = np.r_[-1, sym[:-1]]
    s1[1:][~same_line] = -1
    s2 = np.r_[-1, s1[:-1]]
    s2[1:][~same_line] = -1
    v1 = s0 >= 0
    v2 = v1 & (s1 >= 0)
    v3 = v2 & (s2 >= 0)
    n_other = float(v1.sum()) - np.bincount(line[v1], minlength=len(starts) - 1)[line].astype(np.float64)
    uni = (_count(s0, line, v1) + PSEUDOCOUNT) / (np.maximum(n_other, 0.0) + PSEUDOCOUNT * SYMBOLS)
    ctx1 = _count(s1, line, v2)  # bigram contexts: symbols followed by a known symbol
    bi = np.where(v2, (_count(s1 * SYMBOLS + s0, line, v2) + CONTEXT_PRIOR * uni) / (ctx1 + CONTEXT_PRIOR), uni)
    ctx2 = _count(s2 * SYMBOLS + s1, line, v3)
    tri_codes = (s2 * SYMBOLS + s1) * SYMBOLS + s0
    tri = np.where(v3, (_count(tri_codes, line, v3) + CONTEXT_PRIOR * bi) / (ctx2 + CONTEXT_PRIOR), bi)
    out[v1] = -np.log2(tri[v1])
    return out


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


def exact_run(
    query: Encoded, catalog: Encoded, information: np.ndarray, weights: np.ndarray | None = None
) -> ExactRun | None:
    """The run of identical symbols with the most information (``None``: no symbol in common).

    ``R[i, j] = (R[i−1, j−1] + info(c_j)) · [q_i = c_j]``, one row at a time. ``info(c_j)`` is the
    symbol's ``information`` (``float64[SYMBOLS]``), or where ``weights`` is given the catalog
    line's own per-note weight (one per symbol of the line: :func:`conditional_information` from
    its third note on).
    """
    sq, sc = symbols(query.pitches, query.rhythm), symbols(catalog.pitches, catalog.rhythm)
    if len(sq) == 0 or len(sc) == 0:
        return None
    # a symbol with an unknown rhythm (a line's first notes) never counts as agreeing
    valid_q = query.rhythm[2:] != NO_RHYTHM
    valid_c = catalog.rhythm[2:] != NO_RHYTHM
    weight = (information[sc] if weights is None else weights) * valid_c
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
    "conditional_information",
    "count_classes",
    "exact_run",
    "learn",
    "pair_classes",
    "symbol_information",
]
