"""The royalty side of scale-out: the usage log's work split into partitions any executor can run.

Two kinds of work leave one machine here, both through :mod:`accord.execution` (a Ray cluster when
``ACCORD_EXECUTOR=ray``):

* **The period's usage scan.** The engine's first step reads every event of the period and sums
  usage units per (output, model) and revenue per currency (:func:`accord.royalties.engine.usage_totals`).
  Those are integer sums, so the scan splits by the log's day partitions (``day=YYYY-MM-DD``
  folders; small days grouped with their neighbours up to :data:`TASK_BYTES`): each group is summed
  on a worker, and the partial sums are added up here, exactly.
  Nothing is rounded in a partial: the cascade of largest-remainder splits runs once, on the merged
  sums, as in a run on one machine, so the result is the same to the micro-unit (and the same
  inputs hash: it names the same files).
* **Reading many usage files.** Parsing a JSON-lines or CSV file into checked columns
  (:func:`~accord.royalties.usage_checks.read_usage_file`) needs no registry, so files are read on
  the workers; each file is then ingested here, in the order given, as its own atomic batch (the
  log, its dedupe by event id and the ``usage_batches`` table stay single-writer), so the log ends
  exactly as if the files had been ingested one after another.

Which executor runs them is the caller's choice; :func:`usage_scan` gives the partitioned scan
only when ``ACCORD_EXECUTOR`` names a backend that leaves this machine (on one machine DuckDB's own
threads over all files at once are faster than a task per day).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path

import pyarrow as pa

from accord.execution import DoneCallback, Executor, get_executor
from accord.registry.store import Store
from accord.royalties.engine import usage_totals
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.usage import IngestResult, KnownIds, ingest_table
from accord.royalties.usage_checks import read_usage_file
from accord.settings import Settings

UsageScan = Callable[[Sequence[Path], RoyaltyPolicy, str, int], tuple[pa.Table, dict[str, int]]]
"""The engine's usage step: ``scan(files, policy, period, threads) -> (usage, revenue)``."""

SUMMED = ("units", "n", "units_out", "n_out")
"""The usage table's integer columns, summed when partitions merge; the key is (output_id, model_id)."""

ONE_MACHINE = ("local", "serial")
"""Executors that stay on this machine: the engine's own scan of all files at once is used with them."""

TASK_BYTES = 64 * 2**20
"""Parquet bytes a scan task takes at least (consecutive days grouped up to it): a task pays ~0.2 s to open
DuckDB and plan, so a day of a small log (30k events, ~1 MB) is far too little work for one; a platform's
day (tens of millions of events, ~GBs) is many tasks' worth and stays one task per day."""


def day_partitions(files: Sequence[Path]) -> list[tuple[Path, ...]]:
    """``files`` grouped by their partition folder (``day=YYYY-MM-DD``), partitions and files sorted."""
    ordered = sorted(files, key=lambda p: (p.parent.name, p.name))  # by day, then by batch file name
    return [tuple(group) for _, group in groupby(ordered, key=lambda p: p.parent.name)]


def task_groups(partitions: Sequence[tuple[Path, ...]], task_bytes: int = TASK_BYTES) -> list[tuple[Path, ...]]:
    """Consecutive day partitions joined until each group's files hold ``task_bytes`` (0: a task per day)."""
    groups: list[tuple[Path, ...]] = []
    current: list[Path] = []
    size = 0
    for files in partitions:
        current += files
        size += sum(p.stat().st_size for p in files) if task_bytes else 0
        if size >= task_bytes:
            groups.append(tuple(current))
            current, size = [], 0
    if current:
        groups.append(tuple(current))
    return groups


def scan_partition(job: tuple[tuple[Path, ...], RoyaltyPolicy, str]) -> tuple[pa.Table, dict[str, int]]:
    """One group of partitions: usage per (output, model) and revenue per currency (on a worker: one thread)."""
    files, policy, period = job
    return usage_totals(list(files), policy, period, 1)


def merge_partials(partials: Sequence[tuple[pa.Table, dict[str, int]]]) -> tuple[pa.Table, dict[str, int]]:
    """The partial sums added up: usage per (output, model) and revenue per currency, exact integers.

    The usage rows are sorted by (output_id, model_id), nulls last, so the merged table does not
    depend on the order partitions finished in.
    """
    revenue: dict[str, int] = {}
    for _, part in partials:
        for currency, amount in part.items():
            revenue[currency] = revenue.get(currency, 0) + amount
    tables = [table for table, _ in partials]
    schema = tables[0].schema
    whole = pa.concat_tables(tables)
    grouped = whole.group_by(["output_id", "model_id"]).aggregate([(c, "sum") for c in SUMMED])
    merged = pa.table({name: grouped[f"{name}_sum"] if name in SUMMED else grouped[name] for name in schema.names})
    merged = merged.cast(schema).sort_by([("output_id", "ascending"), ("model_id", "ascending")])
    return merged, dict(sorted(revenue.items()))


class PartitionedScan:
    """The engine's usage step run as tasks of day partitions on an executor, merged exactly.

    Attributes:
        executor: where the partitions are scanned.
        on_done: called as ``on_done(done, total)`` after each task (a progress bar).
        task_bytes: consecutive days are grouped into one task up to this many Parquet bytes
            (:data:`TASK_BYTES`; 0: one task per day).
    """

    def __init__(self, executor: Executor, on_done: DoneCallback | None = None, task_bytes: int = TASK_BYTES) -> None:
        self.executor = executor
        self.on_done = on_done
        self.task_bytes = task_bytes

    def __call__(
        self, files: Sequence[Path], policy: RoyaltyPolicy, period: str, threads: int
    ) -> tuple[pa.Table, dict[str, int]]:
        """``(usage, revenue)`` as the engine's own scan returns them, from the partitions' sums."""
        groups = task_groups(day_partitions(files), self.task_bytes)
        if not groups:
            return usage_totals([], policy, period, threads)
        jobs = [(group, policy, period) for group in groups]
        return merge_partials(self.executor.map(scan_partition, jobs, on_done=self.on_done))


def usage_scan(settings: Settings, on_done: DoneCallback | None = None) -> UsageScan | None:
    """The partitioned scan when ``ACCORD_EXECUTOR`` leaves this machine, else ``None`` (the engine's own)."""
    if settings.executor in ONE_MACHINE:
        return None
    return PartitionedScan(get_executor(settings.executor, settings.workers), on_done)


def ingest_files(
    store: Store,
    settings: Settings,
    paths: Sequence[Path],
    *,
    period: str | None = None,
    actor: str = "",
    executor: Executor | None = None,
    on_done: DoneCallback | None = None,
) -> list[IngestResult]:
    """Ingest many usage files: read on ``executor`` (default: ``ACCORD_EXECUTOR``'s), written here in order.

    Each file is its own batch, exactly as :func:`~accord.royalties.usage.ingest_file` would make it
    when called on the files one after another: all-or-nothing per file, events already in the log
    (or in an earlier file of ``paths``) skipped by id. A file that cannot be read raises before
    anything is written; a file whose events are refused raises after the files before it were
    ingested (as the one-by-one calls would). ``on_done(done, total)`` counts files read.
    """
    executor = executor or get_executor(workers=settings.workers)
    tables = executor.map(read_usage_file, [Path(p) for p in paths], on_done=on_done)
    known = KnownIds.from_store(store)
    return [
        ingest_table(store, settings, raw, period=period, actor=actor, source=Path(path).name, known=known)
        for path, raw in zip(paths, tables, strict=True)
    ]
