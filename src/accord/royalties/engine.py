"""The royalty engine: DuckDB over a period's usage events, NumPy over the integer-coded registry.

Every split is a largest-remainder allocation in integer micro-units (the rule of
:func:`accord.money.allocate`: floor shares, then the units left over one each to the largest
remainders, ties by key ascending), vectorised over integer-coded keys by
:mod:`accord.royalties.vectorised` (property-tested equal to it), so each level
sums exactly to the level above::

    revenue (per currency)
      -> training pool | output pool                   policy.training_share_ppm
    training pool -> models                            by the models' usage units
    output pool   -> outputs                           by the outputs' monetising usage units
    output        -> recordings | remainder            by its attribution weights (ppm)
    model (training money, and output remainders)
                  -> the model's manifest items        equal per work, or by duration
    recording     -> master | publishing               the agreement's master split
    side          -> works                             equally (master side: the recording)
    work          -> owners                            by share (unowned remainder: suspense)
    owner         -> payable | operator                the owner's agreement's pool share
                     (no fitting agreement: suspense)
    then, per (currency, model, party, agreement) whose agreement says pro_rata_duration
    (and the policy sets no method): its training lines' payable re-split by
    equal-per-work amount x the item's duration (Cascade._by_duration)

Inputs: :class:`~accord.royalties.inputs.RunInputs` (coded tables: ``attribution``, ``items``,
``sides``, ``works``, ``holders``, ``durations``, and the agreements in force), the period's event
files and the :class:`~accord.royalties.policy.RoyaltyPolicy`. Output: :class:`RunResult`, whose
``lines`` (one per party, currency, basis, isrc, work, model, output, side; :data:`LINE_COLUMNS`)
and ``suspense`` (:data:`SUSPENSE_COLUMNS`) with ``operator`` sum exactly to ``revenue`` per currency.
What a close posts from them (guarantee terms, advances, conversions) is
:mod:`accord.royalties.postings`, a pure function of the result, the ledger so far and the rates.

Money that cannot go further (no usage at all, a model with no manifest, an unknown
recording, an unowned share, an owner without a fitting agreement) goes to the suspense
account with a reason, so that ``payable + suspense + operator == revenue`` to the micro-unit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord import __version__
from accord.errors import LedgerError
from accord.money import allocate
from accord.registry.entities import PPM_WHOLE
from accord.royalties.cascade import Cascade
from accord.royalties.coding import Codes, Registry, used_attribution
from accord.royalties.inputs import RunInputs
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.usage import EVENT_SCHEMA
from accord.signing import canonical_json

ENGINE_VERSION = f"accord-royalties/5 ({__version__}; duckdb {duckdb.__version__})"
"""5: the lines' text columns are dictionary arrays (so are ``lines.parquet``'s): the same lines, other bytes."""

LINE_COLUMNS = (
    "party_id",
    "currency",
    "basis",
    "side",
    "isrc",
    "work_id",
    "model_id",
    "output_id",
    "units",
    "share_ppm",
    "amount",
    "agreement_id",
)
SUSPENSE_COLUMNS = (
    "currency",
    "reason",
    "basis",
    "model_id",
    "output_id",
    "isrc",
    "side",
    "work_id",
    "party_id",
    "amount",
)


@dataclass(frozen=True)
class RunResult:
    """What a royalty run computed for one period.

    Attributes:
        period: ``YYYY-MM``.
        engine_version: the engine that computed it.
        inputs_hash: hash of the inputs (events, registry tables, policy, engine version).
        revenue: currency → net revenue (micro-units).
        operator: currency → the operator's share.
        lines: the parties' royalty lines (:data:`LINE_COLUMNS`), sorted; the text columns are
            dictionary arrays over the run's sorted dictionaries (:mod:`accord.royalties.lines`).
        suspense: unmatched money with its reason (:data:`SUSPENSE_COLUMNS`), sorted.
        notes: decisions a reader should know about.
    """

    period: str
    engine_version: str
    inputs_hash: str
    revenue: dict[str, int]
    operator: dict[str, int]
    lines: pa.Table
    suspense: pa.Table
    notes: tuple[str, ...] = ()

    def payable(self) -> dict[str, int]:
        return _sum_by(self.lines, "currency")

    def unmatched(self) -> dict[str, int]:
        return _sum_by(self.suspense, "currency")


def _sum_by(table: pa.Table, key: str) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(key).aggregate([("amount", "sum")])
    return dict(zip(grouped.column(key).to_pylist(), grouped.column("amount_sum").to_pylist(), strict=True))


def inputs_hash(codes: Codes, reg: Registry, files: Sequence[Path], policy: RoyaltyPolicy, period: str) -> str:
    """Hash of everything a run reads: the event files (named by their content), the registry tables, the policy.

    The registry tables are hashed as the engine reads them (coded, each key once) with their
    dictionaries; of the attribution table, only the rows of outputs used in the period count
    (the others cannot change the result).
    """
    digest = hashlib.sha256()
    digest.update(canonical_json({"engine": ENGINE_VERSION, "period": period, "policy": policy.to_dict()}))
    digest.update("\n".join(sorted(p.name + "@" + p.parent.name for p in files)).encode())
    for name in ("cur", "basis", "model", "out", "isrc", "side", "work", "party", "agreement"):
        values = getattr(codes, name)
        digest.update(f"\n{name}:{len(values)}:".encode())
        digest.update("\x1f".join(values.to_pylist()).encode())
    for g in (reg.items, reg.sides, reg.works, reg.holders):
        for arr in (g.key, *(g.columns[k] for k in sorted(g.columns))):
            digest.update(np.ascontiguousarray(arr, np.int64).data)
    for arr in (reg.durations.key, reg.durations.columns["ms"], reg.by_duration):
        digest.update(np.ascontiguousarray(arr, np.int64).data)
    for arr in (reg.attr_out, reg.attr_isrc, reg.attr_weight):
        digest.update(np.ascontiguousarray(arr, np.int64).data)
    return digest.hexdigest()


_USAGE_SQL = """
SELECT output_id, model_id, sum(k.w)::BIGINT AS units, count(*)::BIGINT AS n,
       coalesce(sum(k.w) FILTER (WHERE k.monetises), 0)::BIGINT AS units_out,
       count(*) FILTER (WHERE k.monetises)::BIGINT AS n_out
FROM ev JOIN kind_weights k USING (kind) WHERE ev.kind <> 'revenue' GROUP BY output_id, model_id
"""
_REVENUE_SQL = "SELECT currency, sum(amount)::BIGINT FROM ev WHERE kind = 'revenue' GROUP BY currency ORDER BY currency"


def usage_totals(
    files: Sequence[Path], policy: RoyaltyPolicy, period: str, threads: int
) -> tuple[pa.Table, dict[str, int]]:
    """Usage per (output, model) and revenue per currency, from the period's event files."""
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {threads}")
        kinds = pa.table(
            {
                "kind": [k for k, _ in policy.kind_weights],
                "w": pa.array([w for _, w in policy.kind_weights], pa.int64()),
                "monetises": [k in policy.output_kinds for k, _ in policy.kind_weights],
            }
        )
        con.register("kind_weights", kinds)
        if files:
            names = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
            source = f"read_parquet([{names}], hive_partitioning = false)"
            con.execute(f"CREATE TEMP VIEW ev AS SELECT * FROM {source} WHERE period = '{period}'")
        else:
            con.register("ev_empty", EVENT_SCHEMA.empty_table())
            con.execute("CREATE TEMP VIEW ev AS SELECT * FROM ev_empty")
        usage = con.sql(_USAGE_SQL).to_arrow_table()
        revenue = {str(c): int(t) for c, t in con.execute(_REVENUE_SQL).fetchall()}
    finally:
        con.close()
    return usage, revenue


def compute(
    inputs: RunInputs,
    files: Sequence[Path],
    policy: RoyaltyPolicy,
    *,
    threads: int = 0,
    scan: Callable[[Sequence[Path], RoyaltyPolicy, str, int], tuple[pa.Table, dict[str, int]]] | None = None,
) -> RunResult:
    """Run the period: allocate its revenue down to each owner, deterministically.

    ``scan`` replaces the usage step (:func:`usage_totals`, same arguments, same result): the scale-out
    hook, where :mod:`accord.royalties.partitioned` sums the log's day partitions on a cluster.
    """
    workers = threads if threads > 0 else min(os.cpu_count() or 1, 8)
    usage, revenue = (scan or usage_totals)(files, policy, inputs.period, threads)
    attribution = used_attribution(inputs.attribution, usage["output_id"], workers)
    codes = Codes.build(list(revenue), usage, attribution, inputs, workers)
    reg = Registry.build(inputs, attribution, codes, workers)
    training_units = int(pc.sum(usage["units"]).as_py() or 0)
    output_units = int(pc.sum(usage["units_out"]).as_py() or 0)
    pools, no_usage = _pools(revenue, training_units, output_units, policy)
    with ThreadPoolExecutor(max_workers=1) as background:  # the hash beside the cascade (hashlib frees the GIL)
        digest = background.submit(inputs_hash, codes, reg, files, policy, inputs.period)
        cascade = Cascade(codes, reg, usage, pools, workers=workers)
        lines, suspense = cascade.lines(), cascade.suspense(no_usage)
    operator = {c: cascade.operator.get(c, 0) for c in revenue}
    result = RunResult(
        inputs.period, ENGINE_VERSION, digest.result(), revenue, operator, lines, suspense, tuple(inputs.notes)
    )
    _check_conservation(result)
    return result


def _pools(
    revenue: dict[str, int], training_units: int, output_units: int, policy: RoyaltyPolicy
) -> tuple[dict[str, list[object]], list[tuple[str, int]]]:
    pools: dict[str, list[object]] = {"currency": [], "basis": [], "total": []}
    no_usage: list[tuple[str, int]] = []
    # an empty pool's share goes to the other pool: money follows the usage there is
    out_w = (PPM_WHOLE - policy.training_share_ppm) if output_units else 0
    train_w = policy.training_share_ppm if training_units else 0
    if not out_w and not train_w:
        train_w = PPM_WHOLE if training_units else 0
    weights = [out_w, train_w]
    for currency, total in sorted(revenue.items()):
        if not any(weights):
            no_usage.append((currency, total))
            continue
        out, train = allocate(total, weights, ["output", "training"])
        pools["currency"] += [currency, currency]
        pools["basis"] += ["output", "training"]
        pools["total"] += [out, train]
    return pools, no_usage


def _check_conservation(result: RunResult) -> None:
    """Every micro-unit of revenue is payable, in suspense or the operator's (an engine invariant)."""
    payable, unmatched = result.payable(), result.unmatched()
    for currency, total in result.revenue.items():
        got = payable.get(currency, 0) + unmatched.get(currency, 0) + result.operator.get(currency, 0)
        if got != total:
            msg = f"royalty run {result.period} {currency}: allocated {got} of revenue {total} micro-units"
            raise LedgerError(msg)
