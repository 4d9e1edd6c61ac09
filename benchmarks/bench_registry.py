"""Registry benchmarks: delivery import, snapshot load, and licensing decisions per second.

    python -m benchmarks.bench_registry [--sizes 1000,10000,100000]

Baselines, measured in the same run on the same data:

- import: a bare SQLAlchemy Core ``executemany`` of the same rows into the same schema
  (no reading, no validation, no versioning, no audit) — the floor for writing them;
- decisions: a bare loop that only looks up each recording's owners and checks that each
  has *some* agreement (no dates, uses, territories, opt-outs or reasons).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from accord.licensing import LicensingPolicy
from accord.registry import rows
from accord.registry.importer import import_delivery
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.settings import Settings

LABELS = 20
PUBLISHERS = 12


def synthetic_delivery(n: int) -> dict[str, Any]:
    """``n`` recordings, one work each, co-owned masters and split publishing, licences and opt-outs."""
    parties = [{"id": f"P-L{i:02d}", "kind": "label", "name": f"Label {i}"} for i in range(LABELS)]
    parties += [{"id": f"P-P{i:02d}", "kind": "publisher", "name": f"Publisher {i}"} for i in range(PUBLISHERS)]
    parties += [{"id": f"P-A{i:03d}", "kind": "artist", "name": f"Artist {i}"} for i in range(200)]
    parties += [{"id": "P-W", "kind": "writer", "name": "Writer"}]
    works, recordings = [], []
    for i in range(n):
        works.append(
            {
                "id": f"W-{i:07d}",
                "title": f"Work {i}",
                "writers": ["P-W"],
                "shares": [
                    {"party": f"P-P{i % PUBLISHERS:02d}", "share": "66.6667"},
                    {"party": f"P-P{(i + 1) % PUBLISHERS:02d}", "share": "33.3333"},
                ],
            }
        )
        shares = [{"party": f"P-L{i % LABELS:02d}", "share": "100"}]
        if i % 7 == 0:
            shares = [
                {"party": f"P-L{i % LABELS:02d}", "share": "60"},
                {"party": f"P-L{(i + 3) % LABELS:02d}", "share": "40"},
            ]
        recordings.append(
            {
                "isrc": f"ZZBEN{26:02d}{i % 100000:05d}"
                if i < 100000
                else f"ZZBE{i // 100000}{26:02d}{i % 100000:05d}",
                "title": f"Recording {i}",
                "artists": [f"P-A{i % 200:03d}"],
                "duration_ms": 60000 + (i * 7919) % 240000,
                "genre": ("reel", "jig", "air", "chorale")[i % 4],
                "works": [f"W-{i:07d}"],
                "shares": shares,
            }
        )
    agreements = []
    for i in range(LABELS):
        if i % 5 == 4:
            continue  # some labels have not signed
        agreements.append(
            {
                "id": f"AGR-M-{i:02d}",
                "licensor": f"P-L{i:02d}",
                "side": "master",
                "uses": ["train", "generate", "remix"] if i % 3 else ["generate"],
                "territory": {"worldwide": True, "exclude": ["FR"]} if i % 2 else {"include": ["GB", "US"]},
                "start": "2026-01-01",
                "end": "2026-06-30" if i == 1 else None,
                "coverage": {"catalog": True},
                "terms": {"pool_share": "30"},
            }
        )
    for i in range(PUBLISHERS - 2):
        agreements.append(
            {
                "id": f"AGR-P-{i:02d}",
                "licensor": f"P-P{i:02d}",
                "side": "publishing",
                "uses": ["train", "generate", "remix"],
                "territory": {"worldwide": True},
                "start": "2026-01-01",
                "coverage": {"catalog": True},
                "terms": {"pool_share": "30"},
            }
        )
    optouts = [
        {"id": f"OPT-{i}", "party": f"P-A{i:03d}", "scope": "catalog", "uses": ["train"], "effective": "2026-09-01"}
        for i in range(0, 200, 40)
    ]
    return {
        "accord_delivery": "1.0",
        "delivery_id": f"BENCH-{n}",
        "sender": "P-L00",
        "created": "2026-11-01T00:00:00Z",
        "parties": parties,
        "works": works,
        "recordings": recordings,
        "agreements": agreements,
        "optouts": optouts,
    }


def bench_import(n: int, workdir: Path) -> dict[str, float]:
    folder = workdir / f"delivery-{n}"
    folder.mkdir()
    (folder / "catalog.json").write_text(json.dumps(synthetic_delivery(n)))

    home = workdir / f"home-{n}"
    store = Store.open(Settings(home=home))
    t0 = time.perf_counter()
    report = import_delivery(store, folder)
    full = time.perf_counter() - t0
    assert report.changed_anything

    t0 = time.perf_counter()
    again = import_delivery(store, folder)
    repeat = time.perf_counter() - t0
    assert not again.changed_anything

    t0 = time.perf_counter()
    catalog = store.snapshot()
    snapshot = time.perf_counter() - t0

    # Baseline: the same rows straight into an empty database of the same schema.
    base_store = Store.open(Settings(home=workdir / f"base-{n}"))
    now = datetime.now(UTC)
    extra = {"version": 1, "recorded_from": now, "recorded_to": None, "delivery_pk": None, "recorded_by": "bench"}
    t0 = time.perf_counter()
    with base_store.engine.begin() as conn:
        t = Base.metadata.tables
        conn.execute(insert(t["parties"]), [rows.party_values(p) | extra for p in catalog.parties.values()])
        conn.execute(insert(t["works"]), [rows.work_values(w) | extra for w in catalog.works.values()])
        conn.execute(
            insert(t["work_shares"]),
            [
                {"work_id": w.work_id, "version": 1, "party_id": s.party_id, "share_ppm": s.ppm}
                for w in catalog.works.values()
                for s in w.shares
            ],
        )
        conn.execute(insert(t["recordings"]), [rows.recording_values(r) | extra for r in catalog.recordings.values()])
        conn.execute(
            insert(t["recording_shares"]),
            [
                {"isrc": r.isrc, "version": 1, "party_id": s.party_id, "share_ppm": s.ppm}
                for r in catalog.recordings.values()
                for s in r.shares
            ],
        )
    bare = time.perf_counter() - t0

    at = datetime(2026, 12, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    policy = LicensingPolicy(catalog)
    decisions = list(policy.decide_all("train", at, "GB"))
    policy_s = time.perf_counter() - t0
    eligible = sum(d.eligible for d in decisions)

    licensors = {(a.licensor, a.side.value) for a in catalog.agreements.values()}
    t0 = time.perf_counter()
    naive = 0
    for rec in catalog.recordings.values():
        ok = all((s.party_id, "master") in licensors for s in rec.shares if s.ppm)
        for wid in rec.works:
            ok = ok and all((s.party_id, "publishing") in licensors for s in catalog.works[wid].shares if s.ppm)
        naive += ok
    naive_s = time.perf_counter() - t0
    store.close()
    base_store.close()
    return {
        "n": n,
        "import_s": full,
        "repeat_s": repeat,
        "snapshot_s": snapshot,
        "bare_insert_s": bare,
        "decide_s": policy_s,
        "naive_s": naive_s,
        "eligible": eligible,
        "naive_ok": naive,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated catalog sizes")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console(width=160)
    results = []
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        for n in sizes:
            console.print(f"registry benchmark: {n:,} recordings ...")
            results.append(bench_import(n, Path(tmp)))
    table = Table(
        title=f"Registry benchmark ({platform.processor() or platform.machine()}, {platform.python_version()})"
    )
    for col in (
        "recordings",
        "import (s)",
        "recordings/s",
        "bare insert (s)",
        "import ÷ bare",
        "re-import (s)",
        "snapshot (s)",
        "decisions/s",
        "bare lookups/s",
        "decide ÷ bare",
    ):
        table.add_column(col, justify="right")
    for r in results:
        n = r["n"]
        table.add_row(
            f"{n:,}",
            f"{r['import_s']:.2f}",
            f"{n / r['import_s']:,.0f}",
            f"{r['bare_insert_s']:.2f}",
            f"{r['import_s'] / r['bare_insert_s']:.1f}×",
            f"{r['repeat_s']:.2f}",
            f"{r['snapshot_s']:.2f}",
            f"{n / r['decide_s']:,.0f}",
            f"{n / r['naive_s']:,.0f}",
            f"{r['decide_s'] / r['naive_s']:.1f}×",
        )
    console.print(table)


if __name__ == "__main__":
    main()
