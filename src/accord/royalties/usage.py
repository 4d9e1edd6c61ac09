"""Usage events: validated, idempotent by event id, appended to a day-partitioned Parquet log.

A batch (a JSON-lines or CSV file, or events handed over in code) is checked as a whole
against the registry: every problem is reported at once, by row and field, and nothing is
written unless every row is good. Events already ingested (same event id) are skipped, so
a batch sent twice counts once; the Parquet files' ``event_id`` column is the index of the
ids seen. Each event is assigned to an accounting period: its month (a revenue event: the
period it states) or, when that period is closed, the first open period after it (late
events are never lost and never change a closed period).

Atomicity: a batch's files are written under temporary names and renamed into
``<home>/usage/day=YYYY-MM-DD/batch-<id>.parquet``; the batch becomes visible only when its
row is committed to ``usage_batches`` in one SQL transaction. Readers only read committed
files, so a crash mid-batch leaves nothing visible (the orphan files are overwritten by the
retry).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pycountry
from sqlalchemy import insert, select

from accord.errors import Problem, Rejected
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties.periods import closed_periods, open_period_for, parse_period
from accord.royalties.usage_checks import (
    STAGE_SQL,
    event_row,
    micro_units,
    period_total_problems,
    problems,
    read_usage_file,
    table_of,
    text_problems,
)
from accord.settings import Settings

T = Base.metadata.tables

INGEST_STAGE, INGEST_STEPS = "ingest usage events", 4
"""The progress of an ingest: read, validate, find the new events, write them (one bar, four steps)."""

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("creator_id", pa.string()),
        ("output_id", pa.string()),
        ("model_id", pa.string()),
        ("territory", pa.string()),
        ("amount", pa.int64()),
        ("currency", pa.string()),
        ("source", pa.string()),
        ("period", pa.string()),
        ("batch_id", pa.string()),
    ]
)
"""The Parquet log's columns. ``amount`` is integer micro-units (0 except on revenue events)."""


@dataclass(frozen=True)
class KnownIds:
    """What the registry knows, as Arrow tables for the validation join.

    Attributes:
        outputs: ``output_id``, ``model_id`` of every released output.
        models: ``model_id`` of every registered model.
    """

    outputs: pa.Table
    models: pa.Table

    @classmethod
    def from_store(cls, store: Store) -> KnownIds:
        o, m = T["outputs"], T["models"]
        with store.engine.connect() as conn:
            outs = conn.execute(select(o.c.output_id, o.c.model_id)).all()
            models = [r[0] for r in conn.execute(select(m.c.model_id))]
        return cls(
            pa.table({"output_id": [r[0] for r in outs], "model_id": [r[1] for r in outs]}, _ID_PAIR),
            pa.table({"model_id": models}, pa.schema([("model_id", pa.string())])),
        )


_ID_PAIR = pa.schema([("output_id", pa.string()), ("model_id", pa.string())])


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did.

    Attributes:
        batch_id: the batch's id (hash of its new event ids), ``""`` when nothing was new.
        received: events in the input.
        new: events written.
        duplicates: events skipped because their id was seen (in this batch or before).
        late: new events assigned to a later period because their own period is closed.
        files: the Parquet files written, relative to the usage folder.
        periods: the periods the new events were assigned to.
    """

    batch_id: str
    received: int
    new: int
    duplicates: int
    late: int
    files: tuple[str, ...]
    periods: tuple[str, ...]


def usage_dir(settings: Settings) -> Path:
    return settings.home / "usage"


def ingest_file(
    store: Store,
    settings: Settings,
    path: Path,
    *,
    period: str | None = None,
    actor: str = "",
    known: KnownIds | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestResult:
    """Ingest a JSON-lines (``.jsonl``/``.json``/``.ndjson``) or CSV (``.csv``) file of events.

    The file is read strictly (:func:`~accord.royalties.usage_checks.read_usage_file`): bad bytes,
    a truncated last line, an unbalanced quote, unknown or repeated columns refuse it whole.
    ``progress(stage, done, total)`` follows the stages (read, validate, find new, write).
    """
    path = Path(path)
    if progress:
        progress(INGEST_STAGE, 0, INGEST_STEPS)
    raw = read_usage_file(path)
    return ingest_table(
        store, settings, raw, period=period, actor=actor, source=path.name, known=known, progress=progress
    )


def ingest_events(
    store: Store,
    settings: Settings,
    events: Iterable[Mapping[str, object]],
    *,
    period: str | None = None,
    actor: str = "",
    source: str = "",
    known: KnownIds | None = None,
) -> IngestResult:
    """Ingest events given as mappings (the field names of the file formats; unknown ones refused)."""
    rows: list[dict[str, str | None]] = []
    bad: list[Problem] = []
    for n, event in enumerate(events, start=1):
        row, found = event_row(n, event, source)
        rows.append(row)
        bad += found
    if bad:
        raise Rejected(f"usage batch {source or '(events)'}", bad)
    return ingest_table(store, settings, table_of(rows), period=period, actor=actor, source=source, known=known)


def ingest_table(
    store: Store,
    settings: Settings,
    raw: pa.Table,
    *,
    period: str | None = None,
    actor: str = "",
    source: str = "",
    known: KnownIds | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> IngestResult:
    """Validate a table of string columns (:data:`FIELDS`), then append its new events atomically.

    ``progress(stage, done, total)`` follows the stages (validate, find new, write)."""

    def step(done: int) -> None:
        if progress:
            progress(INGEST_STAGE, done, INGEST_STEPS)

    step(1)  # read
    if period is not None:
        period = parse_period(period)
    found = text_problems(raw, source)
    if found:
        raise Rejected(f"usage batch {source or '(events)'}", found)
    known = known or KnownIds.from_store(store)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("raw_in", raw.append_column("row", pa.array(np.arange(1, raw.num_rows + 1), pa.int64())))
    con.register("known_outputs", known.outputs)
    con.register("known_models", known.models)
    con.register("countries", pa.table({"code": sorted(c.alpha_2 for c in pycountry.countries)}))
    con.register("currencies", pa.table({"code": sorted(c.alpha_3 for c in pycountry.currencies)}))
    con.execute(STAGE_SQL)
    found = problems(con, period, source)
    if found:
        raise Rejected(f"usage batch {source or '(events)'}", found)
    received = raw.num_rows
    step(2)  # validated
    closed = closed_periods(store)
    natural = [r[0] for r in con.execute("SELECT DISTINCT natural_period FROM ev ORDER BY 1").fetchall()]
    mapping = {p: open_period_for(p, closed) for p in natural}
    con.register("period_map", pa.table({"natural_period": list(mapping), "period": list(mapping.values())}))
    files = committed_files(store, settings)
    seen = "SELECT NULL::VARCHAR AS event_id WHERE false"
    if files:
        seen = f"SELECT event_id FROM read_parquet({_sql_list(files)}, hive_partitioning = false)"
    new = con.sql(
        f"""
        SELECT e.event_id, e.kind, e.ts AS "at", e.creator AS creator_id,
               coalesce(e.output_id, '') AS output_id, coalesce(e.model_id, '') AS model_id,
               coalesce(e.territory, '') AS territory,
               CASE WHEN e.kind = 'revenue' THEN e.amount END AS amount_text,
               CASE WHEN e.kind = 'revenue' THEN e.currency ELSE '' END AS currency,
               CASE WHEN e.kind = 'revenue' THEN e.source ELSE '' END AS source,
               m.period, e.natural_period <> m.period AS late
        FROM ev e JOIN period_map m USING (natural_period)
        WHERE e.first AND e.event_id NOT IN ({seen})
        ORDER BY e.ts, e.event_id
        """
    ).to_arrow_table()
    step(3)  # the new events found
    if new.num_rows == 0:
        step(INGEST_STEPS)
        return IngestResult("", received, 0, received, 0, (), ())
    new = _with_micro_units(new)
    periods = sorted(set(new.column("period").to_pylist()))
    found = period_total_problems(_revenue_by_period(new), period_revenue(store, settings, periods), source)
    if found:
        raise Rejected(f"usage batch {source or '(events)'}", found)
    ids = new.column("event_id")
    ids = ids.take(pc.sort_indices(ids)).to_pylist()  # UTF-8 byte order, as DuckDB's VARCHAR sorts
    batch_id = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    late = int(pc.sum(new.column("late")).as_py() or 0)
    table = new.drop_columns(["late"]).append_column("batch_id", pa.array([batch_id] * new.num_rows, pa.string()))
    written = _write_batch(settings, table, batch_id)
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["usage_batches"]).values(
                batch_id=batch_id,
                ingested_at=store.clock(),
                ingested_by=actor,
                source=source,
                events=new.num_rows,
                duplicates=received - new.num_rows,
                files=written,
                periods=periods,
            )
        )
    step(INGEST_STEPS)  # written
    return IngestResult(batch_id, received, new.num_rows, received - new.num_rows, late, tuple(written), tuple(periods))


def _with_micro_units(new: pa.Table) -> pa.Table:
    """The checked amount text as integer micro-units, converted exactly in Python integers."""
    texts = new.column("amount_text").to_pylist()
    micros = pa.array([0 if t is None else micro_units(t) for t in texts], pa.int64())
    at = new.column_names.index("amount_text")
    return new.set_column(at, "amount", micros)


def _revenue_by_period(new: pa.Table) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    cols = new.select(["kind", "period", "currency", "amount"]).to_pydict()
    for kind, period, currency, amount in zip(*cols.values(), strict=True):
        if kind == "revenue":
            totals[period, currency] = totals.get((period, currency), 0) + amount
    return totals


def period_revenue(store: Store, settings: Settings, periods: Iterable[str]) -> dict[tuple[str, str], int]:
    """Revenue already ingested per (period, currency), in micro-units (exact: summed as HUGEINT)."""
    periods = list(periods)
    files = sorted({f for p in periods for f in committed_files(store, settings, p)})
    if not files:
        return {}
    wanted = ", ".join(f"'{parse_period(p)}'" for p in periods)
    sql = (
        f"SELECT period, currency, sum(amount)::HUGEINT FROM read_parquet({_sql_list(files)}, "
        f"hive_partitioning = false) WHERE kind = 'revenue' AND period IN ({wanted}) GROUP BY 1, 2"
    )
    return {(p, c): int(t) for p, c, t in duckdb.connect().execute(sql).fetchall()}


def _sql_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


Publish = Callable[[Path, Path], None]


def _publish(tmp: Path, final: Path) -> None:
    """Make one written file visible under its final name (atomic rename)."""
    os.replace(tmp, final)


def _write_batch(settings: Settings, table: pa.Table, batch_id: str) -> list[str]:
    """Write one file per day under temporary names, then rename each into place."""
    root = usage_dir(settings)
    body = table.cast(EVENT_SCHEMA)  # sorted by time, so each day's rows are contiguous
    days = body.column("at").cast(pa.int64()).to_numpy() // 86_400_000_000  # UTC days since 1970-01-01
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    bounds = [*starts.tolist(), len(days)]
    staged: list[tuple[Path, Path]] = []
    try:
        for a, b in pairwise(bounds):
            folder = root / f"day={np.datetime64(int(days[a]), 'D')}"
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"batch-{batch_id}.parquet"
            tmp = folder / f".tmp-batch-{batch_id}.parquet"
            pq.write_table(body.slice(a, b - a), tmp, compression="zstd")
            staged.append((tmp, final))
        for tmp, final in staged:
            _publish(tmp, final)
    except BaseException:
        for tmp, final in staged:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
        raise
    return [str(final.relative_to(root)) for _, final in staged]


def committed_files(store: Store, settings: Settings, period: str | None = None) -> list[Path]:
    """The Parquet files of committed batches (those holding ``period``'s events, if given), sorted."""
    t = T["usage_batches"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.c.files, t.c.periods)).all()
    root = usage_dir(settings)
    return sorted(root / f for files, periods in rows if period is None or period in periods for f in files)


def period_events(store: Store, settings: Settings, period: str) -> pa.Table:
    """Every committed event assigned to ``period``, sorted by time then id."""
    files = committed_files(store, settings, period)
    if not files:
        return EVENT_SCHEMA.empty_table()
    con = duckdb.connect()
    where = f"period = '{parse_period(period)}'"
    source = f"read_parquet({_sql_list(files)}, hive_partitioning = false)"
    sql = f'SELECT * FROM {source} WHERE {where} ORDER BY "at", event_id'
    return con.sql(sql).to_arrow_table().cast(EVENT_SCHEMA)


def sync_platform_events(store: Store, settings: Settings, *, known: KnownIds | None = None) -> IngestResult:
    """Land the platform's own events (plays, downloads recorded in SQL) in the Parquet log.

    Idempotent: events already in the log are skipped by id.
    """
    t = T["usage_events"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.at, t.c.event_id)).mappings().all()
    events: list[dict[str, Any]] = [
        {
            "event_id": r["event_id"],
            "kind": r["kind"],
            "timestamp": r["at"],
            "creator": r["creator_id"],
            "output_id": r["output_id"],
            "model_id": r["model_id"],
            "territory": r["territory"],
        }
        for r in rows
    ]
    return ingest_events(store, settings, events, actor="platform", source="platform", known=known)
