"""Remix and continuation credit: material taken from a prompt is its source's, not influence.

When a creator continues or remixes a catalog recording (``Prompt.from_isrc``, under its
``remix`` licence), the output opens with bars of that recording, and the model may go on to
reuse more of it. Those bars are not something the model *learnt*: they are the source's own
material, so they are credited to the source recording directly, and only the rest of the
output is attributed by influence:

1. the bars that derive from the source are found with the replication guard's own aligner
   (:func:`~accord.attribution.guard.align.align_many`, under the guard policy's learnt
   substitution scores): each melody and bass line of the output is aligned with each line of
   the source; a passage counts when it is at least :data:`MIN_BARS` bar of the source line long
   and shares at least :data:`MIN_SHARED_NOTES` notes (one n-gram's worth); the output's notes
   outside it are searched again, up to :data:`MAX_PASSAGES` passages per pair of lines, so a
   source quoted twice is found twice. A bar of the output is *derived* when, on some line, more
   than :data:`BAR_COVERAGE` of its notes are aligned with a source note of the same pitch (a
   passage that spills one chance note into the next bar does not take that bar);
2. the source's direct share is ``ceil(1,000,000 · derived bars / output bars)`` ppm: a 12-bar
   piece primed with 4 bars credits 333,334 ppm, never less than the bars' exact share (rounding
   goes to the source, whose material it is);
3. the influence attribution (any method) fills the rest: where it is reliable its items and
   unattributed share are scaled to the rest by :func:`accord.money.allocate` (largest remainder,
   so every part still sums to exactly 1,000,000); where it is not, the rest is unattributed (it
   goes to the training pool). The source's direct credit is alignment, not estimation, so the
   result is reliable whenever it credits the source at all;
4. the source's direct part goes to its works and holders by the registry as it stands now (the
   owners whose ``remix`` licence the generation relied on); the influence part as before, by the
   registry at the training manifest's ``as_of``. An ISRC credited both ways gets the sum.

The whole derivation (passages, bars, ppm) is kept in the result's ``details["remix"]``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from accord.attribution.contract import PPM_WHOLE, Attribution, ItemWeight, sorted_weights
from accord.attribution.guard.align import Passage, align_many, aligned_pairs
from accord.attribution.guard.index import encode_midi
from accord.attribution.guard.ngrams import GRAM, Encoded
from accord.attribution.guard.scoring import Scoring
from accord.attribution.weights import UNATTRIBUTED_KEY, credit_items
from accord.errors import NotFound
from accord.money import allocate
from accord.registry.entities import Catalog

REMIX_VERSION = "remix1"
"""Appended to the influence method's version (``trak-…+remix1``): the shares changed by this rule."""
MIN_SHARED_NOTES = GRAM + 2
"""Notes a passage must share with the source: one n-gram's span (6 notes), the guard's smallest unit."""
MIN_BARS = 1.0
"""A passage shorter than one bar of the source line is a stock figure, not material taken."""
BAR_COVERAGE = 0.5
"""A bar is taken from the source when more than half of a line's notes in it are aligned with the source's."""
MAX_PASSAGES = 8
"""Passages looked for per pair of lines (a source quoted again and again is found each time)."""


@dataclass(frozen=True)
class DerivedPassage:
    """One passage of the output that the guard's alignment finds in the source.

    Attributes:
        output_line: the output's line (``melody``/``bass``).
        source_line: the source's line.
        output_bars: ``(first, last)`` bars (1-based) of the passage in the output.
        source_bars: the same in the source.
        shared_notes: aligned notes with the same (transposed) pitch.
        bars: the passage's length in bars of the source line (the guard's ``score``).
        taken: the output bars most of whose notes (on this line) the alignment pairs with the source's.
    """

    output_line: str
    source_line: str
    output_bars: tuple[int, int]
    source_bars: tuple[int, int]
    shared_notes: int
    bars: float
    taken: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_line": self.output_line,
            "source_line": self.source_line,
            "output_bars": list(self.output_bars),
            "source_bars": list(self.source_bars),
            "shared_notes": self.shared_notes,
            "bars": self.bars,
            "taken": list(self.taken),
        }


@dataclass(frozen=True)
class Derived:
    """Which bars of an output derive from its source recording.

    Attributes:
        source_isrc: the recording continued or remixed.
        bars: the output's bars (1-based, ascending) that some passage spans.
        total_bars: the output's length in bars.
        passages: the passages found, in output order.
    """

    source_isrc: str
    bars: tuple[int, ...]
    total_bars: int
    passages: tuple[DerivedPassage, ...] = ()

    @property
    def direct_ppm(self) -> int:
        """The source's direct share: ``ceil(1,000,000 · derived bars / total bars)`` (0 when nothing derives)."""
        if not self.bars or self.total_bars <= 0:
            return 0
        return min(PPM_WHOLE, math.ceil(PPM_WHOLE * len(self.bars) / self.total_bars))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_isrc": self.source_isrc,
            "bars": list(self.bars),
            "total_bars": self.total_bars,
            "direct_ppm": self.direct_ppm,
            "passages": [p.to_dict() for p in self.passages],
            "version": REMIX_VERSION,
        }


def output_bars(midi: bytes) -> int:
    """An output's length in bars: the bars its file's time signatures lay out before its end (at least
    the last bar a note starts in; 0 for a file without notes or bars)."""
    from accord.media.features import read_performance

    perf = read_performance(midi)
    laid_out = int(np.count_nonzero(perf.downbeats < perf.seconds - 1e-6))
    lines = encode_midi(midi)
    last_note_bar = max((int(enc.bars.max()) for _, enc in lines if len(enc)), default=0)
    return max(laid_out, last_note_bar)


def _slice(line: Encoded, first: int, last: int) -> Encoded:
    """Notes ``first .. last - 1`` of a query line (bars and onsets keep their absolute values)."""
    return Encoded(
        line.pitches[first:last],
        line.rhythm[first:last],
        line.bars[first:last],
        line.onsets[first:last],
        metered=line.metered,
    )


def _qualifies(passage: Passage | None) -> bool:
    return passage is not None and passage.shared_notes >= MIN_SHARED_NOTES and passage.score >= MIN_BARS


def _bars_taken(query: Encoded, source: Encoded, passage: Passage, scoring: Scoring | None) -> tuple[int, ...]:
    """The bars of ``query`` in which more than :data:`BAR_COVERAGE` of the line's notes are aligned with
    a source note of the same (transposed) pitch in ``passage``'s alignment."""
    pairs = aligned_pairs(query, source, passage.transposition, scoring)
    matched = [i for i, j in pairs if int(query.pitches[i]) == int(source.pitches[j]) + passage.transposition]
    taken = Counter(int(query.bars[i]) for i in matched)
    notes = Counter(int(b) for b in query.bars.tolist())
    return tuple(sorted(b for b, n in taken.items() if n > BAR_COVERAGE * notes[b]))


def passages_in(
    query: Encoded, source: Encoded, scoring: Scoring | None = None
) -> list[tuple[Passage, tuple[int, ...]]]:
    """The passages of ``query`` found in ``source``, each with the bars it takes (:func:`_bars_taken`):
    the best local alignment, then the best in the notes before it and after it, and so on (at most
    :data:`MAX_PASSAGES`; each must qualify)."""
    found: list[tuple[Passage, tuple[int, ...]]] = []
    spans = [(0, len(query))]  # query note ranges still to search, [first, last)
    while spans and len(found) < MAX_PASSAGES:
        first, last = spans.pop(0)
        if last - first < MIN_SHARED_NOTES:
            continue
        part = _slice(query, first, last)
        passage = align_many(part, [source], scoring)[0]
        if passage is None or not _qualifies(passage):
            continue
        found.append((passage, _bars_taken(part, source, passage, scoring)))
        i0, i1 = passage.query_notes
        spans += [(first, first + i0), (first + i1 + 1, last)]
    return sorted(found, key=lambda pb: (pb[0].query_bars, pb[0].catalog_bars))


def derived_bars(output_midi: bytes, source_midi: bytes, source_isrc: str, scoring: Scoring | None = None) -> Derived:
    """The bars of ``output_midi`` that the guard's alignment finds in ``source_midi`` (see the module)."""
    output_lines = encode_midi(output_midi)
    source_lines = encode_midi(source_midi)
    passages: list[DerivedPassage] = []
    for out_kind, out_line in output_lines:
        for src_kind, src_line in source_lines:
            for p, taken in passages_in(out_line, src_line, scoring):
                passages.append(
                    DerivedPassage(out_kind, src_kind, p.query_bars, p.catalog_bars, p.shared_notes, p.score, taken)
                )
    total = output_bars(output_midi)
    bars = sorted({b for p in passages for b in p.taken if b <= total})
    # deterministic order: by where the passage sits in the output, then in the source, then the lines
    ordered = sorted(passages, key=lambda p: (p.output_bars, p.source_bars, p.output_line, p.source_line))
    return Derived(source_isrc, tuple(bars), total, tuple(ordered))


def _scaled(influence: Attribution, rest: int) -> list[tuple[str, int]]:
    """The influence items' ppm scaled to ``rest`` (largest remainder with the unattributed share;
    nothing when the influence attribution is unreliable: then all of ``rest`` is unattributed)."""
    if not influence.reliable or not influence.items or rest == 0:
        return []
    keys = [i.isrc for i in influence.items] + [UNATTRIBUTED_KEY]
    weights = [i.weight_ppm for i in influence.items] + [influence.unattributed_ppm]
    parts = allocate(rest, weights, keys)
    return [(isrc, p) for isrc, p in zip(keys[:-1], parts[:-1], strict=True) if p > 0]


def _merge(pairs: Sequence[tuple[tuple[str, int], ...]]) -> tuple[tuple[str, int], ...]:
    total: dict[str, int] = defaultdict(int)
    for group in pairs:
        for key, ppm in group:
            total[key] += ppm
    return sorted_weights(list(total.items()))


def credit_remix(
    influence: Attribution, derived: Derived, *, influence_catalog: Catalog, source_catalog: Catalog
) -> Attribution:
    """``influence`` with the source's derived bars credited to it directly (rules 2-4 of the module).

    ``influence_catalog``: the registry the influence items were credited by (at the manifest's
    ``as_of``); ``source_catalog``: the registry now, holding the source recording and its works.
    An output nothing of which derives from the source is returned as ``influence`` was.
    """
    direct = derived.direct_ppm
    if direct == 0:
        return replace(influence, details={**influence.details, "remix": derived.to_dict()})
    scaled = _scaled(influence, PPM_WHOLE - direct)
    fallback = {i.isrc: tuple(w.work_id for w in i.works) for i in influence.items}
    inf_items, inf_works, inf_master, inf_pub = credit_items(
        [(isrc, ppm, fallback.get(isrc, ())) for isrc, ppm in scaled], influence_catalog
    )
    src_items, src_works, src_master, src_pub = credit_items([(derived.source_isrc, direct, ())], source_catalog)
    scores = {i.isrc: i.score for i in influence.items}
    by_isrc: dict[str, ItemWeight] = {}
    for item in (*src_items, *inf_items):  # the source's title and works as the registry has them now
        kept = by_isrc.get(item.isrc)
        ppm = item.weight_ppm + (kept.weight_ppm if kept is not None else 0)
        base = kept if kept is not None else item
        by_isrc[item.isrc] = ItemWeight(item.isrc, ppm, base.title, base.works, scores.get(item.isrc, 0.0))
    items = tuple(sorted(by_isrc.values(), key=lambda i: (-i.weight_ppm, i.isrc)))
    unattributed = PPM_WHOLE - sum(i.weight_ppm for i in items)
    return Attribution(
        method=influence.method,
        method_version=f"{influence.method_version}+{REMIX_VERSION}",
        reliable=True,
        unattributed_ppm=unattributed,
        items=items,
        works=_merge([src_works, inf_works]),
        master=_merge([src_master, inf_master]),
        publishing=_merge([src_pub, inf_pub]),
        manifest_root=influence.manifest_root,
        details={
            **influence.details,
            "remix": derived.to_dict(),
            "influence": {"reliable": influence.reliable, "unattributed_ppm": influence.unattributed_ppm},
        },
    )


def source_midi_sha256(catalog: Catalog, isrc: str) -> str | None:
    """The MIDI file a continuation of ``isrc`` is primed from (``None``: it has none): the recording's
    MIDI file (:attr:`accord.registry.entities.Recording.midi`, as the studio primes from it)."""
    rec = catalog.recordings.get(isrc)
    if rec is None:
        msg = f"remix_of: {isrc} is not a recording of the registry"
        raise NotFound(msg)
    midi = rec.midi
    return None if midi is None else midi.sha256


__all__ = [
    "BAR_COVERAGE",
    "MAX_PASSAGES",
    "MIN_BARS",
    "MIN_SHARED_NOTES",
    "REMIX_VERSION",
    "Derived",
    "DerivedPassage",
    "credit_remix",
    "derived_bars",
    "output_bars",
    "passages_in",
    "source_midi_sha256",
]
