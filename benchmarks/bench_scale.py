"""Scale-out on Ray: the same work at 1, 2 and 4 Ray workers against one machine, in the same run.

Each worker count gets a fresh local Ray with that many CPUs (workers are processes; a warm-up task
starts them before timing). Measured, each against a baseline on one machine in this process:

* **usage scan**: the royalty run's first step over ``--events`` usage events in day partitions
  (``day=YYYY-MM-DD``, ~29 days): DuckDB over every file at once (the engine's own scan, baseline)
  versus one Ray task per day partition, summed exactly (:mod:`accord.royalties.partitioned`);
* **royalty run**: the whole :func:`~accord.royalties.engine.compute` (scan, then the cascade on the
  driver) both ways, checked equal line for line;
* **catalog fingerprints**: audio fingerprints of ``--clips`` 20-second catalog clips (the guard's
  per-recording stage, without the MIDI render), one process inline versus Ray tasks
  (:mod:`accord.execution_ray`).

The scan is cut into two tasks per worker (``task_bytes``), so that the small logs this machine
can hold still spread; a platform's month is cut by day at its default size. Timings are the best
of two runs; a ``=`` says the result equals the baseline's (line for line, byte for byte).

The registry snapshot is the synthetic one of :mod:`benchmarks.bench_royalties` (``--recordings``,
``--outputs`` × ``--attr``). Sizes are arguments: the issue's 10M and 100M events need a machine
with the memory and the cores (``--events 10000000,100000000``); the defaults fit a shared 2-core box.

Usage: ``python -m benchmarks.bench_scale [--events 1000000] [--workers 1,2,4] [--clips 24]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from accord.attribution.guard.audio import AudioSource, fingerprint_source
from accord.execution import SerialExecutor
from accord.execution_ray import RayExecutor, start_ray
from accord.media.fingerprint import SAMPLE_RATE, wav_bytes
from accord.royalties.engine import compute, usage_totals
from accord.royalties.partitioned import PartitionedScan
from accord.royalties.policy import RoyaltyPolicy
from benchmarks.bench_royalties import PERIOD, build_inputs, events_table


def day_files(events: pa.Table, folder: Path) -> list[Path]:
    """The events written as one Parquet file per UTC day, under ``day=YYYY-MM-DD`` folders."""
    days = pc.strftime(events["at"], format="%Y-%m-%d", locale="C")
    files = []
    for day in sorted(set(days.to_pylist())):
        part = folder / f"day={day}"
        part.mkdir(parents=True, exist_ok=True)
        path = part / "batch-bench.parquet"
        pq.write_table(events.filter(pc.equal(days, day)), path, compression="zstd")
        files.append(path)
    return files


def clips(n: int, folder: Path) -> list[tuple[AudioSource, Path, Path]]:
    """``n`` 20-second synthetic tunes as WAV files, with their fingerprint jobs (the cache under ``folder``)."""
    from tests.test_fingerprint import clip

    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(n):
        path = folder / f"{i}.wav"
        path.write_bytes(wav_bytes(np.tile(clip(100 + i), 3)[: 20 * SAMPLE_RATE], SAMPLE_RATE))
        jobs.append((AudioSource(f"ISRC{i}", f"Clip {i}", f"{i:064x}", "audio"), path, folder / "cache"))
    return jobs


REPEAT = 2
"""Each timing is the best of this many runs (the shared machine's load comes and goes)."""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """The best wall time of :data:`REPEAT` calls, and the last call's result."""
    best, out = float("inf"), None
    for _ in range(REPEAT):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


_CACHES = itertools.count()


def fresh(jobs: list[tuple[AudioSource, Path, Path]]) -> list[tuple[AudioSource, Path, Path]]:
    """The jobs with an empty cache folder of their own (a cached fingerprint would measure nothing)."""
    tag = next(_CACHES)
    return [(s, p, c.with_name(f"cache-{tag}")) for s, p, c in jobs]


def _warm(_: int) -> int:
    """Start a worker and import what the measured tasks import (not part of any timing)."""
    import accord.attribution.guard.audio
    import accord.royalties.engine  # noqa: F401

    return os.getpid()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1000000", help="Comma-separated usage event counts.")
    parser.add_argument("--workers", default="1,2,4", help="Comma-separated Ray worker counts.")
    parser.add_argument("--clips", type=int, default=24, help="Catalog clips fingerprinted (0: skip the stage).")
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--outputs", type=int, default=100_000)
    parser.add_argument("--attr", type=int, default=10)
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w]
    notes = [f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores"]
    rng = np.random.default_rng(0)
    inputs, _, _ = build_inputs(args.recordings, args.outputs, args.attr, rng)
    policy = RoyaltyPolicy()
    rows: list[tuple[str, str, float, float, float, str]] = []  # stage, where, seconds, items/s, x baseline, check
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = [int(x) for x in args.events.split(",") if x]
        logs = {}
        for n in sizes:
            logs[n] = day_files(events_table(n, args.outputs, rng), folder / f"log-{n}")
        jobs = clips(args.clips, folder / "clips") if args.clips else []
        # baselines: one machine, this process
        base: dict[str, tuple[float, Any]] = {}
        for n, files in logs.items():
            notes.append(
                f"{n:,} events: {len(files)} day files, {sum(p.stat().st_size for p in files) / 2**20:.1f} MiB"
            )
            base[f"scan {n}"] = timed(lambda files=files: usage_totals(files, policy, PERIOD, 0))
            base[f"run {n}"] = timed(lambda files=files: compute(inputs, files, policy))
            for stage in ("scan", "run"):
                sec = base[f"{stage} {n}"][0]
                rows.append((f"{stage} {n:,} events", "one machine (DuckDB threads)", sec, n / sec, 1.0, ""))
        if jobs:
            sec, local_prints = timed(lambda: SerialExecutor().map(fingerprint_source, fresh(jobs)))
            base["fp"] = (sec, local_prints)
            rows.append((f"fingerprint {len(jobs)} clips", "one process inline", sec, len(jobs) / sec, 1.0, ""))
        for w in workers:
            ray.shutdown()
            start_ray("", workers=w)
            executor = RayExecutor(w, "")
            executor.map(_warm, list(range(4 * w)))  # start the worker processes before timing
            for n, files in logs.items():
                size = sum(p.stat().st_size for p in files)
                scan = PartitionedScan(executor, task_bytes=max(size // (2 * w), 1))  # two tasks per worker
                sec, (usage, revenue) = timed(lambda files=files, scan=scan: scan(files, policy, PERIOD, 0))
                want_usage, want_revenue = base[f"scan {n}"][1]
                key = [("output_id", "ascending"), ("model_id", "ascending")]
                same = usage.equals(want_usage.sort_by(key)) and revenue == want_revenue
                ratio = base[f"scan {n}"][0] / sec
                rows.append((f"scan {n:,} events", f"Ray, {w} worker(s)", sec, n / sec, ratio, "=" if same else "≠"))
                sec, result = timed(lambda files=files, scan=scan: compute(inputs, files, policy, scan=scan))
                want = base[f"run {n}"][1]
                same = result.lines.equals(want.lines) and result.suspense.equals(want.suspense)
                ratio = base[f"run {n}"][0] / sec
                rows.append((f"run {n:,} events", f"Ray, {w} worker(s)", sec, n / sec, ratio, "=" if same else "≠"))
            if jobs:
                sec, prints = timed(lambda ex=executor: ex.map(fingerprint_source, fresh(jobs)))
                same = all(a.hashes.tobytes() == b.hashes.tobytes() for a, b in zip(prints, base["fp"][1], strict=True))
                ratio, rate = base["fp"][0] / sec, len(jobs) / sec
                rows.append(
                    (f"fingerprint {len(jobs)} clips", f"Ray, {w} worker(s)", sec, rate, ratio, "=" if same else "≠")
                )
        ray.shutdown()
    print()
    print(f"{'stage':<28} {'where':<30} {'seconds':>8} {'items/s':>12} {'x baseline':>10} {'same':>5}")
    for stage, where, sec, rate, ratio, same in rows:
        print(f"{stage:<28} {where:<30} {sec:>8.2f} {rate:>12,.0f} {ratio:>10.2f} {same:>5}")
    notes.append(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
