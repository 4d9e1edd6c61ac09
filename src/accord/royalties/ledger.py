"""A double-entry ledger on TigerBeetle's model, in the SQL store.

Accounts are one per party x currency x kind (:data:`ACCOUNT_KINDS`), named
``PARTY:CUR:kind``. A transfer debits one account and credits another by a positive amount
in integer micro-units, so Σ debits = Σ credits always. Transfers are immutable: a
correction is a new reversing transfer (code ``reversal``) naming the one it reverses and
a reason code. The legs of a linked transfer post atomically (one SQL transaction) or not
at all.

Tamper evidence: transfers are numbered (``seq`` 1, 2, ...) and each carries the hash of the
one before it, ``hash = sha256(prev_hash || canonical_json(fields))``, and a short digest of each
field (so that an edit names the field). Every close, payout and reversal signs the ledger's
head with the operator's key (:mod:`accord.royalties.heads`). :func:`verify` walks the chain,
names every transfer that was edited (and which field), deleted or reordered, and checks that
the chain ends exactly at the latest signed head, so a ledger cut short is found too.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from accord.errors import Conflict, LedgerError, NotFound, ValidationError
from accord.money import check_currency
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties import heads
from accord.royalties.periods import require_open
from accord.signing import OperatorKey, canonical_json
from accord.timeutil import iso

T = Base.metadata.tables
ACCOUNT_KINDS = (
    "payable",
    "paid",
    "advance",
    "reserve",
    "guarantee",
    "suspense",
    "operator_revenue",
    "revenue_source",
    # currency conversions (party FX.AAA-BBB, one per pair) and guarantee terms' memo accounts
    # (party AGR.<agreement id>): see accord.royalties.postings
    "conversion",
    "term_earnings",
    "term_shortfall",
    "term_basis",
)
OPERATOR = "OPERATOR"
"""The platform operator's party id on its own accounts (operator revenue)."""
REVENUE = "REVENUE"
"""The party id of the revenue source accounts (net revenue enters the ledger from there)."""
UNMATCHED = "UNMATCHED"
"""The party id of the unmatched (suspense) accounts."""
GENESIS = "0" * 64
REASON_CODES = ("duplicate", "wrong_amount", "wrong_party", "registry_correction", "other")


def account_id(party_id: str, currency: str, kind: str) -> str:
    """``PARTY:CUR:kind`` (the kind must be one of :data:`ACCOUNT_KINDS`)."""
    if kind not in ACCOUNT_KINDS:
        msg = f"kind: {kind!r} is not an account kind; expected one of {', '.join(ACCOUNT_KINDS)}"
        raise ValidationError(msg, field="kind", value=kind)
    if not party_id or ":" in party_id:
        msg = f"party_id: {party_id!r} is not a party id usable in an account name (non-empty, no ':')"
        raise ValidationError(msg, field="party_id", value=party_id)
    return f"{party_id}:{check_currency(currency)}:{kind}"


def parse_account(account: str) -> tuple[str, str, str]:
    party, currency, kind = account.rsplit(":", 2)
    return party, currency, kind


@dataclass(frozen=True)
class Leg:
    """One leg of a linked transfer, before it is posted.

    Attributes:
        debit: the account debited.
        credit: the account credited.
        amount: micro-units, > 0.
        code: what it is (``royalty``, ``operator_share``, ``unmatched``, ``mg_shortfall``,
            ``advance``, ``recoupment``, ``reserve``, ``reserve_release``, ``payout``, ``reversal``).
        reason: detail (the basis of a royalty, the agreement of a guarantee, a reversal's reason code).
        reverses: the transfer id this one reverses, or ``""``.
    """

    debit: str
    credit: str
    amount: int
    code: str
    reason: str = ""
    reverses: str = ""


@dataclass(frozen=True)
class Transfer:
    """A posted transfer (one row of ``ledger_transfers``).

    Attributes:
        seq: its position in the chain (1, 2, ...).
        transfer_id: its id.
        linked_id: the linked transfer it is a leg of.
        debit_account, credit_account: the accounts.
        amount: micro-units, > 0.
        currency: ISO 4217.
        code, reason, reverses: see :class:`Leg`.
        period: the accounting period it belongs to.
        run_id: the royalty run it comes from, or ``""``.
        at: when it was posted.
        prev_hash: the previous transfer's hash (``GENESIS`` for the first).
        hash: its own hash.
    """

    seq: int
    transfer_id: str
    linked_id: str
    debit_account: str
    credit_account: str
    amount: int
    currency: str
    code: str
    period: str
    run_id: str
    reverses: str
    reason: str
    at: datetime
    prev_hash: str
    hash: str


def _payload(r: Any) -> dict[str, Any]:
    return {
        "seq": r["seq"],
        "transfer_id": r["transfer_id"],
        "linked_id": r["linked_id"],
        "debit_account": r["debit_account"],
        "credit_account": r["credit_account"],
        "amount": r["amount"],
        "currency": r["currency"],
        "code": r["code"],
        "period": r["period"],
        "run_id": r["run_id"],
        "reverses": r["reverses"],
        "reason": r["reason"],
        "at": iso(r["at"]),
    }


def transfer_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(payload)).hexdigest()


def field_digest(value: Any) -> str:
    """A short hash of one field's value (64 bits: enough to name an edited field, not to prove anything)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()[:16]


def field_digests(payload: dict[str, Any]) -> dict[str, str]:
    return {name: field_digest(value) for name, value in payload.items()}


def _check_leg(leg: Leg) -> str:
    if isinstance(leg.amount, bool) or not isinstance(leg.amount, int) or leg.amount <= 0:
        msg = f"amount: {leg.amount!r} on {leg.debit} -> {leg.credit}; expected an integer number of micro-units > 0"
        raise LedgerError(msg)
    if leg.debit == leg.credit:
        msg = f"transfer {leg.debit} -> {leg.credit}: debit and credit are the same account"
        raise LedgerError(msg)
    d, c = parse_account(leg.debit), parse_account(leg.credit)
    if d[1] != c[1]:
        msg = f"transfer {leg.debit} -> {leg.credit}: accounts in different currencies ({d[1]}, {c[1]})"
        raise LedgerError(msg)
    return d[1]


def post(
    store: Store,
    legs: Sequence[Leg],
    *,
    period: str,
    run_id: str = "",
    linked_id: str = "",
    conn: Connection | None = None,
) -> list[Transfer]:
    """Post ``legs`` as one linked transfer: all of them, atomically, or none.

    ``conn``: post inside the caller's transaction (so that it commits with other writes).
    """
    if not legs:
        return []
    currencies = [_check_leg(leg) for leg in legs]
    linked_id = (
        linked_id
        or hashlib.sha256(
            canonical_json([period, run_id, [[x.debit, x.credit, x.amount, x.code, x.reason] for x in legs]])
        ).hexdigest()[:32]
    )
    if conn is None:
        with store.engine.begin() as own:
            return _post(store, own, legs, currencies, period, run_id, linked_id)
    return _post(store, conn, legs, currencies, period, run_id, linked_id)


def _post(
    store: Store,
    conn: Connection,
    legs: Sequence[Leg],
    currencies: list[str],
    period: str,
    run_id: str,
    linked_id: str,
) -> list[Transfer]:
    t, a = T["ledger_transfers"], T["ledger_accounts"]
    now = store.clock()
    if conn.execute(select(t.c.seq).where(t.c.linked_id == linked_id).limit(1)).first() is not None:
        msg = f"linked transfer {linked_id}: already posted (transfers are never posted twice)"
        raise Conflict(msg)
    accounts = {x for leg in legs for x in (leg.debit, leg.credit)}
    known = {r[0] for r in conn.execute(select(a.c.account_id).where(a.c.account_id.in_(sorted(accounts))))}
    for acc in sorted(accounts - known):
        party, currency, kind = parse_account(acc)
        conn.execute(insert(a).values(account_id=acc, party_id=party, currency=currency, kind=kind, created_at=now))
    last = conn.execute(select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    rows: list[dict[str, Any]] = []
    for n, (leg, currency) in enumerate(zip(legs, currencies, strict=True)):
        seq += 1
        row = {
            "seq": seq,
            "transfer_id": f"{linked_id}-{n:05d}",
            "linked_id": linked_id,
            "debit_account": leg.debit,
            "credit_account": leg.credit,
            "amount": leg.amount,
            "currency": currency,
            "code": leg.code,
            "period": period,
            "run_id": run_id,
            "reverses": leg.reverses,
            "reason": leg.reason,
            "at": now,
        }
        row["prev_hash"] = prev
        row["hash"] = prev = transfer_hash(prev, _payload(row))
        row["digests"] = field_digests(_payload(row))
        rows.append(row)
    conn.execute(insert(t), rows)
    return [_transfer(r) for r in rows]


def _transfer(r: Any) -> Transfer:
    return Transfer(
        r["seq"],
        r["transfer_id"],
        r["linked_id"],
        r["debit_account"],
        r["credit_account"],
        r["amount"],
        r["currency"],
        r["code"],
        r["period"],
        r["run_id"],
        r["reverses"],
        r["reason"],
        r["at"],
        r["prev_hash"],
        r["hash"],
    )


def transfers(
    store: Store, *, period: str | None = None, accounts: Iterable[str] | None = None, upto: str | None = None
) -> list[Transfer]:
    """Posted transfers in chain order (of one period, or up to and including ``upto``; touching ``accounts``)."""
    t = T["ledger_transfers"]
    q = select(t).order_by(t.c.seq)
    if period is not None:
        q = q.where(t.c.period == period)
    if upto is not None:
        q = q.where(t.c.period <= upto)
    if accounts is not None:
        wanted = sorted(set(accounts))
        q = q.where(t.c.debit_account.in_(wanted) | t.c.credit_account.in_(wanted))
    with store.engine.connect() as conn:
        return [_transfer(r) for r in conn.execute(q).mappings()]


def balances(items: Iterable[Transfer]) -> dict[str, int]:
    """Account → credits − debits over ``items`` (a debit-normal account shows negative)."""
    out: dict[str, int] = defaultdict(int)
    for tr in items:
        out[tr.credit_account] += tr.amount
        out[tr.debit_account] -= tr.amount
    return dict(out)


def reverse(
    store: Store, transfer_id: str, *, reason_code: str, period: str, key: OperatorKey, note: str = ""
) -> Transfer:
    """Correct a posted transfer by a new one the other way, in an open period (never an edit).

    The reversal and the ledger head signed by ``key`` (the operator's) commit together.
    """
    if reason_code not in REASON_CODES:
        msg = f"reason_code: {reason_code!r} is not one of {', '.join(REASON_CODES)}"
        raise ValidationError(msg, field="reason_code", value=reason_code)
    require_open(store, period)
    t = T["ledger_transfers"]
    with store.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.transfer_id == transfer_id)).mappings().first()
        done = conn.execute(select(t.c.transfer_id).where(t.c.reverses == transfer_id)).first()
    if row is None:
        msg = f"transfer {transfer_id!r}: not in the ledger"
        raise NotFound(msg)
    if done is not None:
        msg = f"transfer {transfer_id}: already reversed by {done[0]}"
        raise Conflict(msg)
    reason = f"{reason_code}: {note}" if note else reason_code
    leg = Leg(row["credit_account"], row["debit_account"], row["amount"], "reversal", reason, transfer_id)
    with store.engine.begin() as conn:
        posted = post(store, [leg], period=period, conn=conn)[0]
        heads.sign_head(store, conn, key, event="reversal", period=period, subject=transfer_id)
    return posted


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found.

    Attributes:
        checked: transfers checked.
        problems: one sentence per problem, naming the transfer (seq, id, field) or the signed head
            (empty: the chain holds and ends at the latest signed head).
        head: the last transfer's hash.
        heads: signed heads checked.
        public_key: the key the heads' signatures were checked against (hex; the operator's when
            given, else the one the heads name).
    """

    checked: int
    problems: tuple[str, ...]
    head: str
    heads: int = 0
    public_key: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _chain_problems(rows: list[Any]) -> list[str]:
    """Walk the hash chain: a gap in seq (deleted), a moved transfer (reordered), an edited field."""
    problems: list[str] = []
    prev, expected = GENESIS, 1
    top = max((r["seq"] for r in rows), default=0) + 1
    posted_at = {field_digest(n): n for n in range(1, top + 1)}  # seq digest -> the seq it was posted as
    for r in rows:
        where = f"transfer seq {r['seq']} ({r['transfer_id']})"
        payload = _payload(r)
        stored = r["digests"] or {}
        edited = [f for f in payload if f in stored and field_digest(payload[f]) != stored[f]]
        moved = edited == ["seq"]
        if r["seq"] > expected:
            gone = f"seq {expected}" if r["seq"] == expected + 1 else f"seq {expected}..{r['seq'] - 1}"
            first = " (the first transfer)" if expected == 1 else ""
            problems.append(f"{where}: transfer {gone}{first} before it was deleted")
        if moved:
            was = posted_at.get(stored["seq"], "?")
            problems.append(f"{where}: reordered: it was posted as seq {was} (swapped or moved)")
        elif transfer_hash(r["prev_hash"], payload) != r["hash"]:
            if edited:
                now = ", ".join(f"{f} (now {payload[f]!r})" for f in edited)
                problems.append(f"{where}: field {now} edited after posting (its content does not match its hash)")
            else:
                problems.append(f"{where}: its content does not match its hash (edited; no field digest names it)")
        elif r["prev_hash"] != prev and r["seq"] == expected:
            problems.append(f"{where}: its prev_hash does not match the transfer before it (deleted or reordered)")
        if r["amount"] <= 0 or r["debit_account"] == r["credit_account"]:
            problems.append(f"{where}: amount {r['amount']} or accounts are not a valid transfer")
        for acc in (r["debit_account"], r["credit_account"]):
            if parse_account(acc)[1] != r["currency"]:
                problems.append(f"{where}: account {acc} is not in the transfer's currency {r['currency']}")
        prev, expected = r["hash"], max(expected, r["seq"] + 1)
    return problems


def verify(store: Store, public_key: str | None = None) -> Verification:
    """Check the ledger: its hash chain, and that it ends exactly at the latest signed head.

    ``public_key``: the operator's Ed25519 public key (hex) to check the heads' signatures
    against; ``None`` checks them against the key the heads name (consistency only: pass the key
    to know *who* signed). Finds an edited (naming the field), deleted (first, middle, last) or
    reordered transfer, a removed, reordered or forged head, and a ledger cut short.
    """
    t = T["ledger_transfers"]
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(t).order_by(t.c.seq)).mappings())
        runs, periods, payouts = T["royalty_runs"], T["royalty_periods"], T["royalty_payouts"]
        finals = list(
            conn.execute(
                select(runs.c.run_id, runs.c.period, runs.c.summary)
                .where(runs.c.status == "final")
                .order_by(runs.c.period)
            )
        )
        closed = [r[0] for r in conn.execute(select(periods.c.period).where(periods.c.status == "closed"))]
        paid = [r[0] for r in conn.execute(select(payouts.c.period).distinct())]
    problems = _chain_problems(rows)
    signed = heads.signed_heads(store)
    chain = {r["seq"]: (r["hash"], r["transfer_id"]) for r in rows}
    problems += heads.check_heads(signed, chain, rows[-1]["seq"] if rows else 0, public_key)
    seen = {r["hash"] for r in rows}
    for run_id, period, summary in finals:
        head = (summary or {}).get("ledger_head", "")
        if head and head != GENESIS and head not in seen:
            problems.append(
                f"period {period} (run {run_id}): the ledger head recorded at its close is gone (truncated)"
            )
    events = {(h.event, h.period) for h in signed}
    adopted = next((h.period for h in signed if h.event == "adopt"), "")  # periods up to it predate heads
    for event, periods_with_it in (("close", closed), ("payout", paid)):
        for period in sorted(periods_with_it):
            if (event, period) not in events and period > adopted:
                problems.append(f"period {period}: its {event} has no signed head (the head was removed)")
    key = public_key or (signed[0].public_key if signed else "")
    return Verification(len(rows), tuple(problems), rows[-1]["hash"] if rows else GENESIS, len(signed), key)


def adopt(store: Store, key: OperatorKey) -> heads.SignedHead:
    """Sign the head of a ledger kept before heads were signed (once: only while it has no signed head).

    Refused when the chain itself does not hold: adopting signs what is there, so check it first.
    """
    if heads.signed_heads(store):
        msg = "ledger: it already has signed heads; adopt only signs a ledger kept before heads existed"
        raise Conflict(msg)
    t = T["ledger_transfers"]
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(t).order_by(t.c.seq)).mappings())
    if problems := _chain_problems(rows):
        msg = f"ledger: its hash chain does not hold ({problems[0]}); not signing it"
        raise LedgerError(msg)
    with store.engine.begin() as conn:
        period = rows[-1]["period"] if rows else ""
        return heads.sign_head(store, conn, key, event="adopt", period=period, subject="ledger kept before heads")
