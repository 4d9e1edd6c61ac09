"""Calibration: measure the catalog's own borrowing, then set the thresholds above it.

Each catalog piece (or a sample) is checked against every *other* work (itself and other
recordings of the same registered work left out); its closest passage is one
:class:`~accord.attribution.guard.check.Borrowing`. A closest work that is the same tune under
another title — the window's shared passage covers most of it (:data:`DUPLICATE_COVERAGE`), or
the two whole melodies share that much of the shorter one — is one the registry does not link
(folk-tune books and chorale harmonisations are full of them: one chorale tune is harmonised up
to ten times): it is reported as a **duplicate** for the rights holders to reconcile and passed
over for the next closest work, since a duplicate says nothing about how much unrelated works
share. The threshold is the chosen percentile of those scores plus a margin (:mod:`.policy`).

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

from accord.attribution.guard.check import DUPLICATE_COVERAGE, Borrowing, Guard
from accord.attribution.guard.policy import GuardPolicy, make_policy

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
        sorted((pieces[b.piece].isrc, pieces[other].isrc, score) for b in borrowing for other, score in b.same_tune)
    )
    symbolic = np.array([b.score for b in borrowing], dtype=np.float64)
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
    """:meth:`Guard.same_tune` asked by ISRC: whether two catalog recordings are one tune (their
    whole melodies share :data:`DUPLICATE_COVERAGE` of the shorter one's notes)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.piece = {p.isrc: i for i, p in enumerate(guard.index.pieces)}

    def __call__(self, a: str, b: str) -> bool:
        pa, pb = self.piece.get(a), self.piece.get(b)
        return pa is not None and pb is not None and self.guard.same_tune(pa, pb)
