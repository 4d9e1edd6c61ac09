"""Measuring the symbolic guard on planted copies: recall at fixed false-alarm rates.

**Held out.** The catalog is split in two by a hash of each ISRC (:func:`held_out`). The guard
is calibrated afresh on one half (:func:`~.calibrate.calibrate` with ``pieces``: scores learnt
and nulls fitted there); copies are planted only of works of the other half, in material from
that half. So no copy is scored by a null or a substitution table fitted on its own source,
and the figures say how the guard does on copies it has not seen. "At the policy" means at the
threshold that held-out calibration sets by the same rule as ``accord guard calibrate``.

**Positives.** For each of ``works`` held-out catalog pieces (melody of 8 bars or more), an
excerpt of 2, 4, 8 or 16 bars of its melody is copied and disguised: transposed (±1-6
semitones) or not, played at another tempo (×0.75-1.33) or not, and 0%, 10%, 20% or 30% of its
notes edited (seven in ten edits move the pitch by 1-3 semitones, three in ten nudge the onset
by a quarter of the gap to the next note). Every length and edit level is planted transposed
*and* re-timed; unedited copies also plain, transposed only and re-timed only. The copy is
put in the middle of 16 bars of the melody of *another* held-out work of the same style
(genre), which is then left out of the check with every catalog piece that is its tune under
another title (the calibration's duplicate rule).

**Hard negatives.** The same material with nothing planted: 16 bars of a same-style held-out
work, checked with that work and its duplicates left out. **Easy negatives**: a random
diatonic walk.

From the significance of the closest catalog piece: the threshold giving at most 1% (0.1%)
false alarms on the negatives and the share of positives at or above it, and the share at
the policy. **Ablations**: the same at 0.1% false alarms with one line of evidence alone, and
with the passage's length in bars (what the guard blocked on before E-values).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from rich.table import Table

from accord.attribution.guard.borrowing import window
from accord.attribution.guard.check import CALIBRATION_BARS, MAX_SAME_TUNE, Guard
from accord.attribution.guard.ngrams import Encoded, rhythm_classes
from accord.attribution.guard.significance import EVIDENCE, significance

Progress = Callable[[str, int, int], None]
COPY_BARS = (2, 4, 8, 16)
EDIT_LEVELS = (0.0, 0.1, 0.2, 0.3)
DISGUISES = ((True, True), (False, False), (True, False), (False, True))
"""(transposed, re-timed): every edit level gets the first; unedited copies get all four."""
FILLER_BARS = 8
HOST_BARS = CALIBRATION_BARS  # other material: 16 bars, the length calibration measures
NEGATIVES_PER_WORK = 17  # 60 works give ~1,000 negatives: enough to resolve a 0.1% false-alarm rate
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
ABLATIONS = ("combined", *EVIDENCE, "bars")


def held_out(isrc: str) -> bool:
    """Whether a catalog recording is in the evaluation's half (the other half is fitted on)."""
    return hashlib.sha256(isrc.encode()).digest()[0] % 2 == 1


@dataclass(frozen=True)
class Query:
    """One planted query: its scores and what it is.

    Attributes:
        kind: ``"positive"``, ``"hard negative"`` or ``"easy negative"``.
        score: significance (``−log10 E``) of the closest catalog piece.
        bars: copy length in bars (negatives: the host's).
        edits: share of the copy's notes edited.
        transposed: the copy was transposed.
        retimed: the copy was played at another tempo.
        hit: positives: the source work was the closest found.
        passage_bars: the longest passage found, in bars (the measure before E-values).
        evalues: ``(line of evidence, E)``, the smallest E of each over the pieces found.
        genre: the style of the source work (negatives: of the host).
    """

    kind: str
    score: float
    bars: int
    edits: float
    transposed: bool = False
    retimed: bool = False
    hit: bool = False
    passage_bars: float = 0.0
    evalues: tuple[tuple[str, float], ...] = ()
    genre: str = ""

    def measure(self, ablation: str) -> float:
        """The query's score under an ablation (:data:`ABLATIONS`)."""
        if ablation == "combined":
            return self.score
        if ablation == "bars":
            return self.passage_bars
        return significance(dict(self.evalues).get(ablation, float("inf")))


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


def _rate(scores: np.ndarray, threshold: float) -> float | None:
    return round(float(np.mean(scores >= threshold)), 3) if len(scores) else None


@dataclass(frozen=True)
class GuardEvaluation:
    """The outcome of :func:`evaluate`.

    Attributes:
        queries: every query scored.
        threshold: the held-out policy's threshold (significance).
        policy_version: that policy.
        works: held-out works planted.
        fitted_on: catalog pieces the held-out policy was calibrated on.
        notes: anything a reader should know.
    """

    queries: tuple[Query, ...]
    threshold: float
    policy_version: str
    works: int
    fitted_on: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def negatives(self, ablation: str = "combined") -> np.ndarray:
        return np.array([q.measure(ablation) for q in self.queries if q.kind != "positive"])

    def threshold_at(self, fpr: float, ablation: str = "combined") -> float:
        """The lowest threshold with at most ``fpr`` of the negatives at or above it."""
        return threshold_at_fpr(self.negatives(ablation), fpr, step=0.001)

    def _positives(self, ablation: str = "combined", **match: Any) -> np.ndarray:
        return np.array(
            [
                q.measure(ablation)
                for q in self.queries
                if q.kind == "positive" and all(getattr(q, k) == v for k, v in match.items())
            ]
        )

    def rows(self) -> list[dict[str, Any]]:
        """Recall per planted condition at the 1% / 0.1% false-alarm thresholds and at the policy."""
        t1, t01 = self.threshold_at(0.01), self.threshold_at(0.001)
        out = []
        for bars in COPY_BARS:
            for edits in EDIT_LEVELS:
                for transposed, retimed in DISGUISES if edits == 0 else DISGUISES[:1]:
                    pos = self._positives(bars=bars, edits=edits, transposed=transposed, retimed=retimed)
                    out.append(
                        {
                            "copy_bars": bars,
                            "edited": edits,
                            "transposed": transposed,
                            "retimed": retimed,
                            "n": len(pos),
                            "recall_at_1pct_fpr": _rate(pos, t1),
                            "recall_at_0.1pct_fpr": _rate(pos, t01),
                            "recall_at_policy": _rate(pos, self.threshold),
                        }
                    )
        return out

    def ablations(self) -> list[dict[str, Any]]:
        """Recall at 0.1% false alarms of transposed, re-timed copies with each line of evidence alone."""
        out = []
        for ablation in ABLATIONS:
            t01 = self.threshold_at(0.001, ablation)
            row: dict[str, Any] = {"measure": ablation, "threshold_at_0.1pct_fpr": round(t01, 3)}
            for bars, edits in ((2, 0.0), (4, 0.0), (4, 0.2), (8, 0.0), (8, 0.2), (8, 0.3), (16, 0.3)):
                pos = self._positives(ablation, bars=bars, edits=edits, transposed=True, retimed=True)
                row[f"{bars} bars {edits:.0%}"] = _rate(pos, t01)
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        neg = self.negatives()
        hard = np.array([q.score for q in self.queries if q.kind == "hard negative"])
        return {
            "works": self.works,
            "fitted_on": self.fitted_on,
            "policy_version": self.policy_version,
            "policy_threshold": self.threshold,
            "negatives": len(neg),
            "false_positive_rate_at_policy": round(float(np.mean(neg >= self.threshold)), 4) if len(neg) else None,
            "hard_negatives_over_policy": int(np.sum(hard >= self.threshold)),
            "threshold_at_1pct_fpr": round(self.threshold_at(0.01), 3),
            "threshold_at_0.1pct_fpr": round(self.threshold_at(0.001), 3),
            "rows": self.rows(),
            "ablations": self.ablations(),
            "notes": list(self.notes),
        }

    def tables(self) -> list[Table]:
        data = self.to_dict()
        head = Table(title="Replication guard on planted copies (held-out works)", title_justify="left")
        for col in ("copy", "edited", "transposed", "re-timed", "copies", "@1% FPR", "@0.1% FPR", "@policy"):
            head.add_column(col, justify="right")

        def cell(v: float | None) -> str:
            return "—" if v is None else f"{v:.3f}"

        for r in data["rows"]:
            head.add_row(
                f"{r['copy_bars']} bars",
                f"{r['edited']:.0%}",
                "yes" if r["transposed"] else "no",
                "yes" if r["retimed"] else "no",
                str(r["n"]),
                cell(r["recall_at_1pct_fpr"]),
                cell(r["recall_at_0.1pct_fpr"]),
                cell(r["recall_at_policy"]),
            )
        head.caption = (
            f"{data['negatives']} negatives; significance thresholds: 1% FPR {data['threshold_at_1pct_fpr']}, "
            f"0.1% FPR {data['threshold_at_0.1pct_fpr']}, policy {self.threshold:g} "
            f"(FPR {data['false_positive_rate_at_policy']}, hard negatives over it "
            f"{data['hard_negatives_over_policy']}) — {self.policy_version}, fitted on {self.fitted_on} other pieces"
        )
        ablation = Table(title="Ablations: recall at 0.1% FPR, transposed and re-timed copies", title_justify="left")
        columns = list(data["ablations"][0]) if data["ablations"] else []
        for col in columns:
            ablation.add_column(col, justify="right")
        for r in data["ablations"]:
            ablation.add_row(*[v if isinstance(v, str) else cell(v) for v in r.values()])
        return [head, ablation]


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
    pitches: np.ndarray,
    onsets: np.ndarray,
    edits: float,
    rng: np.random.Generator,
    *,
    transpose: bool = True,
    tempo: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The copy transposed (±1-6 semitones), re-timed (×0.75-1.33) and ``edits`` of its notes edited."""
    shift = int(rng.choice([-1, 1]) * rng.integers(1, 7))
    stretch = float(rng.uniform(0.75, 1.33))
    p = pitches + (shift if transpose else 0)
    o = (onsets - onsets[0]) * (stretch if tempo else 1.0)
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


def _score(guard: Guard, line: Encoded, exclude: frozenset[int]) -> tuple[float, float, dict[str, float], int]:
    """``(significance, bars, E per line of evidence, piece)`` of the closest catalog piece."""
    found = guard.findings([("melody", line)], exclude)
    if not found:
        return significance(float("inf")), 0.0, {}, -1
    piece, f = min(found.items(), key=lambda kv: (kv[1].evalue, -kv[1].passage.score, kv[0]))
    bars = max(x.passage.score for x in found.values())  # the old measure: the longest passage anywhere
    # per line of evidence, the smallest E over the pieces found (an ablation uses one line alone)
    each = {k: min(x.evalues.get(k, float("inf")) for x in found.values()) for k in EVIDENCE}
    return significance(f.evalue), bars, each, piece


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


def evaluate(
    guard: Guard,
    *,
    works: int = 60,
    seed: int = 0,
    progress: Progress | None = None,
    percentile: float = 99.5,
    margin: float = 0.5,
    fit_sample: int | None = None,
) -> GuardEvaluation:
    """Calibrate on one half of the catalog, plant disguised copies of the other half's works and
    hard negatives from it, and score them all (see the module docstring)."""
    from accord.attribution.guard.calibrate import calibrate

    pieces = guard.index.pieces
    fit = [i for i, p in enumerate(pieces) if not held_out(p.isrc)]
    policy = calibrate(
        guard,
        percentile=percentile,
        margin=margin,
        created="",
        sample=fit_sample,
        seed=seed,
        progress=progress,
        pieces=fit,
        audio=False,
    ).policy
    guard = copy.copy(guard)  # the same index and caches under the held-out policy
    guard.policy = replace(guard.policy, scoring=policy.scoring, nulls=policy.nulls)
    rng = np.random.default_rng(seed)
    melodies = {i: m for i in range(len(pieces)) if held_out(pieces[i].isrc) and (m := guard.melody(i)) is not None}
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

    def query(kind: str, line: Encoded, exclude: frozenset[int], **what: Any) -> Query:
        score, bars_found, each, _ = _score(guard, line, exclude)
        return Query(kind, score, passage_bars=bars_found, evalues=tuple(sorted(each.items())), **what)

    queries: list[Query] = []
    for n, piece in enumerate(chosen, start=1):
        melody = melodies[piece]
        plan = [(b, e, *d) for b in COPY_BARS for e in EDIT_LEVELS for d in (DISGUISES if e == 0 else DISGUISES[:1])]
        for bars, edits, transposed, retimed in plan:
            ex = _excerpt(melody, bars, rng)
            host = host_for(piece)
            if ex is None or host is None:
                continue
            line = _plant(host[0], *_disguise(*ex, edits, rng, transpose=transposed, tempo=retimed))
            score, bars_found, each, found = _score(guard, line, host[1])
            queries.append(
                Query(
                    "positive",
                    score,
                    bars,
                    edits,
                    transposed,
                    retimed,
                    found == piece,
                    bars_found,
                    tuple(sorted(each.items())),
                    guard.genres[piece],
                )
            )
        for _ in range(NEGATIVES_PER_WORK):  # hard negatives: the same kind of material with no copy in it
            host = host_for(piece)
            if host is not None:
                queries.append(
                    query("hard negative", host[0], host[1], bars=HOST_BARS, edits=0.0, genre=guard.genres[piece])
                )
        filler_p, filler_o = _filler(HOST_BARS, 2.0, np.array([0.25, 0.25, 0.5]), 62, rng)
        queries.append(query("easy negative", _embed(filler_p, filler_o, rng), frozenset(), bars=0, edits=0.0))
        if progress:
            progress("planted copies", n, len(chosen))
    positives = [q for q in queries if q.kind == "positive"]
    notes = (
        "positives count as caught by significance alone; 'hit' records whether the source work was the closest",
        f"{sum(q.hit for q in positives)} of {len(positives)} positives found their source work as the closest",
        f"nulls and scores fitted on {len(fit)} catalog pieces; copies planted of {len(chosen)} others",
    )
    return GuardEvaluation(tuple(queries), policy.symbolic_threshold, policy.version, len(chosen), len(fit), notes)
