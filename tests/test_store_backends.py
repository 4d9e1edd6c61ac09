"""The store gives back exactly what it was given, and decisions are identical on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine, text

from accord.licensing import LicensingPolicy
from accord.registry.entities import Catalog, Use
from accord.registry.media import MediaStore
from accord.registry.schema import Base
from accord.registry.store import ChangeSet, Store
from accord.settings import Settings
from tests.conftest import TickingClock
from tests.test_licensing_properties import TERRITORIES, catalogs

QUERIES = [(use, datetime(2026, m, 15, tzinfo=UTC), t) for use in Use for m in (2, 7, 12) for t in TERRITORIES]


def _change_set(cat: Catalog) -> ChangeSet:
    return ChangeSet(
        parties=tuple(cat.parties.values()),
        works=tuple(cat.works.values()),
        recordings=tuple(cat.recordings.values()),
        agreements=tuple(cat.agreements.values()),
        optouts=tuple(cat.optouts.values()),
    )


def _facts(cat: Catalog) -> tuple[object, ...]:
    """The facts, in the store's canonical form (shares in party order)."""
    works = {k: replace(w, shares=tuple(sorted(w.shares, key=lambda s: s.party_id))) for k, w in cat.works.items()}
    recordings = {
        k: replace(r, shares=tuple(sorted(r.shares, key=lambda s: s.party_id))) for k, r in cat.recordings.items()
    }
    return (dict(cat.parties), works, recordings, dict(cat.agreements), dict(cat.optouts))


@pytest.mark.postgres
def test_decisions_are_identical_on_sqlite_and_postgresql(
    sqlite_template: Path, pg_database: tuple[str | None, str], tmp_path: Path
) -> None:
    pg_url, why_not = pg_database
    if pg_url is None:
        pytest.skip(why_not)
    pg_engine = create_engine(Settings(home=tmp_path, database_url=pg_url).resolved_database_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    runs = iter(range(10_000))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cat=catalogs())
    def check(cat: Catalog) -> None:
        n = next(runs)
        db = tmp_path / f"r{n}.db"
        shutil.copy(sqlite_template, db)
        lite = Store(create_engine(f"sqlite:///{db}"), MediaStore(tmp_path / "media"), TickingClock())
        with pg_engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        pg = Store(pg_engine, MediaStore(tmp_path / "media"), TickingClock())
        for store in (lite, pg):
            store.apply(_change_set(cat), actor="test", action="test")
        a, b = lite.snapshot(), pg.snapshot()
        assert _facts(a) == _facts(b) == _facts(cat)
        pa, pb, pm = LicensingPolicy(a), LicensingPolicy(b), LicensingPolicy(cat)
        for use, at, territory in QUERIES:
            for isrc in sorted(cat.recordings):
                da, db_, dm = (p.decide(isrc, use, at, territory) for p in (pa, pb, pm))
                assert da == db_ == dm
        lite.engine.dispose()

    check()
    pg_engine.dispose()


def test_an_unchanged_change_set_writes_nothing(store: Store) -> None:
    from tests.factories import fully_licensed_catalog

    cat = fully_licensed_catalog()
    first = store.apply(_change_set(cat), actor="t", action="t")
    assert first.changed_anything
    events = store.audit_log()
    second = store.apply(_change_set(cat), actor="t", action="t")
    assert not second.changed_anything
    assert store.audit_log() == events


def test_the_migrations_build_exactly_the_schema_the_code_declares(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
