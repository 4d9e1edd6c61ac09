"""The catalog's own borrowing: windows of catalog pieces checked against every *other* work.

What calibration (:mod:`.calibrate`) measures. For each catalog piece (or a sample), a window of
its lines is checked against the whole catalog with the piece itself, other recordings of the
same registered work, and every work that is the same tune under another title left out (the
same-tune rule: the window's shared passage covers :data:`~.check.DUPLICATE_COVERAGE` of the
window's line, or the two whole melodies are one tune, :meth:`~.check.Guard.same_tune`). The
closest remaining work is the piece's borrowing, and each line of evidence's best score over the
remaining works is one draw from its chance distribution, what its null is fitted on
(:func:`~.significance.fit_gumbel`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from accord.attribution.guard.check import CALIBRATION_BARS, DUPLICATE_COVERAGE, MAX_SAME_TUNE, Guard
from accord.attribution.guard.findings import Finding, composition, information_of
from accord.attribution.guard.lines import LINE_KINDS
from accord.attribution.guard.ngrams import Encoded
from accord.attribution.guard.significance import significance

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Borrowing:
    """How much one catalog piece shares with its closest *other* catalog work.

    Attributes:
        piece: the piece (index into the guard's pieces).
        other: the closest other piece that is not the same tune (``-1``: nothing shared).
        score: the score (bars) of their longest shared passage.
        shared_notes: its notes with the same pitch.
        coverage: ``shared_notes`` over the notes of the window checked.
        same_tune: ``(piece, score)`` of closer pieces passed over as the same tune under
            another title (a duplicate the registry does not link; :meth:`Guard.same_tune`).
        evidence: per line of evidence, ``(kind, best score, query notes, composition)`` over every
            other work that is not the same tune: one draw from its chance distribution.
        significance: ``−log10 E`` of the closest other work under the policy's nulls.
        window_bars: the window's length in bars.
    """

    piece: int
    other: int
    score: float
    shared_notes: int
    coverage: float
    same_tune: tuple[tuple[int, float], ...] = ()
    evidence: tuple[tuple[str, float, int, float], ...] = ()
    significance: float = -99.0
    window_bars: int = 0


def window(line: Encoded, bars: int, rng: np.random.Generator) -> Encoded:
    """``bars`` consecutive bars of ``line`` from a random bar (all of it when shorter), as a query line."""
    first, last = int(line.bars.min()), int(line.bars.max())
    if len(line) == 0 or last - first + 1 <= bars:
        return Encoded(line.pitches, line.rhythm, line.bars, line.onsets, metered=line.metered)
    start = int(rng.integers(first, last - bars + 2))
    keep = (line.bars >= start) & (line.bars < start + bars)
    return Encoded(line.pitches[keep], line.rhythm[keep], line.bars[keep], line.onsets[keep], metered=line.metered)


def measure_borrowing(
    guard: Guard,
    sample: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    window_bars: int | Sequence[int] = CALIBRATION_BARS,
    pieces: Sequence[int] | None = None,
) -> list[Borrowing]:
    """For each catalog piece, a window of ``window_bars`` bars checked against the *other* works.

    Other recordings of the same work are left out, and so is each close piece that is the
    same tune under another title (the window covered :data:`DUPLICATE_COVERAGE` of its notes
    in it, or :meth:`same_tune`): it is recorded in ``same_tune`` and passed over, so every
    piece's borrowing is from works that are not its own tune. The closest other work is the
    most significant one; each line of evidence's best score over the other works is kept
    (``evidence``): one draw from its chance distribution, what its null is fitted on.
    ``window_bars``: one length, or lengths to draw from per piece (seeded) so the nulls see
    queries of every length. ``pieces``: measure these only (default: all, or ``sample`` of them).
    """
    order = np.arange(len(guard.index.pieces)) if pieces is None else np.asarray(sorted(pieces), dtype=np.int64)
    if sample is not None and sample < len(order):
        order = np.sort(np.random.default_rng(seed).choice(order, size=sample, replace=False))
    lengths = [window_bars] if isinstance(window_bars, int) else list(window_bars)
    by_piece: dict[int, list[int]] = {}
    for e, piece in enumerate(guard.index.entry_piece.tolist()):
        by_piece.setdefault(piece, []).append(e)
    out = []
    for n, piece in enumerate(order.tolist(), start=1):
        works = set(guard.works[piece])
        left_out = {i for i, w in enumerate(guard.works) if i == piece or (works and works.intersection(w))}
        rng = np.random.default_rng([seed, piece])
        bars = int(rng.choice(lengths))
        lines = [
            (LINE_KINDS[int(guard.index.entry_kind[e])], window(guard.index.entry(e), bars, rng))
            for e in by_piece.get(piece, [])
        ]
        passed: list[tuple[int, float]] = []
        measured = Borrowing(piece, -1, 0.0, 0, 0.0, window_bars=bars)
        for _ in range(MAX_SAME_TUNE + 1):
            found = guard.findings(lines, frozenset(left_out))
            fresh = False
            # closest first: the most significant, then the longest passage, then the lower piece id
            for other, f in sorted(found.items(), key=lambda kv: (kv[1].evalue, -kv[1].passage.score, kv[0])):
                if len(passed) < MAX_SAME_TUNE and _same_tune_in(guard, piece, other, f, lines):
                    passed.append((other, f.passage.score))  # the same tune under another title
                    left_out.add(other)
                    fresh = True
                    continue
                break
            found = {k: v for k, v in found.items() if k not in left_out}
            if fresh and len(passed) < MAX_SAME_TUNE and not found:
                continue  # every piece retrieved was the tune itself: look again without them
            if found:
                other, f = min(found.items(), key=lambda kv: (kv[1].evalue, -kv[1].passage.score, kv[0]))
                q_len = next(len(enc) for kind, enc in lines if kind == f.query_line)
                p = f.passage
                measured = Borrowing(
                    piece,
                    other,
                    p.score,
                    p.shared_notes,
                    round(p.shared_notes / max(q_len, 1), 3),
                    evidence=_best_per_line(guard, piece, found, lines, left_out, passed),
                    significance=significance(f.evalue),
                    window_bars=bars,
                )
            break
        if measured.other < 0:
            measured = replace(measured, evidence=_best_per_line(guard, piece, {}, lines, left_out, passed))
        out.append(replace(measured, same_tune=tuple(passed)))
        if progress:
            progress("measure catalog borrowing", n, len(order))
    return out


def _same_tune_in(guard: Guard, piece: int, other: int, f: Finding, lines: Sequence[tuple[str, Encoded]]) -> bool:
    """The calibration's same-tune rule for one found piece: the window's shared passage covers
    :data:`DUPLICATE_COVERAGE` of the window's line, or the two whole melodies are one tune."""
    q_len = next(len(enc) for kind, enc in lines if kind == f.query_line)
    return f.passage.shared_notes / max(q_len, 1) >= DUPLICATE_COVERAGE or guard.same_tune(piece, other)


def _best_per_line(
    guard: Guard,
    piece: int,
    found: dict[int, Finding],
    lines: Sequence[tuple[str, Encoded]],
    left_out: set[int],
    passed: list[tuple[int, float]],
) -> tuple[tuple[str, float, int, float], ...]:
    """Each line of evidence's best ``(score, query notes)`` over ``found``, passing over (and
    recording in ``passed``) a piece that is the same tune where it is the one that scores best."""
    # a line of evidence nothing reached is a draw of 0 (melody and bass: only where the window has both)
    info = information_of(guard.index)
    longest = max(lines, key=lambda kv: len(kv[1]), default=None)
    single = (0, 0.0) if longest is None else (len(longest[1]), composition(longest[1], info))
    kinds = {"alignment": single, "exact run": single, "length": single}
    if {"melody", "bass"} <= {kind for kind, _ in lines}:
        both = sum(len(enc) for _, enc in lines)
        mixed = sum(len(enc) * composition(enc, info) for _, enc in lines) / max(both, 1)
        kinds["melody and bass"] = (both, round(mixed, 4))
    out = []
    for kind, notes_if_none in kinds.items():
        while True:
            having = [
                (f.scores[kind], other) for other, f in found.items() if kind in f.scores and other not in left_out
            ]
            if not having:
                out.append((kind, 0.0, *notes_if_none))
                break
            (score, notes, bits), other = max(having, key=lambda x: (x[0][0], -x[1]))
            if len(passed) < MAX_SAME_TUNE and _same_tune_in(guard, piece, other, found[other], lines):
                passed.append((other, found[other].passage.score))
                left_out.add(other)
                continue
            out.append((kind, score, notes, bits))
            break
    return tuple(out)
