"""What a checked piece shares with each candidate catalog piece, on every line of evidence.

For each line of the checked piece (melody, bass) the n-gram look-up retrieves candidate
catalog lines; each is aligned (:func:`~accord.attribution.guard.align.align_many`, learnt
scores) and searched for its most informative exact run (:func:`~.scoring.exact_run`). Per
catalog piece, the best of each line of evidence (:data:`~.significance.EVIDENCE`) is kept
with the length of the query line it came from, then turned into E-values by the policy's
fitted nulls (:func:`evalues`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from accord.attribution.guard.align import Passage, align_many
from accord.attribution.guard.index import SymbolicIndex, query_grams
from accord.attribution.guard.lines import LINE_KINDS
from accord.attribution.guard.ngrams import NO_RHYTHM, Encoded, symbols
from accord.attribution.guard.scoring import ExactRun, Scoring, exact_run, symbol_information
from accord.attribution.guard.significance import GumbelNull, combined_evalue

_INFORMATION: dict[str, np.ndarray] = {}


def information_of(index: SymbolicIndex) -> np.ndarray:
    """The catalog's symbol information (:func:`~.scoring.symbol_information`), once per index."""
    if index.key not in _INFORMATION:
        if len(_INFORMATION) >= 4:
            _INFORMATION.pop(next(iter(_INFORMATION)))
        _INFORMATION[index.key] = symbol_information(index.pitches, index.rhythm, index.starts)
    return _INFORMATION[index.key]


@dataclass(frozen=True)
class Finding:
    """The best a checked piece shares with one catalog piece.

    Attributes:
        piece: the catalog piece (index into the guard's pieces).
        passage: the best alignment (where the shared passage sits in both).
        query_line: the checked piece's line it came from (``melody``/``bass``).
        catalog_line: the catalog piece's line.
        scores: per line of evidence, ``(score, query notes, composition)``: the best score, the
            length of the checked line(s) it was found in and their mean symbol information (bits).
        run: the most informative exact run (``None``: none).
        evalues: per line of evidence, its E-value (filled by :func:`evalues`).
        evalue: the combined E-value (:func:`~.significance.combined_evalue`).
    """

    piece: int
    passage: Passage
    query_line: str
    catalog_line: str
    scores: dict[str, tuple[float, int, float]]
    run: ExactRun | None = None
    evalues: dict[str, float] = field(default_factory=dict)
    evalue: float = float("inf")


def _overlap(a: Passage, b: Passage) -> bool:
    return a.query_seconds[0] <= b.query_seconds[1] and b.query_seconds[0] <= a.query_seconds[1]


def composition(line: Encoded, information: np.ndarray) -> float:
    """The mean information (bits) of a line's symbols whose rhythm is known: its composition."""
    sym = symbols(line.pitches, line.rhythm)
    known = line.rhythm[2:] != NO_RHYTHM
    return round(float(information[sym[known]].mean()), 4) if known.any() else 0.0


def find(
    index: SymbolicIndex,
    lines: Sequence[tuple[str, Encoded]],
    candidates: int,
    exclude: frozenset[int],
    scoring: Scoring | None,
) -> dict[int, Finding]:
    """Every retrieved catalog piece's :class:`Finding` (E-values not yet filled)."""
    info = information_of(index)
    # per piece: per query line kind, (passage, catalog entry); best alignment; best run
    by_line: dict[int, dict[str, tuple[Passage, int]]] = {}
    runs: dict[int, tuple[ExactRun, str]] = {}  # piece -> its best run and the query line it is in
    k = candidates + 2 * len(exclude)
    for (kind, enc), q in zip(lines, query_grams(lines), strict=True):
        found = index.candidates(q, k)
        entries = [e for e, _ in found if int(index.entry_piece[e]) not in exclude][:candidates]
        catalog = [index.entry(e) for e in entries]
        for entry, line, passage in zip(entries, catalog, align_many(enc, catalog, scoring), strict=True):
            piece = int(index.entry_piece[entry])
            if passage is not None:
                mine = by_line.setdefault(piece, {})
                if kind not in mine or passage.alignment > mine[kind][0].alignment:
                    mine[kind] = (passage, entry)
            run = exact_run(enc, line, info)
            if run is not None and (piece not in runs or run.information > runs[piece][0].information):
                runs[piece] = (run, kind)
    lengths = {kind: len(enc) for kind, enc in lines}
    bits = {kind: composition(enc, info) for kind, enc in lines}
    out: dict[int, Finding] = {}
    for piece, mine in by_line.items():
        qline, (passage, entry) = max(mine.items(), key=lambda kv: (kv[1][0].alignment, kv[0]))
        scores = {
            "alignment": (passage.alignment, lengths[qline], bits[qline]),
            "length": (passage.score, lengths[qline], bits[qline]),
        }
        if piece in runs:
            run, rline = runs[piece]
            scores["exact run"] = (run.information, lengths[rline], bits[rline])
        if "melody" in mine and "bass" in mine:
            (pm, em), (pb, eb) = mine["melody"], mine["bass"]
            if em != eb and (pm.transposition - pb.transposition) % 12 == 0 and _overlap(pm, pb):
                both = lengths["melody"] + lengths["bass"]
                mixed = (bits["melody"] * lengths["melody"] + bits["bass"] * lengths["bass"]) / both
                scores["melody and bass"] = (pm.alignment + pb.alignment, both, round(mixed, 4))
        out[piece] = Finding(
            piece,
            passage,
            qline,
            LINE_KINDS[int(index.entry_kind[entry])],
            scores,
            runs[piece][0] if piece in runs else None,
        )
    return out


def evalues(finding: Finding, nulls: dict[str, GumbelNull], catalog_notes: int) -> Finding:
    """``finding`` with the E-value of each line of evidence that has a null, and the combined one."""
    each = {
        kind: nulls[kind].evalue(score, notes, catalog_notes, bits)
        for kind, (score, notes, bits) in finding.scores.items()
        if kind in nulls and score > 0
    }
    return Finding(
        finding.piece,
        finding.passage,
        finding.query_line,
        finding.catalog_line,
        finding.scores,
        finding.run,
        each,
        combined_evalue(each),
    )


__all__ = ["Finding", "evalues", "find", "information_of"]
