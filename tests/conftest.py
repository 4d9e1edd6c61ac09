"""Test fixtures: a fresh registry per test, on SQLite and on a real PostgreSQL.

The ``store`` fixture runs each test that uses it twice: on an SQLite file and on
PostgreSQL (``ACCORD_TEST_DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``).
Each xdist worker gets its own PostgreSQL database, migrated once and emptied between
tests. Where no PostgreSQL server answers, the PostgreSQL runs skip, saying why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import torch
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from accord.registry.schema import Base
from accord.registry.store import Store, migrate
from accord.settings import Settings

# Two xdist workers share two cores: one thread each keeps torch from oversubscribing them.
torch.set_num_threads(1)

PG_URL = os.environ.get("ACCORD_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class TickingClock:
    """A clock that moves one second per reading: history instants are distinct and known."""

    def __init__(self, start: datetime = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def missing_services() -> list[str]:
    """The components the suite needs that this machine lacks: PostgreSQL, Chromium + driver, FluidSynth."""
    from accord.media.render import available_synthesizer
    from accord.web.live import browser_missing

    missing = []
    admin = create_engine(_pg_admin_url())
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        missing.append(f"PostgreSQL at {PG_URL} ({type(exc).__name__})")
    finally:
        admin.dispose()
    if why := browser_missing():
        missing.append(why)
    name, why = available_synthesizer()
    if name != "fluidsynth":
        missing.append(f"FluidSynth: {why}")
    return missing


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under ``make test`` (and so in CI) a missing component fails the run instead of skipping its tests.

    ``make test`` installs and starts them first; a developer without them opts out with
    ``ACCORD_TEST_ALLOW_SKIP=1``, and their tests then skip, each saying why.
    """
    if os.environ.get("ACCORD_TEST_REQUIRE_SERVICES") != "1" or hasattr(session.config, "workerinput"):
        return
    if missing := missing_services():
        msg = (
            "the test suite needs these and `make test` could not install or start them: "
            + "; ".join(missing)
            + " (set ACCORD_TEST_ALLOW_SKIP=1 to run without them, their tests skipping)"
        )
        raise pytest.UsageError(msg)


def _pg_admin_url() -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[tuple[str | None, str]]:
    """A fresh, migrated PostgreSQL database for this test worker: (url, "") or (None, why not)."""
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        admin.dispose()
        yield None, f"no PostgreSQL server answers at {PG_URL} ({type(exc).__name__}: {exc})"
        return
    name = f"accord_test_{worker_id}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    settings = Settings(home=Path("/nonexistent-accord-home"), database_url=url)
    engine = create_engine(settings.resolved_database_url)
    migrate(engine)
    engine.dispose()
    yield url, ""
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite registry migrated once; each test gets a copy (migrations run once per worker)."""
    path = tmp_path_factory.mktemp("template") / "accord.db"
    settings = Settings(home=path.parent, database_url=f"sqlite:///{path}")
    Store.open(settings).close()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_template: Path,
    request: pytest.FixtureRequest,
) -> Settings:
    """Settings for a fresh registry on the test's backend, exported as ``ACCORD_*`` for the CLI."""
    home = tmp_path / "home"
    home.mkdir()
    if backend == "sqlite":
        shutil.copy(sqlite_template, home / "accord.db")
        url = ""
    else:
        url, why_not = request.getfixturevalue("pg_database")
        if url is None:
            pytest.skip(why_not)
        engine = create_engine(Settings(home=home, database_url=url).resolved_database_url)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
    monkeypatch.setenv("ACCORD_HOME", str(home))
    monkeypatch.setenv("ACCORD_DATABASE_URL", url)
    return Settings(home=home, database_url=url)


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def store(settings: Settings, clock: TickingClock) -> Iterator[Store]:
    """A fresh, migrated registry on the test's backend (SQLite and PostgreSQL)."""
    s = Store.open(settings, clock=clock, migrate=False)
    yield s
    s.close()
