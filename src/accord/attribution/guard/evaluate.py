"""Measuring the symbolic guard on planted copies: true positives at fixed false-positive rates.

**Positives.** For each of ``works`` catalog pieces (melody of 8 bars or more), an excerpt
of 4 or 8 bars of its melody is copied, then disguised: transposed (±1-6 semitones),
played at another tempo (×0.75-1.33), and 10%, 20% or 30% of its notes edited (seven in ten
edits move the pitch by 1-3 semitones, three in ten nudge the onset by a quarter of the
gap to the next note). It is planted in the middle of other material: 16 bars of the
melody of *another* catalog work of the same style (genre), which is then left out of the
check, with any catalog piece that is the same tune under another title (the calibration's
duplicate rule) — so the material around the copy is music in the style, not noise.

**Hard negatives.** The same material with nothing planted: 16 bars of a same-style work,
checked with that work and its duplicates left out. The guard must not confuse a work with
the stock phrases of its style. **Easy negatives**: a random diatonic walk.

**Sweep.** Excerpts of 1, 2, 3, 4, 6 and 8 bars with 20% edits: which length, and which
fraction of the source work, the guard catches at the policy threshold.

From the scores, the threshold giving at most 1% (0.1%) false positives on the negatives
and the share of positives at or above it (TPR).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.table import Table

from accord.attribution.guard.check import CALIBRATION_BARS, MAX_SAME_TUNE, Guard, window
from accord.attribution.guard.ngrams import Encoded, rhythm_classes

Progress = Callable[[str, int, int], None]
EDIT_LEVELS = (0.1, 0.2, 0.3)
EXCERPT_BARS = (4, 8)
SWEEP_BARS = (1, 2, 3, 4, 6, 8)
FILLER_BARS = 8
HOST_BARS = CALIBRATION_BARS  # other material: 16 bars, the length calibration measures
NEGATIVES_PER_WORK = 17  # 60 works give ~1,000 negatives: enough to resolve a 0.1% false-positive rate
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


@dataclass(frozen=True)
class Query:
    """One planted query: its score and what it is."""

    kind: str  # "positive", "hard negative", "easy negative", "sweep"
    score: float
    bars: int
    edits: float
    fraction: float  # copied notes / the source work's melody notes (0 for negatives)
    hit: bool  # positives: the source work was the one found


def scores_of(queries: Sequence[Any], kind: str, **match: Any) -> np.ndarray:
    """The scores of the ``queries`` of ``kind`` whose attributes equal ``match``."""
    return np.array([q.score for q in queries if q.kind == kind and all(getattr(q, k) == v for k, v in match.items())])


def threshold_at_fpr(negatives: np.ndarray, fpr: float, *, step: float) -> float:
    """The lowest threshold (one ``step`` above a negative's score) with at most ``fpr`` of
    ``negatives`` at or above it; 0 when there are none."""
    neg = np.sort(negatives)
    if len(neg) == 0:
        return 0.0
    allowed = int(np.floor(fpr * len(neg)))  # negatives allowed at or above the threshold
    return float(neg[len(neg) - allowed - 1]) + step if allowed < len(neg) else 0.0


@dataclass(frozen=True)
class GuardEvaluation:
    """The outcome of :func:`evaluate`.

    Attributes:
        queries: every query scored.
        threshold: the policy threshold in force.
        policy_version: the policy it came from.
        works: catalog works planted.
    """

    queries: tuple[Query, ...]
    threshold: float
    policy_version: str
    works: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def _scores(self, kind: str, **match: Any) -> np.ndarray:
        return scores_of(self.queries, kind, **match)

    def negatives(self) -> np.ndarray:
        return np.concatenate([self._scores("hard negative"), self._scores("easy negative")])

    def threshold_at(self, fpr: float) -> float:
        """The lowest threshold with at most ``fpr`` of the negatives at or above it."""
        return threshold_at_fpr(self.negatives(), fpr, step=0.001)

    def rows(self) -> list[dict[str, Any]]:
        """TPR per planted condition at the 1% / 0.1% FPR thresholds and at the policy threshold."""
        t1, t01 = self.threshold_at(0.01), self.threshold_at(0.001)
        out = []
        for bars in EXCERPT_BARS:
            for edits in EDIT_LEVELS:
                pos = self._scores("positive", bars=bars, edits=edits)
                out.append(
                    {
                        "excerpt_bars": bars,
                        "edited": edits,
                        "n": len(pos),
                        "tpr_at_1pct_fpr": round(float(np.mean(pos >= t1)), 3) if len(pos) else None,
                        "tpr_at_0.1pct_fpr": round(float(np.mean(pos >= t01)), 3) if len(pos) else None,
                        "tpr_at_policy": round(float(np.mean(pos >= self.threshold)), 3) if len(pos) else None,
                    }
                )
        return out

    def sweep(self) -> list[dict[str, Any]]:
        out = []
        for bars in SWEEP_BARS:
            qs = [q for q in self.queries if q.kind == "sweep" and q.bars == bars]
            if not qs:
                continue
            scores = np.array([q.score for q in qs])
            out.append(
                {
                    "excerpt_bars": bars,
                    "n": len(qs),
                    "median_fraction_of_work": round(float(np.median([q.fraction for q in qs])), 3),
                    "caught_at_policy": round(float(np.mean(scores >= self.threshold)), 3),
                    "caught_at_1pct_fpr": round(float(np.mean(scores >= self.threshold_at(0.01))), 3),
                }
            )
        return out

    def smallest_caught(self, rate: float = 0.9) -> dict[str, Any] | None:
        """The shortest swept excerpt caught in at least ``rate`` of cases at the policy threshold."""
        for row in self.sweep():
            if row["caught_at_policy"] >= rate:
                return {"rate": rate, **row}
        return None

    def to_dict(self) -> dict[str, Any]:
        neg = self.negatives()
        return {
            "works": self.works,
            "policy_version": self.policy_version,
            "policy_threshold": self.threshold,
            "negatives": len(neg),
            "false_positive_rate_at_policy": round(float(np.mean(neg >= self.threshold)), 4) if len(neg) else None,
            "threshold_at_1pct_fpr": round(self.threshold_at(0.01), 2),
            "threshold_at_0.1pct_fpr": round(self.threshold_at(0.001), 2),
            "rows": self.rows(),
            "sweep": self.sweep(),
            "smallest_caught": self.smallest_caught(),
            "notes": list(self.notes),
        }

    def tables(self) -> list[Table]:
        data = self.to_dict()
        head = Table(title="Replication guard on planted copies", title_justify="left")
        for col in ("excerpt", "edited", "copies", "TPR @1% FPR", "TPR @0.1% FPR", "TPR @policy"):
            head.add_column(col, justify="right")
        for r in data["rows"]:
            head.add_row(
                f"{r['excerpt_bars']} bars",
                f"{r['edited']:.0%}",
                str(r["n"]),
                f"{r['tpr_at_1pct_fpr']:.3f}",
                f"{r['tpr_at_0.1pct_fpr']:.3f}",
                f"{r['tpr_at_policy']:.3f}",
            )
        head.caption = (
            f"{data['negatives']} negatives; thresholds: 1% FPR {data['threshold_at_1pct_fpr']}, "
            f"0.1% FPR {data['threshold_at_0.1pct_fpr']}, policy {self.threshold:g} "
            f"(FPR {data['false_positive_rate_at_policy']}) — {self.policy_version}"
        )
        sweep = Table(title="Smallest copy caught (20% of notes edited)", title_justify="left")
        for col in ("excerpt", "copies", "share of the work", "caught @policy", "caught @1% FPR"):
            sweep.add_column(col, justify="right")
        for r in data["sweep"]:
            sweep.add_row(
                f"{r['excerpt_bars']} bars",
                str(r["n"]),
                f"{r['median_fraction_of_work']:.1%}",
                f"{r['caught_at_policy']:.2f}",
                f"{r['caught_at_1pct_fpr']:.2f}",
            )
        return [head, sweep]


def _excerpt(line: Encoded, bars: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """``(pitches, onsets)`` of ``bars`` bars of ``line`` from a random bar (``None``: too short)."""
    first_bar, last_bar = int(line.bars.min()), int(line.bars.max())
    if last_bar - first_bar + 1 < bars:
        return None
    start = int(rng.integers(first_bar, last_bar - bars + 2))
    keep = (line.bars >= start) & (line.bars < start + bars)
    if keep.sum() < 6:
        return None
    return line.pitches[keep].astype(np.int64), line.onsets[keep].astype(np.float64)


def _disguise(
    pitches: np.ndarray, onsets: np.ndarray, edits: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    p = pitches + int(rng.choice([-1, 1]) * rng.integers(1, 7))
    o = (onsets - onsets[0]) * float(rng.uniform(0.75, 1.33))
    p, o = p.copy(), o.copy()
    n_edit = round(edits * len(p))
    for i in rng.choice(len(p), size=n_edit, replace=False).tolist():
        if rng.random() < 0.7:
            p[i] += int(rng.choice([-1, 1]) * rng.integers(1, 4))
        elif i + 1 < len(o):
            o[i] += 0.25 * (o[i + 1] - o[i]) * float(rng.choice([-1, 1]))
    order = np.argsort(o, kind="stable")
    return p[order], o[order]


def _filler(
    bars: int, bar_s: float, ioi: np.ndarray, tonic: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Other material: a random diatonic walk with inter-onset gaps drawn from ``ioi``."""
    total = bars * bar_s
    onsets, pitches, t, degree = [], [], 0.0, int(rng.integers(0, 7))
    while t < total:
        onsets.append(t)
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), -7, 14))
        pitches.append(tonic + 12 * (degree // 7) + int(MAJOR[degree % 7]))
        t += float(rng.choice(ioi))
    return np.asarray(pitches, dtype=np.int64), np.asarray(onsets, dtype=np.float64)


def _embed(pitches: np.ndarray, onsets: np.ndarray, rng: np.random.Generator) -> Encoded:
    """The copy between 8 bars of other material before and after, as one melody line."""
    gaps = np.diff(onsets)
    gaps = gaps[gaps > 1e-3] if np.any(gaps > 1e-3) else np.array([0.25])
    bar_s = float(np.median(gaps)) * 8  # eight of its typical notes to a bar
    tonic = int(np.median(pitches)) - 5
    before_p, before_o = _filler(FILLER_BARS, bar_s, gaps, tonic, rng)
    after_p, after_o = _filler(FILLER_BARS, bar_s, gaps, tonic, rng)
    start = FILLER_BARS * bar_s
    copy_o = onsets - onsets[0] + start
    end = copy_o[-1] + float(np.median(gaps))
    p = np.concatenate([before_p, pitches, after_p])
    o = np.concatenate([before_o, copy_o, after_o + end])
    bars = (np.floor(o / bar_s) + 1).astype(np.int32)
    return Encoded(p.astype(np.int16), rhythm_classes(o), bars, o.astype(np.float32))


def _score(guard: Guard, line: Encoded, exclude: frozenset[int]) -> tuple[float, int]:
    found = guard.passages([("melody", line)], exclude)
    if not found:
        return 0.0, -1
    piece, (passage, _, _) = max(found.items(), key=lambda kv: (kv[1][0].score, -kv[0]))
    return passage.score, piece


def same_tune_pieces(guard: Guard, piece: int, melody: Encoded) -> frozenset[int]:
    """The piece, other recordings of its work, and catalog duplicates of its tune (up to
    :data:`~accord.attribution.guard.check.MAX_SAME_TUNE`; :meth:`Guard.same_tune`): all of them,
    since material from a tune harmonised ten times is a copy of the nine others, not a negative."""
    works = set(guard.works[piece])
    out = {i for i, w in enumerate(guard.works) if i == piece or (works and works.intersection(w))}
    for _ in range(MAX_SAME_TUNE):
        found = guard.passages([("melody", melody)], frozenset(out))
        if not found:
            break
        other = max(found.items(), key=lambda kv: (kv[1][0].score, -kv[0]))[0]
        if not guard.same_tune(piece, other):
            break
        out.add(other)
    return frozenset(out)


def _host(guard: Guard, melody: Encoded, rng: np.random.Generator) -> Encoded:
    """A window of :data:`HOST_BARS` bars of a catalog melody: the "other material" a copy is planted in."""
    return window(melody, HOST_BARS, rng)


def _plant(host: Encoded, pitches: np.ndarray, onsets: np.ndarray) -> Encoded:
    """``host`` with the copy inserted at its middle bar (host notes after it move later)."""
    if len(host) < 4:
        return _embed(pitches, onsets, np.random.default_rng(0))
    bar_numbers = host.bars.astype(np.int64)
    span = int(bar_numbers.max() - bar_numbers.min() + 1)
    o_host = host.onsets.astype(np.float64) - float(host.onsets[0])
    gaps = np.diff(o_host)
    gap = float(np.median(gaps[gaps > 1e-3])) if np.any(gaps > 1e-3) else 0.25
    bar_s = (float(o_host[-1]) + gap) / span
    middle = int(bar_numbers.min()) + span // 2
    before, after = bar_numbers < middle, bar_numbers >= middle
    copy_o = onsets - onsets[0] + (float(o_host[before][-1]) + gap if before.any() else 0.0)
    shift = copy_o[-1] + gap - (float(o_host[after][0]) if after.any() else 0.0)
    p = np.concatenate(
        [host.pitches[before], pitches - int(np.median(pitches)) + int(np.median(host.pitches)), host.pitches[after]]
    )
    o = np.concatenate([o_host[before], copy_o, o_host[after] + shift])
    bars = (np.floor(o / bar_s) + 1).astype(np.int32)
    return Encoded(p.astype(np.int16), rhythm_classes(o), bars, o.astype(np.float32))


def evaluate(guard: Guard, *, works: int = 60, seed: int = 0, progress: Progress | None = None) -> GuardEvaluation:
    """Plant disguised copies and hard negatives; score them all (see the module docstring)."""
    rng = np.random.default_rng(seed)
    melodies = {i: m for i in range(len(guard.index.pieces)) if (m := guard.melody(i)) is not None}
    eligible = sorted(i for i, m in melodies.items() if int(m.bars.max()) - int(m.bars.min()) + 1 >= 8)
    chosen = sorted(rng.choice(eligible, size=min(works, len(eligible)), replace=False).tolist()) if eligible else []
    by_genre: dict[str, list[int]] = {}
    for i in eligible:
        by_genre.setdefault(guard.genres[i], []).append(i)
    left_out: dict[int, frozenset[int]] = {}

    def host_for(piece: int) -> tuple[Encoded, frozenset[int]] | None:
        """Material from another same-style work, that work (and its duplicates) left out of the check."""
        peers = [i for i in by_genre.get(guard.genres[piece], []) if i != piece] or [i for i in eligible if i != piece]
        for _ in range(5):
            other = int(rng.choice(peers))
            if other not in left_out:
                left_out[other] = same_tune_pieces(guard, other, melodies[other])
            if piece not in left_out[other]:  # a host that is the same tune as the source would hide the copy
                return _host(guard, melodies[other], rng), left_out[other]
        return None

    queries: list[Query] = []
    for n, piece in enumerate(chosen, start=1):
        melody = melodies[piece]
        plan = [("positive", bars, edits) for bars in EXCERPT_BARS for edits in EDIT_LEVELS]
        plan += [("sweep", bars, 0.2) for bars in SWEEP_BARS]
        for kind, bars, edits in plan:
            ex = _excerpt(melody, bars, rng)
            host = host_for(piece)
            if ex is None or host is None:
                continue
            line = _plant(host[0], *_disguise(*ex, edits, rng))
            score, found = _score(guard, line, host[1])
            queries.append(Query(kind, score, bars, edits, len(ex[0]) / len(melody), found == piece))
        # hard negatives: the same kind of material with no copy planted in it
        for _ in range(NEGATIVES_PER_WORK):
            host = host_for(piece)
            if host is not None:
                score, _ = _score(guard, host[0], host[1])
                queries.append(Query("hard negative", score, HOST_BARS, 0.0, 0.0, False))
        filler_p, filler_o = _filler(HOST_BARS, 2.0, np.array([0.25, 0.25, 0.5]), 62, rng)
        score, _ = _score(guard, _embed(filler_p, filler_o, rng), frozenset())
        queries.append(Query("easy negative", score, 0, 0.0, 0.0, False))
        if progress:
            progress("planted copies", n, len(chosen))
    notes = (
        "positives count as caught by score alone; 'hit' records whether the source work was the closest found",
        f"{sum(q.hit for q in queries if q.kind == 'positive')} of {sum(q.kind == 'positive' for q in queries)} "
        "positives found their source work as the closest",
    )
    return GuardEvaluation(tuple(queries), guard.policy.symbolic_threshold, guard.policy.version, len(chosen), notes)
