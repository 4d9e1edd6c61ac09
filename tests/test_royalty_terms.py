"""Royalty terms over periods and currencies (issue 14), through the real store.

The worked example of docs/royalties.md ("Two periods, two currencies") is built here and every
figure is computed by hand in the test, never copied from the engine.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.errors import Rejected, ValidationError
from accord.registry.entities import (
    Agreement,
    Catalog,
    GuaranteeSettlement,
    GuaranteeTerm,
    Money,
    TrainingPoolMethod,
)
from accord.registry.importer import import_delivery
from accord.registry.store import ChangeSet, Store
from accord.royalties import ledger
from accord.royalties.accounts import build_statements
from accord.royalties.cascade import resplit
from accord.royalties.engine import RunResult
from accord.royalties.fx import PeriodRates, import_file, rate_date
from accord.royalties.periods import period_bounds
from accord.royalties.postings import as_transfers, plan
from accord.royalties.run import close_period, latest_run, load_result, run_period
from accord.royalties.statements_render import from_document, html_text, json_text
from accord.royalties.terms import term_of, term_party
from accord.royalties.usage import ingest_events
from accord.settings import Settings
from tests import factories as f
from tests.deliveries import small_catalog, write_delivery
from tests.test_royalty_run import demo_catalog, usage, world

DEC, JAN = "2026-12", "2027-01"
NOV_1, AT_NOV = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
AT_DEC, AT_JAN = datetime(2026, 12, 10, 12, tzinfo=UTC), datetime(2027, 1, 10, 12, tzinfo=UTC)
M = 1_000_000  # micro-units per unit
RATES = "Date,USD,JPY,\n2027-01-29,1.0800,160.00,\n2026-12-31,1.0400,N/A,\n"


def with_terms(a: Agreement, **terms: object) -> Agreement:
    return replace(a, terms=replace(a.terms, **terms))


def example_catalog() -> Catalog:
    """The docs' example: A-LABEL's quarterly 25,000 EUR guarantee (ending 2027-02-01), A-INDIE's 15,000 USD advance."""
    cat = demo_catalog()
    label = with_terms(
        cat.agreements["A-LABEL"],
        minimum_guarantee=Money(25_000 * M, "EUR"),
        guarantee_term=GuaranteeTerm.QUARTERLY,
    )
    label = replace(label, end=datetime(2027, 2, 1, tzinfo=UTC))
    indie = with_terms(cat.agreements["A-INDIE"], advance=Money(15_000 * M, "USD"))
    return replace(cat, agreements={**cat.agreements, "A-LABEL": label, "A-INDIE": indie})


def revenue(events: list[dict[str, object]], currency: str) -> list[dict[str, object]]:
    return [{**e, "currency": currency} if e["kind"] == "revenue" else e for e in events]


def rates_file(tmp_path: Path) -> Path:
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(RATES, encoding="utf-8")
    return path


@pytest.fixture
def example(store: Store, settings: Settings, tmp_path: Path) -> Store:
    world(store, settings, example_catalog())
    import_file(store, rates_file(tmp_path))
    ingest_events(store, settings, usage(1, "10000.00", prefix="dec", at=AT_DEC))
    ingest_events(store, settings, revenue(usage(1, "8000.00", prefix="jan", at=AT_JAN), "USD"))
    return store


def _legs(store: Store, period: str, code: str) -> list[tuple[str, str, int, str]]:
    return [
        (t.debit_account, t.credit_account, t.amount, t.reason)
        for t in ledger.transfers(store, period=period)
        if t.code == code
    ]


def test_the_two_period_two_currency_example_in_the_docs(example: Store, settings: Settings) -> None:
    # by hand: the docs' one-period example scaled by 100 (EUR) and by 80 (USD): P-LABEL 19%, P-INDIE 6%
    label_dec, indie_dec = 1_900 * M, 600 * M  # EUR
    label_jan, indie_jan = 1_520 * M, 480 * M  # USD
    run_period(example, settings, DEC)
    close_period(example, settings, DEC)
    # December ends A-LABEL's quarter Oct-Dec 2026 (terms count from its start, 2026-01-01): in force all 92 days
    short_dec = 25_000 * M - label_dec
    assert _legs(example, DEC, "mg_shortfall") == [
        ("OPERATOR:EUR:operator_revenue", "P-LABEL:EUR:guarantee", short_dec, "A-LABEL")
    ]
    assert short_dec == 23_100 * M
    # A-INDIE's advance is paid, then P-INDIE's 600 EUR are converted at 1.04 and recoup 624 USD of it
    assert _legs(example, DEC, "advance") == [("P-INDIE:USD:advance", "P-INDIE:USD:paid", 15_000 * M, "A-INDIE")]
    conv = _legs(example, DEC, "conversion")
    assert [(d, c, a) for d, c, a, _ in conv] == [
        ("P-INDIE:EUR:payable", "FX.EUR-USD:EUR:conversion", indie_dec),
        ("FX.EUR-USD:USD:conversion", "P-INDIE:USD:payable", 624 * M),
    ]
    assert all(r == "EURUSD 1.04 2026-12-31" for *_, r in conv)
    assert _legs(example, DEC, "recoupment") == [("P-INDIE:USD:payable", "P-INDIE:USD:advance", 624 * M, "A-INDIE")]

    run_period(example, settings, JAN)
    close_period(example, settings, JAN)
    # January: the next quarter (Jan-Mar 2027, 90 days) is cut by the agreement's end on 2027-02-01: 31 days
    guarantee_jan = round(Fraction(25_000 * M * 31, 90))
    assert guarantee_jan == 8_611_111_111
    earned_jan = round(Fraction(label_jan) / Fraction("1.08"))  # USD earnings counted in EUR at 1.08
    assert earned_jan == 1_407_407_407
    assert _legs(example, JAN, "mg_shortfall") == [
        ("OPERATOR:EUR:operator_revenue", "P-LABEL:EUR:guarantee", guarantee_jan - earned_jan, "A-LABEL")
    ]
    assert guarantee_jan - earned_jan == 7_203_703_704
    assert _legs(example, JAN, "recoupment") == [("P-INDIE:USD:payable", "P-INDIE:USD:advance", indie_jan, "A-INDIE")]
    assert _legs(example, JAN, "conversion") == []  # nothing left in EUR to convert

    bal = ledger.balances(ledger.transfers(example))
    assert bal["P-INDIE:USD:advance"] == -(15_000 * M - 624 * M - indie_jan)
    assert bal["AGR.A-LABEL.2026-10-01:EUR:term_earnings"] == label_dec
    assert bal["AGR.A-LABEL.2027-01-01:EUR:term_earnings"] == earned_jan
    for currency in ("EUR", "USD"):  # money is conserved per currency: every currency's books balance
        assert sum(v for k, v in bal.items() if ledger.parse_account(k)[1] == currency) == 0

    dec = {(s.party_id, s.currency): s for s in build_statements(example, settings, DEC)}
    (term,) = dec[("P-LABEL", "EUR")].terms
    assert (term.term, term.guaranteed, term.earnings, term.term_earnings, term.shortfall_paid) == (
        "2026-10-01..2027-01-01",
        25_000 * M,
        label_dec,
        label_dec,
        short_dec,
    )
    assert (dec[("P-INDIE", "EUR")].converted, dec[("P-INDIE", "EUR")].closing_balance) == (-indie_dec, 0)
    usd = dec[("P-INDIE", "USD")]
    assert (usd.converted, usd.recouped, usd.closing_balance) == (624 * M, 624 * M, 0)
    (adv,) = usd.terms
    assert (adv.opening_balance, adv.advanced, adv.recouped, adv.closing_balance) == (
        0,
        15_000 * M,
        624 * M,
        14_376 * M,
    )
    jan = {(s.party_id, s.currency): s for s in build_statements(example, settings, JAN)}
    (term,) = jan[("P-LABEL", "EUR")].terms
    assert (term.term, term.guaranteed, term.term_earnings, term.shortfall_paid) == (
        "2027-01-01..2027-04-01",
        guarantee_jan,
        earned_jan,
        guarantee_jan - earned_jan,
    )
    (adv,) = jan[("P-INDIE", "USD")].terms
    assert (adv.opening_balance, adv.recouped, adv.closing_balance) == (14_376 * M, indie_jan, 13_896 * M)
    for statement in (*dec.values(), *jan.values()):  # the term rows and conversions survive the statement files
        assert from_document(json.loads(json_text(statement))) == statement
    assert "2026-10-01..2027-01-01" in html_text(dec[("P-LABEL", "EUR")])


def test_the_docs_example_table_matches_the_hand_computed_figures() -> None:
    text = (Path(__file__).parents[1] / "docs" / "royalties.md").read_text(encoding="utf-8")
    block = text.split("<!-- terms-example:begin -->")[1].split("<!-- terms-example:end -->")[0]
    rows = {}
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = cells[2:]
    # hand-computed: (period, what) -> [amount, currency]
    want = {
        ("2026-12", "P-LABEL earnings"): ["1900.00", "EUR"],
        ("2026-12", "A-LABEL term guarantee"): ["25000.00", "EUR"],
        ("2026-12", "A-LABEL shortfall paid"): ["23100.00", "EUR"],
        ("2026-12", "P-INDIE earnings"): ["600.00", "EUR"],
        ("2026-12", "P-INDIE converted"): ["624.00", "USD"],
        ("2026-12", "A-INDIE recouped"): ["624.00", "USD"],
        ("2026-12", "A-INDIE outstanding"): ["14376.00", "USD"],
        ("2027-01", "P-LABEL earnings"): ["1520.00", "USD"],
        ("2027-01", "A-LABEL term guarantee"): ["8611.111111", "EUR"],
        ("2027-01", "A-LABEL term earnings"): ["1407.407407", "EUR"],
        ("2027-01", "A-LABEL shortfall paid"): ["7203.703704", "EUR"],
        ("2027-01", "A-INDIE recouped"): ["480.00", "USD"],
        ("2027-01", "A-INDIE outstanding"): ["13896.00", "USD"],
    }
    assert rows == want


def test_a_run_without_the_rates_it_needs_names_the_missing_pairs_and_dates(store: Store, settings: Settings) -> None:
    world(store, settings, example_catalog())
    ingest_events(store, settings, usage(1, "10000.00", prefix="dec", at=AT_DEC))
    with pytest.raises(ValidationError, match=re.escape("EUR->USD")) as err:
        run_period(store, settings, DEC)
    assert "2026-12-31" in str(err.value) and "USD" in str(err.value)


def test_a_quarterly_guarantee_is_settled_once_at_the_quarters_end_not_topped_up_every_month(
    store: Store, settings: Settings
) -> None:
    cat = demo_catalog()
    label = with_terms(
        cat.agreements["A-LABEL"], minimum_guarantee=Money(100 * M, "EUR"), guarantee_term=GuaranteeTerm.QUARTERLY
    )
    label = replace(label, start=NOV_1)  # terms count from its start: the quarter is Nov 2026 - Jan 2027
    world(store, settings, replace(cat, agreements={**cat.agreements, "A-LABEL": label}))
    for period, at in (("2026-11", AT_NOV), (DEC, AT_DEC), (JAN, AT_JAN)):
        ingest_events(store, settings, usage(1, "100.00", prefix=period, at=at))
        run_period(store, settings, period)
        close_period(store, settings, period)
        if period != JAN:
            assert _legs(store, period, "mg_shortfall") == []  # mid-quarter: nothing paid (the monthly top-up)
    # the quarter earned 3 x 19.00 = 57.00 of its 100.00: one shortfall of 43.00, at its end
    assert _legs(store, JAN, "mg_shortfall") == [
        ("OPERATOR:EUR:operator_revenue", "P-LABEL:EUR:guarantee", 43 * M, "A-LABEL")
    ]


def test_a_pro_rata_guarantee_pays_each_periods_part_and_takes_back_what_later_earnings_cover(
    store: Store, settings: Settings
) -> None:
    cat = demo_catalog()
    label = with_terms(
        cat.agreements["A-LABEL"],
        minimum_guarantee=Money(90 * M, "EUR"),
        guarantee_term=GuaranteeTerm.QUARTERLY,
        guarantee_settlement=GuaranteeSettlement.PRO_RATA,
    )
    label = replace(label, start=NOV_1)  # the quarter Nov 2026 - Jan 2027
    world(store, settings, replace(cat, agreements={**cat.agreements, "A-LABEL": label}))
    paid = []
    for period, at, rev in (("2026-11", AT_NOV, "0.00"), (DEC, AT_DEC, "100.00"), (JAN, AT_JAN, "1000.00")):
        ingest_events(store, settings, usage(1, rev, prefix=period, at=at))
        run_period(store, settings, period)
        close_period(store, settings, period)
        paid.append(sum(a for *_, a, _ in _legs(store, period, "mg_shortfall")))
    # by hand: allocate(90.00, days 30/31/31 of 92): floors 29.347826, 30.326086, 30.326086; the 2 micro-units
    # left go to the larger remainders (88/92 each, Dec and Jan): 29.347826, 30.326087, 30.326087
    due = [29_347_826, 30_326_087, 30_326_087]
    assert paid[0] == due[0]  # nothing earned in November: its part in full
    assert paid[1] == due[0] + due[1] - 19 * M - paid[0]  # due to date - earned (19.00) - paid before: 11.326087
    assert paid[2] == 0  # January earns 190.00: the term's 209.00 covers the guarantee
    # so at the term's end the shortfall paid is taken back (an advance, recouped from payable)
    taken = paid[0] + paid[1]
    assert _legs(store, JAN, "mg_take_back") == [
        ("P-LABEL:EUR:advance", "OPERATOR:EUR:operator_revenue", taken, "A-LABEL")
    ]
    assert _legs(store, JAN, "recoupment") == [("P-LABEL:EUR:payable", "P-LABEL:EUR:advance", taken, "A-LABEL")]
    # over the term: shortfall paid - taken back == max(0, 90.00 - 209.00) == 0


def test_a_revocation_mid_term_ends_the_term_and_prorates_its_guarantee(store: Store, settings: Settings) -> None:
    cat = demo_catalog()
    label = with_terms(
        cat.agreements["A-LABEL"], minimum_guarantee=Money(92 * M, "EUR"), guarantee_term=GuaranteeTerm.QUARTERLY
    )
    world(store, settings, replace(cat, agreements={**cat.agreements, "A-LABEL": label}))
    revoked = replace(label, end=datetime(2026, 11, 16, tzinfo=UTC))  # Oct 31 + Nov 15 days of the quarter's 92
    store.apply(ChangeSet(agreements=(revoked,)), actor="test", action="revoke")
    ingest_events(store, settings, usage(1, "100.00", prefix="nov", at=datetime(2026, 11, 5, tzinfo=UTC)))
    run_period(store, settings, "2026-11")
    close_period(store, settings, "2026-11")
    # the term ends at the revocation: settled in November, guarantee 92 x 46/92 = 46.00, earned 19.00
    assert _legs(store, "2026-11", "mg_shortfall") == [
        ("OPERATOR:EUR:operator_revenue", "P-LABEL:EUR:guarantee", 27 * M, "A-LABEL")
    ]


# --- properties over random sequences of periods, earnings and rates (the close's postings, pure) -------------


def _period(i: int) -> str:
    return f"{2026 + i // 12:04d}-{i % 12 + 1:02d}"


def _result(period: str, earnings: dict[tuple[str, str, str], int]) -> RunResult:
    """A run whose lines pay ``(party, agreement, currency) -> amount``; the operator gets as much again."""
    keys = sorted(k for k, v in earnings.items() if v)
    lines = pa.table(
        {
            "party_id": [k[0] for k in keys],
            "currency": [k[2] for k in keys],
            "basis": ["training"] * len(keys),
            "amount": pa.array([earnings[k] for k in keys], pa.int64()),
            "agreement_id": [k[1] for k in keys],
        }
    )
    revenue: dict[str, int] = {}
    for (_, _, cur), v in earnings.items():
        revenue[cur] = revenue.get(cur, 0) + 2 * v
    suspense = pa.table({"currency": pa.array([], pa.string()), "amount": pa.array([], pa.int64())})
    return RunResult(period, "test", "", revenue, {c: v // 2 for c, v in revenue.items()}, lines, suspense)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Agreement], list[dict[tuple[str, str, str], int]], list[Fraction]]:
    n = draw(st.integers(2, 9))
    agreements = []
    for aid, party, mg_cur, adv_cur in (("A-1", "P-A", "EUR", "USD"), ("A-2", "P-B", "USD", "EUR")):
        end = draw(st.one_of(st.none(), st.integers(20, 300)))
        a = f.agreement(aid, party, end=None if end is None else datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=end))
        agreements.append(
            with_terms(
                a,
                minimum_guarantee=draw(
                    # A-1 always has one (the property needs ended terms); A-2 may not
                    st.builds(Money, st.integers(1, 10**10), st.just(mg_cur))
                    if aid == "A-1"
                    else st.one_of(st.none(), st.builds(Money, st.integers(1, 10**10), st.just(mg_cur)))
                ),
                advance=draw(st.one_of(st.none(), st.builds(Money, st.integers(1, 10**10), st.just(adv_cur)))),
                guarantee_term=draw(st.sampled_from(list(GuaranteeTerm)[:3])),
                guarantee_settlement=draw(st.sampled_from(list(GuaranteeSettlement))),
            )
        )
    amount = st.integers(0, 4 * 10**9)
    earnings = [
        {(p, aid, cur): draw(amount) for p, aid in (("P-A", "A-1"), ("P-B", "A-2")) for cur in ("EUR", "USD")}
        for _ in range(n)
    ]
    rates = [Fraction(draw(st.integers(5_000, 20_000)), 10_000) for _ in range(n)]
    return agreements, earnings, rates


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_over_any_sequence_of_periods_money_is_conserved_and_terms_settle_exactly(
    history: tuple[list[Agreement], list[dict[tuple[str, str, str], int]], list[Fraction]],
) -> None:
    agreements, earnings, rates = history
    done: list[ledger.Transfer] = []
    measured: dict[tuple[str, str], int] = {}  # (agreement, term) -> earnings in the guarantee currency, by hand
    for i, (earned, usd) in enumerate(zip(earnings, rates, strict=True)):
        period = _period(i)
        start, end = period_bounds(period)
        live = [a for a in agreements if a.start < end and (a.end is None or a.end > start)]
        earned = {k: v for k, v in earned.items() if any(a.agreement_id == k[1] for a in live)}
        fx = PeriodRates(period, rate_date(period), {"EUR": Fraction(1), "USD": usd})
        legs, _ = plan(_result(period, earned), live, done, rates=fx)
        done += as_transfers(legs, period)
        for a in live:
            term = term_of(a, period)
            if term is not None and a.terms.minimum_guarantee is not None:
                cur = a.terms.minimum_guarantee.currency
                for (_, aid, c), v in earned.items():
                    if aid == a.agreement_id:
                        measured[(aid, term.label)] = measured.get((aid, term.label), 0) + round(v * fx.rate((c, cur)))
        bal = ledger.balances(done)
        for currency in ("EUR", "USD"):  # each currency's books balance; revenue left its source exactly
            assert sum(v for k, v in bal.items() if ledger.parse_account(k)[1] == currency) == 0
        for acc, v in bal.items():  # an advance is never over-recouped
            if acc.endswith(":advance"):
                assert v <= 0, acc
    last = _period(len(earnings) - 1)
    for a in agreements:
        mg = a.terms.minimum_guarantee
        granted = [t for t in done if t.code == "advance" and t.reason == a.agreement_id]
        assert len(granted) <= 1  # an advance is paid once
        if mg is None:
            continue
        for i in range(len(earnings)):
            term = term_of(a, _period(i))
            if term is None or term.last_period > last:
                continue  # a term not yet ended
            in_term = {t.period for t in done} & set(term.periods)
            paid = sum(
                t.amount
                for t in done
                if t.code == "mg_shortfall" and t.reason == a.agreement_id and t.period in in_term
            )
            back = sum(
                t.amount
                for t in done
                if t.code == "mg_take_back" and t.reason == a.agreement_id and t.period in in_term
            )
            assert paid - back == max(0, term.guarantee - measured.get((a.agreement_id, term.label), 0))
            if a.terms.guarantee_settlement == GuaranteeSettlement.TERM_END:  # settled once, at the end
                assert all(
                    t.period == term.last_period
                    for t in done
                    if t.code == "mg_shortfall" and t.reason == a.agreement_id and t.period in in_term
                )


# --- each agreement's training-pool method, honoured in one run -------------------------------------------


def _training_lines(store: Store, settings: Settings, party: str) -> dict[str, int]:
    lines = load_result(latest_run(store, settings, "2026-11")).lines.to_pylist()
    return {r["isrc"]: r["amount"] for r in lines if r["party_id"] == party and r["basis"] == "training"}


def _pool_catalog() -> Catalog:
    """The docs' catalog, recording A 60 s and B 180 s long, the publisher's agreement pro rata by duration."""
    cat = demo_catalog()
    recs = {
        "GBXYZ2600001": replace(cat.recordings["GBXYZ2600001"], duration_ms=60_000),
        "GBXYZ2600002": replace(cat.recordings["GBXYZ2600002"], duration_ms=180_000),
    }
    pub = with_terms(cat.agreements["A-PUB"], training_pool_method=TrainingPoolMethod.PRO_RATA_DURATION)
    return replace(cat, recordings=recs, agreements={**cat.agreements, "A-PUB": pub})


def test_each_licensor_is_paid_by_its_own_agreements_training_pool_method(store: Store, settings: Settings) -> None:
    world(store, settings, _pool_catalog())
    ingest_events(store, settings, usage(1, "100.00", at=datetime(2026, 11, 10, 12, tzinfo=UTC)))
    run = run_period(store, settings, "2026-11")
    # by hand (docs §6): the model's pot 80.00 is split equally per work, A 40.00 and B 40.00; P-PUB's training
    # payable is 10.00 + 10.00 = 20.00 (publishing half, pool share 50 %), which its own agreement re-splits by
    # duration 60 s : 180 s = 1 : 3 -> A 5.00, B 15.00; P-LABEL's (equal per work) stay A 10.00, B 6.00
    assert _training_lines(store, settings, "P-PUB") == {"GBXYZ2600001": 5 * M, "GBXYZ2600002": 15 * M}
    assert _training_lines(store, settings, "P-LABEL") == {"GBXYZ2600001": 10 * M, "GBXYZ2600002": 6 * M}
    assert run.summary["notes"] == []  # no "agreements disagree" fallback
    assert run.summary["payable"]["EUR"] == 50 * M  # each licensor's share of the pool is unchanged


def test_a_policy_method_still_applies_to_every_agreement(store: Store, settings: Settings) -> None:
    world(store, settings, _pool_catalog())
    ingest_events(store, settings, usage(1, "100.00", at=datetime(2026, 11, 10, 12, tzinfo=UTC)))
    chosen = settings.model_copy(update={"royalty_policy": '{"default": {"training_pool_method": "equal_per_work"}}'})
    run_period(store, chosen, "2026-11")
    assert _training_lines(store, chosen, "P-PUB") == {"GBXYZ2600001": 10 * M, "GBXYZ2600002": 10 * M}


# --- the agreement's term fields: delivery format and store ------------------------------------------------


def test_a_deliveries_guarantee_term_and_settlement_are_stored_and_read_back(store: Store, tmp_path: Path) -> None:
    doc = small_catalog()
    doc["agreements"][0]["terms"].update(
        minimum_guarantee={"amount": "25000.00", "currency": "EUR"},
        guarantee_term="quarterly",
        guarantee_settlement="pro_rata",
    )
    import_delivery(store, write_delivery(tmp_path / "d", doc))
    terms = store.snapshot().agreements["AGR-M"].terms
    assert (terms.minimum_guarantee, terms.guarantee_term, terms.guarantee_settlement) == (
        Money(25_000 * M, "EUR"),
        GuaranteeTerm.QUARTERLY,
        GuaranteeSettlement.PRO_RATA,
    )
    assert store.snapshot().agreements["AGR-P"].terms.guarantee_term == GuaranteeTerm.MONTHLY  # the default


@pytest.mark.parametrize(
    ("terms", "location"),
    [
        ({"guarantee_term": "fortnightly"}, "$.agreements[0].terms.guarantee_term"),
        ({"guarantee_settlement": "never"}, "$.agreements[0].terms.guarantee_settlement"),
        (
            {"guarantee_term": "agreement", "minimum_guarantee": {"amount": "1.00", "currency": "EUR"}},
            "$.agreements[0].terms.guarantee_term",
        ),
    ],
)
def test_a_bad_guarantee_term_is_refused_naming_its_place(
    store: Store, tmp_path: Path, terms: dict[str, object], location: str
) -> None:
    doc = small_catalog()
    doc["agreements"][0]["terms"].update(terms)  # the last: a per-agreement term, but the agreement never ends
    with pytest.raises(Rejected) as info:
        import_delivery(store, write_delivery(tmp_path / "d", doc))
    assert ("invalid_value", location) in {(p.to_dict()["code"], p.to_dict()["location"]) for p in info.value.problems}


def test_a_terms_memo_accounts_fit_the_ledger_for_the_longest_agreement_id() -> None:
    long = with_terms(f.agreement("A" * 64, "P-A"), minimum_guarantee=Money(M, "EUR"))
    term = term_of(long, "2026-11")
    assert term is not None
    name = term_party(term)
    assert len(name) <= 64 and name.endswith(".2026-11-01") and ledger.account_id(name, "EUR", "term_earnings")
    assert term_party(term_of(f.agreement("A-1", "P-A", minimum_guarantee=Money(M, "EUR")), "2026-11")) == (  # type: ignore[arg-type]
        "AGR.A-1.2026-11-01"
    )


@pytest.mark.parametrize(
    ("term", "end", "period", "span", "periods", "guarantee"),
    [
        # a yearly term counted from March 2026 (the month of the start); in force from the 15th: 351 of 365 days
        (GuaranteeTerm.YEARLY, None, "2026-11", "2026-03-01..2027-03-01", 12, round(Fraction(365 * M * 351, 365))),
        # the same, ended mid-December: 2026-03-15 .. 2026-12-16 is 276 days of 365
        (GuaranteeTerm.YEARLY, datetime(2026, 12, 16, tzinfo=UTC), "2026-12", "2026-03-01..2027-03-01", 10, 276 * M),
        # one term over the whole agreement: its recorded span, nothing prorated
        (GuaranteeTerm.AGREEMENT, datetime(2026, 12, 16, tzinfo=UTC), "2026-05", "2026-03-15..2026-12-16", 10, 365 * M),
        (GuaranteeTerm.MONTHLY, None, "2026-03", "2026-03-01..2026-04-01", 1, round(Fraction(365 * M * 17, 31))),
    ],
)
def test_other_terms_their_span_and_prorated_guarantee(
    term: GuaranteeTerm, end: datetime | None, period: str, span: str, periods: int, guarantee: int
) -> None:
    a = f.agreement("A-1", "P-A", start=datetime(2026, 3, 15, tzinfo=UTC), end=end)
    got = term_of(with_terms(a, minimum_guarantee=Money(365 * M, "EUR"), guarantee_term=term), period)
    assert got is not None
    assert (got.label, len(got.periods), got.guarantee) == (span, periods, guarantee)
    assert got.due_to(got.last_period) == guarantee  # the pro rata parts sum to it exactly


def test_a_recouped_advance_needs_no_more_exchange_rates() -> None:
    a = with_terms(f.agreement("A-1", "P-A"), advance=Money(10 * M, "USD"))
    done: list[ledger.Transfer] = []
    usd = PeriodRates("2026-11", rate_date("2026-11"), {"EUR": Fraction(1), "USD": Fraction(2)})
    legs, _ = plan(_result("2026-11", {("P-A", "A-1", "EUR"): 5 * M}), [a], done, rates=usd)
    done += as_transfers(legs, "2026-11")  # 5.00 EUR -> 10.00 USD: the advance is recouped
    assert ledger.balances(done)["P-A:USD:advance"] == 0
    none = PeriodRates("2026-12", rate_date("2026-12"), {"EUR": Fraction(1)})
    legs, _ = plan(_result("2026-12", {("P-A", "A-1", "EUR"): 5 * M}), [a], done, rates=none)  # no rate asked for
    assert [leg.code for leg in legs] == ["royalty", "operator_share"]
    with pytest.raises(ValidationError, match="EUR->USD"):  # while it was outstanding, it was
        plan(_result("2026-11", {("P-A", "A-1", "EUR"): 5 * M}), [a], [], rates=none)


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 600_000)), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    )
)
def test_the_vectorised_duration_resplit_equals_the_plain_one(groups: list[list[tuple[int, int]]]) -> None:
    rows = [r for g in groups for r in g]
    amount = np.array([a for a, _ in rows], np.int64)
    ms = np.array([m for _, m in rows], np.int64)
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]]).astype(np.int64)
    key = np.arange(len(rows), dtype=np.int64)[::-1].copy()  # ties by key, not by position
    fast, plain = resplit(amount, ms, starts, key), resplit(amount, ms, starts, key, exact=True)
    assert fast.tolist() == plain.tolist()
    assert np.add.reduceat(fast, starts).tolist() == np.add.reduceat(amount, starts).tolist()  # totals kept
