"""How unlikely a shared passage is by chance in a catalog of this size: E-values.

A short copy is not long, but it is *improbable*. Bioinformatics answers the same question
for short local alignments against a large database (Karlin & Altschul 1990; BLAST): the best
local alignment score ``S`` of a query of ``m`` notes against a whole database follows an
extreme-value (Gumbel) law, and the expected number of chance alignments scoring ``S`` or more
is

    E(S, m) = exp(a + c·ln m + d·h − λ·S)

(Karlin–Altschul: ``c = 1``, ``d = 0`` and ``a = ln(K·N)`` for a database of ``N`` letters;
``h`` is the query's composition, :class:`GumbelNull`). The guard fits ``λ``, ``a``, ``c`` and
``d`` per **line of evidence** (:data:`EVIDENCE`) from the catalog's own
unrelated pairs: windows of catalog pieces checked against every other work that is not their
tune (:func:`~accord.attribution.guard.borrowing.measure_borrowing`). ``c`` is fitted rather
than fixed at 1 because the guard does not scan the catalog: it aligns the few candidates the
n-gram look-up retrieves, which grows more slowly with the query than a full scan. When the
catalog grows from ``N`` to ``N'`` notes, E grows by ``N'/N`` (the database-size term).

The fit is maximum likelihood, with ``a`` in closed form for given ``λ``, ``c`` and ``d``: with
``E_i = exp(a + c·ln m_i + d·h_i − λ·S_i)``, a window that found something contributes
``ln λ + ln E_i − E_i`` (the Gumbel density), one that found nothing ``−E_i`` at ``S = 0``
(censored), so ``exp(a) = found / Σ exp(c·ln m_i + d·h_i − λ·S_i)``; the rest by Nelder–Mead.

A piece's evidence is the **smallest** E over the lines of evidence, times their number
(Bonferroni: three looks at one pair cost a factor of three). Its **significance** is
``−log10 E``: 3 means one chance match this good per thousand checked pieces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EVIDENCE = ("alignment", "exact run", "melody and bass", "length")
"""The lines of evidence, each with its own fitted null:

* ``alignment``: the local alignment of one line (melody or bass) with a catalog line under the
  learnt substitution scores, matches weighted by the rarity of the catalog's n-grams there;
* ``exact run``: the longest run of notes whose interval *and* rhythm ratio both agree exactly,
  scored by its information content (``−log2`` of each symbol's catalog frequency: a run of
  stock scale steps is worth less than one of leaps and dotted rhythms);
* ``melody and bass``: the alignment scores of the melody and of the bass with the same catalog
  piece added, where the two passages overlap in the checked piece and agree on transposition;
* ``length``: the best alignment in **bars of the catalog line** (its score over one exact
  match's and the line's notes per bar): the same passage as ``alignment``, counted so that a
  phrase weighs the same in a chorale (4 notes a bar) and a reel (8). The information-weighted
  lines judge a chorale's stock steps as less surprising than a reel's figures; this one does
  not, and catches the long copies of plain tunes that they let through.
"""
MIN_FOUND = 8  # fewer windows with a score than this and a null is not fitted (the default stays)


@dataclass(frozen=True)
class GumbelNull:
    """The chance distribution of one line of evidence's best score against the whole catalog.

    Attributes:
        lam: ``λ``, the decay of the tail per score unit.
        a: the log of the expected chance count at score 0 for a one-note query.
        c: how the count grows with the query's notes (``m**c``).
        d: how it grows with the query's **composition**: the mean information of its symbols
            in bits (:func:`~.scoring.symbol_information`), as BLAST adjusts its statistics to a
            query's composition. A line of stock steps in even crotchets (a chorale) meets its
            like by chance with a lower score than a reel meets another reel; one null for both
            would judge a chorale copy by the reels' chance level.
        notes: catalog notes when fitted (``N``): E scales with the catalog's size.
        samples: windows it was fitted on.
    """

    lam: float
    a: float
    c: float
    notes: int
    samples: int = 0
    d: float = 0.0

    def evalue(
        self, score: float, query_notes: int, catalog_notes: int | None = None, composition: float = 0.0
    ) -> float:
        """Expected chance matches scoring ``score`` or more for a query of ``query_notes`` notes
        whose symbols carry ``composition`` bits each on average."""
        grow = 0.0 if not catalog_notes or not self.notes else math.log(catalog_notes / self.notes)
        exponent = self.a + self.c * math.log(max(query_notes, 1)) + self.d * composition - self.lam * score + grow
        return math.exp(min(exponent, 700.0))

    def to_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "a": self.a, "c": self.c, "d": self.d, "notes": self.notes, "samples": self.samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GumbelNull:
        return cls(
            float(data["lam"]),
            float(data["a"]),
            float(data["c"]),
            int(data["notes"]),
            int(data["samples"]),
            float(data.get("d", 0.0)),
        )


def _offsets(lam: float, coef: np.ndarray, scores: np.ndarray, x: np.ndarray, found: np.ndarray) -> np.ndarray:
    return x @ coef - lam * np.where(found, scores, 0.0)


def _profile_a(z: np.ndarray, found: np.ndarray) -> float:
    top = float(z.max())
    return math.log(max(int(found.sum()), 1)) - (top + math.log(float(np.exp(z - top).sum())))


def _log_likelihood(lam: float, coef: np.ndarray, scores: np.ndarray, x: np.ndarray, found: np.ndarray) -> float:
    z = _offsets(lam, coef, scores, x, found)
    log_e = _profile_a(z, found) + z
    e = np.exp(np.minimum(log_e, 700.0))
    return float(np.sum(np.where(found, math.log(lam) + log_e - e, -e)))


def fit_gumbel(
    scores: Sequence[float],
    query_notes: Sequence[int],
    catalog_notes: int,
    composition: Sequence[float] | None = None,
) -> GumbelNull | None:
    """The maximum-likelihood :class:`GumbelNull` of best-in-catalog scores (``0``: nothing found),
    with the queries' lengths and (where given) compositions as covariates; ``None`` when fewer
    than :data:`MIN_FOUND` windows found anything."""
    s = np.asarray(scores, dtype=np.float64)
    m = np.maximum(np.asarray(query_notes, dtype=np.float64), 1.0)
    h = np.zeros(len(s)) if composition is None else np.asarray(composition, dtype=np.float64)
    if len(s) != len(m) or len(s) != len(h):
        msg = f"scores: {len(s)} values for {len(m)} query lengths and {len(h)} compositions; expected one each"
        raise ValueError(msg)
    found = s > 0
    if int(found.sum()) < MIN_FOUND:
        return None
    x = np.column_stack([np.log(m), h])
    with_h = composition is not None and float(np.std(h)) > 0
    spread = float(np.std(s[found])) or 1.0

    def unpack(v: np.ndarray) -> tuple[float, np.ndarray]:
        return math.exp(float(v[0])), np.array([float(np.clip(v[1], 0.0, 3.0)), float(v[2]) if with_h else 0.0])

    def loss(v: np.ndarray) -> float:
        lam, coef = unpack(v)
        return -_log_likelihood(lam, coef, s, x, found)

    from scipy.optimize import minimize  # here: ~0.5 s of start-up that a check (no fitting) never needs

    start = np.array([math.log(1.0 / spread), 1.0, 0.0])
    best = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000})
    lam, coef = unpack(best.x)
    a = _profile_a(_offsets(lam, coef, s, x, found), found)
    return GumbelNull(
        round(lam, 6), round(a, 6), round(float(coef[0]), 6), int(catalog_notes), len(s), round(float(coef[1]), 6)
    )


def combined_evalue(evalues: dict[str, float]) -> float:
    """The smallest E over the lines of evidence present, times :data:`EVIDENCE`'s count (Bonferroni)."""
    if not evalues:
        return math.inf
    return min(evalues.values()) * len(EVIDENCE)


def significance(evalue: float) -> float:
    """``−log10 E``, rounded to 3 places (``E = ∞``: a large negative number, never over a threshold)."""
    if not math.isfinite(evalue):
        return -99.0
    return round(-math.log10(max(evalue, 1e-300)), 3)


__all__ = ["EVIDENCE", "GumbelNull", "combined_evalue", "fit_gumbel", "significance"]
