"""The harder planted test: typical items at several strengths, precision and recall per method.

The canaries of :func:`~accord.attribution.planted.build_planted_set` are outliers (a rare mode,
a motif nothing else has) that any method finds, the content embedding included. Here the
planted items are *typical*: made by the background's own generator, in its scales and styles,
and recorded 1, 2 or 4 times (their *strength*: how often the model saw each one). Outputs are
primed with one bar of a planted item only and continued to six, so the notes given away are
few; each method must still rank the item's copies first (precision@1, recall of the copies
among the ``strength`` best) and name them in the credential (precision and recall of the named
items: what the output pool would pay). Chance is a random ranking.

``python -m benchmarks.bench_attribution_planted`` prints the table; ``docs/attribution.md``
reports it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accord.attribution.evaluate import RANDOM, Progress, SteeredQuery, ranking, steer
from accord.attribution.methods import AttributionContext, Scored, get_method, method_names

STRENGTHS = (1, 2, 4)
"""Copies of each typical planted item (three items per strength by default)."""


@dataclass(frozen=True)
class StrengthResult:
    """One method on the typical planted items of one strength (the harder planted test).

    Attributes:
        method: the method (or ``random``).
        strength: how many times each planted item was recorded (its copies in the training set).
        precision_at_1: the best-ranked item is one of the planted item's copies (mean over outputs).
        recall_at_group: the share of the copies among the ``strength`` best-ranked items.
        credit_precision: of the items the credential names, the share that are copies (outputs
            naming nothing count 0).
        credit_recall: of the copies, the share the credential names.
        outputs: how many outputs.
    """

    method: str
    strength: int
    precision_at_1: float
    recall_at_group: float
    credit_precision: float
    credit_recall: float
    outputs: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def strength_of(name: str) -> int:
    """The strength of a typical canary from its name (``typical-3-x4`` → 4; any other canary: 0)."""
    head, _, tail = name.rpartition("-x")
    return int(tail) if head.startswith("typical-") and tail.isdigit() else 0


def strength_table(
    ctx: AttributionContext,
    queries: Sequence[SteeredQuery],
    methods: Sequence[str] | None = None,
    *,
    random_draws: int = 1000,
    progress: Progress | None = None,
) -> list[StrengthResult]:
    """Precision and recall per method and strength over outputs steered toward typical canaries
    (:func:`~accord.attribution.planted.build_planted_set` with ``typical``), then the random ranking's."""
    from accord.attribution.service import attribute

    typical = [q for q in queries if strength_of(q.name)]
    strengths = sorted({strength_of(q.name) for q in typical})
    names = list(methods or method_names())
    rows: list[StrengthResult] = []
    for n, name in enumerate(names):
        method = get_method(name)
        method.index(ctx, progress)
        per: dict[int, list[tuple[float, float, float, float]]] = {s: [] for s in strengths}
        for q in typical:
            raw = method.scores(ctx, q.query)
            scores = ctx.credit_only_trained(raw.scores if isinstance(raw, Scored) else raw)
            order = ranking(scores, ctx.isrcs)
            named = {ctx.isrcs.index(i.isrc) for i in attribute(ctx, q.query, name).items}
            hits = len(named & q.expected)
            per[strength_of(q.name)].append(
                (
                    float(order[0] in q.expected),
                    len(set(order[: len(q.expected)]) & q.expected) / len(q.expected),
                    hits / len(named) if named else 0.0,
                    hits / len(q.expected),
                )
            )
        for strength in strengths:
            p1, rg, cp, cr = (float(m) for m in np.mean(np.asarray(per[strength]), axis=0))
            rows.append(StrengthResult(name, strength, p1, rg, cp, cr, len(per[strength])))
        if progress:
            progress("methods", n + 1, len(names))
    rng = np.random.default_rng(0)
    for strength in strengths:
        draws = []
        for q in (q for q in typical if strength_of(q.name) == strength):
            for _ in range(random_draws):
                order = rng.permutation(len(ctx.isrcs)).tolist()
                draws.append((float(order[0] in q.expected), len(set(order[:strength]) & q.expected) / strength))
        p1, rg = np.mean(np.asarray(draws), axis=0)
        rows.append(StrengthResult(RANDOM, strength, float(p1), float(rg), 0.0, 0.0, len(draws) // random_draws))
    return rows


def run_typical(
    workdir: Path,
    *,
    strengths: Sequence[int] = STRENGTHS,
    per_strength: int = 3,
    background_pieces: int = 32,
    steps: int = 200,
    prime_bars: int = 1,
    bars: int = 6,
    seeds: Sequence[int] = (1, 2, 3),
    seed: int = 0,
    methods: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Plant typical items, train the tiny model on them and the background, steer, measure."""
    from accord.attribution.planted import build_planted_set
    from accord.attribution.service import context_for
    from accord.model.sample import load_model
    from accord.model.train import train

    started = time.perf_counter()
    typical = tuple(s for s in strengths for _ in range(per_strength))
    planted = build_planted_set(
        workdir / "typical", background_pieces=background_pieces, duplicated=0, motifs=0, typical=typical, seed=seed
    )
    model_dir = workdir / "typical" / "model"
    if not (model_dir / "ckpt.pt").is_file():
        train(
            planted.manifest, planted.loader, planted.catalog, model_dir,
            preset="tiny", steps=steps, seed=seed, val_fraction=0.0, eval_every=steps,
        )  # fmt: skip
    ctx = context_for(model_dir, planted.manifest, planted.catalog, planted.media, k=1024)
    queries = steer(load_model(model_dir), planted, seeds=seeds, bars=bars, prime_bars=prime_bars)
    rows = strength_table(ctx, queries, methods, progress=progress)
    return {
        "setup": {
            "kind": "planted-typical",
            "preset": "tiny",
            "steps": steps,
            "items": len(ctx.isrcs),
            "strengths": list(strengths),
            "per_strength": per_strength,
            "prime_bars": prime_bars,
            "bars": bars,
            "outputs": len(queries),
            "seconds": round(time.perf_counter() - started, 1),
        },
        "rows": [r.to_dict() for r in rows],
    }
