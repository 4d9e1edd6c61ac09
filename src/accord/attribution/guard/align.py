"""Local alignment of two lines: the longest passage they share, and where it sits in both.

Smith-Waterman (1981) on notes. The query is first transposed onto the candidate: each
n-gram the two share proposes a transposition (query pitch minus candidate pitch at the
gram's first note) and the :data:`TRANSPOSITIONS` most proposed are tried. Under one
transposition, a pair of notes scores by its class (pitches 0, 1, 2, 3+ semitones apart;
rhythm ratio classes equal, one apart, further): the log-odds learnt from the catalog's
same-tune pairs (:mod:`.scoring`), or until calibration the hand-set table

* ``+1.0`` same pitch and rhythm ratio class within ±1 (a ratio within about ×1.4),
* ``+0.5`` same pitch, different rhythm,
* ``-0.5`` different pitch;

and a match counts in proportion to how rare the catalog's patterns around that note are
(from a quarter, for a pattern every catalog line has, to fully, for one found in this line
only: Müllensiefen & Pendzich's observation that rare shared patterns, not common ones,
are what make two melodies "the same"); a note present in one line only (an inserted or
deleted note) costs the gap (``0.75`` by hand; the worst class's score when learnt).

The passage's **score** is that alignment score in *bars of the catalog line*: divided by
the score of one exact match and by the line's notes per bar
(:func:`~accord.attribution.guard.ngrams.notes_per_bar`), so it reads as the length of the
shared passage in any style. The guard decides on the alignment's **significance**, not on
its length (:mod:`.significance`); the length is reported as evidence.

The dynamic programme runs one row at a time in numpy: with a linear gap cost, the
"from the left" term of a row is a running maximum, ``max_k (A[k] + g·k) − g·j``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from accord.attribution.guard.ngrams import GRAM, Encoded, grams, notes_per_bar
from accord.attribution.guard.scoring import DEFAULT_TABLE, Scoring, pair_classes

GAP = DEFAULT_TABLE.gap
RARITY_FLOOR = 0.25  # a match on a pattern every catalog line has still counts a quarter
TRANSPOSITIONS = 2


@dataclass(frozen=True)
class Passage:
    """The best local alignment of a query line with a catalog line.

    Attributes:
        score: the alignment score in bars of the catalog line (``alignment`` over its notes per bar).
        alignment: the alignment score (about the number of shared notes, less edits and gaps).
        shared_notes: aligned note pairs with the same (transposed) pitch.
        transposition: semitones added to the catalog line to meet the query.
        query_notes: ``(first, last)`` note index in the query line (0-based, inclusive).
        catalog_notes: the same in the catalog line.
        query_bars: ``(first, last)`` bar (1-based) of the passage in the query.
        catalog_bars: the same in the catalog piece.
        query_seconds: ``(start, end)`` onsets in the query, seconds.
        catalog_seconds: the same in the catalog piece.
    """

    score: float
    alignment: float
    shared_notes: int
    transposition: int
    query_notes: tuple[int, int]
    catalog_notes: tuple[int, int]
    query_bars: tuple[int, int]
    catalog_bars: tuple[int, int]
    query_seconds: tuple[float, float]
    catalog_seconds: tuple[float, float]

    @property
    def shared_bars(self) -> int:
        """Bars the passage spans in the query."""
        return self.query_bars[1] - self.query_bars[0] + 1


def transpositions(
    query: Encoded, catalog: Encoded, limit: int = TRANSPOSITIONS, query_grams: np.ndarray | None = None
) -> list[int]:
    """The transpositions (query − catalog, semitones) the shared n-grams propose most, most first."""
    qg = grams(query.pitches, query.rhythm) if query_grams is None else query_grams
    cg = grams(catalog.pitches, catalog.rhythm)
    if len(qg) == 0 or len(cg) == 0:
        return []
    common = np.intersect1d(qg, cg)
    if len(common) == 0:
        return []
    votes: Counter[int] = Counter()
    q_at = np.flatnonzero(np.isin(qg, common))
    c_at = np.flatnonzero(np.isin(cg, common))
    c_by_gram: dict[int, list[int]] = {}
    for j in c_at.tolist():
        c_by_gram.setdefault(int(cg[j]), []).append(j)
    for i in q_at.tolist():
        for j in c_by_gram.get(int(qg[i]), ()):
            votes[int(query.pitches[i]) - int(catalog.pitches[j])] += 1
    # most votes first; ties by the smaller shift, for a stable order
    return [t for t, _ in sorted(votes.items(), key=lambda kv: (-kv[1], abs(kv[0]), kv[0]))[:limit]]


def score_matrix(query: Encoded, catalog: Encoded, transposition: int, scoring: Scoring | None = None) -> np.ndarray:
    """``float64[m, n]``: the score of pairing query note ``i`` with catalog note ``j``.

    With ``scoring`` (learnt log-odds, :mod:`.scoring`), the pair's class score; without it, the
    hand-set scores of the module docstring (the same table, :data:`~.scoring.DEFAULT_TABLE`)."""
    pitch, rhythm = pair_classes(query, catalog, transposition)
    scores = (DEFAULT_TABLE if scoring is None else scoring).matrix()[pitch, rhythm]
    if catalog.rarity is not None:  # a shared stock phrase counts for less than a shared rare one
        weight = RARITY_FLOOR + (1.0 - RARITY_FLOOR) * catalog.rarity[None, :].astype(np.float64)
        scores = np.where(scores > 0, scores * weight, scores)
    return scores


def smith_waterman(s: np.ndarray, gap: float = GAP) -> tuple[float, tuple[int, int], tuple[int, int], int]:
    """Best local alignment under pair scores ``s``: ``(score, (i0, i1), (j0, j1), pairs_scoring_positive)``."""
    return smith_waterman_many(s[None], gap)[0]


def _traceback(h: np.ndarray, s: np.ndarray, gap: float) -> tuple[float, tuple[int, int], tuple[int, int], int]:
    n = h.shape[1] - 1
    i, j = divmod(int(np.argmax(h)), n + 1)
    best = float(h[i, j])
    if best <= 0:
        return 0.0, (0, 0), (0, 0), 0
    hl, sl = h[: i + 1, : j + 1].tolist(), s[:i, :j].tolist()  # plain floats for the scalar walk back
    end_i, end_j, shared = i - 1, j - 1, 0
    while i > 0 and j > 0 and hl[i][j] > 0:
        if abs(hl[i][j] - (hl[i - 1][j - 1] + sl[i - 1][j - 1])) < 1e-9:
            shared += sl[i - 1][j - 1] > 0
            i, j = i - 1, j - 1
        elif abs(hl[i][j] - (hl[i - 1][j] - gap)) < 1e-9:
            i -= 1
        else:
            j -= 1
    return best, (i, end_i), (j, end_j), int(shared)


def _fill(s: np.ndarray, gap: float) -> np.ndarray:
    """The Smith-Waterman matrices ``H`` (``[C, m+1, n+1]``) of ``C`` score matrices at once."""
    c, m, n = s.shape
    h = np.zeros((c, m + 1, n + 1))
    ramp = gap * np.arange(n + 1)
    a = np.zeros((c, n + 1))
    for i in range(1, m + 1):
        a[:, 1:] = np.maximum(np.maximum(h[:, i - 1, :-1] + s[:, i - 1], h[:, i - 1, 1:] - gap), 0.0)
        h[:, i] = np.maximum.accumulate(a + ramp, axis=1) - ramp
    return h


def smith_waterman_many(s: np.ndarray, gap: float = GAP) -> list[tuple[float, tuple[int, int], tuple[int, int], int]]:
    """:func:`smith_waterman` for ``C`` score matrices at once (``s``: ``[C, m, n]``, padded with a large negative)."""
    h = _fill(s, gap)
    return [_traceback(h[k], s[k], gap) for k in range(s.shape[0])]


def _passage(
    query: Encoded,
    catalog: Encoded,
    t: int,
    found: tuple[float, tuple[int, int], tuple[int, int], int],
    scoring: Scoring | None = None,
) -> Passage:
    score, (i0, i1), (j0, j1), shared = found
    # bars of the catalog line; a transcription has none of its own, so the checked piece's bars count
    per_bar = notes_per_bar(catalog if catalog.metered or not query.metered else query)
    per_note = (DEFAULT_TABLE if scoring is None else scoring).table[0][0]  # an exact match counts one note
    return Passage(
        score=round(score / per_note / per_bar, 3),
        alignment=round(score, 2),
        shared_notes=shared,
        transposition=t,
        query_notes=(i0, i1),
        catalog_notes=(j0, j1),
        query_bars=(int(query.bars[i0]), int(query.bars[i1])),
        catalog_bars=(int(catalog.bars[j0]), int(catalog.bars[j1])),
        query_seconds=(round(float(query.onsets[i0]), 3), round(float(query.onsets[i1]), 3)),
        catalog_seconds=(round(float(catalog.onsets[j0]), 3), round(float(catalog.onsets[j1]), 3)),
    )


BATCH = 16  # alignments computed together (memory: BATCH × m × n floats)
_PAD = -1e6


def align_many(query: Encoded, catalogs: list[Encoded], scoring: Scoring | None = None) -> list[Passage | None]:
    """The best passage ``query`` shares with each of ``catalogs`` (``None``: nothing shared), batched."""
    gap = (DEFAULT_TABLE if scoring is None else scoring).gap
    jobs: list[tuple[int, int]] = []  # (catalog index, transposition)
    qg = grams(query.pitches, query.rhythm)
    for k, cat in enumerate(catalogs):
        jobs += [(k, t) for t in transpositions(query, cat, query_grams=qg)]
    best: list[Passage | None] = [None] * len(catalogs)
    for b in range(0, len(jobs), BATCH):
        chunk = jobs[b : b + BATCH]
        width = max(len(catalogs[k]) for k, _ in chunk)
        s = np.full((len(chunk), len(query), width), _PAD)
        for row, (k, t) in enumerate(chunk):
            s[row, :, : len(catalogs[k])] = score_matrix(query, catalogs[k], t, scoring)
        flip = width < len(query)  # the row loop runs over the shorter sequence
        if flip:
            s = np.ascontiguousarray(s.transpose(0, 2, 1))
        h = _fill(s, gap)
        tops = h.reshape(len(chunk), -1).max(axis=1)
        winner: dict[int, int] = {}  # candidate → its best row in this chunk
        for row, (k, _) in enumerate(chunk):
            if tops[row] > 0 and (k not in winner or tops[row] > tops[winner[k]]):
                winner[k] = row
        for k, row in winner.items():
            current = best[k]
            if current is None or tops[row] > current.alignment:  # only the best transposition is traced back
                score, first, second, shared = _traceback(h[row], s[row], gap)
                spans = (second, first) if flip else (first, second)
                best[k] = _passage(query, catalogs[k], chunk[row][1], (score, *spans, shared), scoring)
    return best


def align(
    query: Encoded, catalog: Encoded, proposals: list[int] | None = None, scoring: Scoring | None = None
) -> Passage | None:
    """The best passage ``query`` shares with ``catalog`` over the proposed transpositions (``None``: none)."""
    options = transpositions(query, catalog) if proposals is None else proposals
    gap = (DEFAULT_TABLE if scoring is None else scoring).gap
    best: Passage | None = None
    for t in options:
        found = smith_waterman(score_matrix(query, catalog, t, scoring), gap)
        if found[0] > 0 and (best is None or found[0] > best.alignment):
            best = _passage(query, catalog, t, found, scoring)
    return best


def aligned_pairs(
    query: Encoded, catalog: Encoded, transposition: int, scoring: Scoring | None = None
) -> list[tuple[int, int]]:
    """The note pairs ``(i, j)`` of the best local alignment under ``transposition`` (what the
    substitution scores are learnt from)."""
    gap = (DEFAULT_TABLE if scoring is None else scoring).gap
    s = score_matrix(query, catalog, transposition, scoring)
    h = _fill(s[None], gap)[0]
    i, j = divmod(int(np.argmax(h)), h.shape[1])
    pairs: list[tuple[int, int]] = []
    hl, sl = h.tolist(), s.tolist()
    while i > 0 and j > 0 and hl[i][j] > 0:
        if abs(hl[i][j] - (hl[i - 1][j - 1] + sl[i - 1][j - 1])) < 1e-9:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif abs(hl[i][j] - (hl[i - 1][j] - gap)) < 1e-9:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


__all__ = [
    "GRAM",
    "Passage",
    "align",
    "align_many",
    "aligned_pairs",
    "score_matrix",
    "smith_waterman",
    "transpositions",
]
