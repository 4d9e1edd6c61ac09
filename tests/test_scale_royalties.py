"""The royalty run and usage ingest on a cluster: partitioned by day, merged exactly, equal to one machine.

The usage scan is summed per day partition and the partial sums added up before the one cascade of
largest-remainder splits (:mod:`accord.royalties.partitioned`), so a run on Ray equals the run on
one machine to the micro-unit, with the same inputs hash and the same run files. Reading many
usage files on the workers leaves the log as ingesting them one after another does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.errors import Rejected
from accord.execution import SerialExecutor
from accord.execution_ray import RayExecutor, start_ray
from accord.registry.store import Store
from accord.royalties.engine import RunResult, compute
from accord.royalties.inputs import build_inputs
from accord.royalties.partitioned import (
    PartitionedScan,
    day_partitions,
    ingest_files,
    merge_partials,
    task_groups,
    usage_scan,
)
from accord.royalties.run import compute_period, run_period
from accord.royalties.usage import committed_files, period_events
from accord.settings import Settings
from tests.test_royalties_reference import PERIOD, World, log_file, worlds
from tests.test_royalty_run import AT, usage, world


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A Ray on this machine with two CPUs for the module (one start: Ray takes seconds to start)."""
    start_ray("", workers=2)
    yield
    ray.shutdown()


def _same(a: RunResult, b: RunResult) -> None:
    assert a.lines.equals(b.lines) and a.suspense.equals(b.suspense)
    assert (a.revenue, a.operator, a.inputs_hash) == (b.revenue, b.operator, b.inputs_hash)


def _days(world: World, days: int, folder: Path) -> list[Path]:
    """The world's events spread over ``days`` day partitions (round robin), one file each."""
    events = world[3]
    files = []
    for d in range(days):
        part = folder / f"day=2026-11-{d + 1:02d}"
        part.mkdir(parents=True)
        files.append(log_file(events[d::days], part))
    return files


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=worlds(), days=st.integers(1, 4))
def test_a_run_summed_per_day_partition_is_the_run_over_the_whole_log(
    world: World, days: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cat, models, credentials, _, policy = world
    inputs = build_inputs(cat, models, sorted(credentials.items()), PERIOD, policy)
    files = _days(world, days, tmp_path_factory.mktemp("log"))
    whole = compute(inputs, files, policy, threads=1)
    _same(compute(inputs, files, policy, threads=1, scan=PartitionedScan(SerialExecutor(), task_bytes=0)), whole)


def test_partials_merge_to_the_sums_whatever_order_they_come_in(tmp_path: Path) -> None:
    from accord.royalties.engine import usage_totals
    from accord.royalties.policy import RoyaltyPolicy

    events = [{"event_id": f"e{i}", "kind": "play", "output_id": f"O-{i % 3}", "model_id": "M-1"} for i in range(9)] + [
        {"event_id": f"r{i}", "kind": "revenue", "amount": 10**12 + i, "currency": "EUR"} for i in range(3)
    ]
    files = []
    for d in range(3):
        (tmp_path / f"day=2026-11-0{d + 1}").mkdir()
        files.append(log_file(events[d::3], tmp_path / f"day=2026-11-0{d + 1}"))
    policy = RoyaltyPolicy()
    partials = [usage_totals([f], policy, PERIOD, 1) for f in files]
    usage, revenue = merge_partials(partials)
    again, _ = merge_partials(partials[::-1])
    whole, whole_revenue = usage_totals(files, policy, PERIOD, 1)
    assert usage.equals(again) and revenue == whole_revenue == {"EUR": 3 * 10**12 + 3}
    key = ["output_id", "model_id"]
    assert usage.equals(whole.sort_by([(k, "ascending") for k in key]))
    assert [len(p) for p in day_partitions(files[::-1])] == [1, 1, 1]


def _write_files(folder: Path) -> list[Path]:
    """Three usage files on three days; the third repeats two of the first's events (skipped by id)."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = [usage(3, "100.00", prefix="a-"), usage(2, "50.00", prefix="b-", at=AT + timedelta(days=1))]
    batches.append(usage(1, "0.01", prefix="c-", at=AT + timedelta(days=2)) + batches[0][-2:])
    paths = []
    for n, events in enumerate(batches):
        path = folder / f"usage-{n}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        paths.append(path)
    return paths


def test_usage_files_read_on_ray_and_the_run_partitioned_by_day_equal_one_machine(
    ray_cluster: None, store: Store, settings: Settings, tmp_path: Path
) -> None:
    world(store, settings)
    paths = _write_files(tmp_path / "in")
    results = ingest_files(store, settings, paths, executor=RayExecutor(2, ""))
    assert [(r.received, r.new, r.duplicates) for r in results] == [(6, 6, 0), (5, 5, 0), (6, 4, 2)]
    assert len(period_events(store, settings, PERIOD)) == 15
    assert len(day_partitions(committed_files(store, settings, PERIOD))) == 3

    local_result, inputs, policy = compute_period(store, settings, PERIOD)
    day_by_day = PartitionedScan(RayExecutor(2, ""), task_bytes=0)  # a task per day, not one for this small log
    _same(compute(inputs, committed_files(store, settings, PERIOD), policy, scan=day_by_day), local_result)
    local_run = run_period(store, settings, PERIOD)
    local_files = {p.name: p.read_bytes() for p in local_run.folder.iterdir()}
    on_ray = settings.model_copy(update={"executor": "ray"})
    assert isinstance(usage_scan(on_ray), PartitionedScan) and usage_scan(settings) is None
    ray_result, _, _ = compute_period(store, on_ray, PERIOD)
    _same(ray_result, local_result)
    assert ray_result.revenue == {"EUR": 150_010_000}
    ray_run = run_period(store, on_ray, PERIOD)
    assert (ray_run.run_id, ray_run.result_hash) == (local_run.run_id, local_run.result_hash)
    assert {p.name: p.read_bytes() for p in ray_run.folder.iterdir()} == local_files


def test_a_refused_file_stops_the_ingest_with_its_problems_and_the_files_before_it_stay(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    world(store, settings)
    good, bad = _write_files(tmp_path / "in")[:2]
    bad.write_text(bad.read_text().replace('"O-1"', '"O-404"', 1))
    with pytest.raises(Rejected, match=r"usage batch usage-1\.jsonl: 1 problem found, nothing was written"):
        ingest_files(store, settings, [good, bad], executor=SerialExecutor())
    assert len(period_events(store, settings, PERIOD)) == 6


def test_small_days_are_grouped_into_tasks_of_at_least_the_target_size(tmp_path: Path) -> None:
    partitions = []
    for d, size in enumerate([5, 3, 9, 1, 1]):
        (tmp_path / f"day=2026-11-0{d + 1}").mkdir()
        path = tmp_path / f"day=2026-11-0{d + 1}" / "batch-x.parquet"
        path.write_bytes(b"x" * size)
        partitions.append((path,))
    sizes = [[p.stat().st_size for p in g] for g in task_groups(partitions, task_bytes=8)]
    assert sizes == [[5, 3], [9], [1, 1]]
    assert task_groups(partitions, task_bytes=0) == partitions
    assert task_groups([], task_bytes=8) == []
