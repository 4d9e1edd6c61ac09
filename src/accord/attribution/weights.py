"""From raw scores to ppm weights, works and rights holders: the same rule for every method.

A method gives one score per manifest item. Most items score near the manifest's typical
level (the *median*): that is the model's general behaviour, which every item shaped a
little and no item in particular. Only an item that stands out from that level is credited:

1. excess ``e_i = max(0, s_i - median)``; spread ``σ = 1.4826 · MAD`` (a robust standard deviation);
2. an item is *significant* when ``(s_i - median) / σ ≥ z_min`` (3 by default);
   at most :data:`MAX_ITEMS` of them, the highest, are named;
3. the attributed share is ``(1 - floor) · Σ_named e_i / Σ_all e_i``: the part of all excess
   that the named items hold, less the method's fixed *floor* (what no method of its kind
   explains; see :mod:`accord.attribution.methods`); everything else is **unattributed**;
4. named items share the attributed part in proportion to ``e_i``; integer ppm come from
   :func:`accord.money.allocate` over the items and the unattributed share together, so they sum
   to exactly 1,000,000.

``reliable`` is true only when the method is causal (gradient-based), some item is at least
:data:`RELIABLE_Z` robust standard deviations above the median, and the attributed share is at
least :data:`RELIABLE_SHARE`.

Works get each item's weight split equally over the works it embodies; holders get each
item's (or work's) weight split by ownership shares, all through ``allocate``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accord.attribution.contract import PPM_WHOLE, Attribution, ItemWeight, WorkRef, sorted_weights
from accord.datasets.manifest import Manifest
from accord.errors import ValidationError
from accord.money import allocate
from accord.registry.entities import Catalog

Z_MIN = 3.0
"""Robust z-score an item needs to be named."""
RELIABLE_Z = 6.0
"""Robust z-score the best item needs for the attribution to be reliable."""
RELIABLE_SHARE = 0.10
"""Attributed share (of the whole output) needed for the attribution to be reliable."""
MAX_ITEMS = 50
"""Items named at most; the excess of the others stays unattributed."""
UNATTRIBUTED_KEY = "~unattributed"  # sorts after every ISRC: on a tie, items get the unit first
_SCALE = 10**12  # float shares → integer weights for allocate (12 significant digits)


@dataclass(frozen=True)
class Weighting:
    """Scores turned into shares.

    Attributes:
        indices: manifest indices of the named items, best first.
        ppm: their weights in ppm (parallel to ``indices``; zeros dropped).
        unattributed_ppm: the rest.
        reliable: see the module docstring.
        top_z: the best item's robust z-score.
        significant: how many items passed ``z_min`` (before the :data:`MAX_ITEMS` cap).
        attributed_fraction: the attributed share before rounding.
    """

    indices: tuple[int, ...]
    ppm: tuple[int, ...]
    unattributed_ppm: int
    reliable: bool
    top_z: float
    significant: int
    attributed_fraction: float


def robust_z(scores: np.ndarray, sample: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """``(z, median, sigma)`` with median and MAD of ``sample`` (the scores themselves by default)."""
    ref = scores if sample is None else sample
    median = float(np.median(ref))
    sigma = 1.4826 * float(np.median(np.abs(ref - median)))
    if not np.isfinite(sigma) or sigma <= 1e-12:  # most scores equal: fall back to the standard deviation
        sigma = float(np.std(ref)) or 1.0
    return (scores - median) / sigma, median, sigma


def weigh(
    scores: np.ndarray,
    isrcs: Sequence[str],
    *,
    floor: float,
    causal: bool,
    z_min: float = Z_MIN,
    max_items: int = MAX_ITEMS,
    excess_total: float | None = None,
    sample: np.ndarray | None = None,
) -> Weighting:
    """Shares for ``scores`` (one per manifest item, in manifest order) by the rule above.

    ``sample`` and ``excess_total`` let a caller that scored only the best candidates (an
    approximate index over a very large manifest) give the median/MAD and the total excess
    estimated from a uniform sample of the manifest.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) != len(isrcs):
        msg = f"scores: shape {scores.shape} for {len(isrcs)} items; expected one score per item"
        raise ValidationError(msg, field="scores", value=list(scores.shape))
    if not 0.0 <= floor < 1.0:
        msg = f"floor: {floor}; expected 0 <= floor < 1"
        raise ValidationError(msg, field="floor", value=floor)
    if not np.isfinite(scores).all():
        msg = "scores: not every score is finite"
        raise ValidationError(msg, field="scores", value=int((~np.isfinite(scores)).sum()))
    z, median, _ = robust_z(scores, sample)
    excess = np.maximum(scores - median, 0.0)
    total = float(excess.sum()) if excess_total is None else float(excess_total)
    significant = np.flatnonzero(z >= z_min)
    # best first; ties by ISRC so the order never depends on float noise in the input order
    order = sorted(significant.tolist(), key=lambda i: (-scores[i], isrcs[i]))[:max_items]
    top_z = float(z.max()) if len(z) else 0.0
    named_excess = float(excess[order].sum()) if order else 0.0
    fraction = (1.0 - floor) * named_excess / total if total > 0 and named_excess > 0 else 0.0
    fraction = min(max(fraction, 0.0), 1.0 - floor)
    raw = [round(fraction * float(excess[i]) / named_excess * _SCALE) for i in order] if order else []
    rest = _SCALE - sum(raw)
    parts = allocate(PPM_WHOLE, [*raw, max(rest, 0)], [*(isrcs[i] for i in order), UNATTRIBUTED_KEY])
    kept = [(i, p) for i, p in zip(order, parts[:-1], strict=True) if p > 0]
    unattributed = PPM_WHOLE - sum(p for _, p in kept)
    reliable = causal and bool(kept) and top_z >= RELIABLE_Z and fraction >= RELIABLE_SHARE
    return Weighting(
        indices=tuple(i for i, _ in kept),
        ppm=tuple(p for _, p in kept),
        unattributed_ppm=unattributed,
        reliable=reliable,
        top_z=top_z,
        significant=len(significant),
        attributed_fraction=fraction,
    )


def _split(total: int, owners: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """``total`` ppm over ``(party, share_ppm)`` by share (largest remainder); none if no share."""
    owners = [(p, s) for p, s in owners if s > 0]
    if not owners or total == 0:
        return []
    parts = allocate(total, [s for _, s in owners], [p for p, _ in owners])
    return list(zip((p for p, _ in owners), parts, strict=True))


Credits = tuple[
    tuple[ItemWeight, ...], tuple[tuple[str, int], ...], tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]
]
"""Items with titles, then works, master holders and publishing holders, each as sorted pairs."""


def credit_items(credited: Sequence[tuple[str, int, Sequence[str]]], catalog: Catalog) -> Credits:
    """:data:`Credits` for ``(isrc, ppm, works if the catalog has none)`` triples, by ``catalog``'s ownership.

    An item's weight goes to its works in equal parts, and to its master owners by their shares;
    each work's part goes to its publishers by their shares. Where the catalog knows no owner for
    a side the weight reaches no holder on that side (the sums then fall short of the items' total).
    """
    works: dict[str, int] = defaultdict(int)
    master: dict[str, int] = defaultdict(int)
    publishing: dict[str, int] = defaultdict(int)
    items = []
    for isrc, ppm, fallback_works in credited:
        rec = catalog.recordings.get(isrc)
        work_ids = sorted(set(rec.works if rec is not None and rec.works else fallback_works))
        refs = tuple(WorkRef(w, catalog.works[w].title if w in catalog.works else "") for w in work_ids)
        items.append(ItemWeight(isrc, ppm, rec.title if rec is not None else "", refs))
        if rec is not None:
            for party, part in _split(ppm, [(s.party_id, s.ppm) for s in rec.shares]):
                master[party] += part
        if work_ids:
            for work_id, part in zip(work_ids, allocate(ppm, [1] * len(work_ids), work_ids), strict=True):
                works[work_id] += part
                work = catalog.works.get(work_id)
                if work is not None:
                    for party, share in _split(part, [(s.party_id, s.ppm) for s in work.shares]):
                        publishing[party] += share
    return (
        tuple(sorted(items, key=lambda i: (-i.weight_ppm, i.isrc))),
        sorted_weights(list(works.items())),
        sorted_weights(list(master.items())),
        sorted_weights(list(publishing.items())),
    )


def aggregate(weighting: Weighting, manifest: Manifest, catalog: Catalog) -> Credits:
    """Items with titles, then works, master holders and publishing holders, each as sorted pairs.

    The named items of ``weighting`` credited by :func:`credit_items` with ``catalog`` (normally the
    registry at the manifest's ``as_of``: the owners who licensed the training).
    """
    credited = []
    for index, ppm in zip(weighting.indices, weighting.ppm, strict=True):
        item = manifest.items[index]
        credited.append((item.isrc, ppm, item.works))
    return credit_items(credited, catalog)


def build_attribution(
    *,
    method: str,
    method_version: str,
    scores: np.ndarray,
    weighting: Weighting,
    manifest: Manifest,
    catalog: Catalog,
    details: Mapping[str, Any] | None = None,
) -> Attribution:
    """The :class:`Attribution` for a weighting (items carry their raw scores for display)."""
    items, works, master, publishing = aggregate(weighting, manifest, catalog)
    by_isrc = {manifest.items[i].isrc: float(scores[i]) for i in weighting.indices}
    items = tuple(ItemWeight(i.isrc, i.weight_ppm, i.title, i.works, by_isrc.get(i.isrc, 0.0)) for i in items)
    return Attribution(
        method=method,
        method_version=method_version,
        reliable=weighting.reliable,
        unattributed_ppm=weighting.unattributed_ppm,
        items=items,
        works=works,
        master=master,
        publishing=publishing,
        manifest_root=manifest.root,
        details={
            "top_z": round(weighting.top_z, 3),
            "significant": weighting.significant,
            "attributed_fraction": round(weighting.attributed_fraction, 6),
            **(details or {}),
        },
    )
