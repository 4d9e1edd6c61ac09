"""Honest evaluation of attribution: planted canaries and leave-top-k-out, each against chance.

- **Planted canaries**: outputs steered toward a known canary (primed with its opening bars)
  must rank the canary's items first. Precision@1: the top-ranked item is one of the canary's;
  recall@10: the share of the canary's items among the ten best. Chance is a random ranking
  (measured over many seeded permutations, and given exactly: ``|G|/n`` and ``min(10, n)/n``).
- **Leave-top-k-out**: retrain the same model (same seed, same steps) without the ``k`` items
  the method ranks highest for an output, and without ``k`` random items; the output's loss
  (nats per token) must rise far more without the top-``k``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accord.attribution.gradients import sequence_loss, windows_of
from accord.attribution.methods import AttributionContext, Query, Scored, get_method, method_names
from accord.attribution.planted import PlantedSet, sub_manifest
from accord.datasets.loader import ManifestLoader
from accord.model.checkpoint import load_checkpoint, model_from_checkpoint
from accord.model.sample import LoadedModel, generate

Progress = Callable[[str, int, int], None]
RANDOM = "random"


@dataclass(frozen=True)
class SteeredQuery:
    """An output steered toward known items.

    Attributes:
        query: the output.
        expected: manifest indices it was steered toward.
        name: the canary (or primed item) it was steered toward.
    """

    query: Query
    expected: frozenset[int]
    name: str


@dataclass(frozen=True)
class CanaryResult:
    """Precision@1 and recall@10 of one method over the steered outputs.

    Attributes:
        method: the method (or ``random``).
        precision_at_1: mean over outputs.
        recall_at_10: mean over outputs.
        named_share: mean share (ppm) the expected items received in the credential weights.
        reliable: outputs whose attribution was reliable.
        seconds_per_query: mean query time (index build not counted).
        outputs: how many outputs.
    """

    method: str
    precision_at_1: float
    recall_at_10: float
    named_share: float
    reliable: int
    seconds_per_query: float
    outputs: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def ranking(scores: np.ndarray, isrcs: Sequence[str]) -> list[int]:
    """Indices best first; ties by ISRC (deterministic)."""
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), isrcs[i]))


def _precision_recall(order: Sequence[int], expected: frozenset[int]) -> tuple[float, float]:
    return float(order[0] in expected), len(set(order[:10]) & expected) / len(expected)


def without_prime(loaded: LoadedModel, token_ids: Sequence[int], prime_bars: int) -> tuple[tuple[int, ...], bytes]:
    """A primed output's continuation alone: its conditions and the bars after the first ``prime_bars``,
    as token ids and MIDI (what the model wrote, without the notes it was given)."""
    from accord.model.conditions import N_CONDITIONS

    tok = loaded.tokenizer
    conditions, body = list(token_ids[:N_CONDITIONS]), list(token_ids[N_CONDITIONS:])
    bar_at = [i for i, t in enumerate(body) if t == tok.bar_id]
    kept = body[bar_at[prime_bars] :] if len(bar_at) > prime_bars else []
    ids = (*conditions, *kept)
    return ids, tok.decode(ids)


def steer(
    loaded: LoadedModel,
    planted: PlantedSet,
    *,
    seeds: Sequence[int] = (1, 2),
    bars: int = 6,
    prime_bars: int = 4,
    continuation_only: bool = False,
) -> list[SteeredQuery]:
    """Outputs primed with each canary's first ``prime_bars`` bars, continued to ``bars`` bars, one per seed.

    ``continuation_only``: the query is what the model wrote after the prime (:func:`without_prime`),
    so no method can find the canary by the notes it was primed with (the harder planted test)."""
    index = {item.isrc: i for i, item in enumerate(planted.manifest.items)}
    out = []
    for name in sorted(planted.groups):
        for seed in seeds:
            piece = generate(
                loaded,
                style=planted.styles[name],
                prime_midi=planted.primes[name],
                prime_bars=prime_bars,
                bars=bars,
                seed=seed,
            )
            ids, midi = (
                without_prime(loaded, piece.token_ids, prime_bars)
                if continuation_only
                else (piece.token_ids, piece.midi)
            )
            out.append(
                SteeredQuery(
                    Query(ids, midi, f"{name}/seed{seed}"),
                    frozenset(index[i] for i in planted.groups[name]),
                    name,
                )
            )
    return out


def steer_from_items(
    loaded: LoadedModel, ctx: AttributionContext, *, count: int = 8, seed: int = 0, bars: int = 8
) -> list[SteeredQuery]:
    """For a model without planted canaries: outputs primed with ``count`` random manifest items;
    each is expected to find its primer and every item with the same file (duplicates)."""
    rng = np.random.default_rng(seed)
    sequences = ctx.sequences()
    candidates = [i for i, s in enumerate(sequences) if s is not None]
    picks = sorted(rng.choice(candidates, size=min(count, len(candidates)), replace=False).tolist())
    files = ctx.files()
    out = []
    for i in picks:
        item = ctx.manifest.items[i]
        same = frozenset(j for j, other in enumerate(ctx.manifest.items) if other.media_sha256 == item.media_sha256)
        piece = generate(loaded, style=item.genre, prime_midi=files[i], prime_bars=4, bars=bars, seed=seed + i)
        out.append(SteeredQuery(Query(piece.token_ids, piece.midi, item.isrc), same, item.isrc))
    return out


def canary_table(
    ctx: AttributionContext,
    queries: Sequence[SteeredQuery],
    methods: Sequence[str] | None = None,
    *,
    random_draws: int = 1000,
    progress: Progress | None = None,
) -> list[CanaryResult]:
    """One row per method, then the random ranking."""
    from accord.attribution.service import attribute

    rows = []
    names = list(methods or method_names())
    for n, name in enumerate(names):
        method = get_method(name)
        method.index(ctx, progress)
        p1, r10, share, reliable, seconds = [], [], [], 0, 0.0
        for q in queries:
            t0 = time.perf_counter()
            raw = method.scores(ctx, q.query)
            seconds += time.perf_counter() - t0
            scores = ctx.credit_only_trained(raw.scores if isinstance(raw, Scored) else raw)
            p, r = _precision_recall(ranking(scores, ctx.isrcs), q.expected)
            p1.append(p)
            r10.append(r)
            attribution = attribute(ctx, q.query, name)
            expected = {ctx.manifest.items[i].isrc for i in q.expected}
            share.append(sum(i.weight_ppm for i in attribution.items if i.isrc in expected))
            reliable += attribution.reliable
        rows.append(
            CanaryResult(
                name,
                float(np.mean(p1)),
                float(np.mean(r10)),
                float(np.mean(share)),
                reliable,
                seconds / len(queries),
                len(queries),
            )
        )
        if progress:
            progress("methods", n + 1, len(names))
    rng = np.random.default_rng(0)
    p1, r10 = [], []
    n_items = len(ctx.isrcs)
    for q in queries:
        for _ in range(random_draws):
            p, r = _precision_recall(rng.permutation(n_items).tolist(), q.expected)
            p1.append(p)
            r10.append(r)
    rows.append(CanaryResult(RANDOM, float(np.mean(p1)), float(np.mean(r10)), 0.0, 0, 0.0, len(queries)))
    return rows


def chance(queries: Sequence[SteeredQuery], n_items: int) -> dict[str, float]:
    """The exact expectation of a random ranking: ``|G|/n`` and ``min(10, n)/n``."""
    return {
        "precision_at_1": float(np.mean([len(q.expected) / n_items for q in queries])),
        "recall_at_10": min(10, n_items) / n_items,
    }


@dataclass(frozen=True)
class LeaveOut:
    """Leave-top-k-out for one output.

    Attributes:
        output: the output's label.
        loss_full: its loss (nats/token) under the model trained on everything (retrained here, same seed).
        loss_without_top: under the model retrained without the top-``k`` items.
        loss_without_random: under the model retrained without ``k`` random items.
        removed_top: the ISRCs left out as top-``k``.
    """

    output: str
    loss_full: float
    loss_without_top: float
    loss_without_random: float
    removed_top: tuple[str, ...] = field(default_factory=tuple)

    @property
    def drop_top(self) -> float:
        return self.loss_without_top - self.loss_full

    @property
    def drop_random(self) -> float:
        return self.loss_without_random - self.loss_full

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "loss_full": self.loss_full,
            "loss_without_top": self.loss_without_top,
            "loss_without_random": self.loss_without_random,
            "increase_without_top": self.drop_top,
            "increase_without_random": self.drop_random,
            "removed_top": list(self.removed_top),
        }


def query_loss(model_dir: Path, ids: Sequence[int], windows: int = 4) -> float:
    """Mean next-token loss (nats/token) of a sequence under the model in ``model_dir``."""
    from accord.model.checkpoint import tokenizer_from_checkpoint

    ckpt = load_checkpoint(model_dir)
    model = model_from_checkpoint(ckpt).eval()
    x, y = windows_of(ids, model.config.block_size, tokenizer_from_checkpoint(ckpt), windows)
    with torch.no_grad():
        return float(sequence_loss(model, x, y))


def leave_top_k_out(
    planted: PlantedSet,
    ctx: AttributionContext,
    queries: Sequence[SteeredQuery],
    *,
    method: str = "trak",
    k: int = 10,
    steps: int = 150,
    preset: str = "tiny",
    seed: int = 0,
    workdir: Path | None = None,
    progress: Progress | None = None,
) -> list[LeaveOut]:
    """Retrain without the top-``k`` and without ``k`` random items for each query; compare the query's loss.

    The reference model is retrained here with the same seed and steps, so the three models
    differ only in their data.
    """
    from accord.model.train import train

    m = get_method(method)
    m.index(ctx)
    rng = np.random.default_rng(seed)
    out = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        base = Path(tmp)

        def fit(name: str, drop: set[str]) -> Path:
            manifest = sub_manifest(planted.manifest, drop)
            folder = base / name
            train(
                manifest, ManifestLoader(manifest, planted.media), planted.catalog, folder,
                preset=preset, steps=steps, seed=seed, eval_every=steps, resume=False, val_fraction=0.0,
            )  # fmt: skip
            return folder

        full = fit("full", set())
        total = len(queries)
        for n, q in enumerate(queries):
            raw = m.scores(ctx, q.query)
            scores = ctx.credit_only_trained(raw.scores if isinstance(raw, Scored) else raw)
            top = [ctx.isrcs[i] for i in ranking(scores, ctx.isrcs)[:k]]
            rand = [ctx.isrcs[i] for i in rng.choice(len(ctx.isrcs), size=k, replace=False)]
            without_top = fit(f"top-{n}", set(top))
            without_random = fit(f"random-{n}", set(rand))
            ids = q.query.token_ids
            out.append(
                LeaveOut(
                    q.query.label,
                    query_loss(full, ids),
                    query_loss(without_top, ids),
                    query_loss(without_random, ids),
                    tuple(top),
                )
            )
            if progress:
                progress("leave-top-k-out", n + 1, total)
    return out


def evaluation_report(
    ctx: AttributionContext,
    queries: Sequence[SteeredQuery],
    *,
    setup: dict[str, Any],
    methods: Sequence[str] | None = None,
    leave_out: Callable[[], list[LeaveOut]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The canary table (and leave-top-k-out when asked) as one JSON-ready report."""
    rows = canary_table(ctx, queries, methods, progress=progress)
    report: dict[str, Any] = {
        "setup": {**setup, "items": len(ctx.isrcs), "outputs": len(queries)},
        "canaries": [r.to_dict() for r in rows],
        "chance": chance(queries, len(ctx.isrcs)),
    }
    if leave_out is not None:
        results = leave_out()
        report["leave_top_k_out"] = {
            "outputs": [r.to_dict() for r in results],
            "mean_increase_without_top": float(np.mean([r.drop_top for r in results])),
            "mean_increase_without_random": float(np.mean([r.drop_random for r in results])),
        }
    return report


def run_planted(
    workdir: Path,
    *,
    steps: int = 300,
    leave_out_steps: int = 150,
    leave_out: bool = True,
    k: int = 10,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """``accord attribution evaluate --planted``: plant, train a tiny model, steer, measure."""
    from accord.attribution.planted import build_planted_set
    from accord.attribution.service import context_for
    from accord.model.sample import load_model
    from accord.model.train import train

    started = time.perf_counter()
    planted = build_planted_set(workdir / "planted", seed=seed)
    model_dir = workdir / "planted" / "model"
    train(
        planted.manifest, planted.loader, planted.catalog, model_dir,
        preset="tiny", steps=steps, seed=seed, val_fraction=0.0, eval_every=steps,
        progress=(lambda e: progress("train", int(e.get("step", 0)), steps)) if progress else None,
    )  # fmt: skip
    ctx = context_for(model_dir, planted.manifest, planted.catalog, planted.media)
    queries = steer(load_model(model_dir), planted)
    setup = {
        "kind": "planted",
        "preset": "tiny",
        "steps": steps,
        "groups": {g: list(v) for g, v in planted.groups.items()},
    }
    report = evaluation_report(
        ctx,
        queries,
        setup=setup,
        methods=methods,
        leave_out=(
            (
                lambda: leave_top_k_out(
                    planted, ctx, queries[::2], k=k, steps=leave_out_steps, seed=seed, progress=progress
                )
            )
            if leave_out
            else None
        ),
        progress=progress,
    )
    report["setup"]["seconds"] = round(time.perf_counter() - started, 1)
    return report
