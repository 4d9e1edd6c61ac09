"""A style classifier trained on the catalog: does a generated piece sound like the style it was asked for?

Each piece becomes a short vector of simple, key-invariant features of its notes
(:func:`piece_features`): scale-degree histogram (pitch classes above the estimated tonic) and
mode, note-duration and inter-onset histograms, where onsets fall in the beat and in the bar,
polyphony, the melodic-interval histogram of the top line, register and density. Tempo,
instruments and the stated metre are left out on purpose: sampling sets them from the request, so
they would tell the classifier what was asked rather than what the model wrote.

The classifier is multinomial logistic regression (:class:`StyleClassifier`): standardized
features, L2 penalty, fitted by L-BFGS (SciPy); deterministic for the same pieces. Its accuracy on
held-out catalog pieces is the ceiling a generated piece can be judged against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from accord.errors import ValidationError
from accord.media.features import top_line
from accord.model.baselines import DURATION_CLASSES
from accord.model.tokenizer import parse_midi

_KS_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KS_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_LOG_DURATIONS = np.log(np.asarray(DURATION_CLASSES))
_BEAT_BINS = 4  # onset within a quarter note: on the beat, a sixteenth, an eighth, three sixteenths after
_BAR_BINS = 12  # onset as a fraction of its bar: twelfths hold both duple and triple subdivisions
_INTERVALS = 13  # melodic steps of the top line: unison .. octave and beyond (the last bin)

FEATURE_NAMES: tuple[str, ...] = (
    *(f"degree_{d}" for d in range(12)),
    "minor",
    *(f"duration_{q}" for q in DURATION_CLASSES),
    *(f"ioi_{q}" for q in DURATION_CLASSES),
    *(f"beat_{i}" for i in range(_BEAT_BINS)),
    *(f"bar_{i}" for i in range(_BAR_BINS)),
    "mean_onset_notes",
    "chord_share",
    "max_onset_notes",
    *(f"interval_{i}" for i in range(_INTERVALS)),
    "upward_share",
    "top_line_range",
    "mean_pitch",
    "notes_per_quarter",
)

MIN_PIECES = 10
"""A style is a class only with at least this many training pieces (fewer cannot be learnt or measured)."""


def _histogram(index: np.ndarray, bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    h = np.bincount(index, weights=weights, minlength=bins)[:bins].astype(np.float64)
    return h / h.sum() if h.sum() > 0 else h


def _nearest_duration(quarters: np.ndarray) -> np.ndarray:
    return np.abs(np.log(np.maximum(quarters, 1e-3))[:, None] - _LOG_DURATIONS[None, :]).argmin(axis=1)


def piece_features(midi: bytes) -> np.ndarray:
    """The feature vector of one MIDI file (see :data:`FEATURE_NAMES`); drum notes are not counted.

    Raises:
        ValidationError: the file has no pitched notes.
    """
    score = parse_midi(midi)
    tpq = float(score.ticks_per_quarter)
    rows = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    if not rows:
        msg = "midi: the piece has no pitched notes to describe"
        raise ValidationError(msg, field="midi", value=None)
    onset = np.concatenate([r["time"] for r in rows]).astype(np.float64) / tpq  # quarters
    duration = np.concatenate([r["duration"] for r in rows]).astype(np.float64) / tpq
    pitch = np.concatenate([r["pitch"] for r in rows]).astype(np.int64)

    pcs = np.bincount(pitch % 12, weights=duration, minlength=12)
    tonic, minor = max(
        (
            (float(np.corrcoef(pcs, np.roll(p, k))[0, 1]) if pcs.std() > 0 else 0.0, k, m)
            for m, p in enumerate((_KS_MAJOR, _KS_MINOR))
            for k in range(12)
        ),
        key=lambda c: (c[0], -c[1], -c[2]),
    )[1:]
    degrees = _histogram((pitch - tonic) % 12, 12)

    starts, per_onset = np.unique(np.round(onset * 48) / 48, return_counts=True)  # onsets on a 1/48-quarter grid
    ioi = np.diff(starts)
    ts = score.time_signatures
    bar_quarters = 4.0 * ts[0].numerator / ts[0].denominator if len(ts) else 4.0
    beat_pos = np.floor((starts % 1.0) * _BEAT_BINS + 1e-6).astype(np.int64)
    bar_pos = np.floor((starts % bar_quarters) / bar_quarters * _BAR_BINS + 1e-6).astype(np.int64)

    line = top_line(np.column_stack([onset, duration, pitch.astype(np.float64)]))[:, 2].astype(np.int64)
    steps = np.diff(line)
    span = float(onset.max() + duration[onset.argmax()] - onset.min()) or 1.0
    return np.concatenate(
        [
            degrees,
            [float(minor)],
            _histogram(_nearest_duration(duration), len(DURATION_CLASSES)),
            _histogram(_nearest_duration(ioi), len(DURATION_CLASSES)) if len(ioi) else np.zeros(len(DURATION_CLASSES)),
            _histogram(np.minimum(beat_pos, _BEAT_BINS - 1), _BEAT_BINS),
            _histogram(np.minimum(bar_pos, _BAR_BINS - 1), _BAR_BINS),
            [
                float(per_onset.mean()) / 4.0,
                float((per_onset > 1).mean()),
                float(per_onset.max()) / 8.0,
            ],
            _histogram(np.minimum(np.abs(steps), _INTERVALS - 1), _INTERVALS) if len(steps) else np.zeros(_INTERVALS),
            [
                float((steps > 0).mean()) if len(steps) else 0.5,
                float(np.ptp(line)) / 24.0 if len(line) else 0.0,
                float(pitch.mean()) / 127.0,
                min(len(pitch) / span, 16.0) / 4.0,
            ],
        ]
    )


@dataclass(frozen=True)
class StyleClassifier:
    """Multinomial logistic regression from :func:`piece_features` to a style.

    Attributes:
        classes: the styles it tells apart (sorted).
        mean: per-feature mean of the training pieces (features are standardized with it).
        scale: per-feature standard deviation (1 where a feature is constant).
        weights: ``(features, classes)``.
        bias: ``(classes,)``.
        l2: the penalty it was fitted with.
    """

    classes: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    l2: float

    @classmethod
    def fit(
        cls, features: np.ndarray, labels: Sequence[str], *, l2: float = 1e-2, min_pieces: int = MIN_PIECES
    ) -> StyleClassifier:
        """Fit on ``features`` ``(pieces, FEATURE_NAMES)``; styles with under ``min_pieces`` pieces are left out."""
        labels = list(labels)
        counts = {s: labels.count(s) for s in set(labels)}
        classes = tuple(sorted(s for s, n in counts.items() if n >= min_pieces))
        if len(classes) < 2:
            msg = f"style classifier: needs two styles with at least {min_pieces} pieces each; got {counts}"
            raise ValidationError(msg, field="labels", value=counts)
        keep = np.asarray([s in classes for s in labels])
        x = np.asarray(features, dtype=np.float64)[keep]
        y = np.asarray([classes.index(s) for s, k in zip(labels, keep, strict=True) if k])
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        z = (x - mean) / scale
        n, d, k = len(z), z.shape[1], len(classes)
        onehot = np.eye(k)[y]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[: d * k].reshape(d, k), theta[d * k :]
            logits = z @ w + b
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            nll = -float(np.log(p[np.arange(n), y] + 1e-12).mean()) + 0.5 * l2 * float((w * w).sum())
            g = (p - onehot) / n
            return nll, np.concatenate([(z.T @ g + l2 * w).ravel(), g.sum(axis=0)])

        fitted = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        theta = fitted.x
        return cls(classes, mean, scale, theta[: d * k].reshape(d, k), theta[d * k :], l2)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``(pieces, classes)`` probabilities."""
        logits = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def predict(self, features: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.probabilities(features).argmax(axis=1)]

    def accuracy(self, features: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
        """Share of pieces whose style it recovers, over the pieces of its classes only, with a per-style breakdown."""
        known = [i for i, s in enumerate(labels) if s in self.classes]
        if not known:
            return {"pieces": 0, "accuracy": None, "per_style": {}}
        predicted = self.predict(np.asarray(features)[known])
        truth = [labels[i] for i in known]
        per_style = {
            s: round(sum(p == t for p, t in zip(predicted, truth, strict=True) if t == s) / truth.count(s), 4)
            for s in sorted(set(truth))
        }
        hits = sum(p == t for p, t in zip(predicted, truth, strict=True))
        return {"pieces": len(known), "accuracy": round(hits / len(known), 4), "per_style": per_style}
