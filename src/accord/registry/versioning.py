"""Writing the registry: planning which records change, closing and inserting versions, auditing.

A change set is compared with what the registry holds; only records that differ get a new
version (the current one is closed), and rights changes get their own audit events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection

from accord.registry import counters, rows
from accord.registry.entities import Agreement, Catalog, OptOut, Party, Recording, Source, Work
from accord.registry.schema import Base
from accord.timeutil import iso

INSERT_BATCH = 5_000
T = Base.metadata.tables

# kind -> (table name, key column, entity -> key)
KINDS: dict[str, tuple[str, str]] = {
    "sources": ("sources", "source_id"),
    "parties": ("parties", "party_id"),
    "works": ("works", "work_id"),
    "recordings": ("recordings", "isrc"),
    "agreements": ("agreements", "agreement_id"),
    "optouts": ("optouts", "optout_id"),
}


@dataclass(frozen=True)
class ChangeSet:
    """Records to make current in the registry (new ones or new versions of known ones).

    Attributes:
        sources, parties, works, recordings, agreements, optouts: the records, by kind.
    """

    sources: tuple[Source, ...] = ()
    parties: tuple[Party, ...] = ()
    works: tuple[Work, ...] = ()
    recordings: tuple[Recording, ...] = ()
    agreements: tuple[Agreement, ...] = ()
    optouts: tuple[OptOut, ...] = ()

    def by_kind(self) -> dict[str, Sequence[Any]]:
        return {kind: getattr(self, kind) for kind in KINDS}


@dataclass(frozen=True)
class DeliveryInfo:
    """The delivery a change set came in.

    Attributes:
        delivery_id: the sender's id for it.
        sender: the delivering party.
        content_sha256: hash of the delivery's canonical content.
        created: when the sender made it.
        format: ``json`` or ``csv``.
    """

    delivery_id: str
    sender: str
    content_sha256: str
    created: datetime
    format: str


@dataclass
class _Plan:
    added: dict[str, list[Any]] = field(default_factory=dict)
    changed: dict[str, list[Any]] = field(default_factory=dict)  # new versions
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> old record
    unchanged: dict[str, int] = field(default_factory=dict)


def _key(kind: str, record: Any) -> str:
    return str(getattr(record, KINDS[kind][1]))


def _plan(changes: ChangeSet, current: Catalog) -> _Plan:
    plan = _Plan()
    holders = {
        "sources": current.sources,
        "parties": current.parties,
        "works": current.works,
        "recordings": current.recordings,
        "agreements": current.agreements,
        "optouts": current.optouts,
    }
    for kind, records in changes.by_kind().items():
        have = holders[kind]
        added, changed, same = [], [], 0
        prev: dict[str, Any] = {}
        for rec in records:
            key = _key(kind, rec)
            old = have.get(key)
            if old is None:
                added.append(rec)
            elif old != rec:
                changed.append(rec)
                prev[key] = old
            else:
                same += 1
        plan.added[kind], plan.changed[kind], plan.unchanged[kind] = added, changed, same
        plan.previous[kind] = prev
    return plan


def _next_versions(conn: Connection, kind: str, keys: Iterable[str]) -> dict[str, int]:
    name, key_col = KINDS[kind]
    table = T[name]
    keys = list(keys)
    out: dict[str, int] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        q = select(table.c[key_col], table.c.version).where(table.c[key_col].in_(chunk))
        for k, v in conn.execute(q):
            out[k] = max(out.get(k, 0), v)
    return {k: out.get(k, 0) + 1 for k in keys}


def _write_plan(conn: Connection, plan: _Plan, *, now: datetime, actor: str, delivery_pk: int | None) -> None:
    values_of = {
        "sources": rows.source_values,
        "parties": rows.party_values,
        "works": rows.work_values,
        "recordings": rows.recording_values,
        "agreements": rows.agreement_values,
        "optouts": rows.optout_values,
    }
    for kind, (name, key_col) in KINDS.items():
        changed = plan.changed.get(kind, [])
        records = plan.added.get(kind, []) + changed
        if not records:
            continue
        table = T[name]
        if changed:
            # Close the current version of every record that changes (its history stays).
            closing = [_key(kind, r) for r in changed]
            for i in range(0, len(closing), 500):
                conn.execute(
                    update(table)
                    .where(table.c[key_col].in_(closing[i : i + 500]), table.c.recorded_to.is_(None))
                    .values(recorded_to=now)
                )
            versions = _next_versions(conn, kind, closing)
        else:
            versions = {}
        main: list[dict[str, Any]] = []
        shares: list[dict[str, Any]] = []
        media: list[dict[str, Any]] = []
        for rec in records:
            key = _key(kind, rec)
            version = versions.get(key, 1)
            vals = values_of[kind](rec)
            vals.update(
                version=version,
                recorded_from=now,
                recorded_to=None,
                delivery_pk=delivery_pk,
                recorded_by=actor,
            )
            main.append(vals)
            if kind == "works":
                shares += [
                    {"work_id": key, "version": version, "party_id": s.party_id, "share_ppm": s.ppm} for s in rec.shares
                ]
            elif kind == "recordings":
                shares += [
                    {"isrc": key, "version": version, "party_id": s.party_id, "share_ppm": s.ppm} for s in rec.shares
                ]
                media += [
                    {
                        "isrc": key,
                        "version": version,
                        "sha256": m.sha256,
                        "kind": m.kind,
                        "size": m.size,
                        "filename": m.filename,
                    }
                    for m in rec.media
                ]
        _bulk(conn, table, main)
        if kind == "works":
            _bulk(conn, T["work_shares"], shares)
        elif kind == "recordings":
            _bulk(conn, T["recording_shares"], shares)
            _bulk(conn, T["recording_media"], media)


def _bulk(conn: Connection, table: Table, values: list[dict[str, Any]]) -> None:
    for i in range(0, len(values), INSERT_BATCH):
        conn.execute(insert(table), values[i : i + INSERT_BATCH])


def _audit(
    conn: Connection,
    plan: _Plan,
    *,
    now: datetime,
    actor: str,
    action: str,
    delivery: DeliveryInfo | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One event for the change set, plus one per rights change (agreement, opt-out, ownership).

    ``detail`` (whose standing the change used, a transfer's consents ...) goes into the change
    set's event and, as ``acting_as``, into each rights event.
    """
    events: list[dict[str, Any]] = []
    extra = detail or {}
    who = {"acting_as": extra["acting_as"]} if "acting_as" in extra else {}
    summary: dict[str, Any] = {
        **extra,
        "added": {k: len(v) for k, v in plan.added.items() if v},
        "changed": {k: len(v) for k, v in plan.changed.items() if v},
    }
    if delivery is not None:
        summary["delivery"] = {
            "id": delivery.delivery_id,
            "sender": delivery.sender,
            "sha256": delivery.content_sha256,
        }
    events.append(
        {
            "at": now,
            "actor": actor,
            "action": action,
            "subject": delivery.delivery_id if delivery else action,
            "detail": summary,
        }
    )
    for kind in ("agreements", "optouts"):
        for rec in plan.added.get(kind, []):
            events.append(
                {
                    "at": now,
                    "actor": actor,
                    "action": f"{kind[:-1]}.added",
                    "subject": _key(kind, rec),
                    "detail": {**_rights_detail(rec), **who},
                }
            )
        for rec in plan.changed.get(kind, []):
            events.append(
                {
                    "at": now,
                    "actor": actor,
                    "action": f"{kind[:-1]}.amended",
                    "subject": _key(kind, rec),
                    "detail": {**_rights_detail(rec), **who},
                }
            )
    for kind in ("recordings", "works"):
        for rec in plan.changed.get(kind, []):
            old = plan.previous[kind][_key(kind, rec)]
            if old.shares != rec.shares:
                events.append(
                    {
                        "at": now,
                        "actor": actor,
                        "action": f"{kind[:-1]}.ownership_changed",
                        "subject": _key(kind, rec),
                        "detail": {
                            "before": {s.party_id: s.ppm for s in old.shares},
                            "after": {s.party_id: s.ppm for s in rec.shares},
                            **who,
                        },
                    }
                )
    _bulk(conn, T["audit_events"], events)
    counters.bump(conn, "registry")  # what was derived from the registry is stale from this commit on


def _rights_detail(rec: Agreement | OptOut) -> dict[str, Any]:
    if isinstance(rec, Agreement):
        return {
            "licensor": rec.licensor,
            "side": rec.side.value,
            "uses": sorted(u.value for u in rec.uses),
            "territory": rec.territory.describe(),
            "start": iso(rec.start),
            "end": iso(rec.end),
        }
    return {
        "party": rec.party_id,
        "scope": rec.scope.value,
        "target": rec.target,
        "uses": sorted(u.value for u in rec.uses),
        "effective": iso(rec.effective),
    }
