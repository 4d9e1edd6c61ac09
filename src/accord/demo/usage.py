"""A simulated month of usage for the demo's generated pieces, deterministic under a seed.

Every released output gets its generation event, then plays, streams and a few downloads
from listeners in a handful of territories, with popularity skewed so that some pieces earn
more than others; the month's revenue is subscription income (many small payments) plus a
few sales. The same seed, outputs and period give the same events, byte for byte.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from accord.outputs.store import list_outputs
from accord.registry.store import Store
from accord.royalties.periods import period_bounds

TERRITORIES = ("GB", "US", "DE", "FR", "JP", "BR")
KINDS = ("play", "stream", "download")
KIND_ODDS = (6, 3, 1)


def simulate_month(
    store: Store,
    period: str,
    *,
    seed: int = 0,
    subscribers: int = 250,
    price: str = "9.99",
    currency: str = "EUR",
    sales: int = 5,
    sale_price: str = "4.99",
) -> list[dict[str, Any]]:
    """Events for every released output in ``period`` (JSON-ready dicts, sorted by time then id)."""
    rng = random.Random(seed)
    start, end = period_bounds(period)
    seconds = int((end - start).total_seconds()) - 1

    def when() -> str:
        return (start + timedelta(seconds=rng.randint(0, seconds))).isoformat().replace("+00:00", "Z")

    events: list[dict[str, Any]] = []
    for rank, out in enumerate(list_outputs(store), start=1):
        base = {"creator": out.creator_id, "output_id": out.output_id, "model_id": out.model_id}
        events.append({"event_id": f"gen-{out.output_id}", "kind": "generation", "timestamp": when(),
                       "territory": rng.choice(TERRITORIES), **base})  # fmt: skip
        listens = max(1, int(200 / rank) + rng.randint(0, 40))  # a few hits, a long tail
        for n in range(listens):
            kind = rng.choices(KINDS, KIND_ODDS)[0]
            events.append({"event_id": f"{kind}-{out.output_id}-{n:05d}", "kind": kind, "timestamp": when(),
                           "territory": rng.choice(TERRITORIES), **base})  # fmt: skip
    for n in range(subscribers):
        events.append({"event_id": f"sub-{period}-{n:05d}", "kind": "revenue", "timestamp": when(), "amount": price,
                       "currency": currency, "period": period, "source": "subscription",
                       "territory": rng.choice(TERRITORIES)})  # fmt: skip
    for n in range(sales):
        events.append({"event_id": f"sale-{period}-{n:05d}", "kind": "revenue", "timestamp": when(),
                       "amount": sale_price, "currency": currency, "period": period, "source": "sale",
                       "territory": rng.choice(TERRITORIES)})  # fmt: skip
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return events


def revenue_total(events: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(e["amount"]) for e in events if e["kind"] == "revenue"), Decimal(0))


def write_jsonl(events: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events), encoding="utf-8")
    return path
