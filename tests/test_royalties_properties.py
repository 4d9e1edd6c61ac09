"""Properties of the royalty engine: conservation to the micro-unit, no negative money, exact rounding."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.manifest import ManifestItem
from accord.money import allocate
from accord.registry.entities import Catalog
from accord.royalties.engine import compute
from accord.royalties.inputs import build_inputs
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.usage import EVENT_SCHEMA
from tests import factories as f

PARTIES = ["P-A", "P-B", "P-C", "P-D"]
AT = datetime(2026, 11, 5, tzinfo=UTC)


def _item(isrc: str, duration: int) -> ManifestItem:
    return ManifestItem(isrc, "0" * 64, "midi", 1, duration, (), (), (), (), (), "")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Catalog, dict[str, list[ManifestItem]], list[tuple[str, dict[str, Any]]], Any]:
    n_recs = draw(st.integers(1, 5))
    isrcs = [f"GBXYZ26{i:05d}" for i in range(n_recs)]
    records: list[Any] = []
    for i, isrc in enumerate(isrcs):
        raw = draw(st.dictionaries(st.sampled_from(PARTIES), st.integers(1, 100), min_size=1, max_size=3))
        whole = 100 if draw(st.booleans()) else draw(st.integers(1, 99))  # else an unowned remainder
        owners = {k: v for k, v in zip(raw, allocate(whole, list(raw.values()), list(raw)), strict=True) if v > 0}
        works = [f"W-{i}"] if draw(st.booleans()) else []
        records.append(f.recording(isrc, owners, works, duration_ms=draw(st.integers(1, 400_000))))
        for w in works:
            records.append(f.work(w, {draw(st.sampled_from(PARTIES)): 100}))
    for n, party in enumerate(PARTIES):
        if draw(st.booleans()):
            side = draw(st.sampled_from(["master", "publishing"]))
            uses = draw(st.sampled_from([["train", "generate"], ["train"], ["generate"]]))
            records.append(
                f.agreement(
                    f"A-{n}",
                    party,
                    side,
                    uses,
                    pool_share=draw(st.integers(0, 100)),
                    master_split=draw(st.integers(0, 100)),
                )
            )
    cat = f.catalog(*records)
    models = {
        "M-1": [_item(i, cat.recordings[i].duration_ms) for i in draw(st.sets(st.sampled_from(isrcs), min_size=1))],
        "M-2": [],  # a model with an empty manifest: its money goes to suspense
    }
    outs = []
    for n in range(draw(st.integers(1, 4))):
        reliable = draw(st.booleans())
        chosen = sorted(draw(st.sets(st.sampled_from([*isrcs, "GBNOT2600000"]), max_size=3)))
        attributed = draw(st.integers(len(chosen), 1_000_000)) if chosen else 0
        weights = allocate(attributed, [1] * len(chosen), chosen)
        attr = {
            "status": "computed",
            "reliable": reliable,
            "unattributed_ppm": 1_000_000 - sum(weights),
            "items": [{"isrc": i, "weight_ppm": w} for i, w in zip(chosen, weights, strict=True) if w > 0],
        }
        outs.append((f"O-{n}", {"attribution": attr}))
    events = []
    for n in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["generation", "play", "stream", "download"]))
        oid = draw(st.sampled_from([o for o, _ in outs]))
        model = draw(st.sampled_from(["M-1", "M-1", "M-2"]))
        events.append((f"e{n}", kind, AT, "C", oid, model, "GB", 0, "", "", "2026-11", "b"))
    revenue = st.tuples(st.integers(0, 10**12), st.sampled_from(["EUR", "USD"]))
    for n, (amount, cur) in enumerate(draw(st.lists(revenue, max_size=3))):
        events.append((f"r{n}", "revenue", AT, "", "", "", "", amount, cur, "sale", "2026-11", "b"))
    policy = RoyaltyPolicy(
        training_share_ppm=draw(st.integers(0, 1_000_000)),
        training_pool_method=draw(st.sampled_from(["equal_per_work", "pro_rata_duration"])),
    )
    return cat, models, outs, (events, policy)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=worlds())
def test_payable_plus_suspense_plus_operator_is_revenue_and_nothing_is_negative(world: Any, tmp_path: Path) -> None:
    cat, models, outs, (events, policy) = world
    path = tmp_path / "events.parquet"
    cols = [list(c) for c in zip(*events, strict=True)] if events else [[] for _ in EVENT_SCHEMA]
    pq.write_table(pa.table(cols, schema=EVENT_SCHEMA), path)
    inputs = build_inputs(cat, models, outs, "2026-11", policy)
    result = compute(inputs, [path], policy)  # compute() itself raises if a micro-unit is lost
    payable, unmatched = result.payable(), result.unmatched()
    for currency, revenue in result.revenue.items():
        assert payable.get(currency, 0) + unmatched.get(currency, 0) + result.operator[currency] == revenue
        assert result.operator[currency] >= 0
    assert all(a > 0 for a in result.lines.column("amount").to_pylist())
    assert all(a > 0 for a in result.suspense.column("amount").to_pylist())
    assert all(u >= 0 for u in result.lines.column("units").to_pylist())
    again = compute(inputs, [path], policy)
    assert again.lines.equals(result.lines) and again.suspense.equals(result.suspense)
    assert again.inputs_hash == result.inputs_hash
