"""Attribution benchmarks: latency per output, and FAISS against exact search, in the same run.

    python -m benchmarks.bench_attribution [--model MODEL_ID] [--sizes 10000,100000,1000000]
                                           [--faiss-sizes 10000,100000,1000000] [--json OUT]

1. **Per output on a real model** (``--model``, a model registered under ``ACCORD_HOME``; the
   demo's by default when one exists): the one-off index time per method, then each method's
   latency per output over outputs primed with manifest items (a query is one backward pass
   per member plus a product with the stored features, then the weighting). Without a
   registered model the planted tiny model is used, and labelled so.
2. **TRAK's product at scale**: the ``(n × k)`` kernel-applied features times one query's
   ``(k,)`` gradient, then the weighting (median, MAD, ranking), for synthetic features at each
   size, against the same product in float64 (the naive baseline). At 1,000,000 items the
   product is timed as 10 passes over a 100,000-row block (4 GB of features would not fit
   beside everyone else's work on the shared 2-core machine); the block is larger than any cache.
3. **FAISS**: HNSW32 (efSearch 64 and 128) against exact ``IndexFlatIP``, one query at a time,
   one thread, on clustered unit vectors of 256 dimensions: queries per second and recall@10
   against the exact answer.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from accord.attribution.weights import weigh

METHODS = ("trak", "tracin", "gradsim", "embedding")


def _real_model(model_id: str | None, outputs: int, console: Console) -> dict[str, Any]:
    """Index time and per-output latency of every method on a registered (or the planted) model."""
    from accord.attribution.evaluate import steer, steer_from_items
    from accord.attribution.methods import get_method
    from accord.attribution.service import attribute, context_for, context_for_model
    from accord.datasets import repository
    from accord.model.sample import load_model
    from accord.registry.store import Store
    from accord.settings import get_settings

    settings = get_settings()
    tmp = None
    if model_id is None and settings.resolved_database_url.startswith("sqlite:///"):
        db = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        if db.is_file():
            store = Store.open(settings)
            models = [m.model_id for m in repository.list_models(store)]
            model_id = models[-1] if models else None
    if model_id is not None:
        store = Store.open(settings)
        ctx = context_for_model(store, settings, model_id)
        label = f"model {model_id}"
        queries = steer_from_items(load_model(ctx.model_dir), ctx, count=outputs, bars=16)
    else:
        from accord.attribution.planted import build_planted_set
        from accord.model.train import train

        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name)
        ps = build_planted_set(root)
        train(ps.manifest, ps.loader, ps.catalog, root / "m", preset="tiny", steps=200, val_fraction=0.0)
        ctx = context_for(root / "m", ps.manifest, ps.catalog, ps.media)
        label = "planted tiny model (no registered model found)"
        queries = steer(load_model(root / "m"), ps, seeds=(1,))
    console.print(f"attribution latency on {label}: {len(ctx.isrcs)} items, {len(queries)} outputs ...")
    rows = []
    for name in METHODS:
        t0 = time.perf_counter()
        info = get_method(name).index(ctx)
        index_s = time.perf_counter() - t0
        attribute(ctx, queries[0].query, name)  # warm-up: networks and FAISS index into memory
        times = []
        for q in queries:
            t0 = time.perf_counter()
            attribute(ctx, q.query, name)
            times.append(time.perf_counter() - t0)
        rows.append(
            {
                "method": name,
                "items": len(ctx.isrcs),
                "index_s": round(index_s, 2),
                "index_bytes": int(info.get("bytes", 0)),
                "median_ms": round(1000 * statistics.median(times), 1),
                "max_ms": round(1000 * max(times), 1),
                "members": int(info.get("members", 0)),
            }
        )
    meta = (
        json.loads((ctx.index_dir / "gradients.json").read_text())
        if (ctx.index_dir / "gradients.json").is_file()
        else {}
    )
    if tmp is not None:
        tmp.cleanup()
    return {
        "model": label,
        "rows": rows,
        "gradient_index": {k: meta.get(k) for k in ("k", "members", "seconds", "items")},
    }


def _trak_product(sizes: list[int], k: int, console: Console) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    block_rows = 100_000
    for n in sizes:
        block = rng.standard_normal((min(n, block_rows), k), dtype=np.float32)
        passes = max(1, n // len(block))
        isrcs = [f"X{i:09d}" for i in range(n)]
        q = rng.standard_normal(k, dtype=np.float32)
        times, naive, weigh_times = [], [], []
        for _ in range(5):
            t0 = time.perf_counter()
            scores = np.concatenate([block @ q for _ in range(passes)])
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(passes):
                block.astype(np.float64) @ q.astype(np.float64)
            naive.append(time.perf_counter() - t0)
            scores[17] += 50 * float(scores.std())
            t0 = time.perf_counter()
            weigh(scores, isrcs, floor=0.2, causal=True)
            weigh_times.append(time.perf_counter() - t0)
        rows.append(
            {
                "items": n,
                "k": k,
                "product_ms": round(1000 * statistics.median(times), 2),
                "float64_ms": round(1000 * statistics.median(naive), 2),
                "weighting_ms": round(1000 * statistics.median(weigh_times), 2),
                "feature_mb": round(n * k * 4 / 1e6, 1),
                "measured_as": f"{passes} x {len(block):,}-row block" if passes > 1 else "one block",
            }
        )
        console.print(f"  TRAK product n={n:,}: {rows[-1]['product_ms']} ms")
    return rows


def _clustered(n: int, d: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.standard_normal((n, d), dtype=np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _faiss(sizes: list[int], d: int, queries: int, console: Console) -> list[dict[str, Any]]:
    import faiss

    from accord.attribution.similarity import build_faiss

    rng = np.random.default_rng(1)
    centers = rng.standard_normal((1000, d), dtype=np.float32)
    rows = []
    for n in sizes:
        faiss.omp_set_num_threads(2)  # build with both cores; queries are timed on one
        x = _clustered(n, d, rng, centers)
        qs = _clustered(queries, d, rng, centers)
        exact = build_faiss(x, hnsw=False)
        t0 = time.perf_counter()
        hnsw = build_faiss(x, hnsw=True)
        build_s = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        t0 = time.perf_counter()
        truth = [exact.search(qs[i : i + 1], 10)[1][0] for i in range(queries)]
        exact_qps = queries / (time.perf_counter() - t0)
        row: dict[str, Any] = {
            "items": n,
            "dim": d,
            "exact_qps": round(exact_qps, 1),
            "hnsw_build_s": round(build_s, 1),
        }
        for ef in (64, 128):
            hnsw.hnsw.efSearch = ef
            t0 = time.perf_counter()
            found = [hnsw.search(qs[i : i + 1], 10)[1][0] for i in range(queries)]
            qps = queries / (time.perf_counter() - t0)
            recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))
            row[f"hnsw_ef{ef}_qps"] = round(qps, 1)
            row[f"hnsw_ef{ef}_recall10"] = round(recall, 4)
        rows.append(row)
        console.print(f"  FAISS n={n:,}: {row}")
        del exact, hnsw, x
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="registered model id (default: the newest under ACCORD_HOME)")
    parser.add_argument("--outputs", type=int, default=5, help="outputs to time per method")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="synthetic manifest sizes")
    parser.add_argument("--faiss-sizes", default="10000,100000,1000000", help="FAISS comparison sizes")
    parser.add_argument("--k", type=int, default=2048, help="projected dimensions of the synthetic TRAK features")
    parser.add_argument("--dim", type=int, default=256, help="vector dimensions of the FAISS comparison")
    parser.add_argument("--queries", type=int, default=200, help="queries per FAISS measure")
    parser.add_argument("--skip-model", action="store_true", help="only the synthetic measures")
    parser.add_argument("--only-model", action="store_true", help="only the per-output measures on a model")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    console = Console(width=160)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    result: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}"}
    if not args.skip_model:
        result["per_output"] = _real_model(args.model, args.outputs, console)
        t = Table(title=f"Attribution per output: {result['per_output']['model']}", title_justify="left")
        for col in ("method", "items", "index (s)", "index MB", "median ms/output", "max ms"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for r in result["per_output"]["rows"]:
            t.add_row(
                r["method"], f"{r['items']:,}", f"{r['index_s']:.1f}", f"{r['index_bytes'] / 1e6:.1f}",
                f"{r['median_ms']:.1f}", f"{r['max_ms']:.1f}",
            )  # fmt: skip
        console.print(t)
    if args.only_model:
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return result
    result["trak_product"] = _trak_product(sizes, args.k, console)
    t = Table(title=f"TRAK query product at scale (k = {args.k}, float32, one thread)", title_justify="left")
    for col in ("items", "features MB", "product ms", "float64 ms", "weighting ms", "measured as"):
        t.add_column(col, justify="right")
    for r in result["trak_product"]:
        t.add_row(
            f"{r['items']:,}", f"{r['feature_mb']:,.0f}", f"{r['product_ms']:.1f}", f"{r['float64_ms']:.1f}",
            f"{r['weighting_ms']:.1f}", r["measured_as"],
        )  # fmt: skip
    console.print(t)
    result["faiss"] = _faiss([int(s) for s in args.faiss_sizes.split(",") if s], args.dim, args.queries, console)
    t = Table(title=f"FAISS HNSW32 vs exact, {args.dim} dims, one query at a time, one thread", title_justify="left")
    for col in ("items", "exact q/s", "HNSW ef64 q/s", "recall@10", "HNSW ef128 q/s", "recall@10 ", "build (s)"):
        t.add_column(col, justify="right")
    for r in result["faiss"]:
        t.add_row(
            f"{r['items']:,}", f"{r['exact_qps']:,.0f}", f"{r['hnsw_ef64_qps']:,.0f}", f"{r['hnsw_ef64_recall10']:.3f}",
            f"{r['hnsw_ef128_qps']:,.0f}", f"{r['hnsw_ef128_recall10']:.3f}", f"{r['hnsw_build_s']:.1f}",
        )  # fmt: skip
    console.print(t)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
