"""Royalty runs, closing a period and payouts: the orchestration over the engine and the ledger.

* :func:`run_period` (``accord royalties run --period P``): land the platform's own events in
  the log, read the registry as of the period's end, compute, and write the run's files
  (``<home>/royalties/P/<run_id>/lines.parquet``, ``suspense.parquet``, ``summary.json``).
  The run id is the hash of the engine version and the inputs, so the same inputs give the
  same run, byte for byte; a run with other inputs supersedes the earlier draft.
* :func:`close_period` (``accord royalties close``): re-run (it must reproduce the latest
  run), post the period to the ledger in one transaction and mark the period closed: from
  then on it refuses re-runs and changes; late events go to the next open period.
* :func:`payout_period` (``accord royalties payout``): for a closed period, move each party's
  payable (and guarantee) balance to paid, rounded down to whole minor units of its currency
  (the remainder stays payable), when at or above the payout threshold, its advances are
  recouped and its bank details are on file (:mod:`accord.royalties.payouts`).

Closing, paying out and reversing each sign the ledger's head with the operator's key, in the
same transaction as the transfers (:mod:`accord.royalties.heads`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import insert, select, update

from accord.errors import Conflict, NotFound, ValidationError
from accord.money import parse_amount
from accord.registry.bank import bank_details_of
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties import heads, ledger
from accord.royalties.engine import ENGINE_VERSION, RunResult, compute
from accord.royalties.fx import period_rates, require_rates
from accord.royalties.inputs import RunInputs, load_inputs
from accord.royalties.payouts import Held, Payout, plan_payouts
from accord.royalties.periods import CLOSED, ensure_period, parse_period, period_status, require_open
from accord.royalties.policy import RoyaltyPolicy, load_policy
from accord.royalties.postings import Guarantee, needed_pairs, plan
from accord.royalties.usage import committed_files, sync_platform_events
from accord.settings import Settings
from accord.signing import canonical_json, ensure_operator_key

T = Base.metadata.tables
DRAFT, FINAL, SUPERSEDED = "draft", "final", "superseded"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RoyaltyRun:
    """A recorded royalty run.

    Attributes:
        run_id: hash of engine version and inputs (the same inputs give the same id).
        period: ``YYYY-MM``.
        engine_version, inputs_hash, result_hash: what computed it, from what, and what came out.
        status: ``draft`` (re-runnable), ``final`` (its period is closed) or ``superseded``.
        folder: where its files are.
        summary: totals per currency and notes (``summary.json``).
    """

    run_id: str
    period: str
    engine_version: str
    inputs_hash: str
    result_hash: str
    status: str
    folder: Path
    summary: dict[str, Any]


def runs_dir(settings: Settings, period: str) -> Path:
    return settings.home / "royalties" / period


def compute_period(
    store: Store, settings: Settings, period: str, *, policy: RoyaltyPolicy | None = None
) -> tuple[RunResult, RunInputs, RoyaltyPolicy]:
    """Compute a period without recording anything (the engine over the log and the registry)."""
    period = parse_period(period)
    policy = policy or load_policy(settings, period)
    inputs = load_inputs(store, period, policy)
    from accord.royalties.partitioned import usage_scan  # scale-out: the day partitions on ACCORD_EXECUTOR's cluster

    scan = usage_scan(settings)
    return compute(inputs, committed_files(store, settings, period), policy, scan=scan), inputs, policy


def _summary(result: RunResult, run_id: str, policy: RoyaltyPolicy) -> dict[str, Any]:
    payable, unmatched = result.payable(), result.unmatched()
    return {
        "run_id": run_id,
        "period": result.period,
        "engine_version": result.engine_version,
        "inputs_hash": result.inputs_hash,
        "policy": policy.to_dict(),
        "revenue": result.revenue,
        "payable": payable,
        "unmatched": unmatched,
        "operator": result.operator,
        "lines": result.lines.num_rows,
        "suspense_rows": result.suspense.num_rows,
        "notes": list(result.notes),
    }


def _write_run(folder: Path, result: RunResult, summary: dict[str, Any]) -> str:
    """Write the run's files (temp names, then rename) and return the hash of their bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for name, table in (("lines.parquet", result.lines), ("suspense.parquet", result.suspense)):
        tmp = folder / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        digest.update(tmp.read_bytes())
        tmp.replace(folder / name)
    body = canonical_json(summary)
    digest.update(body)
    (folder / "summary.json").write_bytes(body)
    return digest.hexdigest()


def run_period(
    store: Store,
    settings: Settings,
    period: str,
    *,
    actor: str = "",
    policy: RoyaltyPolicy | None = None,
    progress: Progress | None = None,
) -> RoyaltyRun:
    """Compute and record a run of an open period (the same inputs give the same run, byte for byte)."""
    period = parse_period(period)
    require_open(store, period)
    step = progress or (lambda _stage, _done, _total: None)
    step("sync platform events", 0, 3)
    sync_platform_events(store, settings)
    step("compute", 1, 3)
    result, inputs, policy = compute_period(store, settings, period, policy=policy)
    # a run that will need exchange rates at its close stops now, naming the missing pairs and date
    earlier = [t for t in ledger.transfers(store) if t.period < period]
    require_rates(period_rates(store, period), needed_pairs(result, list(inputs.agreements.values()), earlier))
    run_id = hashlib.sha256(f"{ENGINE_VERSION}|{result.inputs_hash}".encode()).hexdigest()[:32]
    summary = _summary(result, run_id, policy)
    folder = runs_dir(settings, period) / run_id
    step("write", 2, 3)
    result_hash = _write_run(folder, result, summary)
    ensure_period(store, period)
    t = T["royalty_runs"]
    with store.engine.begin() as conn:
        existing = conn.execute(select(t.c.result_hash).where(t.c.run_id == run_id)).first()
        if existing is not None and existing[0] != result_hash:
            msg = (
                f"run {run_id}: re-run gave result {result_hash[:12]}, recorded {existing[0][:12]} (not deterministic)"
            )
            raise Conflict(msg)
        conn.execute(
            update(t).where(t.c.period == period, t.c.run_id != run_id, t.c.status == DRAFT).values(status=SUPERSEDED)
        )
        if existing is None:
            conn.execute(
                insert(t).values(
                    run_id=run_id,
                    period=period,
                    engine_version=result.engine_version,
                    inputs_hash=result.inputs_hash,
                    result_hash=result_hash,
                    status=DRAFT,
                    created_at=store.clock(),
                    created_by=actor,
                    summary=summary,
                )
            )
        else:
            conn.execute(update(t).where(t.c.run_id == run_id).values(status=DRAFT))
    step("done", 3, 3)
    return RoyaltyRun(run_id, period, result.engine_version, result.inputs_hash, result_hash, DRAFT, folder, summary)


def _run(r: Any, settings: Settings) -> RoyaltyRun:
    folder = runs_dir(settings, r["period"]) / r["run_id"]
    return RoyaltyRun(
        r["run_id"],
        r["period"],
        r["engine_version"],
        r["inputs_hash"],
        r["result_hash"],
        r["status"],
        folder,
        r["summary"],
    )


def latest_run(store: Store, settings: Settings, period: str) -> RoyaltyRun:
    """The period's final run if closed, else its current draft."""
    t = T["royalty_runs"]
    with store.engine.connect() as conn:
        r = (
            conn.execute(
                select(t)
                .where(t.c.period == parse_period(period), t.c.status.in_([DRAFT, FINAL]))
                .order_by(t.c.status.desc(), t.c.created_at.desc())
            )
            .mappings()
            .first()
        )
    if r is None:
        msg = f"period {period}: no royalty run yet (accord royalties run --period {period})"
        raise NotFound(msg)
    return _run(r, settings)


def load_result(run: RoyaltyRun) -> RunResult:
    """A recorded run's result, read back from its files (checked against its result hash)."""
    digest = hashlib.sha256()
    for name in ("lines.parquet", "suspense.parquet", "summary.json"):
        digest.update((run.folder / name).read_bytes())
    if digest.hexdigest() != run.result_hash:
        msg = f"run {run.run_id}: its files in {run.folder} do not match its result hash (changed since the run)"
        raise Conflict(msg)
    s = run.summary
    return RunResult(
        run.period,
        run.engine_version,
        run.inputs_hash,
        dict(s["revenue"]),
        dict(s["operator"]),
        pq.read_table(run.folder / "lines.parquet"),
        pq.read_table(run.folder / "suspense.parquet"),
        tuple(s["notes"]),
    )


@dataclass(frozen=True)
class Closing:
    """What closing a period did.

    Attributes:
        run: the final run.
        transfers: ledger transfers posted.
        guarantees: minimum guarantees checked (with any shortfall).
        ledger_head: the ledger's last hash after posting.
    """

    run: RoyaltyRun
    transfers: int
    guarantees: tuple[Guarantee, ...]
    ledger_head: str


def close_period(
    store: Store, settings: Settings, period: str, *, actor: str = "", progress: Progress | None = None
) -> Closing:
    """Re-run the period (it must reproduce its latest run), post it to the ledger, make it immutable."""
    period = parse_period(period)
    require_open(store, period)
    before = latest_run(store, settings, period)
    run = run_period(store, settings, period, actor=actor, progress=progress)
    if run.run_id != before.run_id:
        msg = (
            f"period {period}: its inputs changed since run {before.run_id[:12]} (new events or registry "
            f"changes); review run {run.run_id[:12]} and close again"
        )
        raise Conflict(msg)
    result = load_result(run)
    policy = RoyaltyPolicy.from_dict(run.summary["policy"])
    inputs_agreements = load_inputs(store, period, policy).agreements.values()
    history = ledger.transfers(store)
    rates = period_rates(store, period)
    legs, guarantees = plan(result, list(inputs_agreements), history, reserve_ppm=policy.reserve_ppm, rates=rates)
    p, r = T["royalty_periods"], T["royalty_runs"]
    key, _ = ensure_operator_key(settings.home)
    with store.engine.begin() as conn:
        posted = ledger.post(store, legs, period=period, run_id=run.run_id, conn=conn)
        head = posted[-1].hash if posted else (history[-1].hash if history else ledger.GENESIS)
        closed = conn.execute(
            update(p)
            .where(p.c.period == period, p.c.status != CLOSED)
            .values(status=CLOSED, closed_at=store.clock(), closed_by=actor, run_id=run.run_id)
        )
        if closed.rowcount != 1:
            msg = f"period {period}: closed by someone else meanwhile"
            raise Conflict(msg)
        summary = {
            **run.summary,
            "ledger_head": head,
            "guarantees": [asdict(g) for g in guarantees],
        }
        conn.execute(update(r).where(r.c.run_id == run.run_id).values(status=FINAL, summary=summary))
        heads.sign_head(store, conn, key, event="close", period=period, subject=run.run_id)
    final = RoyaltyRun(
        run.run_id, period, run.engine_version, run.inputs_hash, run.result_hash, FINAL, run.folder, summary
    )
    return Closing(final, len(posted), tuple(guarantees), head)


@dataclass(frozen=True)
class PayoutBatch:
    """What one payout run did.

    Attributes:
        period: the closed period paid out.
        payouts: balances moved to paid (whole minor units), with the sub-unit remainder carried.
        held: balances left payable, each with its reason (no bank details, threshold, advance).
    """

    period: str
    payouts: tuple[Payout, ...]
    held: tuple[Held, ...]


def threshold_micros(settings: Settings) -> int:
    return parse_amount(settings.payout_threshold, "EUR", field="payout_threshold").micros


def payout_period(store: Store, settings: Settings, period: str, *, actor: str = "") -> list[Payout]:
    """Pay out balances as of a closed period (see :func:`payout_batch`); the payouts made."""
    return list(payout_batch(store, settings, period, actor=actor).payouts)


def payout_batch(store: Store, settings: Settings, period: str, *, actor: str = "") -> PayoutBatch:
    """Pay out balances as of a closed period: whole minor units, at or above the threshold, advances
    recouped, to parties with bank details; once per period (held balances wait for the next one)."""
    period = parse_period(period)
    if period_status(store, period) != CLOSED:
        msg = f"period {period}: not closed; close it first (accord royalties close --period {period})"
        raise ValidationError(msg, field="period", value=period)
    pt = T["royalty_payouts"]
    with store.engine.connect() as conn:
        if conn.execute(select(pt.c.payout_id).where(pt.c.period == period).limit(1)).first() is not None:
            msg = f"period {period}: already paid out"
            raise Conflict(msg)
    bal = ledger.balances(ledger.transfers(store, upto=period))
    parties = {ledger.parse_account(acc)[0] for acc in bal}
    plan = plan_payouts(bal, threshold=threshold_micros(settings), accounts=bank_details_of(store, parties))
    if not plan.legs:
        return PayoutBatch(period, (), plan.held)
    key, _ = ensure_operator_key(settings.home)
    with store.engine.begin() as conn:
        posted = ledger.post(store, list(plan.legs), period=period, conn=conn)
        by_party: dict[tuple[str, str], list[ledger.Transfer]] = {}
        for tr in posted:
            party, currency, _ = ledger.parse_account(tr.debit_account)
            by_party.setdefault((party, currency), []).append(tr)
        out = []
        for planned in plan.payouts:
            trs = by_party[(planned.party_id, planned.currency)]
            pid = hashlib.sha256(f"{period}|{planned.party_id}|{planned.currency}".encode()).hexdigest()[:32]
            conn.execute(
                insert(pt).values(
                    payout_id=pid,
                    period=period,
                    party_id=planned.party_id,
                    currency=planned.currency,
                    amount=planned.amount,
                    transfer_id=trs[0].transfer_id,
                    at=store.clock(),
                )
            )
            out.append(replace(planned, transfer_ids=tuple(tr.transfer_id for tr in trs)))
        heads.sign_head(store, conn, key, event="payout", period=period, subject=f"{len(out)} payouts")
    return PayoutBatch(period, tuple(out), plan.held)
