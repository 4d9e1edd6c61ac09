"""The vectorised royalty engine equals the plain reference (:mod:`accord.royalties.reference`) exactly.

Per line (party, currency, basis, side, recording, work, model, output: units, share, amount,
agreement), per suspense row and reason, per currency for the operator: not only totals.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.manifest import ManifestItem, build_manifest
from accord.datasets.repository import register_model, save_manifest
from accord.money import allocate
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.entities import Catalog, GuaranteeTerm, MediaRef, Money
from accord.registry.store import ChangeSet, Store
from accord.royalties import reference
from accord.royalties.engine import RunResult, compute
from accord.royalties.inputs import build_inputs
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.postings import as_transfers, plan
from accord.royalties.run import latest_run, load_result, run_period
from accord.royalties.usage import EVENT_SCHEMA, committed_files, ingest_events
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests import factories as f

LABELS, PUBLISHERS = ["P-L1", "P-L2", "P-L3"], ["P-P1", "P-P2", "P-P3"]
PERIOD = "2026-11"
AT = datetime(2026, 11, 5, tzinfo=UTC)
CURRENCIES = ["EUR", "USD", "JPY"]
KINDS = ["generation", "play", "stream", "download"]
World = tuple[Catalog, dict[str, list[ManifestItem]], dict[str, dict[str, Any]], list[dict[str, Any]], Any]


def owners(draw: st.DrawFn, parties: list[str]) -> dict[str, int]:
    """One to three owners whose shares sum to 100 %, or sometimes less (an unowned rest)."""
    chosen = sorted(draw(st.sets(st.sampled_from(parties), min_size=1, max_size=3)))
    whole = 1_000_000 if draw(st.booleans()) else draw(st.integers(1, 999_999))
    parts = allocate(whole, [draw(st.integers(1, 9)) for _ in chosen], chosen)
    return {p: f"{v / 10_000:.4f}" for p, v in zip(chosen, parts, strict=True) if v > 0}  # type: ignore[misc]


def _item(isrc: str, duration: int) -> ManifestItem:
    return ManifestItem(isrc, "0" * 64, "midi", 1, duration, (), (), (), (), (), "")


@st.composite
def worlds(draw: st.DrawFn, *, mixed: bool = False) -> World:
    """Co-owned recordings, works with several publishers, agreements on both sides, outputs and a month.

    ``mixed``: the labels are the publishers too, so one party may hold a recording's master and
    its works (and sign agreements on both sides).
    """
    publishers = LABELS if mixed else PUBLISHERS
    isrcs = [f"GBXYZ26{i:05d}" for i in range(draw(st.integers(1, 5)))]
    records: list[Any] = []
    work_ids = [f"W-{i}" for i in range(draw(st.integers(1, 4)))]
    for isrc in isrcs:
        works = sorted(draw(st.sets(st.sampled_from([*work_ids, "W-NONE"]), min_size=1, max_size=2)))
        duration = draw(st.integers(0, 400_000))
        records.append(f.recording(isrc, owners(draw, LABELS), works, duration_ms=duration))
    records += [f.work(w, owners(draw, publishers)) for w in work_ids]
    master_split = draw(st.integers(0, 100))  # one split per world: see the master-split test below
    n = 0
    for party, side in [(p, "master") for p in LABELS] + [(p, "publishing") for p in publishers]:
        for _ in range(draw(st.integers(0, 2))):
            listed = draw(st.booleans())
            cover: dict[str, Any] = {}
            if listed:
                key, pool = ("recordings", isrcs) if side == "master" else ("works", work_ids)
                cover[key] = draw(st.sets(st.sampled_from(pool), max_size=2))
            records.append(
                f.agreement(
                    f"A-{n:02d}",
                    party,
                    side,
                    draw(st.sampled_from([["train", "generate"], ["train"], ["generate"]])),
                    pool_share=draw(st.integers(0, 100)),
                    master_split=master_split,
                    training_pool_method=draw(st.sampled_from(["equal_per_work", "pro_rata_duration"])),
                    **cover,
                )
            )
            n += 1
    cat = f.catalog(*records)
    durations = {i: cat.recordings[i].duration_ms for i in isrcs}
    models = {
        "M-1": [_item(i, durations[i]) for i in sorted(draw(st.sets(st.sampled_from(isrcs), min_size=1)))],
        "M-2": [
            _item(i, durations.get(i, 1000)) for i in sorted(draw(st.sets(st.sampled_from([*isrcs, "GBNOT2600009"]))))
        ],
    }
    credentials: dict[str, dict[str, Any]] = {}
    for k in range(draw(st.integers(1, 5))):
        status = draw(st.sampled_from(["computed", "computed", "pending"]))
        chosen = sorted(draw(st.sets(st.sampled_from([*isrcs, "GBNOT2600000"]), max_size=3)))
        attributed = draw(st.integers(len(chosen), 1_000_000)) if chosen else 0
        weights = allocate(attributed, [draw(st.integers(1, 5)) for _ in chosen], chosen)
        credentials[f"O-{k}"] = {
            "attribution": {
                "status": status,
                "reliable": draw(st.booleans()),
                "unattributed_ppm": 1_000_000 - sum(weights),
                "items": [{"isrc": i, "weight_ppm": w} for i, w in zip(chosen, weights, strict=True) if w > 0],
            }
        }
    events: list[dict[str, Any]] = []
    for k in range(draw(st.integers(0, 15))):
        output = draw(st.sampled_from(sorted(credentials)))
        model = draw(st.sampled_from(["M-1", "M-1", "M-2"]))
        events.append(
            {
                "event_id": f"e{k}",
                "kind": draw(st.sampled_from(KINDS)),
                "output_id": output,
                "model_id": model,
                "amount": 0,
                "currency": "",
            }
        )
    for k, (amount, cur) in enumerate(
        draw(st.lists(st.tuples(st.integers(0, 10**12), st.sampled_from(CURRENCIES)), max_size=4))
    ):
        events.append(
            {"event_id": f"r{k}", "kind": "revenue", "output_id": "", "model_id": "", "amount": amount, "currency": cur}
        )
    policy = RoyaltyPolicy(
        training_share_ppm=draw(st.sampled_from([0, 1_000_000, draw(st.integers(0, 1_000_000))])),
        training_pool_method=draw(st.sampled_from(["", "", "equal_per_work", "pro_rata_duration"])),
        kind_weights=tuple((k, draw(st.integers(0, 3))) for k in sorted(KINDS)),
    )
    return cat, models, credentials, events, policy


def log_file(events: list[dict[str, Any]], folder: Path) -> Path:
    """The events as a usage-log Parquet file (the engine's input)."""
    path = folder / "events.parquet"
    rows = {name: [] for name in EVENT_SCHEMA.names}  # type: ignore[var-annotated]
    for e in events:
        row = {"at": AT, "creator_id": "C", "territory": "GB", "source": "sale", "period": PERIOD, "batch_id": "b"}
        for name in EVENT_SCHEMA.names:
            rows[name].append(e.get(name, row.get(name)))
    pq.write_table(pa.table(rows, schema=EVENT_SCHEMA), path)
    return path


def engine_as_reference(result: RunResult) -> reference.Reference:
    """The engine's result in the reference's shape (lines and suspense keyed the same way)."""
    out = reference.Reference(dict(result.revenue), dict(result.operator))
    for r in result.lines.to_pylist():
        key = tuple(r[k] for k in ("party_id", "currency", "basis", "side", "isrc", "work_id", "model_id", "output_id"))
        out.lines[key] = {k: r[k] for k in ("units", "share_ppm", "amount", "agreement_id")}
    names = ("currency", "reason", "basis", "model_id", "output_id", "isrc", "side", "work_id", "party_id")
    out.suspense = {tuple(r[k] for k in names): r["amount"] for r in result.suspense.to_pylist()}
    return out


def assert_equal(engine: reference.Reference, ref: reference.Reference) -> None:
    assert engine.revenue == ref.revenue
    assert engine.operator == ref.operator
    assert engine.suspense == dict(ref.suspense)
    assert engine.lines == ref.lines  # every line: party, currency, account (basis, item) and amount
    assert engine.payable() == ref.payable()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=worlds())
def test_the_engine_equals_the_reference_line_by_line(world: World, tmp_path: Path) -> None:
    cat, models, credentials, events, policy = world
    inputs = build_inputs(cat, models, sorted(credentials.items()), PERIOD, policy)
    result = compute(inputs, [log_file(events, tmp_path)], policy)
    ref = reference.compute(cat, models, credentials, events, policy, PERIOD)
    assert_equal(engine_as_reference(result), ref)


def legs_by_code(legs: list[Any], code: str) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for leg in legs:
        if leg.code == code:
            party, currency, _ = leg.debit.split(":") if code == "recoupment" else leg.credit.split(":")
            key = (party, currency, leg.reason) if code == "recoupment" else leg.reason
            out[key] = out.get(key, 0) + leg.amount
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=worlds(), data=st.data())
def test_advances_recoupment_and_guarantee_shortfalls_equal_the_reference_over_two_periods(
    world: World, data: st.DataObject, tmp_path: Path
) -> None:
    cat, models, credentials, events, policy = world
    terms: dict[str, dict[str, Any]] = {}
    for aid in sorted(cat.agreements):
        money = st.integers(0, 10**9).map(lambda v: Money(v, "EUR"))
        terms[aid] = {
            "advance": data.draw(st.none() | money),
            "minimum_guarantee": data.draw(st.none() | money),
            "guarantee_term": data.draw(
                st.sampled_from([GuaranteeTerm.MONTHLY, GuaranteeTerm.QUARTERLY, GuaranteeTerm.YEARLY])
            ),
        }
    starts = st.sampled_from([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 20, 12, tzinfo=UTC)])
    ends = st.none() | st.sampled_from([datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 12, 10, 12, tzinfo=UTC)])
    agreements = {}
    for aid, a in cat.agreements.items():
        start, end = data.draw(starts), data.draw(ends)
        span = {"start": start, "end": end if end is None or end > start else None}
        agreements[aid] = replace(a, terms=replace(a.terms, **terms[aid]), **span)  # type: ignore[arg-type]
    cat = replace(cat, agreements=agreements)
    books, history = reference.Books(), []
    for n, period in enumerate(("2026-11", "2026-12")):
        # one currency: the reference does not convert (cross-currency recoupment is fx's own tests')
        month = [dict(e, period=period, currency="EUR" if e["kind"] == "revenue" else "") for e in events]
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        path = log_file(month, folder)
        inputs = build_inputs(cat, models, sorted(credentials.items()), period, policy)
        result = compute(inputs, [path], policy)
        ref = reference.compute(cat, models, credentials, month, policy, period)
        assert_equal(engine_as_reference(result), ref)
        legs, _ = plan(result, list(inputs.agreements.values()), history)
        settled = reference.close(ref, cat, period, books)
        assert legs_by_code(legs, "advance") == settled.advanced, n
        assert legs_by_code(legs, "recoupment") == settled.recouped, n
        assert legs_by_code(legs, "mg_shortfall") == settled.shortfall, n
        history += as_transfers(legs, period)


def test_a_recordings_master_split_is_its_lowest_id_fitting_master_agreements(tmp_path: Path) -> None:
    cat = f.catalog(
        f.recording("GBXYZ2600001", {"P-A": 50, "P-B": 50}, ["W-1"]),
        f.work("W-1", {"P-PUB": 100}),
        f.agreement("A-1", "P-B", master_split=70, pool_share=100),
        f.agreement("A-9", "P-A", master_split=30, pool_share=100),
        f.agreement("A-PUB", "P-PUB", "publishing", pool_share=100),
    )
    models = {"M-1": [_item("GBXYZ2600001", 1000)]}
    events = [
        {"event_id": "g", "kind": "generation", "output_id": "O-1", "model_id": "M-1", "amount": 0, "currency": ""},
        {"event_id": "r", "kind": "revenue", "output_id": "", "model_id": "", "amount": 100, "currency": "EUR"},
    ]
    policy, credentials = RoyaltyPolicy(), {"O-1": {"attribution": {"status": "pending"}}}
    ref = reference.compute(cat, models, credentials, events, policy, PERIOD)
    assert ref.payable()[("P-PUB", "EUR")] == 30  # 70 % master, 30 % publishing
    result = compute(
        build_inputs(cat, models, credentials.items(), PERIOD, policy), [log_file(events, tmp_path)], policy
    )
    assert_equal(engine_as_reference(result), ref)


def test_a_recording_without_works_puts_its_publishing_money_in_suspense_as_no_works(tmp_path: Path) -> None:
    cat = f.catalog(f.recording("GBXYZ2600001", {"P-A": 100}, []), f.agreement("A-1", "P-A", pool_share=100))
    models = {"M-1": [_item("GBXYZ2600001", 1000)]}
    events = [
        {"event_id": "g", "kind": "generation", "output_id": "O-1", "model_id": "M-1", "amount": 0, "currency": ""},
        {"event_id": "r", "kind": "revenue", "output_id": "", "model_id": "", "amount": 100, "currency": "EUR"},
    ]
    policy, credentials = RoyaltyPolicy(), {"O-1": {"attribution": {"status": "pending"}}}
    ref = reference.compute(cat, models, credentials, events, policy, PERIOD)
    assert {k[1] for k in ref.suspense} == {"no_works"}
    result = compute(
        build_inputs(cat, models, credentials.items(), PERIOD, policy), [log_file(events, tmp_path)], policy
    )
    assert_equal(engine_as_reference(result), ref)


def test_a_run_through_the_store_equals_the_reference(store: Store, settings: Settings) -> None:
    """SQLite and PostgreSQL: registry, manifest, outputs and ingested usage, then ``run_period``."""
    cat = f.catalog(
        f.recording("GBXYZ2600001", {"P-LABEL": 100}, ["W-1"], duration_ms=120_000),
        f.recording("GBXYZ2600002", {"P-LABEL": "66.6667", "P-INDIE": "33.3333"}, ["W-1", "W-2"], duration_ms=200_000),
        f.work("W-1", {"P-PUB": 70, "P-PUB2": 30}),
        f.work("W-2", {"P-PUB2": 100}),
        f.agreement("A-LABEL", "P-LABEL", pool_share=45, master_split=60, training_pool_method="pro_rata_duration"),
        f.agreement("A-INDIE", "P-INDIE", "master", ["generate"], pool_share=50, master_split=60),
        f.agreement("A-PUB", "P-PUB", "publishing", pool_share=35, master_split=60),
    )
    recs = {
        k: replace(r, media=(MediaRef(hashlib.sha256(k.encode()).hexdigest(), "midi", 100, f"{k}.mid"),))
        for k, r in cat.recordings.items()
    }
    cat = replace(cat, recordings=recs)
    store.apply(
        ChangeSet(
            parties=tuple(cat.parties.values()),
            works=tuple(cat.works.values()),
            recordings=tuple(cat.recordings.values()),
            agreements=tuple(cat.agreements.values()),
        ),
        actor="test",
        action="test",
    )
    key, _ = ensure_operator_key(settings.home)
    manifest = build_manifest(store.snapshot(), use="train", as_of=store.clock(), territory="GB")
    record, _ = save_manifest(store, manifest, key, actor="test")
    register_model(store, "M-1", record.root, card={}, actor="test")
    outputs.add_creator(store, "C-1", "pro", "GB", parse_plans(settings.plans))
    credentials: dict[str, dict[str, Any]] = {
        "O-1": {
            "attribution": {
                "status": "computed",
                "method": "t",
                "method_version": "1",
                "reliable": True,
                "unattributed_ppm": 250_000,
                "items": [{"isrc": "GBXYZ2600002", "weight_ppm": 750_000}],
            }
        },
        "O-2": {
            "attribution": {
                "status": "computed",
                "reliable": False,
                "unattributed_ppm": 0,
                "items": [{"isrc": "GBXYZ2600001", "weight_ppm": 1_000_000}],
            }
        },
    }
    for oid, cred in credentials.items():
        outputs.save_output(store, outputs.Output(oid, "M-1", "C-1", AT, {}, 1, {}, cred))
    at = AT.isoformat()
    usage = [
        {
            "event_id": f"{k}-{o}",
            "kind": k,
            "timestamp": at,
            "creator": "C-1",
            "output_id": o,
            "model_id": "M-1",
            "territory": "GB",
        }
        for k in KINDS
        for o in ("O-1", "O-2")
    ]
    usage += [
        {
            "event_id": f"rev-{c}",
            "kind": "revenue",
            "timestamp": at,
            "amount": a,
            "currency": c,
            "period": PERIOD,
            "source": "subscription",
        }
        for c, a in (("EUR", "1000.01"), ("USD", "77.777777"))
    ]
    ingest_events(store, settings, usage)
    run = run_period(store, settings, PERIOD)
    result = load_result(latest_run(store, settings, PERIOD))
    assert result.inputs_hash == run.inputs_hash
    log = pa.concat_tables([pq.read_table(p) for p in committed_files(store, settings, PERIOD)]).to_pylist()
    models = {"M-1": list(manifest.items)}
    ref = reference.compute(store.snapshot(), models, credentials, log, RoyaltyPolicy(), PERIOD)
    assert_equal(engine_as_reference(result), ref)
    assert ref.payable()[("P-LABEL", "USD")] > 0 and ref.payable()[("P-PUB", "EUR")] > 0
    assert any(k[1] == "no_agreement" and k[-1] == "P-PUB2" for k in ref.suspense)


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(-(10**15), 10**15),
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=8).filter(any),
    data=st.data(),
)
def test_allocate_breaks_ties_by_stable_id_not_by_position(total: int, weights: list[int], data: st.DataObject) -> None:
    """The one largest-remainder function: parts sum to the whole, and reordering the input reorders the parts."""
    keys = [f"id-{i}" for i in range(len(weights))]
    parts = dict(zip(keys, allocate(total, weights, keys), strict=True))
    order = data.draw(st.permutations(range(len(weights))))
    shuffled = allocate(total, [weights[i] for i in order], [keys[i] for i in order])
    assert dict(zip([keys[i] for i in order], shuffled, strict=True)) == parts
    assert sum(parts.values()) == total
    exact = [Fraction(total * w, sum(weights)) for w in weights]
    assert all(abs(parts[k] - x) < 1 for k, x in zip(keys, exact, strict=True))
