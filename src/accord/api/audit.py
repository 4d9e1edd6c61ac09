"""The API audit log: every change made through the API or the portal, appended, never edited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from accord.registry.schema import Base
from accord.registry.store import Store

if TYPE_CHECKING:
    from accord.api.auth import Principal

T = Base.metadata.tables


@dataclass(frozen=True)
class ApiAuditEvent:
    """One change made through the API or the portal.

    Attributes:
        seq: its position in the log (1, 2, ...).
        at: when.
        key_id, role, party_id: who.
        action: what (``optout.create``, ``generation.submit`` ...).
        object_type, object_id: on what.
        request_id: the request's id (``X-Request-ID``).
        detail: anything else worth keeping.
    """

    seq: int
    at: datetime
    key_id: str
    role: str
    party_id: str
    action: str
    object_type: str
    object_id: str
    request_id: str
    detail: dict[str, Any]


_AUDIT_INSERT = insert(T["api_audit_events"])  # one statement object: compiled once, parameters per event


def audit(
    store: Store,
    principal: Principal,
    action: str,
    obj_type: str,
    obj_id: str,
    detail: dict[str, Any] | None = None,
    *,
    request_id: str = "",
    conn: Connection | None = None,
) -> None:
    """Append one event to the API audit log (never edited, never deleted); in ``conn``'s transaction
    when given (the change it records and its event commit together), else in its own."""
    values = {
        "at": store.clock(),
        "key_id": principal.key_id,
        "role": principal.role.value,
        "party_id": principal.party_id,
        "action": action,
        "object_type": obj_type,
        "object_id": str(obj_id)[:128],
        "request_id": request_id[:64],
        "detail": detail or {},
    }
    if conn is not None:
        conn.execute(_AUDIT_INSERT, values)
        return
    with store.engine.begin() as own:
        own.execute(_AUDIT_INSERT, values)


def audit_events(store: Store, *, after: int = 0, limit: int = 100, party_id: str | None = None) -> list[ApiAuditEvent]:
    """Audit events with ``seq > after``, oldest first (optionally one party's)."""
    t = T["api_audit_events"]
    q = select(t).where(t.c.pk > after).order_by(t.c.pk).limit(limit)
    if party_id is not None:
        q = q.where(t.c.party_id == party_id)
    with store.engine.connect() as conn:
        return [
            ApiAuditEvent(
                r["pk"],
                r["at"],
                r["key_id"],
                r["role"],
                r["party_id"],
                r["action"],
                r["object_type"],
                r["object_id"],
                r["request_id"],
                r["detail"],
            )
            for r in conn.execute(q).mappings()
        ]
