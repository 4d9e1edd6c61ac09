"""Version counters: one number per kind of stored state, bumped in the same transaction as every write of it.

``registry`` moves with every registry change (:func:`accord.registry.versioning._audit`, which every
:meth:`~accord.registry.store.Store.apply` calls), ``keys`` with every API key revocation. Whatever is
derived from that state and stored (materialised decisions, the taint state) records the counter it
was derived at, and is stale as soon as the counter reads otherwise.

Readers must read the counter *before* the state they derive from: a write committed in between then
shows as a newer counter, and what they stored is recomputed, never trusted. On PostgreSQL the
``UPDATE`` takes the counter's row lock, so concurrent writers bump in commit order (unlike the
largest id of an append-only table, whose ids are handed out before commit).
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from accord.registry.schema import Base

T = Base.metadata.tables
NAMES = ("registry", "keys", "models")


def bump(conn: Connection, name: str) -> None:
    """Move ``name``'s counter on, inside the caller's (writing) transaction."""
    from sqlalchemy.dialects import postgresql, sqlite  # here, not at the top: a read-only command needs neither

    t = T["version_counters"]
    # an upsert: a counter row that is missing (a truncated table) starts again at 1, never fails the write
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t).values(name=name, n=1)
    conn.execute(stmt.on_conflict_do_update(index_elements=[t.c.name], set_={"n": t.c.n + 1}))


def read(conn: Connection) -> dict[str, int]:
    """Every counter's value now (a missing row reads 0)."""
    t = T["version_counters"]
    found = {name: int(n) for name, n in conn.execute(select(t.c.name, t.c.n))}
    return {name: found.get(name, 0) for name in NAMES}


_READ_SQL = "SELECT name, n FROM version_counters"


def read_now(engine: Engine) -> dict[str, int]:
    """:func:`read` on a pooled connection, as fixed SQL text: what every API request does first, so it
    skips SQLAlchemy's statement compilation and cache-key work (a quarter of a cached read's time)."""
    with engine.connect() as conn:
        found = {str(name): int(n) for name, n in conn.exec_driver_sql(_READ_SQL)}
    return {name: found.get(name, 0) for name in NAMES}
