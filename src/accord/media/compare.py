"""Comparing generated pieces with reference pieces: distances over their :func:`describe` statistics.

Lower is better for every distance; :data:`COMPARE_METRICS` says what each one means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from accord.errors import ValidationError


def _normalised(histograms: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1; an all-zero row becomes uniform."""
    h = np.atleast_2d(np.asarray(histograms, dtype=np.float64))
    totals = h.sum(axis=1, keepdims=True)
    uniform = np.full_like(h, 1.0 / h.shape[1])
    return np.where(totals > 0, h / np.where(totals > 0, totals, 1.0), uniform)


def _js_matrix(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distances between every row of ``p`` and every row of ``q``: ``[len(p), len(q)]``."""
    a, b = _normalised(p)[:, None, :], _normalised(q)[None, :, :]
    m = (a + b) / 2

    def kl(x: np.ndarray) -> np.ndarray:
        ratio = np.divide(x, m, out=np.ones(np.broadcast_shapes(x.shape, m.shape)), where=x > 0)
        return np.sum(x * np.log2(ratio), axis=-1)

    return np.sqrt(np.clip((kl(a) + kl(b)) / 2, 0.0, None))


def jensen_shannon(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2) between two histograms: 0 to 1.

    Each histogram is normalised first; an all-zero histogram counts as uniform.
    """
    return float(_js_matrix(np.asarray(p), np.asarray(q))[0, 0])


COMPARE_METRICS: dict[str, str] = {
    "pitch_class_js": (
        "Jensen-Shannon distance (0-1) between the mean pitch-class histogram of the generated pieces "
        "and that of the reference pieces: is the overall tonal palette the same?"
    ),
    "pitch_class_nearest_js": (
        "for each generated piece, the Jensen-Shannon distance to the nearest reference piece's "
        "histogram, averaged: does each piece sound like some reference piece (a mode-collapsed model "
        "can match the average without matching any piece)?"
    ),
    "scale_degree_js": (
        "Jensen-Shannon distance (0-1) between the mean scale-degree histograms (each piece's histogram "
        "rotated to its estimated tonic): the same palette up to transposition, so a model is not "
        "penalised for choosing other keys than the reference pieces"
    ),
    "note_density_diff": "|mean notes per second (generated) - mean (reference)|",
    "pitch_range_diff": "|mean pitch range in semitones (generated) - mean (reference)|",
    "key_consistency_diff": "|mean share of 4-second windows in the global key (generated) - mean (reference)|",
    "repetition_diff": "|mean share of repeated 4-note interval patterns (generated) - mean (reference)|",
}
"""What each distance returned by :func:`compare` means. Every one is >= 0; lower is better."""

_MEANS = ("note_density", "pitch_range", "key_consistency", "repetition")


def compare(generated: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Distances between generated and reference pieces, each described by :func:`describe`.

    Returns the distances of :data:`COMPARE_METRICS` (lower is better), plus the means they
    are computed from (``generated_<stat>``, ``reference_<stat>``), the mean lengths
    ``generated_seconds`` and ``reference_seconds`` and the counts ``generated_pieces`` and
    ``reference_pieces``.

    Raises:
        ValidationError: when either list is empty or a description lacks a statistic.
    """
    for name, group in (("generated", generated), ("reference", reference)):
        if not group:
            msg = f"{name}=[]: expected at least one piece described by accord.media.features.describe"
            raise ValidationError(msg, field=name, value=[])
        for i, d in enumerate(group):
            missing = [k for k in ("pitch_class_histogram", "scale_degree_histogram", *_MEANS) if k not in d]
            if missing:
                msg = f"{name}[{i}]: missing {', '.join(missing)}; expected the dict describe() returns"
                raise ValidationError(msg, field=name, value=missing)
    gen_hist = np.array([d["pitch_class_histogram"] for d in generated], dtype=np.float64)
    ref_hist = np.array([d["pitch_class_histogram"] for d in reference], dtype=np.float64)
    result: dict[str, float] = {
        "pitch_class_js": jensen_shannon(gen_hist.mean(axis=0), ref_hist.mean(axis=0)),
        "pitch_class_nearest_js": float(_js_matrix(gen_hist, ref_hist).min(axis=1).mean()),
    }
    gen_degrees = np.array([d["scale_degree_histogram"] for d in generated], dtype=np.float64)
    ref_degrees = np.array([d["scale_degree_histogram"] for d in reference], dtype=np.float64)
    result["scale_degree_js"] = jensen_shannon(gen_degrees.mean(axis=0), ref_degrees.mean(axis=0))
    for stat in _MEANS:
        g = float(np.mean([float(d[stat]) for d in generated]))
        r = float(np.mean([float(d[stat]) for d in reference]))
        result[f"{stat}_diff"] = abs(g - r)
        result[f"generated_{stat}"] = g
        result[f"reference_{stat}"] = r
    for stat in ("seconds",):  # not a distance: says whether the two sets are of the same length
        if all(stat in d for d in (*generated, *reference)):
            result[f"generated_{stat}"] = float(np.mean([float(d[stat]) for d in generated]))
            result[f"reference_{stat}"] = float(np.mean([float(d[stat]) for d in reference]))
    result["generated_pieces"] = float(len(generated))
    result["reference_pieces"] = float(len(reference))
    return result
