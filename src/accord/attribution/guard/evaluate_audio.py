"""Measuring the audio check on planted re-renders: true positives at fixed false-positive rates.

The audio check is there to catch an output whose *sound* reproduces a catalog recording: a
render of the same notes with the same instruments, cut, mixed into other material, made
quieter or noisier. This plants exactly that and scores it with the guard's own audio path.

**Positives.** For each of ``works`` catalog pieces rendered in the audio reference (MIDI
renders; delivered audio is not re-rendered), an excerpt of 5, 10 or 20 seconds of its MIDI
from a random point is rendered with the renderer outputs use, and put between 8 seconds
before and 8 seconds after of *another* work of the same style (rendered the same way, that
work and the recordings of its tune left out of the check), at each level and noise of
:data:`VARIANTS`: ``clean`` as it is, ``quiet`` at 40% of the level, ``noisy`` at 40% of the level
with white noise 15 dB below the signal.

**Hard negatives.** 36 seconds (the longest positive's length) of a same-style work, checked with
that work and the recordings of its tune left out: the catalog's own shared sound (the same
chords, the same instruments, the same tempo), which is not copying.

From the scores: the threshold giving at most 1% (0.1%) false positives and the share of
positives at or above it, and the share caught at the policy threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.table import Table

from accord.attribution.guard.check import Guard
from accord.attribution.guard.evaluate import same_tune_pieces, scores_of, threshold_at_fpr
from accord.errors import ValidationError
from accord.media.features import Performance, read_performance
from accord.media.fingerprint import SAMPLE_RATE, fingerprint

Progress = Callable[[str, int, int], None]
COPY_SECONDS = (5.0, 10.0, 20.0)
HOST_SECONDS = 8.0  # other material before and after the copy
NEGATIVES_PER_WORK = 3
SCORE_STEP = 0.001  # audio scores are weighted sums rounded to 3 places: a threshold sits one step above a negative
VARIANTS: dict[str, tuple[float, float | None]] = {
    "clean": (1.0, None),
    "quiet": (0.4, None),
    "noisy": (0.4, 15.0),
}
"""Each variant's level (times the original) and white noise (dB below the signal at that level; ``None``: none)."""


@dataclass(frozen=True)
class AudioQuery:
    """One planted query: its score and what it is."""

    kind: str  # "positive" or "hard negative"
    score: float
    seconds: float
    variant: str
    hit: bool  # positives: the source recording was the closest found
    joint: float = 0.0  # with the melody: max(audio / its threshold, melody / its threshold) (see evaluate_audio)


@dataclass(frozen=True)
class AudioEvaluation:
    """The outcome of :func:`evaluate_audio` (see the module docstring)."""

    queries: tuple[AudioQuery, ...]
    threshold: float
    policy_version: str
    works: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    with_melody: bool = False

    def _scores(self, kind: str, **match: Any) -> np.ndarray:
        return scores_of(self.queries, kind, **match)

    def threshold_at(self, fpr: float) -> float:
        """The lowest threshold with at most ``fpr`` of the negatives at or above it."""
        return threshold_at_fpr(self._scores("hard negative"), fpr, step=SCORE_STEP)

    def _joint(self, kind: str, **match: Any) -> np.ndarray:
        return np.array(
            [q.joint for q in self.queries if q.kind == kind and all(getattr(q, k) == v for k, v in match.items())]
        )

    def to_dict(self) -> dict[str, Any]:
        neg = self._scores("hard negative")
        t1, t01 = self.threshold_at(0.01), self.threshold_at(0.001)
        joint_neg = self._joint("hard negative")
        j1 = threshold_at_fpr(joint_neg, 0.01, step=SCORE_STEP / 100)
        rows = []
        for seconds in COPY_SECONDS:
            for variant in VARIANTS:
                pos = self._scores("positive", seconds=seconds, variant=variant)
                hits = [
                    q.hit for q in self.queries if q.kind == "positive" and (q.seconds, q.variant) == (seconds, variant)
                ]
                level, noise_db = VARIANTS[variant]
                joint = self._joint("positive", seconds=seconds, variant=variant)
                rows.append(
                    {
                        "copy_seconds": seconds,
                        "variant": variant,
                        "level": level,
                        "noise_db_below": noise_db,
                        "n": len(pos),
                        "median_score": round(float(np.median(pos)), 1) if len(pos) else None,
                        "tpr_at_1pct_fpr": round(float(np.mean(pos >= t1)), 3) if len(pos) else None,
                        "tpr_at_0.1pct_fpr": round(float(np.mean(pos >= t01)), 3) if len(pos) else None,
                        "tpr_at_policy": round(float(np.mean(pos >= self.threshold)), 3) if len(pos) else None,
                        "source_found_first": round(float(np.mean(hits)), 3) if hits else None,
                    }
                    | (
                        {
                            "with_melody_tpr_at_1pct_fpr": round(float(np.mean(joint >= j1)), 3),
                            "with_melody_tpr_at_policy": round(float(np.mean(joint >= 1.0)), 3),
                        }
                        if self.with_melody and len(joint)
                        else {}
                    )
                )
        return {
            "works": self.works,
            "policy_version": self.policy_version,
            "policy_threshold": self.threshold,
            "negatives": len(neg),
            "negative_scores": {
                "median": round(float(np.median(neg)), 1) if len(neg) else None,
                "p99": round(float(np.percentile(neg, 99)), 1) if len(neg) else None,
                "max": round(float(neg.max()), 1) if len(neg) else None,
            },
            "false_positive_rate_at_policy": round(float(np.mean(neg >= self.threshold)), 4) if len(neg) else None,
            "false_positives_at_policy": int(np.sum(neg >= self.threshold)),
            "with_melody": self.with_melody,
            "with_melody_false_positives_at_policy": int(np.sum(joint_neg >= 1.0)) if self.with_melody else None,
            "threshold_at_1pct_fpr": round(t1, 1),
            "threshold_at_0.1pct_fpr": round(t01, 1),
            "rows": rows,
            "notes": list(self.notes),
        }

    def table(self) -> Table:
        data = self.to_dict()
        t = Table(title="Audio check on planted re-renders", title_justify="left")
        cols = ["copy", "level", "noise", "copies", "median score", "TPR @1% FPR", "TPR @0.1% FPR", "TPR @policy"]
        if self.with_melody:
            cols += ["+ melody @1% FPR", "+ melody @policy"]
        for col in cols:
            t.add_column(col, justify="right")
        for r in data["rows"]:
            if not r["n"]:
                continue
            cells = [
                f"{r['copy_seconds']:g} s",
                f"{r['level']:.0%}",
                "none" if r["noise_db_below"] is None else f"{r['noise_db_below']:g} dB below",
                str(r["n"]),
                f"{r['median_score']:g}",
                f"{r['tpr_at_1pct_fpr']:.3f}",
                f"{r['tpr_at_0.1pct_fpr']:.3f}",
                f"{r['tpr_at_policy']:.3f}",
            ]
            if self.with_melody:
                cells += [f"{r['with_melody_tpr_at_1pct_fpr']:.3f}", f"{r['with_melody_tpr_at_policy']:.3f}"]
            t.add_row(*cells)
        neg = data["negative_scores"]
        t.caption = (
            f"{data['negatives']} hard negatives (median {neg['median']}, p99 {neg['p99']}, max {neg['max']}); "
            f"thresholds: 1% FPR {data['threshold_at_1pct_fpr']}, 0.1% FPR {data['threshold_at_0.1pct_fpr']}, "
            f"policy {self.threshold:g} (FPR {data['false_positive_rate_at_policy']}) — {self.policy_version}"
            + (
                f"; with the melody, {data['with_melody_false_positives_at_policy']} negatives at the policy"
                if self.with_melody
                else ""
            )
        )
        return t


def excerpt(perf: Performance, start: float, seconds: float) -> Performance:
    """The notes of ``perf`` starting in ``[start, start + seconds)``, moved to start at 0."""
    notes = perf.notes
    keep = (notes[:, 0] >= start) & (notes[:, 0] < start + seconds)
    cut = notes[keep].copy()
    cut[:, 0] -= start
    cut[:, 1] = np.minimum(cut[:, 1], start + seconds - notes[keep, 0])
    beats = perf.downbeats[(perf.downbeats >= start) & (perf.downbeats < start + seconds)] - start
    return Performance(cut, perf.track[keep], perf.instruments, beats, seconds)


def render(perf: Performance, seconds: float) -> np.ndarray:
    """``seconds`` of ``perf`` at the fingerprint's rate, as the guard renders catalog MIDI."""
    from accord.media.fluid import FluidUnavailable, available, render_performance
    from accord.media.render import synthesize

    frames = round(seconds * SAMPLE_RATE)
    if available()[0]:
        try:
            out = render_performance(perf, SAMPLE_RATE, seconds=seconds)
        except FluidUnavailable:
            out = synthesize(perf, SAMPLE_RATE)
    else:
        out = synthesize(perf, SAMPLE_RATE)
    out = np.asarray(out, dtype=np.float64)[:frames]
    return np.pad(out, (0, frames - len(out)))


def altered(x: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    """``x`` at the level of ``variant`` (:data:`VARIANTS`), with its white noise."""
    level, noise_db = VARIANTS[variant]
    out = level * x
    if noise_db is None:
        return out
    power = float(np.mean(out**2)) or 1e-8
    return out + rng.normal(0.0, np.sqrt(power / 10 ** (noise_db / 10)), len(x))


def evaluate_audio(
    guard: Guard,
    read_midi: Callable[[str], bytes],
    *,
    works: int = 30,
    seed: int = 0,
    progress: Progress | None = None,
    with_melody: bool = False,
) -> AudioEvaluation:
    """Plant re-rendered excerpts of catalog recordings in other material and score them (module docstring).

    ``with_melody``: also transcribe each query and run the symbolic check on its notes, as
    :func:`~.check.check_audio` does, and score the one decision the two make together: a query is
    blocked when either check reaches its threshold, so its joint score is the larger of
    ``audio / audio threshold`` and ``melody significance / symbolic threshold`` (1 at the policy)."""
    if guard.audio is None:
        return AudioEvaluation((), guard.policy.audio_threshold, guard.policy.version, 0, ("the audio check is off",))
    if with_melody and guard.policy.symbolic_threshold <= 0:
        msg = f"symbolic_threshold={guard.policy.symbolic_threshold}: expected > 0 to score the melody against it"
        raise ValidationError(msg, field="symbolic_threshold", value=guard.policy.symbolic_threshold)
    rng = np.random.default_rng(seed)
    sources = guard.audio.sources
    piece_of = {p.isrc: i for i, p in enumerate(guard.index.pieces)}
    rendered = [c for c, s in enumerate(sources) if s.origin == "midi render" and s.isrc in piece_of]
    perfs: dict[int, Performance] = {}

    def perf(clip: int) -> Performance:
        if clip not in perfs:
            perfs[clip] = read_performance(read_midi(sources[clip].sha256))
        return perfs[clip]

    long_enough = [c for c in rendered if perf(c).seconds >= max(COPY_SECONDS) + 1.0]
    chosen = sorted(rng.choice(long_enough, size=min(works, len(long_enough)), replace=False).tolist())
    by_genre: dict[str, list[int]] = {}
    for c in long_enough:
        by_genre.setdefault(guard.genres[piece_of[sources[c].isrc]], []).append(c)
    left: dict[int, frozenset[str]] = {}

    def left_out(clip: int) -> frozenset[str]:
        """The recordings of ``clip``'s work and of its tune under other titles (as the symbolic evaluation)."""
        if clip not in left:
            piece = piece_of[sources[clip].isrc]
            melody = guard.melody(piece)
            pieces = same_tune_pieces(guard, piece, melody) if melody is not None else frozenset({piece})
            left[clip] = frozenset(guard.index.pieces[i].isrc for i in pieces)
        return left[clip]

    def host_for(clip: int) -> int | None:
        peers = [c for c in by_genre.get(guard.genres[piece_of[sources[clip].isrc]], []) if c != clip]
        for _ in range(5):
            if not peers:
                return None
            other = int(rng.choice(peers))
            if sources[clip].isrc not in left_out(other):
                return other
        return None

    def score(samples: np.ndarray, exclude: frozenset[str]) -> tuple[float, str, float]:
        found = guard.audio_evidence(fingerprint(samples, SAMPLE_RATE), exclude)
        audio, isrc = (found[0].score, found[0].isrc) if found else (0.0, "")
        joint = audio / guard.policy.audio_threshold
        if with_melody:
            joint = max(joint, melody_score(samples, exclude))
        return audio, isrc, joint

    def melody_score(samples: np.ndarray, exclude: frozenset[str]) -> float:
        """The symbolic check on the notes heard in ``samples``, over its threshold (0: nothing found)."""
        from accord.attribution.guard.check import heard_notes
        from accord.attribution.guard.index import encode_midi
        from accord.media.fingerprint import wav_bytes

        pieces = frozenset(i for i, p in enumerate(guard.index.pieces) if p.isrc in exclude)
        found = guard.symbolic_evidence(encode_midi(heard_notes(wav_bytes(samples, SAMPLE_RATE))), pieces)
        return max(0.0, found[0].score) / guard.policy.symbolic_threshold if found else 0.0

    queries: list[AudioQuery] = []
    for n, clip in enumerate(chosen, start=1):
        source = perf(clip)
        for seconds in COPY_SECONDS:
            host = host_for(clip)
            if host is None:
                continue
            start = float(rng.uniform(0.0, min(source.seconds, 170.0) - seconds))
            copy = render(excerpt(source, start, seconds), seconds)
            around = render(excerpt(perf(host), 0.0, 2 * HOST_SECONDS), 2 * HOST_SECONDS)
            half = int(HOST_SECONDS * SAMPLE_RATE)
            mixed = np.concatenate([around[:half], copy, around[half:]])
            for variant in VARIANTS:
                samples = altered(mixed, variant, rng)
                s, isrc, joint = score(samples, left_out(host))
                queries.append(AudioQuery("positive", s, seconds, variant, isrc == sources[clip].isrc, joint))
        for _ in range(NEGATIVES_PER_WORK):
            host = host_for(clip)
            if host is None:
                continue
            total = max(COPY_SECONDS) + 2 * HOST_SECONDS
            other = perf(host)
            start = float(rng.uniform(0.0, max(0.0, min(other.seconds, 170.0) - total)))
            s, _, joint = score(render(excerpt(other, start, total), total), left_out(host))
            queries.append(AudioQuery("hard negative", s, total, "clean", False, joint))
        if progress:
            progress("planted re-renders", n, len(chosen))
    found = [q.hit for q in queries if q.kind == "positive"]
    notes = (f"{sum(found)} of {len(found)} positives found their source recording as the closest",)
    return AudioEvaluation(
        tuple(queries), guard.policy.audio_threshold, guard.policy.version, len(chosen), notes, with_melody
    )
