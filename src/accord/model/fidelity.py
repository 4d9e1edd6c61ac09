"""How faithfully generated pieces keep what was asked: key, metre, length, and style.

The figures :func:`accord.model.evaluate.evaluate_model` reports next to the musical statistics
(``accord model evaluate MODEL --json``: ``contracts`` and ``style``):

- **key**: the share of each piece's notes on the requested key's diatonic scale, and on the
  scale plus the accidentals its style uses (:func:`~accord.model.contracts.key_adherence`);
  the same figures for the held-out catalog pieces under their own keys, for comparison.
- **metre**: the share of pieces that state exactly one metre, and that it is one of the style's.
- **length**: the largest difference between a piece's length and its bars at its tempo.
- **style**: a classifier trained on the training pieces (:mod:`accord.model.style`), its
  accuracy on held-out catalog pieces (the ceiling) and on the generated pieces (does the
  model write the style it was asked for?).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accord.errors import ValidationError
from accord.model.conditions import style_slug
from accord.model.contracts import expected_seconds, key_adherence, meters_of, style_accidentals
from accord.model.sample import GeneratedPiece
from accord.model.style import StyleClassifier, piece_features
from accord.model.tokenizer import MusicTokenizer


@dataclass(frozen=True)
class Asked:
    """A generated piece with what was asked of it.

    Attributes:
        style: the style asked for.
        key: the key asked for (``None``: any).
        tempo_bpm: the tempo it was written at.
        bars: the bars asked for.
        piece: what the model made.
    """

    style: str
    key: str | None
    tempo_bpm: float
    bars: int
    piece: GeneratedPiece


def _summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "min": None}
    return {"mean": round(float(np.mean(values)), 4), "min": round(float(np.min(values)), 4)}


def contracts_report(
    tok: MusicTokenizer, asked: Sequence[Asked], references: Sequence[tuple[str, str, Sequence[int]]] = ()
) -> dict[str, Any]:
    """Key, metre and length figures over ``asked``; ``references`` are held-out ``(style, key, ids)``."""
    in_scale, in_style, kept = [], [], 0
    for a in asked:
        if a.key is None:
            continue
        pitches = [p for _, p in tok.note_pitches(a.piece.token_ids)]
        adherence = key_adherence(pitches, a.key, style_accidentals(tok, a.style, a.key.split()[1]))
        in_scale.append(adherence.in_scale)
        in_style.append(adherence.in_style_scale)
        kept += adherence.in_style_scale >= 0.95
    ref_scale, ref_style = [], []
    for style, key, ids in references:
        adherence = key_adherence(
            [p for _, p in tok.note_pitches(ids)], key, style_accidentals(tok, style, key.split()[1])
        )
        ref_scale.append(adherence.in_scale)
        ref_style.append(adherence.in_style_scale)
    one_meter = style_meter = 0
    length_errors: list[float] = []
    for a in asked:
        meters = meters_of(a.piece.midi)
        one_meter += len(meters) == 1
        known = {m for m, _ in tok.style_meters.get(style_slug(a.style), ())}
        style_meter += len(meters) == 1 and (not known or f"{meters[0][0]}/{meters[0][1]}" in known)
        if len(meters) == 1:
            want = expected_seconds(a.bars, meters[0], a.tempo_bpm)
            length_errors.append(abs(a.piece.music_seconds - want))
    n = len(asked)
    return {
        "pieces": n,
        "key": {
            "pieces_with_a_key": len(in_scale),
            "in_scale": _summary(in_scale),
            "in_scale_or_style_accidental": _summary(in_style),
            "pieces_at_least_95_percent": kept,
            "held_out_catalog_in_scale": _summary(ref_scale),
            "held_out_catalog_in_scale_or_style_accidental": _summary(ref_style),
        },
        "meter": {"one_meter": one_meter, "one_of_the_style_s_meters": style_meter},
        "length": {
            "exact_bars": sum(a.piece.bars == a.bars for a in asked),
            "largest_error_seconds": round(max(length_errors), 6) if length_errors else None,
        },
    }


def style_report(
    train: Sequence[tuple[str, bytes]], held_out: Sequence[tuple[str, bytes]], generated: Sequence[tuple[str, bytes]]
) -> dict[str, Any]:
    """Train the classifier on ``train`` ``(style, midi)`` and score it on held-out and generated pieces."""

    def features(pieces: Sequence[tuple[str, bytes]]) -> tuple[np.ndarray, list[str]]:
        rows, labels = [], []
        for style, midi in pieces:
            try:
                rows.append(piece_features(midi))
            except ValidationError:
                continue  # a piece with no pitched notes says nothing about its style
            labels.append(style_slug(style))
        return (np.stack(rows) if rows else np.zeros((0, 0))), labels

    x, y = features(train)
    try:
        classifier = StyleClassifier.fit(x, y)
    except ValidationError as exc:
        return {"classes": [], "skipped": str(exc)}
    held_x, held_y = features(held_out)
    gen_x, gen_y = features(generated)
    return {
        "classes": list(classifier.classes),
        "train_pieces": sum(s in classifier.classes for s in y),
        "train": classifier.accuracy(x, y),
        "held_out_catalog": classifier.accuracy(held_x, held_y) if held_y else {"pieces": 0, "accuracy": None},
        "generated": classifier.accuracy(gen_x, gen_y) if gen_y else {"pieces": 0, "accuracy": None},
    }
