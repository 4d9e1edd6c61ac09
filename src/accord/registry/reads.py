"""Reads that cost what they return: a page of recordings (keyset on ISRC) or one, with the works
they embody, and nothing else of the registry.

:meth:`~accord.registry.store.Store.snapshot` reads every party, agreement and opt-out, which the
policy needs; showing a recording and deciding who may see it (:func:`accord.visibility.may_see_recording`)
needs only the recording and its works, which is what these read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from accord.registry import rows
from accord.registry.entities import Catalog, Recording
from accord.registry.schema import Base
from accord.registry.store import Store, _as_of, _children, _current, _media_of, _share_of

T = Base.metadata.tables


def _recordings(conn: Connection, found: Iterable[Any], t: datetime) -> list[Recording]:
    recs = list(found)
    keys = sorted(r["isrc"] for r in recs)
    shares = _children(conn, "recording_shares", "recordings", "isrc", t, _share_of, keys)
    media = _children(conn, "recording_media", "recordings", "isrc", t, _media_of, keys)
    out = [rows.recording_of(r, shares.get(r["isrc"], ()), media.get(r["isrc"], ())) for r in recs]
    return sorted(out, key=lambda rec: rec.isrc)


def _with_works(conn: Connection, recordings: list[Recording], t: datetime) -> Catalog:
    work_ids = sorted({w for rec in recordings for w in rec.works})
    shares = _children(conn, "work_shares", "works", "work_id", t, _share_of, work_ids)
    works = [rows.work_of(r, shares.get(r["work_id"], ())) for r in _current(conn, "works", "work_id", t, work_ids)]
    return Catalog.of(recordings=recordings, works=works, as_of=t)


def recordings_after(store: Store, after: str | None, limit: int) -> Catalog:
    """The first ``limit`` recordings current now with an ISRC after ``after`` (ISRC order), and their works."""
    t = store.clock()
    table = T["recordings"]
    q = select(table).where(_as_of(table, t)).order_by(table.c.isrc).limit(limit)
    if after is not None:
        q = q.where(table.c.isrc > after)
    with store.engine.connect() as conn:
        recs = _recordings(conn, conn.execute(q).mappings(), t)
        return _with_works(conn, recs, t)


def recording(store: Store, isrc: str) -> Catalog:
    """One recording current now (none: an empty catalog) and its works."""
    t = store.clock()
    with store.engine.connect() as conn:
        recs = _recordings(conn, _current(conn, "recordings", "isrc", t, [isrc]), t)
        return _with_works(conn, recs, t)
