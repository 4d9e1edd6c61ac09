"""Calibration: measure the catalog's own borrowing, learn the scores, fit the nulls, set the line.

Three steps, all on the catalog itself:

1. **Same tunes.** Each catalog piece (or a sample) is checked against every *other* work
   (itself and other recordings of the same registered work left out). A close work that is
   the same tune under another title — the window's shared passage covers most of it
   (:data:`DUPLICATE_COVERAGE`), or the two whole melodies share that much of the shorter one —
   is one the registry does not link (folk-tune books and chorale harmonisations are full of
   them): it is reported as a **duplicate** for the rights holders to reconcile and passed over,
   since a duplicate says nothing about what unrelated works share by chance.
2. **Scores.** The substitution scores are learnt as log-odds (:func:`learn_scoring`): how
   often each class of note pair (pitch apart, rhythm apart) is aligned in those same-tune pairs
   against how often it turns up between the notes of unrelated pairs (each piece and its
   closest other work).
3. **Nulls.** With the learnt scores, a window of each piece of 2, 4, 8 or 16 bars (drawn per
   piece) is checked again against every other work that is not its tune; each line of
   evidence's best score is one draw from its chance distribution, and a Gumbel law is fitted to
   them (:func:`~.significance.fit_gumbel`). Each window's significance under those nulls is the
   catalog's own borrowing; the threshold is its chosen percentile plus a margin (decades of E),
   never below :data:`~.policy.SYMBOLIC_FLOOR` (:mod:`.policy`).

``pieces`` limits all three steps to some pieces (their windows are still checked against the
whole catalog): :func:`~.evaluate.evaluate` fits on one half of the catalog and plants copies of
the other, so the evaluation never scores a copy of a piece the nulls were fitted on.

The audio check is calibrated the same way on whole clips: each catalog clip's best votes
against the clips of other recordings, leaving out the duplicates above and, one by one, any
closest recording whose whole melody is the same tune (:class:`SameTune`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from accord.attribution.guard.align import aligned_pairs, transpositions
from accord.attribution.guard.borrowing import Borrowing, measure_borrowing
from accord.attribution.guard.check import CALIBRATION_BARS, DUPLICATE_COVERAGE, Guard
from accord.attribution.guard.policy import DEFAULT_NULLS, GuardPolicy, make_policy
from accord.attribution.guard.scoring import Scoring, all_classes, count_classes, learn, pair_classes
from accord.attribution.guard.significance import EVIDENCE, GumbelNull, combined_evalue, fit_gumbel, significance

Progress = Callable[[str, int, int], None]
NULL_BARS = (2, 4, 8, 16)  # window lengths the nulls are fitted on: the copy lengths that matter
MIN_PAIRS = 5  # same-tune pairs needed to learn scores (fewer: the policy's scores stay)
MAX_PAIRS = 400  # pairs aligned to learn them (enough for 12 classes; bounded time)


@dataclass(frozen=True)
class Calibration:
    """What calibration measured and the policy it sets.

    Attributes:
        policy: the resulting policy.
        borrowing: every piece's closest passage in other works, as measured.
        duplicates: the pairs left out as the same tune under two titles (``(isrc, isrc, score)``).
        audio_scores: each catalog clip's best audio votes against other recordings.
        windows: the windows the nulls were fitted on (step 3), with their significance.
    """

    policy: GuardPolicy
    borrowing: tuple[Borrowing, ...]
    duplicates: tuple[tuple[str, str, float], ...]
    audio_scores: tuple[float, ...]
    windows: tuple[Borrowing, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_dict(),
            "duplicates": [{"isrc": a, "same_tune_as": b, "score": s} for a, b, s in self.duplicates],
        }


def calibrate(
    guard: Guard,
    *,
    percentile: float,
    margin: float,
    created: str,
    sample: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    pieces: Sequence[int] | None = None,
    audio: bool = True,
) -> Calibration:
    """Measure the catalog's borrowing, learn the scores, fit the nulls (symbolic) and derive the policy."""
    borrowing = measure_borrowing(guard, sample, seed, progress, window_bars=CALIBRATION_BARS, pieces=pieces)
    catalog = guard.index.pieces
    related = sorted({(min(b.piece, o), max(b.piece, o)) for b in borrowing for o, _ in b.same_tune})
    unrelated = sorted({(b.piece, b.other) for b in borrowing if b.other >= 0})
    scoring = learn_scoring(guard, related, unrelated) or guard.policy.scoring
    measuring = copy.copy(guard)  # the same index and caches, the learnt scores
    measuring.policy = replace(guard.policy, scoring=scoring)
    windows = measure_borrowing(measuring, sample, seed + 1, progress, window_bars=NULL_BARS, pieces=pieces)
    nulls = fit_nulls(windows, len(guard.index.pitches)) or dict(guard.policy.nulls)
    windows = [replace(w, significance=window_significance(w, nulls)) for w in windows]
    pairs: dict[tuple[str, str], float] = {}  # one entry per pair: the first score measured
    for drawn in (*borrowing, *windows):
        for other, score in drawn.same_tune:
            pairs.setdefault((catalog[drawn.piece].isrc, catalog[other].isrc), score)
    duplicates = tuple(sorted((one, two, score) for (one, two), score in pairs.items()))
    symbolic = np.array([w.significance for w in windows], dtype=np.float64)
    same_tune: dict[str, frozenset[str]] = {}
    for a, b, _ in duplicates:
        same_tune[a] = same_tune.get(a, frozenset()) | {b}
        same_tune[b] = same_tune.get(b, frozenset()) | {a}
    heard = guard.audio_self_similarity(sample, seed, same_tune, related=SameTune(guard)) if audio else np.zeros(0)
    policy = make_policy(
        symbolic,
        heard,
        percentile=percentile,
        margin=margin,
        catalog_key=guard.index.key,
        created=created,
        scoring=scoring,
        nulls=nulls,
    )
    measured = dict(policy.measured)
    measured["symbolic"] = dict(measured["symbolic"]) | {
        "unit": "significance (-log10 E)",
        "pieces_measured": len(windows),
        "window_bars": list(NULL_BARS),
        "duplicates_left_out": len(duplicates),
        "duplicate_coverage": DUPLICATE_COVERAGE,
        "same_tune_pairs_learnt_from": len(related),
        "bars_of_closest_passage": summarise_bars([b.score for b in borrowing]),
    }
    return Calibration(
        replace(policy, measured=measured), tuple(borrowing), duplicates, tuple(heard.tolist()), tuple(windows)
    )


def summarise_bars(scores: Sequence[float]) -> dict[str, float]:
    """The 16-bar windows' closest passage in bars (the measure the guard blocked on before E-values)."""
    if not scores:
        return {}
    arr = np.asarray(scores, dtype=np.float64)
    return {f"p{p:g}": round(float(np.percentile(arr, p)), 3) for p in (50, 99, 99.5, 100)}


def learn_scoring(
    guard: Guard, related: Sequence[tuple[int, int]], unrelated: Sequence[tuple[int, int]]
) -> Scoring | None:
    """Log-odds substitution scores (:func:`~.scoring.learn`): the aligned note pairs of the
    same-tune pairs' whole melodies against every pairing of the notes of unrelated pairs, each
    under the transposition their shared n-grams propose. ``None``: fewer than :data:`MIN_PAIRS`."""
    aligned = np.zeros((4, 3))
    background = np.zeros((4, 3))
    used = 0
    for a, b in list(related)[:MAX_PAIRS]:
        ma, mb = guard.melody(a), guard.melody(b)
        if ma is None or mb is None or not len(ma) or not len(mb):
            continue
        proposed = transpositions(ma, mb, limit=1)
        if not proposed:
            continue
        pitch, rhythm = pair_classes(ma, mb, proposed[0])
        aligned += count_classes(aligned_pairs(ma, mb, proposed[0]), pitch, rhythm)
        used += 1
    for a, b in list(unrelated)[:MAX_PAIRS]:
        ma, mb = guard.melody(a), guard.melody(b)
        if ma is None or mb is None or not len(ma) or not len(mb):
            continue
        proposed = transpositions(ma, mb, limit=1)
        background += all_classes(*pair_classes(ma, mb, proposed[0] if proposed else 0))
    if used < MIN_PAIRS or background.sum() == 0:
        return None
    return learn(aligned, background)


def fit_nulls(windows: Sequence[Borrowing], catalog_notes: int) -> dict[str, GumbelNull]:
    """A :class:`~.significance.GumbelNull` per line of evidence from the windows' best scores
    (one with too few draws keeps the default)."""
    out: dict[str, GumbelNull] = {}
    for kind in EVIDENCE:
        draws = [(score, notes, bits) for w in windows for k, score, notes, bits in w.evidence if k == kind]
        fitted = (
            fit_gumbel([d[0] for d in draws], [d[1] for d in draws], catalog_notes, [d[2] for d in draws])
            if draws
            else None
        )
        if fitted is not None:
            out[kind] = fitted
        elif kind in DEFAULT_NULLS:
            out[kind] = DEFAULT_NULLS[kind]
    return out


def window_significance(window: Borrowing, nulls: dict[str, GumbelNull]) -> float:
    """``−log10 E`` of a window's best draws (the same combination a check uses)."""
    each = {
        k: nulls[k].evalue(score, notes, composition=bits)
        for k, score, notes, bits in window.evidence
        if k in nulls and score > 0
    }
    return significance(combined_evalue(each))


class SameTune:
    """:meth:`Guard.same_tune` asked by ISRC: whether two catalog recordings are one tune (their
    whole melodies share :data:`DUPLICATE_COVERAGE` of the shorter one's notes)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.piece = {p.isrc: i for i, p in enumerate(guard.index.pieces)}

    def __call__(self, a: str, b: str) -> bool:
        pa, pb = self.piece.get(a), self.piece.get(b)
        return pa is not None and pb is not None and self.guard.same_tune(pa, pb)
