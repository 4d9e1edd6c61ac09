"""Royalties at scale: ingest and a full royalty run against two baselines, in the same process.

A synthetic period: a catalog of ``--recordings`` recordings (master owned by one or two of
2,000 labels, one work each owned by one or two of 1,000 publishers, every owner with a
catalog-wide agreement), 4 models trained on the whole catalog, ``--outputs`` outputs with
``--attr`` attribution entries each (80 % reliable), and ``--events`` usage events (Zipf-like
popularity) plus revenue. Measured:

* **ingest**: :func:`accord.royalties.usage.ingest_file` on a CSV of the events (validation
  against the registry's ids, dedupe, day-partitioned Parquet, commit), events/s;
* **run**: :func:`accord.royalties.engine.compute` over the Parquet log (both pools, every
  rounding step, the line and suspense tables), events/s and peak memory;
* **bare DuckDB chain** over the same Parquet: count usage per output → join attribution →
  join ownership → group by party (no pools, no rounding);
* **the reference** (:mod:`accord.royalties.reference`: the whole cascade, plain per-row Python)
  on the first ``--reference-sample`` events over the same catalog, scaled to the full period
  by events (and checked equal to the engine on that sample, party by party);
* **bare pyarrow**: read the same CSV and write the same rows as Parquet (no validation), the
  floor for ingest.

Targets (issue 14, item 7), on a quiet machine: a 10M-event period with 1M outputs × 10
attributions and 100k recordings in ≤ 5 s on 2 cores, ≤ 20× the bare chain, ≥ 100× the
reference; ingest ≥ 1M events/s.

Usage: ``python -m benchmarks.bench_royalties [--events 1000000,10000000] [--ingest-events 1000000]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from accord.datasets.manifest import ManifestItem
from accord.registry.entities import (
    PPM_WHOLE,
    Agreement,
    Catalog,
    CommercialTerms,
    Coverage,
    Recording,
    Share,
    Side,
    Territory,
    Use,
    Work,
)
from accord.royalties import reference
from accord.royalties.engine import compute
from accord.royalties.inputs import SCHEMAS, RunInputs
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.usage import EVENT_SCHEMA, KnownIds, ingest_file
from accord.settings import Settings

PERIOD = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
MODELS = 4


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def isrcs(n: int) -> np.ndarray:
    return np.char.add("GBXYZ26", np.char.zfill(np.arange(n).astype(str), 5))


def build_inputs(
    recordings: int, outputs: int, attr: int, rng: np.random.Generator
) -> tuple[RunInputs, pa.Table, Catalog]:
    """The registry snapshot as the engine sees it (Arrow), built directly at scale."""
    rec = isrcs(recordings)
    items = pa.table(
        {
            "model_id": np.repeat([f"M-{m}" for m in range(MODELS)], recordings),
            "isrc": np.tile(rec, MODELS),
            "weight": np.ones(MODELS * recordings, dtype=np.int64),
        },
        SCHEMAS["items"],
    )
    sides = pa.table(
        {
            "isrc": np.repeat(rec, 2),
            "side": np.tile(["master", "publishing"], recordings),
            "weight": np.tile([500_000, 500_000], recordings).astype(np.int64),
        },
        SCHEMAS["sides"],
    )
    works = pa.table(
        {
            "isrc": np.repeat(rec, 2),
            "side": np.tile(["master", "publishing"], recordings),
            "work_id": np.column_stack([np.full(recordings, ""), np.char.add("W-", rec)]).ravel(),
            "weight": np.ones(2 * recordings, dtype=np.int64),
        },
        SCHEMAS["works"],
    )
    rows: dict[str, list[Any]] = {k: [] for k in SCHEMAS["holders"].names}
    co = rng.random(recordings) < 0.3  # 30 % co-owned 60/40
    labels, pubs = rng.integers(0, 2000, (recordings, 2)), rng.integers(0, 1000, (recordings, 2))
    labels[:, 1], pubs[:, 1] = (labels[:, 0] + 1) % 2000, (pubs[:, 0] + 1) % 1000  # co-owners differ
    for side, owners, work in (
        ("master", labels, np.full(recordings, "")),
        ("publishing", pubs, np.char.add("W-", rec)),
    ):
        prefix = "P-L" if side == "master" else "P-P"
        for k in (0, 1):
            mask = co if k == 1 else np.ones(recordings, dtype=bool)
            share = np.where(co, 600_000 if k == 0 else 400_000, PPM_WHOLE)[mask]
            party = np.char.add(prefix, owners[mask, k].astype(str))
            for basis in ("training", "output"):
                rows["isrc"].append(rec[mask])
                rows["side"].append(np.full(mask.sum(), side))
                rows["work_id"].append(work[mask])
                rows["basis"].append(np.full(mask.sum(), basis))
                rows["party_id"].append(party)
                rows["weight"].append(share)
                rows["share_ppm"].append(share)
                rows["agreement_id"].append(np.char.add("A-", party))
                rows["pool_ppm"].append(np.full(mask.sum(), 500_000))
    holders = pa.table({k: np.concatenate(v) for k, v in rows.items()}, SCHEMAS["holders"])
    out_ids = np.char.add("O-", np.arange(outputs).astype(str))
    picks = rng.integers(0, recordings, (outputs, attr))
    raw = rng.integers(1, 100, (outputs, attr))
    reliable = rng.random(outputs) < 0.8
    attributed = 700_000
    weights = raw * attributed // raw.sum(axis=1, keepdims=True)
    weights[:, 0] += attributed - weights.sum(axis=1)
    attribution = pa.table(
        {
            "output_id": np.concatenate([np.repeat(out_ids[reliable], attr), out_ids[reliable], out_ids[~reliable]]),
            "isrc": np.concatenate([rec[picks[reliable]].ravel(), np.full(reliable.sum() + (~reliable).sum(), "")]),
            "weight": np.concatenate(
                [
                    weights[reliable].ravel(),
                    np.full(reliable.sum(), 1_000_000 - attributed),
                    np.full((~reliable).sum(), PPM_WHOLE),
                ]
            ).astype(np.int64),
        },
        SCHEMAS["attribution"],
    )
    # a recording drawn twice for one output is one entry, as the credential's attribution holds it
    merged = attribution.group_by(["output_id", "isrc"], use_threads=False).aggregate([("weight", "sum")])
    attribution = pa.table([merged["output_id"], merged["isrc"], merged["weight_sum"]], schema=SCHEMAS["attribution"])
    inputs = RunInputs(PERIOD, attribution, items, sides, works, holders, {}, {})
    known = pa.table({"output_id": out_ids, "model_id": np.char.add("M-", (np.arange(outputs) % MODELS).astype(str))})
    return inputs, known, catalog_of(rec, labels, pubs, co)


def catalog_of(rec: np.ndarray, labels: np.ndarray, pubs: np.ndarray, co: np.ndarray) -> Catalog:
    """The same registry as registry objects, for the reference (it reads a catalog, not the engine's tables)."""
    uses = frozenset({Use.TRAIN, Use.GENERATE})
    world, start = Territory(worldwide=True), datetime(2026, 1, 1, tzinfo=UTC)

    def shares(prefix: str, owners: np.ndarray, both: bool) -> tuple[Share, ...]:
        if not both:
            return (Share(f"{prefix}{owners[0]}", PPM_WHOLE),)
        return (Share(f"{prefix}{owners[0]}", 600_000), Share(f"{prefix}{owners[1]}", 400_000))

    recs, works, parties = [], [], set()
    for i, isrc in enumerate(rec.tolist()):
        masters, publishers = shares("P-L", labels[i], bool(co[i])), shares("P-P", pubs[i], bool(co[i]))
        recs.append(Recording(isrc, isrc, (), 0, (f"W-{isrc}",), masters))
        works.append(Work(f"W-{isrc}", isrc, "", (), publishers))
        parties |= {(s.party_id, Side.MASTER) for s in masters} | {(s.party_id, Side.PUBLISHING) for s in publishers}
    agreements = [
        Agreement(f"A-{p}", p, side, uses, world, start, None, Coverage(catalog=True), CommercialTerms(500_000))
        for p, side in sorted(parties)
    ]
    return Catalog(
        works={w.work_id: w for w in works},
        recordings={r.isrc: r for r in recs},
        agreements={a.agreement_id: a for a in agreements},
    )


def events_table(n: int, outputs: int, rng: np.random.Generator) -> pa.Table:
    out = np.minimum((rng.zipf(1.3, n) - 1) % outputs, outputs - 1)
    kinds = rng.choice(np.array(["generation", "play", "stream", "download"]), n, p=[0.1, 0.5, 0.3, 0.1])
    seconds = rng.integers(0, 29 * 86400, n)
    r = 1000  # revenue events: 1,000 subscriptions of 9.99
    at = (np.datetime64("2026-11-01T00:00:00", "us") + seconds.astype("timedelta64[s]")).astype("datetime64[us]")

    def strings(values: np.ndarray, tail: list[str]) -> pa.ChunkedArray:
        head = pa.array(values, pa.string())  # a ChunkedArray past 2 GB of numpy text
        chunks = head.chunks if isinstance(head, pa.ChunkedArray) else [head]
        return pa.chunked_array([*chunks, pa.array(tail, pa.string())], pa.string())

    def col(values: np.ndarray, tail: str) -> pa.ChunkedArray:
        return strings(values, [tail] * r)

    return pa.table(
        {
            "event_id": strings(np.char.add("e", np.arange(n).astype(str)), [f"r{i}" for i in range(r)]),
            "kind": col(kinds, "revenue"),
            "at": pa.array(np.concatenate([at, at[:r]]), pa.timestamp("us", tz="UTC")),
            "creator_id": col(np.full(n, "C-1"), ""),
            "output_id": col(np.char.add("O-", out.astype(str)), ""),
            "model_id": col(np.char.add("M-", (out % MODELS).astype(str)), ""),
            "territory": col(np.full(n, "GB"), "GB"),
            "amount": np.concatenate([np.zeros(n, np.int64), np.full(r, 9_990_000)]),
            "currency": col(np.full(n, ""), "EUR"),
            "source": col(np.full(n, ""), "subscription"),
            "period": col(np.full(n, PERIOD), PERIOD),
            "batch_id": col(np.full(n, "bench"), "bench"),
        },
        EVENT_SCHEMA,
    )


BARE_SQL = """
WITH u AS (SELECT output_id, count(*) AS n FROM read_parquet({files}) WHERE kind <> 'revenue' GROUP BY output_id),
a AS (SELECT a.isrc, u.n * a.weight AS w FROM u JOIN attribution a USING (output_id) WHERE a.isrc <> ''),
o AS (SELECT h.party_id, sum(a.w * h.weight) AS w FROM a JOIN holders h USING (isrc) GROUP BY h.party_id)
SELECT count(*), sum(w) FROM o
"""


def bare_chain(files: list[Path], inputs: RunInputs) -> float:
    con = duckdb.connect()
    con.register("attribution", inputs.attribution)
    con.register("holders", inputs.holders.filter(pc.equal(inputs.holders.column("basis"), "output")))
    t = time.perf_counter()
    con.execute(BARE_SQL.format(files="[" + ", ".join(f"'{p}'" for p in files) + "]")).fetchall()
    return time.perf_counter() - t


def reference_sample(events: pa.Table, inputs: RunInputs, catalog: Catalog, sample: int) -> tuple[float, bool]:
    """The reference over the first ``sample`` events (and all the revenue): seconds, and whether it
    equals the engine on the same events party by party."""
    head = events.slice(0, sample)
    revenue = events.filter(pc.equal(events.column("kind"), "revenue"))
    rows = pa.concat_tables([head.filter(pc.not_equal(head.column("kind"), "revenue")), revenue])
    used = pc.unique(rows.column("output_id"))
    attr = inputs.attribution.filter(pc.is_in(inputs.attribution.column("output_id"), value_set=used))
    credentials: dict[str, dict[str, Any]] = {}
    for o, i, w in zip(*(attr.column(c).to_pylist() for c in ("output_id", "isrc", "weight")), strict=True):
        entry = credentials.setdefault(o, {"attribution": {"status": "computed", "reliable": True, "items": []}})
        if i:
            entry["attribution"]["items"].append({"isrc": i, "weight_ppm": w})
        else:
            entry["attribution"]["unattributed_ppm"] = w
    for entry in credentials.values():
        a = entry["attribution"]
        if not a["items"]:  # the unreliable ones: all of it by the training-pool method
            entry["attribution"] = {"status": "computed", "reliable": False}
    by_model: dict[str, list[ManifestItem]] = {}
    for m, i in zip(*(inputs.items.column(c).to_pylist() for c in ("model_id", "isrc")), strict=True):
        by_model.setdefault(m, []).append(ManifestItem(i, "", "midi", 0, 0, (), (), (), (), (), ""))
    log = rows.select(["kind", "output_id", "model_id", "amount", "currency", "period"]).to_pylist()
    policy = RoyaltyPolicy()
    t = time.perf_counter()
    ref = reference.compute(catalog, by_model, credentials, log, policy, PERIOD)
    took = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.parquet"
        pq.write_table(rows, path)
        engine = compute(inputs, [path], policy)
    got: dict[tuple[str, str], int] = {}
    for r in engine.lines.select(["party_id", "currency", "amount"]).to_pylist():
        got[(r["party_id"], r["currency"])] = got.get((r["party_id"], r["currency"]), 0) + r["amount"]
    return took, got == ref.payable() and engine.operator == ref.operator


def bare_ingest(path: Path, folder: Path) -> float:
    """Read the CSV and write the same rows as Parquet with pyarrow alone: no validation, no registry."""
    t = time.perf_counter()
    table = pacsv.read_csv(path)
    pq.write_table(table, folder / "bare.parquet", compression="zstd")
    return time.perf_counter() - t


def bench_ingest(n: int, known: pa.Table, rng: np.random.Generator, folder: Path) -> tuple[float, float, float]:
    from accord.registry.store import Store

    settings = Settings(home=folder / "home")
    store = Store.open(settings)
    table = events_table(n, known.num_rows, rng)
    path = folder / "ingest.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "kind", "timestamp", "creator", "output_id", "model_id", "territory", "amount",
                    "currency", "period", "source"])  # fmt: skip
        cols = table.to_pydict()
        for k in range(table.num_rows):
            rev = cols["kind"][k] == "revenue"
            w.writerow([cols["event_id"][k], cols["kind"][k], cols["at"][k].isoformat(), cols["creator_id"][k],
                        cols["output_id"][k], cols["model_id"][k], cols["territory"][k],
                        "9.99" if rev else "", cols["currency"][k], PERIOD if rev else "",
                        cols["source"][k]])  # fmt: skip
    ids = KnownIds(known, pa.table({"model_id": [f"M-{m}" for m in range(MODELS)]}))
    bare_ingest(path, folder)  # warm-up, not counted: the first Arrow-heavy call in a process pays the page faults
    t = time.perf_counter()
    result = ingest_file(store, settings, path, known=ids)
    took = time.perf_counter() - t
    assert result.new == table.num_rows
    t = time.perf_counter()
    again = ingest_file(store, settings, path, known=ids)
    assert again.new == 0
    dup = time.perf_counter() - t
    return took, dup, bare_ingest(path, folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1000000", help="Comma-separated event counts for the run.")
    parser.add_argument("--ingest-events", type=int, default=1_000_000)
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--outputs", type=int, default=1_000_000)
    parser.add_argument("--attr", type=int, default=10)
    parser.add_argument("--reference-sample", type=int, default=20_000, help="Events the reference runs on.")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    inputs, known, catalog = build_inputs(args.recordings, args.outputs, args.attr, rng)
    print(f"snapshot tables: {inputs.attribution.num_rows:,} attribution rows, {inputs.holders.num_rows:,} holder rows "
          f"built in {time.perf_counter() - t:.1f} s; peak {peak_mb():.0f} MB")  # fmt: skip
    rows = []
    notes = [f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.ingest_events:
            took, dup, bare = bench_ingest(args.ingest_events, known, rng, folder)
            n = args.ingest_events + 1000
            rows.append((f"ingest {n:,} events (CSV → Parquet)", took, n / took, took / bare, None))
            rows.append(("re-ingest the same batch (all duplicates)", dup, n / dup, dup / bare, None))
            rows.append(("  bare pyarrow: read the CSV, write Parquet", bare, n / bare, 1.0, None))
        for n in [int(x) for x in args.events.split(",") if x]:
            path = folder / f"events-{n}.parquet"
            events = events_table(n, args.outputs, rng)
            pq.write_table(events, path, compression="zstd")
            policy = RoyaltyPolicy()
            t, cpu = time.perf_counter(), time.process_time()
            result = compute(inputs, [path], policy)
            run, cpu = time.perf_counter() - t, time.process_time() - cpu
            notes.append(f"run {n:,} events: {cpu:.2f} s of CPU (all threads) in {run:.2f} s")
            bare = bare_chain([path], inputs)
            sample = min(args.reference_sample, n)
            took, same = reference_sample(events, inputs, catalog, sample)
            ref = took * n / sample
            rows.append((f"run {n:,} events ({result.lines.num_rows:,} lines)", run, n / run, run / bare, ref / run))
            rows.append(("  bare DuckDB chain, same Parquet", bare, n / bare, 1.0, None))
            label = f"  reference, {sample:,} events scaled ×{n / sample:,.0f} ({'=' if same else '≠'} engine)"
            rows.append((label, ref, n / ref, ref / bare, 1.0))
            print(f"events {n:,}: peak memory so far {peak_mb():.0f} MB")
            del events, result
    print()
    print(f"{'step':<58} {'seconds':>9} {'events/s':>12} {'x bare':>8} {'x faster than reference':>24}")
    for name, sec, eps, xb, xp in rows:
        print(
            f"{name:<58} {sec:>9.2f} {eps:>12,.0f} {'' if xb is None else f'{xb:.1f}':>8} "
            f"{'' if xp is None else f'{xp:.0f}':>24}"
        )
    print(f"peak memory (max RSS): {peak_mb():.0f} MB")
    notes.append(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
