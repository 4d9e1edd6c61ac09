"""The registry as the royalty engine sees it: Arrow tables built from a snapshot at the period's end.

Pure: :func:`build_inputs` takes a :class:`~accord.registry.entities.Catalog`, each model's
manifest items and each output's credential, and returns the tables DuckDB joins with the
usage events. :func:`load_inputs` reads them from the store as of the period's end.

Matching (which agreement pays an owner): an agreement of that licensor on that side, in
force at some instant of the period, granting the basis's use (``train`` for the training
pool, ``generate`` for the output pool) and covering the subject (its whole catalog, or the
ISRC / work listed); the lowest agreement id wins. An owner with none is *unmatched*: its
money goes to the suspense account, never dropped. A recording's master/publishing split is
its lowest-id fitting master agreement's (else its publishing one's, else 50/50).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from accord.datasets.manifest import ManifestItem
from accord.datasets.repository import list_models, load_manifest
from accord.registry.entities import PPM_WHOLE, Agreement, Catalog, Side, TrainingPoolMethod, Use
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties.periods import period_bounds
from accord.royalties.policy import RoyaltyPolicy

T = Base.metadata.tables
BASES = ("training", "output")
BASIS_USE = {"training": Use.TRAIN, "output": Use.GENERATE}
MASTER_WORK = ""
"""The work id of master-side rows (the master side is owned per recording, not per work)."""

S = pa.string()
I64 = pa.int64()
SCHEMAS = {
    "attribution": pa.schema([("output_id", S), ("isrc", S), ("weight", I64)]),
    "items": pa.schema([("model_id", S), ("isrc", S), ("weight", I64)]),
    "durations": pa.schema([("model_id", S), ("isrc", S), ("duration_ms", I64)]),
    "sides": pa.schema([("isrc", S), ("side", S), ("weight", I64)]),
    "works": pa.schema([("isrc", S), ("side", S), ("work_id", S), ("weight", I64)]),
    "holders": pa.schema(
        [
            ("isrc", S),
            ("side", S),
            ("work_id", S),
            ("basis", S),
            ("party_id", S),
            ("weight", I64),
            ("share_ppm", I64),
            ("agreement_id", S),
            ("pool_ppm", I64),
        ]
    ),
}


@dataclass(frozen=True)
class RunInputs:
    """Registry-derived tables for one period.

    Attributes:
        period: ``YYYY-MM``.
        attribution: per output, ``(isrc, weight ppm)``; ``isrc == ""`` is the part paid by the
            training-pool method (the unattributed remainder, or all of an unreliable/pending output).
        items: per model, its manifest items and their weight under the training-pool method.
        sides: per recording, the master and publishing weights (ppm).
        works: per recording side, the works the side's money is split among (equally).
        holders: per (recording, side, work, basis), the owners by share, matched agreement and
            pool share; ``party_id == ""`` is the unowned remainder (suspense).
        parties: party id → name.
        agreements: agreements in force in the period (for guarantees and advances), by id.
        notes: decisions taken that a reader should know about.
        durations: per model, each manifest item's duration (ms), for agreements that split
            their training money ``pro_rata_duration``.
    """

    period: str
    attribution: pa.Table
    items: pa.Table
    sides: pa.Table
    works: pa.Table
    holders: pa.Table
    parties: Mapping[str, str]
    agreements: Mapping[str, Agreement]
    notes: tuple[str, ...] = ()
    durations: pa.Table = field(default_factory=lambda: SCHEMAS["durations"].empty_table())


def _in_force_during(a: Agreement, start: datetime, end: datetime) -> bool:
    return a.start < end and (a.end is None or a.end > start)


def _owners(shares: Iterable[Any]) -> list[tuple[str, int]]:
    total: dict[str, int] = defaultdict(int)
    for s in shares:
        total[s.party_id] += s.ppm
    return sorted((p, v) for p, v in total.items() if v > 0)


class _Matcher:
    def __init__(self, catalog: Catalog, period: str) -> None:
        start, end = period_bounds(period)
        self.by_licensor: dict[tuple[str, str], list[Agreement]] = defaultdict(list)
        for a in sorted(catalog.agreements.values(), key=lambda a: a.agreement_id):
            if _in_force_during(a, start, end):
                self.by_licensor[(a.licensor, Side(a.side).value)].append(a)

    def match(self, party: str, side: str, subject: str, basis: str) -> Agreement | None:
        use = BASIS_USE[basis]
        for a in self.by_licensor.get((party, side), ()):
            items = a.coverage.recordings if side == Side.MASTER else a.coverage.works
            if use in a.uses and (a.coverage.catalog or subject in items):
                return a
        return None


def _method(policy: RoyaltyPolicy) -> str:
    """The item-level method: the policy's when it sets one (for every agreement), else equal per work.

    With no policy method, each agreement's own method applies to its licensor's share
    (:meth:`accord.royalties.cascade.Cascade._by_duration`): the pot is split equally per work,
    then each ``pro_rata_duration`` licensor's training money is re-split over its items by duration.
    """
    return policy.training_pool_method or TrainingPoolMethod.EQUAL_PER_WORK.value


def attribution_rows(output_id: str, credential: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """An output's ``(output_id, isrc, weight ppm)`` rows from its credential's attribution.

    Computed and reliable: its items, plus the unattributed remainder as ``""``. Anything else
    (pending, unreliable, missing or malformed): all of it as ``""`` (the training-pool method).
    """
    attr = credential.get("attribution") if isinstance(credential, Mapping) else None
    fallback = [(output_id, "", PPM_WHOLE)]
    if not isinstance(attr, Mapping) or attr.get("status") != "computed" or attr.get("reliable") is not True:
        return fallback
    items = attr.get("items")
    rest = attr.get("unattributed_ppm")
    if not isinstance(items, list) or not isinstance(rest, int):
        return fallback
    rows: dict[str, int] = defaultdict(int)
    for entry in items:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("isrc"), str) or not entry["isrc"]:
            return fallback
        weight = entry.get("weight_ppm")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
            return fallback
        rows[entry["isrc"]] += weight
    if rest < 0 or sum(rows.values()) + rest != PPM_WHOLE:
        return fallback
    out = [(output_id, isrc, w) for isrc, w in sorted(rows.items())]
    return [*out, (output_id, "", rest)] if rest else out


def build_inputs(
    catalog: Catalog,
    models: Mapping[str, Sequence[ManifestItem]],
    outputs: Iterable[tuple[str, Mapping[str, Any]]],
    period: str,
    policy: RoyaltyPolicy,
) -> RunInputs:
    """The engine's tables for ``period`` from a catalog, manifests (by model) and credentials (by output)."""
    method = _method(policy)
    matcher = _Matcher(catalog, period)
    attribution = [row for oid, cred in sorted(outputs, key=lambda o: o[0]) for row in attribution_rows(oid, cred)]
    items: list[tuple[str, str, int]] = []
    durations: list[tuple[str, str, int]] = []
    for model_id in sorted(models):
        for item in sorted(models[model_id], key=lambda i: i.isrc):
            weight = max(item.duration_ms, 0) if method == TrainingPoolMethod.PRO_RATA_DURATION else 1
            items.append((model_id, item.isrc, weight))
            if not policy.training_pool_method:
                durations.append((model_id, item.isrc, max(item.duration_ms, 0)))
    sides: list[tuple[str, str, int]] = []
    works: list[tuple[str, str, str, int]] = []
    holders: list[tuple[str, str, str, str, str, int, int, str, int]] = []
    for isrc in sorted(catalog.recordings):
        rec = catalog.recordings[isrc]
        split = _split(rec.isrc, _owners(rec.shares), rec.works, catalog, matcher)
        sides += [(isrc, Side.MASTER.value, split), (isrc, Side.PUBLISHING.value, PPM_WHOLE - split)]
        works.append((isrc, Side.MASTER.value, MASTER_WORK, 1))
        holders += _holder_rows(isrc, Side.MASTER.value, MASTER_WORK, isrc, _owners(rec.shares), matcher)
        work_ids = sorted(set(rec.works))
        for work_id in work_ids:  # none: the publishing side goes to suspense as no_works
            works.append((isrc, Side.PUBLISHING.value, work_id, 1))
            work = catalog.works.get(work_id)
            owners = _owners(work.shares) if work is not None else []
            holders += _holder_rows(isrc, Side.PUBLISHING.value, work_id, work_id, owners, matcher)
    start, end = period_bounds(period)
    return RunInputs(
        period=period,
        attribution=_table("attribution", attribution),
        items=_table("items", items),
        sides=_table("sides", sides),
        works=_table("works", works),
        holders=_table("holders", holders),
        parties={p.party_id: p.name for p in catalog.parties.values()},
        agreements={k: a for k, a in sorted(catalog.agreements.items()) if _in_force_during(a, start, end)},
        durations=_table("durations", durations),
    )


def _split(isrc: str, owners: list[tuple[str, int]], work_ids: Iterable[str], catalog: Catalog, m: _Matcher) -> int:
    """The recording's master split: the lowest-id fitting master agreement's (any owner, train or generate),
    else the lowest-id fitting publishing agreement's (any work, any publisher), else 50/50."""
    master = [m.match(p, Side.MASTER.value, isrc, b) for p, _ in owners for b in BASES]
    publishing = [
        m.match(p, Side.PUBLISHING.value, w, b)
        for w in sorted(set(work_ids))
        for p, _ in (_owners(catalog.works[w].shares) if w in catalog.works else [])
        for b in BASES
    ]
    for found in (master, publishing):
        fitting = [a for a in found if a is not None]
        if fitting:
            return min(fitting, key=lambda a: a.agreement_id).terms.master_split_ppm
    return 500_000


def _holder_rows(
    isrc: str, side: str, work_id: str, subject: str, owners: list[tuple[str, int]], m: _Matcher
) -> list[tuple[str, str, str, str, str, int, int, str, int]]:
    rows = []
    total = sum(v for _, v in owners)
    for basis in BASES:
        for party, share in owners:
            a = m.match(party, side, subject, basis)
            aid, pool = (a.agreement_id, a.terms.pool_share_ppm) if a is not None else ("", 0)
            rows.append((isrc, side, work_id, basis, party, share, share, aid, pool))
        if total < PPM_WHOLE:  # nobody on record owns the rest: suspense
            rows.append((isrc, side, work_id, basis, "", PPM_WHOLE - total, PPM_WHOLE - total, "", 0))
    return rows


def _table(name: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = SCHEMAS[name]
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(cols, schema, strict=True)], schema)


def load_inputs(store: Store, period: str, policy: RoyaltyPolicy) -> RunInputs:
    """The engine's tables for ``period`` from the store, as the registry stood at the period's end."""
    _, end = period_bounds(period)
    as_of = min(end, store.clock())
    catalog = store.snapshot(as_of)
    models: dict[str, tuple[ManifestItem, ...]] = {}
    for model in list_models(store):
        manifest, _ = load_manifest(store, model.manifest_root)
        models[model.model_id] = manifest.items
    o = T["outputs"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(o.c.output_id, o.c.credential, o.c.attribution).order_by(o.c.output_id))
        outputs = [(r[0], paid_by(r[1], r[2])) for r in rows]
    return build_inputs(catalog, models, outputs, period, policy)


def paid_by(credential: Mapping[str, Any], private: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """What an output is paid by: its private record's full attribution (the public credential names
    hidden parties' items only by commitment), or, for an output stored before there was one
    (``outputs.attribution`` NULL), its credential, which then holds the full attribution."""
    if isinstance(private, Mapping) and isinstance(private.get("attribution"), Mapping):
        return {"attribution": private["attribution"]}
    return credential
