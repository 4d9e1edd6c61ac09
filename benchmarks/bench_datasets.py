"""Dataset benchmarks: manifest build, Merkle tree and proofs, and the taint audit.

    python -m benchmarks.bench_datasets [--sizes 10000,100000]

Baselines measured in the same run:

- audit: the naive audit, re-deciding every item of the manifest for every audited use
  (what the indexed audit avoids by re-deciding only the items a change touched);
- Merkle: hashing the same leaves once with SHA-256 (the floor for any tree over them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tests.factories import agreement, optout

from accord.datasets import service
from accord.datasets.merkle import MerkleTree, verify_inclusion
from accord.datasets.proofs import make_proof, verify_proof
from accord.datasets.taint import AUDITED_USES
from accord.licensing import LicensingPolicy
from accord.registry.importer import import_delivery
from accord.registry.store import ChangeSet, Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from benchmarks.bench_registry import synthetic_delivery


def bench(n: int, workdir: Path) -> dict[str, float]:
    folder = workdir / f"d{n}"
    folder.mkdir()
    (folder / "catalog.json").write_text(json.dumps(synthetic_delivery(n)))
    t = [datetime(2026, 11, 1, tzinfo=UTC)]

    def clock() -> datetime:
        t[0] += timedelta(seconds=1)
        return t[0]

    settings = Settings(home=workdir / f"h{n}")
    store = Store.open(settings, clock=clock)
    import_delivery(store, folder)
    # Give every recording a (virtual) MIDI file so it can be a training item.
    cat = store.snapshot()
    from dataclasses import replace

    from accord.registry.entities import MediaRef

    with_media = tuple(
        replace(r, media=(MediaRef(hashlib.sha256(r.isrc.encode()).hexdigest(), "midi", 1000, ""),))
        for r in cat.recordings.values()
    )
    # License (almost) everything, so the manifest holds ~all recordings: the audit's worst case.
    blanket = tuple(
        agreement(f"AGR-BLANKET-{p}-{side}", p, side)
        for p in sorted(cat.parties)
        if p.startswith(("P-L", "P-P"))
        for side in ("master", "publishing")
    )
    store.apply(ChangeSet(recordings=with_media, agreements=blanket), actor="bench", action="bench")
    key, _ = ensure_operator_key(settings.home)

    t0 = time.perf_counter()
    manifest, _, _ = service.build(store, key, use="train", as_of=clock(), territory="GB")
    build_s = time.perf_counter() - t0
    items = len(manifest.items)

    leaves = [manifest.leaf_key(n) + manifest.leaf_item_hash(n) for n in range(items)]  # keyed commitments
    t0 = time.perf_counter()
    tree = MerkleTree(leaves)
    tree_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for leaf in leaves:
        hashlib.sha256(b"\x00" + leaf).digest()
    hash_s = time.perf_counter() - t0

    sample = [manifest.items[i].isrc for i in range(0, items, max(1, items // 200))]
    t0 = time.perf_counter()
    proofs = [make_proof(manifest, tree, key, isrc) for isrc in sample]
    prove_s = (time.perf_counter() - t0) / len(sample)
    t0 = time.perf_counter()
    assert all(verify_proof(p, manifest.root, public_key_hex=key.public_hex).valid for p in proofs)
    verify_s = (time.perf_counter() - t0) / len(sample)
    assert verify_inclusion(leaves[0], 0, items, tree.inclusion_proof(0), tree.root)

    # An opt-out by one artist touching ~0.5% of the catalog, then the audit.
    store.apply(
        ChangeSet(optouts=(optout("OPT-BENCH", "P-A007", "catalog", "", ("train",), clock()),)),
        actor="bench",
        action="bench",
    )
    at = clock()
    t0 = time.perf_counter()
    report = service.audit(store, at)
    audit_s = time.perf_counter() - t0
    flagged = len({f.isrc for f in report.manifests[0].flags})

    t0 = time.perf_counter()
    catalog = store.snapshot(at)
    policy = LicensingPolicy(catalog)
    naive = sum(
        1 for item in manifest.items if any(not policy.decide(item.isrc, u, at, "GB").eligible for u in AUDITED_USES)
    )
    naive_s = time.perf_counter() - t0
    assert naive >= flagged
    store.close()
    return {
        "n": n,
        "items": items,
        "build_s": build_s,
        "tree_s": tree_s,
        "hash_s": hash_s,
        "prove_ms": prove_s * 1000,
        "verify_ms": verify_s * 1000,
        "audit_s": audit_s,
        "naive_s": naive_s,
        "flagged": flagged,
        "rechecked": report.manifests[0].rechecked,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated catalog sizes")
    args = parser.parse_args(argv)
    console = Console(width=170)
    results = []
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            console.print(f"datasets benchmark: {n:,} recordings ...")
            results.append(bench(n, Path(tmp)))
    table = Table(title=f"Datasets benchmark ({platform.machine()}, Python {platform.python_version()})")
    cols = (
        "recordings",
        "items",
        "build+sign (s)",
        "tree (s)",
        "tree ÷ bare hash",
        "prove (ms)",
        "verify (ms)",
        "audit (s)",
        "rechecked",
        "flagged",
        "naive audit (s)",
        "naive ÷ audit",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r['n']:,}",
            f"{r['items']:,}",
            f"{r['build_s']:.2f}",
            f"{r['tree_s']:.3f}",
            f"{r['tree_s'] / r['hash_s']:.1f}×",
            f"{r['prove_ms']:.2f}",
            f"{r['verify_ms']:.2f}",
            f"{r['audit_s']:.2f}",
            f"{r['rechecked']:,}",
            f"{r['flagged']:,}",
            f"{r['naive_s']:.2f}",
            f"{r['naive_s'] / r['audit_s']:.1f}×",
        )
    console.print(table)


if __name__ == "__main__":
    main()
