"""Materialised licensing decisions: one stored row per recording × use × territory.

:class:`accord.licensing.LicensingPolicy` is the rule; this module only keeps its answers so that a
read costs what it returns. A row holds the decision's JSON (eligible, agreements relied on, reasons),
the registry counter it was decided at (:mod:`accord.registry.counters`) and the span of instants
``[valid_from, valid_until)`` over which the decision cannot change while the registry does not:
the policy's answer for a recording moves only when an agreement of a party on it starts or ends, or
when an opt-out by such a party takes effect (:func:`window`). A row is used only when its counter is
the registry's now and the instant asked about lies in its span; otherwise the recordings asked about
are decided again, in one batch over one snapshot, and their rows replaced. So a registry change
costs the recordings read after it one recompute each, and an agreement ending (or an opt-out
taking effect) at an instant is honoured from that instant, with no write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from accord.licensing import Decision, LicensingPolicy, Reason, ReasonCode, parties_on
from accord.registry import counters
from accord.registry.entities import GRANTABLE_USES, Catalog, Side, Use
from accord.registry.schema import Base
from accord.registry.store import IN_CHUNK, Store
from accord.timeutil import iso

T = Base.metadata.tables
USES: tuple[Use, ...] = tuple(sorted(GRANTABLE_USES))
_CHECK = LicensingPolicy(Catalog.of())
# the two reasons whose message names the instant asked about ("..., after <at>.")
_AT_IN_MESSAGE = frozenset({ReasonCode.AGREEMENT_NOT_STARTED, ReasonCode.AGREEMENT_EXPIRED})

Decisions = dict[str, dict[Use, Decision]]


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _instants_by_party(catalog: Catalog) -> dict[str, list[datetime]]:
    """Every instant at which a party's agreements or opt-outs change what is in force."""
    out: dict[str, list[datetime]] = defaultdict(list)
    for a in catalog.agreements.values():
        out[a.licensor].append(_utc(a.start))
        if a.end is not None:
            out[a.licensor].append(_utc(a.end))
    for o in catalog.optouts.values():
        out[o.party_id].append(_utc(o.effective))
    return out


def window(
    catalog: Catalog, isrc: str, at: datetime, instants: dict[str, list[datetime]] | None = None
) -> tuple[datetime | None, datetime | None]:
    """The span ``[from, until)`` around ``at`` over which ``isrc``'s decisions stay what they are at ``at``.

    The policy reads only the agreements of the recording's owners and the opt-outs of parties
    on it (:func:`accord.licensing.parties_on`), each in force from an instant (``start <= t < end``,
    ``effective <= t``): between two consecutive such instants nothing it reads changes.
    """
    rec = catalog.recordings.get(isrc)
    if rec is None:
        return None, None  # unknown: only a registry write changes that
    by_party = instants if instants is not None else _instants_by_party(catalog)
    times = [x for p in parties_on(catalog, rec) for x in by_party.get(p, ())]
    before = [x for x in times if x <= at]
    after = [x for x in times if x > at]
    return (max(before) if before else None, min(after) if after else None)


def _to_json(decision: Decision) -> dict[str, Any]:
    return decision.to_dict()


def _of_json(data: dict[str, Any], at: datetime) -> Decision:
    """The stored decision as decided at ``at`` (in its span): only the instant and its mention differ."""
    stored_at, now_at = data["at"], iso(at)
    reasons = []
    for r in data["reasons"]:
        code, message = ReasonCode(r["code"]), r["message"]
        if code in _AT_IN_MESSAGE and stored_at != now_at and message.endswith(f"{stored_at}."):
            message = f"{message[: -len(stored_at) - 1]}{now_at}."
        side = Side(r["side"]) if r["side"] else None
        reasons.append(Reason(code, side, r["party_id"], r["subject"], message, r["agreement_id"]))
    return Decision(
        data["isrc"],
        Use(data["use"]),
        at,
        data["territory"],
        bool(data["eligible"]),
        tuple(data["relied_on"]),
        tuple(reasons),
    )


def _fresh(row: Any, stamp: int, at: datetime) -> bool:
    return (
        int(row["stamp"]) == stamp
        and (row["valid_from"] is None or row["valid_from"] <= at)
        and (row["valid_until"] is None or at < row["valid_until"])
    )


Span = tuple[datetime | None, datetime | None]
"""``[from, until)``: the instants over which a recording's decisions stay what they are (``None``: unbounded)."""


def decisions_for(store: Store, isrcs: Sequence[str], at: datetime, territory: str) -> Decisions:
    """Each recording's decision for every grantable use at ``at`` in ``territory``, equal to
    :meth:`LicensingPolicy.decide` over the registry now: stored ones where still valid, the rest
    decided again in one batch and stored.

    Raises:
        ValidationError: ``at`` without a UTC offset, or ``territory`` not an ISO 3166-1 alpha-2 code.
    """
    return decisions_with_spans(store, isrcs, at, territory)[0]


def decisions_with_spans(
    store: Store, isrcs: Sequence[str], at: datetime, territory: str, *, stamp: int | None = None
) -> tuple[Decisions, dict[str, Span]]:
    """:func:`decisions_for`, and for each recording the span around ``at`` over which its decisions
    stay the same while the registry counter does (what a cache of a rendered answer may rely on).

    ``stamp``: the registry counter as the caller read it before anything it derives from the
    registry (read here otherwise).
    """
    probe = _CHECK.decide("", USES[0], at, territory)  # the policy's own checks of the query
    at, territory = probe.at, probe.territory
    wanted = sorted(set(isrcs))
    table = T["decisions"]
    found: Decisions = {}
    spans: dict[str, Span] = {}
    with store.engine.connect() as conn:
        if stamp is None:
            stamp = counters.read(conn)["registry"]  # before what is derived from it (counters.py)
        for i in range(0, len(wanted), IN_CHUNK):
            q = select(table).where(table.c.territory == territory, table.c.isrc.in_(wanted[i : i + IN_CHUNK]))
            for row in conn.execute(q).mappings():
                if row["use"] in GRANTABLE_USES and _fresh(row, stamp, at):
                    found.setdefault(row["isrc"], {})[Use(row["use"])] = _of_json(row["decision"], at)
                    spans[row["isrc"]] = (row["valid_from"], row["valid_until"])  # one span per recording
    stale = [isrc for isrc in wanted if len(found.get(isrc, ())) < len(USES)]
    if stale:
        fresh, fresh_spans = _refresh(store, stale, at, territory, stamp)
        found.update(fresh)
        spans.update(fresh_spans)
    return {isrc: found[isrc] for isrc in isrcs}, {isrc: spans[isrc] for isrc in isrcs}


def refresh(store: Store, isrcs: Iterable[str], at: datetime, territory: str, stamp: int) -> Decisions:
    """Decide ``isrcs`` again over one snapshot of the registry now, store the rows (at ``stamp``,
    the registry counter read before the snapshot) and return the decisions."""
    return _refresh(store, isrcs, at, territory, stamp)[0]


def _refresh(
    store: Store, isrcs: Iterable[str], at: datetime, territory: str, stamp: int
) -> tuple[Decisions, dict[str, Span]]:
    wanted = sorted(set(isrcs))
    catalog = store.snapshot(isrcs=wanted)
    policy, instants = LicensingPolicy(catalog), _instants_by_party(catalog)
    out: Decisions = {}
    spans: dict[str, Span] = {}
    values: list[dict[str, Any]] = []
    for isrc in wanted:
        valid_from, valid_until = spans[isrc] = window(catalog, isrc, at, instants)
        out[isrc] = {}
        for use in USES:
            decision = policy.decide(isrc, use, at, territory)
            out[isrc][use] = decision
            values.append(
                {
                    "isrc": isrc,
                    "use": use.value,
                    "territory": territory,
                    "stamp": stamp,
                    "valid_from": valid_from,
                    "valid_until": valid_until,
                    "decision": _to_json(decision),
                }
            )
    table = T["decisions"]
    try:
        with store.engine.begin() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[i : i + IN_CHUNK]
                conn.execute(delete(table).where(and_(table.c.territory == territory, table.c.isrc.in_(chunk))))
            if values:
                conn.execute(insert(table), values)
    except (IntegrityError, OperationalError):  # a unique clash or a busy SQLite: storing is only a saving
        pass  # another reader stored the same rows meanwhile; ours are returned all the same
    return out, spans


def instant_mentions(data: dict[str, Any], at_text: str, token: str) -> dict[str, Any]:
    """A decision's JSON (``Decision.to_dict``, as shown) with every mention of the instant asked
    about (``at_text``: its ``at`` and the end of the reasons that name it) replaced by ``token``:
    the same decision at another instant of its span is the same JSON with that instant put back."""
    reasons = []
    for r in data["reasons"]:
        message = r.get("message", "")
        if r.get("code") in _AT_IN_MESSAGE and message.endswith(f"{at_text}."):
            r = {**r, "message": f"{message[: -len(at_text) - 1]}{token}."}
        reasons.append(r)
    return {**data, "at": token if data["at"] == at_text else data["at"], "reasons": reasons}


def stored(store: Store, isrc: str, use: Use | str, territory: str) -> dict[str, Any] | None:
    """The stored row of one recording × use × territory (its decision JSON, counter and span), if any."""
    table = T["decisions"]
    q = select(table).where(table.c.isrc == isrc, table.c.use == Use(use).value, table.c.territory == territory.upper())
    with store.engine.connect() as conn:
        row = conn.execute(q).mappings().first()
    return None if row is None else dict(row)
