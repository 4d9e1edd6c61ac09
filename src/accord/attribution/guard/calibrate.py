"""Calibration: measure the catalog's own borrowing, then set the thresholds above it.

Each catalog piece (or a sample) is checked against every *other* work (itself and other
recordings of the same registered work left out); its closest passage is one
:class:`~accord.attribution.guard.check.Borrowing`. Pairs whose shared passage covers most
of the shorter line (:data:`DUPLICATE_COVERAGE`) are the same tune under two titles, which
the registry does not link (folk-tune books and chorale harmonisations are full of them):
they are reported as **duplicates** for the rights holders to reconcile and left out of the
borrowing distribution, since a duplicate says nothing about how much unrelated works share.
The threshold is the chosen percentile of the rest plus a margin (:mod:`.policy`).

The audio check is calibrated the same way on whole clips: each catalog clip's best votes
against the clips of other recordings, leaving out the duplicates above and, one by one, any
closest recording whose whole melody is the same tune (:class:`SameTune`): the symbolic
measurement looks at one window of each piece and misses some of those pairs, which the audio
check hears (the same tune, the same instrument, the same tempo) and which would otherwise
lift the audio threshold above what an exact re-render of a short passage scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from accord.attribution.guard.align import align_many
from accord.attribution.guard.check import Borrowing, Guard
from accord.attribution.guard.ngrams import Encoded
from accord.attribution.guard.policy import GuardPolicy, make_policy

DUPLICATE_COVERAGE = 0.6
"""A window sharing this share of its notes with one other work marks the pair as one tune (or a
variant of it): measured on the demo catalog, pairs fall either below ~0.5 or above ~0.8, with few between."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Calibration:
    """What calibration measured and the policy it sets.

    Attributes:
        policy: the resulting policy.
        borrowing: every piece's closest passage in other works, as measured.
        duplicates: the pairs left out as the same tune under two titles (``(isrc, isrc, score)``).
        audio_scores: each catalog clip's best audio votes against other recordings.
    """

    policy: GuardPolicy
    borrowing: tuple[Borrowing, ...]
    duplicates: tuple[tuple[str, str, float], ...]
    audio_scores: tuple[float, ...]

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
) -> Calibration:
    """Measure the catalog's borrowing (symbolic and audio) and derive the policy."""
    borrowing = guard.self_similarity(sample, seed, progress)
    pieces = guard.index.pieces
    duplicates = tuple(
        sorted(
            (pieces[b.piece].isrc, pieces[b.other].isrc, b.score)
            for b in borrowing
            if b.other >= 0 and b.coverage >= DUPLICATE_COVERAGE
        )
    )
    symbolic = np.array([b.score for b in borrowing if b.coverage < DUPLICATE_COVERAGE], dtype=np.float64)
    same_tune: dict[str, frozenset[str]] = {}
    for a, b, _ in duplicates:
        same_tune[a] = same_tune.get(a, frozenset()) | {b}
        same_tune[b] = same_tune.get(b, frozenset()) | {a}
    audio = guard.audio_self_similarity(sample, seed, same_tune, related=SameTune(guard))
    policy = make_policy(
        symbolic, audio, percentile=percentile, margin=margin, catalog_key=guard.index.key, created=created
    )
    measured = dict(policy.measured)
    measured["symbolic"] = dict(measured["symbolic"]) | {
        "pieces_measured": len(borrowing),
        "duplicates_left_out": len(duplicates),
        "duplicate_coverage": DUPLICATE_COVERAGE,
    }
    return Calibration(replace(policy, measured=measured), tuple(borrowing), duplicates, tuple(audio.tolist()))


class SameTune:
    """Whether two catalog recordings are one tune: their whole melodies share at least
    :data:`DUPLICATE_COVERAGE` of the shorter one's notes (the calibration's duplicate rule,
    applied to the whole melody instead of one window). Answers are cached per pair."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.piece = {p.isrc: i for i, p in enumerate(guard.index.pieces)}
        self.melodies: dict[int, Encoded | None] = {}
        self.known: dict[tuple[str, str], bool] = {}

    def _melody(self, piece: int) -> Encoded | None:
        if piece not in self.melodies:
            self.melodies[piece] = self.guard.melody(piece)
        return self.melodies[piece]

    def __call__(self, a: str, b: str) -> bool:
        key = (a, b) if a <= b else (b, a)
        if key not in self.known:
            pa, pb = self.piece.get(a), self.piece.get(b)
            ma = self._melody(pa) if pa is not None else None
            mb = self._melody(pb) if pb is not None else None
            same = False
            if ma is not None and mb is not None and len(ma) and len(mb):
                passage = align_many(ma, [mb])[0]
                same = passage is not None and passage.shared_notes / min(len(ma), len(mb)) >= DUPLICATE_COVERAGE
            self.known[key] = same
        return self.known[key]
