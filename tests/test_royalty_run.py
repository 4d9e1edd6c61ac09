"""Royalty runs over the store: determinism, closing, late events, guarantees, advances, statements."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accord.datasets.manifest import build_manifest
from accord.datasets.repository import register_model, save_manifest
from accord.errors import Conflict
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.entities import Catalog, MediaRef, Money, Use
from accord.registry.store import ChangeSet, Store
from accord.royalties import ledger
from accord.royalties.accounts import books, build_statements, reconcile, write_statements
from accord.royalties.run import close_period, latest_run, payout_period, run_period
from accord.royalties.usage import ingest_events
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests import factories as f

ISRC_A, ISRC_B = "GBXYZ2600001", "GBXYZ2600002"
PERIOD = "2026-11"
AT = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def demo_catalog(**agreement_terms: Any) -> Catalog:
    """Two recordings: A owned by P-LABEL (work W-1, P-PUB), B by P-LABEL 60% / P-INDIE 40% (W-2, P-PUB)."""
    cat = f.catalog(
        f.recording(ISRC_A, {"P-LABEL": 100}, ["W-1"]),
        f.recording(ISRC_B, {"P-LABEL": 60, "P-INDIE": 40}, ["W-2"]),
        f.work("W-1", {"P-PUB": 100}),
        f.work("W-2", {"P-PUB": 100}),
        f.agreement("A-LABEL", "P-LABEL", pool_share=50, **agreement_terms),
        f.agreement("A-INDIE", "P-INDIE", pool_share=50),
        f.agreement("A-PUB", "P-PUB", "publishing", pool_share=50),
    )
    recs = {
        k: replace(r, media=(MediaRef(hashlib.sha256(k.encode()).hexdigest(), "midi", 100, f"{k}.mid"),))
        for k, r in cat.recordings.items()
    }
    return replace(cat, recordings=recs)


def attribution(isrc: str, weight: int, *, reliable: bool = True) -> dict[str, Any]:
    return {
        "status": "computed",
        "method": "test",
        "method_version": "1",
        "reliable": reliable,
        "unattributed_ppm": 1_000_000 - weight,
        "items": [{"isrc": isrc, "weight_ppm": weight}],
    }


def world(store: Store, settings: Settings, cat: Catalog | None = None) -> None:
    """Registry, a model trained on both recordings, a creator and two outputs (O-1 attributed to B, O-2 pending)."""
    cat = cat or demo_catalog()
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
    assert len(manifest.items) == 2
    record, _ = save_manifest(store, manifest, key, actor="test")
    register_model(store, "M-1", record.root, card={}, actor="test")
    outputs.add_creator(store, "C-1", "pro", "GB", parse_plans(settings.plans))
    for oid, cred in (
        ("O-1", {"attribution": attribution(ISRC_B, 800_000)}),
        ("O-2", {"attribution": {"status": "pending"}}),
    ):
        outputs.save_output(store, outputs.Output(oid, "M-1", "C-1", AT, {}, 1, {}, cred))


def usage(n_plays: int = 1, revenue: str = "100.00", *, prefix: str = "", at: datetime = AT) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"event_id": f"{prefix}g2", "kind": "generation", "timestamp": at.isoformat(), "creator": "C-1",
         "output_id": "O-2", "model_id": "M-1", "territory": "GB"},
        {"event_id": f"{prefix}s2", "kind": "stream", "timestamp": at.isoformat(), "creator": "C-1",
         "output_id": "O-2", "model_id": "M-1", "territory": "GB"},
        {"event_id": f"{prefix}rev", "kind": "revenue", "timestamp": at.isoformat(), "amount": revenue,
         "currency": "EUR", "period": at.strftime("%Y-%m"), "source": "subscription", "territory": "GB"},
    ]  # fmt: skip
    events += [
        {"event_id": f"{prefix}p1-{i}", "kind": "play", "timestamp": at.isoformat(), "creator": "C-1",
         "output_id": "O-1", "model_id": "M-1", "territory": "GB"}
        for i in range(n_plays)
    ]  # fmt: skip
    return events


def bank_accounts(store: Store, *parties: str) -> None:
    """Bank details on file for ``parties`` (a payout goes only to a party with an account)."""
    from accord.registry.bank import set_bank_details

    for n, party in enumerate(parties):
        iban = ("DE89370400440532013000", "DE62370400440532013001", "DE35370400440532013002")[n]
        set_bank_details(store, party, iban=iban, bic="", holder=party, currency="EUR", caller="ops", operator=True)


@pytest.fixture
def ready(store: Store, settings: Settings) -> Store:
    world(store, settings)
    ingest_events(store, settings, usage())
    return store


def test_a_run_pays_both_pools_down_to_each_owner_and_conserves_revenue(ready: Store, settings: Settings) -> None:
    run = run_period(ready, settings, PERIOD)
    s = run.summary
    assert s["revenue"] == {"EUR": 100_000_000}
    assert s["payable"]["EUR"] + s["unmatched"].get("EUR", 0) + s["operator"]["EUR"] == 100_000_000
    pb = books(ready, settings, PERIOD)
    statements = build_statements(ready, settings, PERIOD, pb=pb)
    assert {st.party_id for st in statements} == {"P-LABEL", "P-INDIE", "P-PUB"}
    assert reconcile(statements, pb).ok
    label = next(st for st in statements if st.party_id == "P-LABEL")
    assert dict(label.income) == {"output": 3_000_000, "training": 16_000_000}


def test_a_rerun_with_the_same_inputs_is_byte_identical(ready: Store, settings: Settings) -> None:
    first = run_period(ready, settings, PERIOD)
    files = {p.name: p.read_bytes() for p in first.folder.iterdir()}
    second = run_period(ready, settings, PERIOD)
    assert (second.run_id, second.result_hash) == (first.run_id, first.result_hash)
    assert {p.name: p.read_bytes() for p in second.folder.iterdir()} == files


def test_new_events_supersede_the_draft_and_a_closed_period_refuses_changes(ready: Store, settings: Settings) -> None:
    first = run_period(ready, settings, PERIOD)
    ingest_events(ready, settings, usage(2, "50.00", prefix="x"))
    second = run_period(ready, settings, PERIOD)
    assert second.run_id != first.run_id and second.summary["revenue"] == {"EUR": 150_000_000}
    closing = close_period(ready, settings, PERIOD)
    assert closing.run.run_id == second.run_id and closing.transfers > 0
    with pytest.raises(Conflict, match="closed"):
        run_period(ready, settings, PERIOD)
    with pytest.raises(Conflict, match="closed"):
        close_period(ready, settings, PERIOD)
    assert latest_run(ready, settings, PERIOD).status == "final"
    assert ledger.verify(ready).ok


def test_late_events_go_to_the_next_open_period(ready: Store, settings: Settings) -> None:
    run_period(ready, settings, PERIOD)
    close_period(ready, settings, PERIOD)
    result = ingest_events(ready, settings, usage(1, "10.00", prefix="late"))
    assert result.late == result.new == 4 and result.periods == ("2026-12",)
    run = run_period(ready, settings, "2026-12")
    assert run.summary["revenue"] == {"EUR": 10_000_000}


def test_closing_needs_the_latest_run_to_still_hold(ready: Store, settings: Settings) -> None:
    run_period(ready, settings, PERIOD)
    ingest_events(ready, settings, usage(1, "1.00", prefix="y"))
    with pytest.raises(Conflict, match="inputs changed"):
        close_period(ready, settings, PERIOD)


def test_statements_open_at_last_periods_close_and_payouts_respect_the_threshold(
    ready: Store, settings: Settings, tmp_path: Path
) -> None:
    run_period(ready, settings, PERIOD)
    close_period(ready, settings, PERIOD)
    bank_accounts(ready, "P-LABEL", "P-PUB", "P-INDIE")
    paid = payout_period(ready, settings.model_copy(update={"payout_threshold": "10.00"}), PERIOD)
    assert {(p.party_id, p.amount) for p in paid} == {("P-LABEL", 19_000_000), ("P-PUB", 25_000_000)}
    with pytest.raises(Conflict, match="already paid"):
        payout_period(ready, settings, PERIOD)
    nov = {st.party_id: st for st in build_statements(ready, settings, PERIOD)}
    assert nov["P-LABEL"].paid == 19_000_000 and nov["P-LABEL"].closing_balance == 0
    assert nov["P-INDIE"].paid == 0 and nov["P-INDIE"].closing_balance == 6_000_000
    ingest_events(ready, settings, usage(1, "10.00", prefix="dec", at=datetime(2026, 12, 5, tzinfo=UTC)))
    run_period(ready, settings, "2026-12")
    dec = {st.party_id: st for st in build_statements(ready, settings, "2026-12")}
    assert dec["P-INDIE"].opening_balance == nov["P-INDIE"].closing_balance
    statements, paths = write_statements(ready, settings, PERIOD, party="P-INDIE", out=tmp_path / "st")
    assert [st.party_id for st in statements] == ["P-INDIE"]
    assert all(line.party_id == "P-INDIE" for line in statements[0].lines)
    assert {p.suffix for p in paths} == {".csv", ".json", ".html", ".tsv"}


def test_an_advance_is_recouped_before_anything_is_paid(store: Store, settings: Settings) -> None:
    world(store, settings, demo_catalog(advance=Money(10_000_000, "EUR")))
    ingest_events(store, settings, usage())
    run_period(store, settings, PERIOD)
    close_period(store, settings, PERIOD)
    label = {st.party_id: st for st in build_statements(store, settings, PERIOD)}["P-LABEL"]
    assert label.total_income == 19_000_000 and label.recouped == 10_000_000 and label.closing_balance == 9_000_000
    bank_accounts(store, "P-LABEL")
    paid = payout_period(store, settings.model_copy(update={"payout_threshold": "0.01"}), PERIOD)
    assert ("P-LABEL", 9_000_000) in {(p.party_id, p.amount) for p in paid}


def test_an_unrecouped_advance_blocks_payout(store: Store, settings: Settings) -> None:
    world(store, settings, demo_catalog(advance=Money(50_000_000, "EUR")))
    ingest_events(store, settings, usage())
    run_period(store, settings, PERIOD)
    close_period(store, settings, PERIOD)
    label = {st.party_id: st for st in build_statements(store, settings, PERIOD)}["P-LABEL"]
    assert label.recouped == label.total_income and label.closing_balance == 0
    paid = payout_period(store, settings.model_copy(update={"payout_threshold": "0.01"}), PERIOD)
    assert "P-LABEL" not in {p.party_id for p in paid}


def test_a_minimum_guarantee_shortfall_is_recorded_explicitly(store: Store, settings: Settings) -> None:
    world(store, settings, demo_catalog(minimum_guarantee=Money(25_000_000, "EUR")))
    ingest_events(store, settings, usage())
    run_period(store, settings, PERIOD)
    closing = close_period(store, settings, PERIOD)
    (g,) = closing.guarantees
    assert (g.agreement_id, g.guaranteed, g.earned, g.shortfall) == ("A-LABEL", 25_000_000, 19_000_000, 6_000_000)
    shortfall = [t for t in ledger.transfers(store, period=PERIOD) if t.code == "mg_shortfall"]
    assert [(t.credit_account, t.amount, t.reason) for t in shortfall] == [
        ("P-LABEL:EUR:guarantee", 6_000_000, "A-LABEL")
    ]
    pb = books(store, settings, PERIOD)
    rec = reconcile(build_statements(store, settings, PERIOD, pb=pb), pb)
    assert rec.ok and rec.rows[0][-1] == 6_000_000


def test_usage_of_an_owner_without_an_agreement_goes_to_suspense(store: Store, settings: Settings) -> None:
    cat = demo_catalog()  # P-INDIE licenses training only: its share of output money has no agreement
    indie = replace(cat.agreements["A-INDIE"], uses=frozenset({Use.TRAIN}))
    cat = replace(cat, agreements={**cat.agreements, "A-INDIE": indie})
    world(store, settings, cat)
    ingest_events(store, settings, usage())
    run = run_period(store, settings, PERIOD)
    assert run.summary["unmatched"]["EUR"] > 0
    pb = books(store, settings, PERIOD)
    reasons = set(pb.result.suspense.column("reason").to_pylist())
    parties = set(pb.result.suspense.column("party_id").to_pylist())
    assert reasons == {"no_agreement"} and parties == {"P-INDIE"}
    assert set(pb.result.suspense.column("basis").to_pylist()) == {"output"}
    assert reconcile(build_statements(store, settings, PERIOD, pb=pb), pb).ok


def _worked_example() -> dict[str, tuple[str, ...]]:
    doc = (Path(__file__).parents[1] / "docs" / "royalties.md").read_text(encoding="utf-8")
    block = doc.split("<!-- worked-example:begin -->")[1].split("<!-- worked-example:end -->")[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()[2:]]
    return {r[0]: tuple(r[1:]) for r in rows}


def _micros(text: str) -> int:
    whole, frac = text.split(".")
    return int(whole) * 1_000_000 + int(frac.ljust(6, "0"))


def test_the_worked_example_in_the_docs_is_what_the_engine_computes(ready: Store, settings: Settings) -> None:
    table = _worked_example()
    run = run_period(ready, settings, PERIOD)
    pb = books(ready, settings, PERIOD)
    statements = {st.party_id: st for st in build_statements(ready, settings, PERIOD, pb=pb)}
    for party in ("P-LABEL", "P-INDIE", "P-PUB"):
        training, output, total = table[party]
        st = statements[party]
        assert (st.income_for("training"), st.income_for("output"), st.total_income) == (
            _micros(training),
            _micros(output),
            _micros(total),
        ), party
    assert run.summary["operator"]["EUR"] == _micros(table["operator"][-1])
    assert run.summary["unmatched"].get("EUR", 0) == _micros(table["unmatched"][-1])
    assert run.summary["revenue"]["EUR"] == _micros(table["revenue"][-1])
    assert reconcile(list(statements.values()), pb).ok


def test_verify_notices_a_ledger_cut_back_past_a_closed_periods_head(ready: Store, settings: Settings) -> None:
    from sqlalchemy import text

    run_period(ready, settings, PERIOD)
    close_period(ready, settings, PERIOD)
    with ready.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_transfers WHERE seq = (SELECT max(seq) FROM ledger_transfers)"))
    problems = ledger.verify(ready).problems
    assert any("2026-11" in p and "truncated" in p for p in problems)
