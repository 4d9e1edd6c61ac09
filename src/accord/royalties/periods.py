"""Accounting periods: calendar months (``YYYY-MM``, UTC), open until closed, then immutable."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import insert, select

from accord.errors import Conflict, ValidationError
from accord.registry.schema import Base
from accord.registry.store import Store

T = Base.metadata.tables
OPEN, CLOSED = "open", "closed"
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(value: object, *, field: str = "period") -> str:
    """Check a period is ``YYYY-MM`` and return it."""
    if not isinstance(value, str) or not _PERIOD.match(value.strip()):
        msg = f"{field}: {value!r} is not a period; expected a calendar month YYYY-MM, e.g. 2026-11"
        raise ValidationError(msg, field=field, value=value)
    return value.strip()


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """The period's first instant and the first instant after it (UTC)."""
    year, month = (int(x) for x in parse_period(period).split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1, tzinfo=UTC)
    return start, end


def period_of(at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}"


def next_period(period: str) -> str:
    return period_of(period_bounds(period)[1])


def previous_period(period: str) -> str:
    start, _ = period_bounds(period)
    return f"{start.year - 1:04d}-12" if start.month == 1 else f"{start.year:04d}-{start.month - 1:02d}"


def closed_periods(store: Store) -> frozenset[str]:
    t = T["royalty_periods"]
    with store.engine.connect() as conn:
        return frozenset(r[0] for r in conn.execute(select(t.c.period).where(t.c.status == CLOSED)))


def open_period_for(period: str, closed: frozenset[str]) -> str:
    """The period itself if open, else the first open period after it (where late events go)."""
    while period in closed:
        period = next_period(period)
    return period


def period_status(store: Store, period: str) -> str:
    t = T["royalty_periods"]
    with store.engine.connect() as conn:
        row = conn.execute(select(t.c.status).where(t.c.period == parse_period(period))).first()
    return OPEN if row is None else str(row[0])


def require_open(store: Store, period: str) -> None:
    """Raise Conflict if the period is closed (closed periods refuse re-runs and changes)."""
    if period_status(store, period) == CLOSED:
        msg = (
            f"period {period}: closed; it is immutable (corrections go into a later open period "
            f"as adjustment entries: accord ledger reverse)"
        )
        raise Conflict(msg)


def ensure_period(store: Store, period: str) -> None:
    """Record the period as open if it is not recorded yet."""
    t = T["royalty_periods"]
    with store.engine.begin() as conn:
        if conn.execute(select(t.c.period).where(t.c.period == period)).first() is None:
            conn.execute(insert(t).values(period=period, status=OPEN, opened_at=store.clock(), closed_by="", run_id=""))
