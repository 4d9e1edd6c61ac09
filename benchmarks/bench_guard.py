"""Replication-guard latency per output, against brute-force alignment measured in the same run.

    python -m benchmarks.bench_guard [--sizes 10000,100000] [--home DEMO_HOME] [--queries 20]

For each catalog the symbolic guard answers ``--queries`` outputs of 24 bars (an 8-bar copy of a
random catalog work, transposed and 20% edited, between 8 bars of other material before and
after; plus as many originals): n-gram lookup in the inverted index, then alignment of the
best candidates (:meth:`accord.attribution.guard.Guard.passages`). The baseline is what the
guard would cost without its index: the same alignment against **every** catalog line,
measured on a sample of ``--sample`` lines and extrapolated to the catalog (it is linear in
the number of lines). "found" is the share of planted copies whose source is the closest work.

Catalogs: the demo catalog (``--home``: an ACCORD_HOME with ``accord catalog demo`` imported;
skipped when absent) and synthetic catalogs of ``--sizes`` works, one 8-bar melody each
(about 60 notes: a diatonic walk with folk-like rhythms), built with the production index code.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from accord.attribution.guard.align import align_many
from accord.attribution.guard.check import Guard
from accord.attribution.guard.evaluate import _disguise, _embed, _excerpt
from accord.attribution.guard.index import CatalogPiece, index_from_arrays
from accord.attribution.guard.lines import LINE_KINDS
from accord.attribution.guard.ngrams import Encoded, rhythm_classes
from accord.attribution.guard.policy import default_policy

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
BAR_RHYTHMS = (  # beats per note, each summing to 4
    (0.5,) * 8,
    (1.0, 0.5, 0.5, 1.0, 0.5, 0.5),
    (0.75, 0.25, 0.5, 0.5, 1.0, 1.0),
    (0.5, 0.5, 1.0, 0.5, 0.5, 1.0),
    (1.5, 0.5, 1.0, 1.0),
)


def synthetic_catalog(n: int, bars: int = 8, seed: int = 0) -> Guard:
    """``n`` synthetic works of ``bars`` bars each, indexed with the production code (no disk)."""
    rng = np.random.default_rng(seed)
    width = max(len(r) for r in BAR_RHYTHMS)
    table = np.zeros((len(BAR_RHYTHMS), width))
    for i, r in enumerate(BAR_RHYTHMS):
        table[i, : len(r)] = r
    choice = rng.integers(0, len(BAR_RHYTHMS), size=(n, bars))
    lengths = (table[choice] > 0).sum(axis=(1, 2))
    starts = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    total = int(starts[-1])
    gathered = table[choice].reshape(-1)
    beats = gathered[gathered > 0]
    onset_beats = np.cumsum(beats) - beats
    onset_beats -= np.repeat(onset_beats[starts[:-1]], lengths)
    steps = rng.choice(np.array([-2, -1, -1, 0, 1, 1, 2, 3, -3]), size=total)
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[starts[:-1]], lengths)
    degree = np.clip(walk + np.repeat(rng.integers(0, 7, size=n), lengths), -7, 14)
    tonic = np.repeat(rng.integers(55, 67, size=n), lengths)
    pitches = (tonic + 12 * (degree // 7) + MAJOR[degree % 7]).astype(np.int16)
    seconds = onset_beats * 0.5  # 120 bpm
    line_id = np.repeat(np.arange(n), lengths)
    rhythm = rhythm_classes(seconds + line_id * 10_000.0)  # ratios across a line boundary are reset below
    rhythm[starts[:-1]] = -128
    rhythm[np.minimum(starts[:-1] + 1, total - 1)] = -128
    bars_of = (np.floor(onset_beats / 4) + 1).astype(np.int32)
    pieces = [CatalogPiece(f"SYN{i:09d}", f"Synthetic {i}", "") for i in range(n)]
    index = index_from_arrays(
        pieces,
        np.arange(n, dtype=np.int32),
        np.zeros(n, dtype=np.int8),
        starts,
        pitches,
        rhythm,
        bars_of,
        seconds.astype(np.float32),
        f"synthetic-{n}",
    )
    return Guard(index, default_policy(), None, candidates=8)


def planted_queries(guard: Guard, count: int, seed: int) -> list[tuple[Encoded, int]]:
    """``count`` disguised 8-bar copies (with their source) and ``count`` originals (source -1)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[Encoded, int]] = []
    tries = 0
    while len(out) < count and tries < 50 * count:
        tries += 1
        piece = int(rng.integers(0, len(guard.index.pieces)))
        melody = guard.melody(piece)
        ex = None if melody is None else _excerpt(melody, 8, rng)
        if ex is not None:
            out.append((_embed(*_disguise(*ex, 0.2, rng), rng), piece))
    for _ in range(count):
        p = 60 + np.cumsum(rng.choice([-2, -1, 1, 2], size=150))
        o = np.cumsum(rng.choice([0.25, 0.25, 0.5], size=150))
        out.append((Encoded(p.astype(np.int16), rhythm_classes(o), (o // 2 + 1).astype(np.int32), o), -1))
    return out


def measure(name: str, guard: Guard, queries: int, sample: int, seed: int) -> dict[str, object]:
    planted = planted_queries(guard, queries, seed)
    times, found = [], 0
    for line, source in planted:
        t0 = time.perf_counter()
        result = guard.passages([("melody", line)])
        times.append(time.perf_counter() - t0)
        if source >= 0 and result:
            best = max(result.items(), key=lambda kv: kv[1][0].score)[0]
            found += best == source
    # baseline: align against every line, measured on a sample and extrapolated
    entries = guard.index.entries
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(entries, size=min(sample, entries), replace=False)
    lines = [guard.index.entry(int(e)) for e in chosen]
    lines = [Encoded(x.pitches, x.rhythm, x.bars, x.onsets, x.rarity) for x in lines]
    base = []
    for line, _ in planted[: max(3, queries // 4)]:
        t0 = time.perf_counter()
        align_many(line, lines)
        base.append((time.perf_counter() - t0) / len(lines) * entries)
    ms = [t * 1000 for t in times]
    return {
        "catalog": name,
        "works": len(guard.index.pieces),
        "lines": entries,
        "grams": len(guard.index.gram_keys),
        "index_mb": sum(getattr(guard.index, a).nbytes for a in ("gram_keys", "gram_starts", "postings", "idf")) / 1e6,
        "median_ms": statistics.median(ms),
        "p95_ms": float(np.percentile(ms, 95)),
        "brute_ms": statistics.median(base) * 1000,
        "found": found / max(1, sum(1 for _, s in planted if s >= 0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="Synthetic catalog sizes (comma-separated).")
    parser.add_argument("--home", default="", help="ACCORD_HOME holding the demo catalog (default: the settings').")
    parser.add_argument("--queries", type=int, default=20, help="Planted copies per catalog (and as many originals).")
    parser.add_argument("--sample", type=int, default=300, help="Lines aligned by the brute-force baseline.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console()
    rows, builds = [], {}
    from accord.registry.store import Store
    from accord.settings import Settings, get_settings

    settings = Settings(home=Path(args.home)) if args.home else get_settings()
    if (settings.home / "accord.db").is_file():
        store = Store.open(settings)
        t0 = time.perf_counter()
        demo = Guard.for_store(store, settings, audio=False)
        builds["demo"] = time.perf_counter() - t0
        if demo.index.entries:
            rows.append(measure("demo", demo, args.queries, args.sample, args.seed))
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        t0 = time.perf_counter()
        guard = synthetic_catalog(size, seed=args.seed)
        builds[f"synthetic {size:,}"] = time.perf_counter() - t0
        rows.append(measure(f"synthetic {size:,}", guard, args.queries, args.sample, args.seed))
        del guard
    table = Table(title="Replication guard (symbolic): latency per output", title_justify="left")
    columns = ("catalog", "works", "lines", "n-grams", "index MB", "build s", "median ms", "p95 ms", "brute ms", "×")
    for col in (*columns, "found"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["catalog"]),
            f"{r['works']:,}",
            f"{r['lines']:,}",
            f"{r['grams']:,}",
            f"{r['index_mb']:.1f}",
            f"{builds[str(r['catalog'])]:.1f}",
            f"{r['median_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['brute_ms']:,.0f}",
            f"{r['brute_ms'] / r['median_ms']:,.0f}×",
            f"{r['found']:.2f}",
        )
    console.print(table)
    console.print(f"line kinds: {', '.join(LINE_KINDS)}; baseline extrapolated from {args.sample} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
