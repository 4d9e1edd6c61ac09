"""The registry's SQL store: SQLite by default, PostgreSQL by URL, history kept.

Reads return domain records (:mod:`accord.registry.entities`); writes take a
:class:`ChangeSet`, compare it with what the registry holds now, and in ONE transaction
close the versions that change and insert their successors. A change set that changes
nothing writes nothing (no delivery row, no audit event): importing twice is a no-op.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, and_, create_engine, event, insert, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from accord.errors import NotFound, Rejected, StoreError
from accord.registry import rows
from accord.registry.entities import (
    Catalog,
    MediaRef,
    Share,
)
from accord.registry.media import MediaStore
from accord.registry.schema import Base
from accord.registry.standing import acting_as, standing_problems
from accord.registry.versioning import (
    KINDS,
    ChangeSet,
    DeliveryInfo,
    _audit,
    _plan,
    _write_plan,
)
from accord.settings import Settings, ensure_home, get_settings
from accord.timeutil import utcnow

MIGRATIONS = Path(__file__).parent / "migrations"

T = Base.metadata.tables


@dataclass(frozen=True)
class WriteResult:
    """What a write changed.

    Attributes:
        at: the instant the new versions are recorded from.
        added: new records per kind.
        changed: new versions of known records per kind.
        unchanged: records given that were already current, per kind.
        delivery_pk: the delivery row written, if any.
    """

    at: datetime
    added: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    delivery_pk: int | None = None

    @property
    def changed_anything(self) -> bool:
        return any(self.added.values()) or any(self.changed.values())


@dataclass(frozen=True)
class Version:
    """One version of a record, with the span of time the registry held it.

    Attributes:
        version: 1, 2, ...
        recorded_from: when the registry started saying this.
        recorded_to: when it stopped (``None``: still current).
        record: the record itself.
        recorded_by: who made the change.
    """

    version: int
    recorded_from: datetime
    recorded_to: datetime | None
    record: Any
    recorded_by: str


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def _as_of(table: Table, t: datetime) -> Any:
    return and_(table.c.recorded_from <= t, or_(table.c.recorded_to.is_(None), table.c.recorded_to > t))


class Store:
    """The registry: one SQL database plus the content-addressed media store."""

    def __init__(self, engine: Engine, media: MediaStore, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.media = media
        self.clock = clock

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        migrate: bool = True,
    ) -> Store:
        """Open (and by default migrate) the registry the settings point at."""
        settings = settings or get_settings()
        ensure_home(settings)
        url = settings.resolved_database_url
        try:
            engine = create_engine(url, future=True)
        except (ArgumentError, ImportError) as exc:
            scheme = url.partition("://")[0]
            msg = (
                f"ACCORD_DATABASE_URL: not a usable database URL (scheme {scheme!r}, {type(exc).__name__}); "
                "expected sqlite:///PATH or postgresql://USER@HOST/DB"
            )
            raise StoreError(msg) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine, MediaStore(settings.media_dir), clock)
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------- reading

    def snapshot(self, as_of: datetime | None = None, *, isrcs: Iterable[str] | None = None) -> Catalog:
        """Everything the registry said at ``as_of`` (default: now), as domain records.

        With ``isrcs``, only those recordings and their works are read (with every party,
        agreement, opt-out and source): what the policy needs to decide about them.
        """
        t = as_of or self.clock()
        with self.engine.connect() as conn:
            return _read_catalog(conn, t, isrcs)

    def history(self, kind: str, key: str) -> list[Version]:
        """Every version of one record, oldest first."""
        if kind not in KINDS:
            msg = f"kind: {kind!r} is not one of {', '.join(KINDS)}"
            raise NotFound(msg)
        name, key_col = KINDS[kind]
        table = T[name]
        with self.engine.connect() as conn:
            found = conn.execute(select(table).where(table.c[key_col] == key).order_by(table.c.version)).mappings()
            versions = []
            for r in found:
                record = _read_one(conn, kind, r)
                versions.append(Version(r["version"], r["recorded_from"], r["recorded_to"], record, r["recorded_by"]))
        if not versions:
            msg = f"{kind[:-1]} {key!r}: not in the registry"
            raise NotFound(msg)
        return versions

    def changed_since(self, t: datetime) -> tuple[dict[str, set[str]], dict[str, dict[str, datetime]]]:
        """Keys per kind with a version recorded after ``t``, and when each one's latest version was recorded."""
        keys: dict[str, set[str]] = {}
        when: dict[str, dict[str, datetime]] = {}
        with self.engine.connect() as conn:
            for kind, (name, key_col) in KINDS.items():
                table = T[name]
                q = select(table.c[key_col], table.c.recorded_from).where(table.c.recorded_from > t)
                latest: dict[str, datetime] = {}
                for key, recorded in conn.execute(q):
                    if key not in latest or recorded > latest[key]:
                        latest[key] = recorded
                keys[kind], when[kind] = set(latest), latest
        return keys, when

    def delivery_by_hash(self, content_sha256: str) -> dict[str, Any] | None:
        table = T["deliveries"]
        with self.engine.connect() as conn:
            r = conn.execute(select(table).where(table.c.content_sha256 == content_sha256).limit(1)).mappings().first()
        return dict(r) if r else None

    def deliveries(self) -> list[dict[str, Any]]:
        table = T["deliveries"]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(table).order_by(table.c.pk)).mappings()]

    def audit_log(self, limit: int = 100) -> list[AuditEvent]:
        table = T["audit_events"]
        with self.engine.connect() as conn:
            found = conn.execute(select(table).order_by(table.c.pk.desc()).limit(limit)).mappings()
            return [AuditEvent(r["at"], r["actor"], r["action"], r["subject"], r["detail"]) for r in found]

    def media_referenced(self, shas: Iterable[str]) -> set[str]:
        """Of ``shas``, those some recording version names (current or past)."""
        wanted = sorted(set(shas))
        table = T["recording_media"]
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                q = select(table.c.sha256).where(table.c.sha256.in_(wanted[i : i + IN_CHUNK])).distinct()
                found.update(sha for (sha,) in conn.execute(q))
        return found

    def remove_unreferenced_media(self, added: Iterable[str]) -> None:
        """Undo an import's media copies: remove the files it added that no recording names.

        A file another import committed a reference to in the meantime stays; so does every
        file when the database cannot be asked (a missing file breaks a recording, a spare one
        breaks nothing).
        """
        added = list(added)
        if not added:
            return
        try:
            keep = self.media_referenced(added)
        except SQLAlchemyError:
            return
        for sha in added:
            if sha not in keep:
                self.media.remove(sha)

    # ----------------------------------------------------------------- writing

    def apply(
        self,
        changes: ChangeSet,
        *,
        actor: str,
        action: str,
        delivery: DeliveryInfo | None = None,
        as_party: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> WriteResult:
        """Make ``changes`` current, in one transaction; nothing is written if nothing changes.

        ``as_party``: the party whose standing the change needs (:mod:`accord.registry.standing`),
        checked against the registry inside the same transaction; ``None`` is the operator's full
        power, and the audit log says so. ``detail`` is added to the change's audit event.

        Raises:
            Rejected: a record ``as_party`` has no standing for; nothing was written.
        """
        now = self.clock()
        with self.engine.begin() as conn:
            current = _read_catalog(conn, now)
            if as_party is not None and (problems := standing_problems(changes, current, as_party)):
                raise Rejected(f"change by {as_party}", problems)
            plan = _plan(changes, current)
            result = WriteResult(
                at=now,
                added={k: len(v) for k, v in plan.added.items()},
                changed={k: len(v) for k, v in plan.changed.items()},
                unchanged=plan.unchanged,
            )
            if not result.changed_anything:
                return result
            delivery_pk = None
            if delivery is not None:
                delivery_pk = conn.execute(
                    insert(T["deliveries"]).values(
                        delivery_id=delivery.delivery_id,
                        sender=delivery.sender,
                        content_sha256=delivery.content_sha256,
                        created=delivery.created,
                        received_at=now,
                        format=delivery.format,
                        summary={"added": result.added, "changed": result.changed},
                        received_by=actor,
                    )
                ).inserted_primary_key[0]
            _write_plan(conn, plan, now=now, actor=actor, delivery_pk=delivery_pk)
            extra = {"acting_as": acting_as(as_party), **(detail or {})}
            _audit(conn, plan, now=now, actor=actor, action=action, delivery=delivery, detail=extra)
            return WriteResult(
                at=now,
                added=result.added,
                changed=result.changed,
                unchanged=result.unchanged,
                delivery_pk=delivery_pk,
            )


_REVISION = re.compile(r"^revision\b[^=\n]*=(.*)$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def migration_heads() -> frozenset[str] | None:
    """The newest revisions of the migration scripts, read from their text (without importing Alembic).

    ``None`` when a script does not say its revision and parents plainly: Alembic then decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        ids = _QUOTED.findall(revision.group(1)) if revision else []
        if len(ids) != 1 or down is None:
            return None
        revisions.add(ids[0])
        parents.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - parents) or None


def _at_head(engine: Engine) -> bool:
    """Whether the database already stands at the newest revision (then Alembic need not even be imported)."""
    heads = migration_heads()
    if heads is None:
        return False
    try:
        with engine.connect() as conn:
            current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except SQLAlchemyError:  # no version table yet: a new database
        return False
    return current == heads


def migrate(engine: Engine) -> None:
    """Bring a database's schema to the newest Alembic revision (a database already there is only read)."""
    if _at_head(engine):
        return
    from alembic import command  # ~0.3 s of imports, only when there is something to migrate
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        msg = f"database {engine.url.render_as_string(hide_password=True)}: cannot open or migrate ({exc.orig})"
        raise StoreError(msg) from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# ---------------------------------------------------------------------- reading


def _read_catalog(conn: Connection, t: datetime, isrcs: Iterable[str] | None = None) -> Catalog:
    """The registry at ``t``; with ``isrcs``, only those recordings and the works they embody
    (parties, agreements, opt-outs and sources are always whole: the policy needs them all)."""
    sources = [rows.source_of(r) for r in conn.execute(select(T["sources"]).where(_as_of(T["sources"], t))).mappings()]
    parties = [rows.party_of(r) for r in conn.execute(select(T["parties"]).where(_as_of(T["parties"], t))).mappings()]
    wanted = None if isrcs is None else sorted(set(isrcs))
    rshares = _children(conn, "recording_shares", "recordings", "isrc", t, _share_of, wanted)
    rmedia = _children(conn, "recording_media", "recordings", "isrc", t, _media_of, wanted)
    recordings = [
        rows.recording_of(r, rshares.get(r["isrc"], ()), rmedia.get(r["isrc"], ()))
        for r in _current(conn, "recordings", "isrc", t, wanted)
    ]
    work_ids = None if wanted is None else sorted({w for rec in recordings for w in rec.works})
    wshares = _children(conn, "work_shares", "works", "work_id", t, _share_of, work_ids)
    works = [rows.work_of(r, wshares.get(r["work_id"], ())) for r in _current(conn, "works", "work_id", t, work_ids)]
    agreements = [
        rows.agreement_of(r) for r in conn.execute(select(T["agreements"]).where(_as_of(T["agreements"], t))).mappings()
    ]
    optouts = [rows.optout_of(r) for r in conn.execute(select(T["optouts"]).where(_as_of(T["optouts"], t))).mappings()]
    return Catalog.of(
        parties=parties,
        works=works,
        recordings=recordings,
        agreements=agreements,
        optouts=optouts,
        sources=sources,
        as_of=t,
    )


IN_CHUNK = 500


def _current(conn: Connection, name: str, key: str, t: datetime, keys: list[str] | None) -> Iterable[Any]:
    """Rows of a versioned table current at ``t`` (all, or those with the given keys)."""
    table = T[name]
    if keys is None:
        yield from conn.execute(select(table).where(_as_of(table, t))).mappings()
        return
    for i in range(0, len(keys), IN_CHUNK):
        q = select(table).where(_as_of(table, t), table.c[key].in_(keys[i : i + IN_CHUNK]))
        yield from conn.execute(q).mappings()


def _share_of(r: Any) -> Share:
    return Share(r[0], int(r[1]))


def _media_of(r: Any) -> MediaRef:
    return MediaRef(r[0], r[1], int(r[2]), r[3])


CHILD_COLUMNS = {
    "recording_shares": ("party_id", "share_ppm"),
    "work_shares": ("party_id", "share_ppm"),
    "recording_media": ("sha256", "kind", "size", "filename"),
}


def _children(
    conn: Connection,
    child: str,
    parent: str,
    key: str,
    t: datetime,
    make: Callable[[Any], Any],
    keys: list[str] | None = None,
) -> dict[str, list[Any]]:
    """Child rows of the parent versions current at ``t``, grouped by parent key (plain tuples: fast)."""
    c, p = T[child], T[parent]
    cols = [c.c[key], *(c.c[name] for name in CHILD_COLUMNS[child])]
    base = select(*cols).join(p, and_(c.c[key] == p.c[key], c.c.version == p.c.version)).where(_as_of(p, t))
    queries = (
        [base]
        if keys is None
        else [base.where(c.c[key].in_(keys[i : i + IN_CHUNK])) for i in range(0, len(keys), IN_CHUNK)]
    )
    out: dict[str, list[Any]] = defaultdict(list)
    for q in queries:
        for row in conn.execute(q):
            out[row[0]].append(make(row[1:]))
    return out


def _read_one(conn: Connection, kind: str, r: Any) -> Any:
    if kind == "sources":
        return rows.source_of(r)
    if kind == "parties":
        return rows.party_of(r)
    if kind == "agreements":
        return rows.agreement_of(r)
    if kind == "optouts":
        return rows.optout_of(r)
    if kind == "works":
        c = T["work_shares"]
        shares = conn.execute(select(c).where(c.c.work_id == r["work_id"], c.c.version == r["version"])).mappings()
        return rows.work_of(r, [Share(s["party_id"], int(s["share_ppm"])) for s in shares])
    c, m = T["recording_shares"], T["recording_media"]
    shares = conn.execute(select(c).where(c.c.isrc == r["isrc"], c.c.version == r["version"])).mappings()
    media = conn.execute(select(m).where(m.c.isrc == r["isrc"], m.c.version == r["version"])).mappings()
    return rows.recording_of(
        r,
        [Share(s["party_id"], int(s["share_ppm"])) for s in shares],
        [MediaRef(x["sha256"], x["kind"], int(x["size"]), x["filename"]) for x in media],
    )
