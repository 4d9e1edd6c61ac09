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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import insert, select

from accord.errors import Problem, Rejected
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties.periods import closed_periods, open_period_for, parse_period
from accord.royalties.usage_checks import (
    event_row,
    period_total_problems,
    read_usage_file,
    table_of,
    text_problems,
)
from accord.royalties.usage_fast import VALID_SCHEMA, fast_events, id_order
from accord.royalties.usage_precise import precise_events
from accord.settings import Settings

T = Base.metadata.tables

INGEST_STAGE, INGEST_STEPS = "ingest usage events", 4
"""The progress of an ingest: read, validate, find the new events, write them (one bar, four steps)."""

EVENT_SCHEMA = VALID_SCHEMA.append(pa.field("period", pa.string())).append(pa.field("batch_id", pa.string()))
"""The Parquet log's columns: a checked batch's (:data:`~accord.royalties.usage_fast.VALID_SCHEMA`), its
period and batch id. ``amount`` is integer micro-units (0 except on revenue events)."""

WRITERS = 2
"""Threads that take columns and write day files at once (Arrow and Parquet release the GIL)."""
DICTIONARY = [c for c in EVENT_SCHEMA.names if c not in ("event_id", "at", "amount")]
"""The columns worth dictionary-encoding: the ids of events are unique, times and amounts numbers."""


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
    return settings.usage_path  # ACCORD_USAGE_URL, else ACCORD_HOME/usage


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

    The checks run on the fast path (:func:`~accord.royalties.usage_fast.fast_events`, Arrow over
    whole columns) and, when it does not vouch for every row, on the precise path (DuckDB, every
    problem by row and field). ``progress(stage, done, total)`` follows the stages (validate, find
    new, write)."""

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
    fast = fast_events(raw, known.outputs, known.models, period)
    if fast is None:
        valid = precise_events(raw, known.outputs, known.models, period, source)
        order, ranked, _ = id_order(valid.column("event_id"))
    else:
        valid, order, ranked = fast
    received = raw.num_rows
    step(2)  # validated
    new = _new_events(valid, order, ranked, committed_files(store, settings))
    step(3)  # the new events found
    if new is None:
        step(INGEST_STEPS)
        return IngestResult("", received, 0, received, 0, (), ())
    table, batch_id = new
    days = _days(table)
    starts = _runs(days)  # where each day's rows start
    closed = closed_periods(store)
    natural = [_month(int(days[a])) for a in starts]  # each day's own period: the month of its events' time
    assigned = [open_period_for(p, closed) for p in natural]
    late = int(sum(k for k, p, q in zip(np.diff([*starts, len(days)]), natural, assigned, strict=True) if p != q))
    periods = sorted(set(assigned))
    revenue = _revenue_by_period(table, starts, assigned)
    found = period_total_problems(revenue, period_revenue(store, settings, periods), source)
    if found:
        raise Rejected(f"usage batch {source or '(events)'}", found)
    written = _write_batch(settings, table, batch_id, days, starts, assigned)
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["usage_batches"]).values(
                batch_id=batch_id,
                ingested_at=store.clock(),
                ingested_by=actor,
                source=source,
                events=table.num_rows,
                duplicates=received - table.num_rows,
                files=written,
                periods=periods,
            )
        )
    step(INGEST_STEPS)  # written
    n = table.num_rows
    return IngestResult(batch_id, received, n, received - n, late, tuple(written), tuple(periods))


def _new_events(valid: pa.Table, order: np.ndarray, ranked: pa.Array, files: list[Path]) -> tuple[pa.Table, str] | None:
    """The events whose id the log does not hold yet, sorted by time then id, and the batch id (the hash
    of their ids in id order); ``None`` when none is new. ``order`` and ``ranked``: the positions and the
    ids of ``valid`` sorted by id (:func:`~accord.royalties.usage_fast.id_order`)."""
    if len(order) == 0:
        return None
    if files:
        fresh = ~seen_ids(ranked, files)
        order, ranked = order[fresh], ranked.filter(pa.array(fresh))
    if len(order) == 0:
        return None
    return _take(valid, _by_time(valid.column("at"), order)), _batch_id(ranked)


def _by_time(at: pa.ChunkedArray, order: np.ndarray) -> np.ndarray:
    """``order`` (positions in id order) rearranged by time, ties kept in id order."""
    times = at.cast(pa.int64()).to_numpy()[order]
    low, high, n = int(times.min()), int(times.max()), len(order)
    if (high - low + 1) * n < 2**62:  # one int64 key, time then id rank: unique, so any sort is stable
        return order[np.argsort((times - low) * n + np.arange(n))]
    return order[np.argsort(times, kind="stable")]


def _take(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table``'s rows at ``rows``, a column per thread (Arrow's take releases the GIL)."""
    index = pa.array(rows)
    with ThreadPoolExecutor(WRITERS) as pool:
        columns = list(pool.map(lambda col: col.take(index), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _batch_id(ids: pa.Array) -> str:
    """sha256 of the ids joined by line breaks (first 32 hex digits), hashed from Arrow's buffers."""
    lines = pc.binary_join_element_wise(ids, pa.scalar("\n"), "")
    _, offsets, data = lines.buffers()
    first, last = np.frombuffer(offsets, np.int32)[[lines.offset, lines.offset + len(lines)]]
    digest = hashlib.sha256(memoryview(data)[first : last - 1])  # without the last line break
    return digest.hexdigest()[:32]


def seen_ids(ids: pa.Array, files: list[Path]) -> np.ndarray:
    """Which of ``ids`` the committed files hold already (as a boolean array). Only the files' row
    groups whose ids can be in the batch's range are read (DuckDB prunes them by their statistics)."""
    low, high = (v.as_py() for v in pc.min_max(ids).values())
    con = duckdb.connect()
    sql = (
        f"SELECT event_id FROM read_parquet({_sql_list(files)}, hive_partitioning = false) "
        f"WHERE event_id BETWEEN {_sql_text(low)} AND {_sql_text(high)}"
    )
    held = con.sql(sql).to_arrow_table().column(0).cast(pa.string())
    if len(held) == 0:
        return np.zeros(len(ids), bool)
    return np.asarray(pc.is_in(ids, value_set=held.combine_chunks()).to_numpy(zero_copy_only=False), bool)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _days(table: pa.Table) -> np.ndarray:
    """Each (time-sorted) event's UTC day, as days since 1970-01-01."""
    return np.asarray(table.column("at").cast(pa.int64()).to_numpy() // 86_400_000_000)


def _month(day: int) -> str:
    return str(np.datetime64(day, "D").astype("datetime64[M]"))


def _runs(values: np.ndarray) -> list[int]:
    """Where each run of equal values starts (the values are sorted)."""
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]]).tolist() if len(values) else []


def _revenue_by_period(new: pa.Table, starts: list[int], assigned: list[str]) -> dict[tuple[str, str], int]:
    """The batch's revenue per (period, currency): ``new`` sorted by time, the k-th day's rows from
    ``starts[k]``, assigned to ``assigned[k]``."""
    rows = pc.indices_nonzero(pc.equal(new.column("kind"), "revenue")).to_numpy()
    day = np.searchsorted(starts, rows, side="right") - 1
    cols = new.select(["currency", "amount"]).take(pa.array(rows)).to_pydict()
    totals: dict[tuple[str, str], int] = {}
    for k, currency, amount in zip(day.tolist(), cols["currency"], cols["amount"], strict=True):
        key = (assigned[k], currency)
        totals[key] = totals.get(key, 0) + amount
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


def _write_batch(
    settings: Settings, table: pa.Table, batch_id: str, days: np.ndarray, starts: list[int], periods: list[str]
) -> list[str]:
    """Write one file per day under temporary names, two at a time, then rename each into place.

    ``table`` is sorted by time; ``days`` holds each row's day, ``starts`` where each day's rows start and
    ``periods`` each day's period (the ``period`` and ``batch_id`` columns are added per file)."""
    root = usage_dir(settings)
    bounds = list(pairwise([*starts, len(days)]))
    staged = [
        (folder / f".tmp-batch-{batch_id}.parquet", folder / f"batch-{batch_id}.parquet")
        for a, _ in bounds
        for folder in [root / f"day={np.datetime64(int(days[a]), 'D')}"]
    ]

    def write(k: int) -> None:
        (a, b), (tmp, _) = bounds[k], staged[k]
        tmp.parent.mkdir(parents=True, exist_ok=True)
        body = table.slice(a, b - a)
        body = body.append_column("period", pa.repeat(pa.scalar(periods[k], pa.string()), b - a))
        body = body.append_column("batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), b - a))
        pq.write_table(body.cast(EVENT_SCHEMA), tmp, compression="zstd", use_dictionary=DICTIONARY)

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, range(len(staged))))
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
