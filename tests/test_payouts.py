"""Payouts: whole minor units (ISO 4217), the remainder carried, bank details, and the bank files."""

from __future__ import annotations

import json
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text, update
from typer.testing import CliRunner

from accord.api.app import create_app
from accord.api.auth import create_key
from accord.cli import app
from accord.errors import Forbidden, NotFound, ValidationError
from accord.money import MICROS, format_major, minor_unit_exponent, minor_unit_micros, payable_part
from accord.registry.bank import OPERATOR, BankDetails, bank_details, set_bank_details
from accord.registry.schema import Base
from accord.registry.store import ChangeSet, Store
from accord.royalties import heads, ledger
from accord.royalties.ledger import Leg, account_id
from accord.royalties.payouts import plan_payouts
from accord.royalties.periods import ensure_period
from accord.royalties.run import payout_batch
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests import factories as f

IBANS = {
    "P-A": "DE89370400440532013000",
    "P-B": "DE62370400440532013001",
    "P-C": "DE35370400440532013002",
    OPERATOR: "FR7630006000011234567890189",
}
NO_THRESHOLD = {"payout_threshold": "0"}


@pytest.fixture
def parties(store: Store) -> Store:
    store.apply(
        ChangeSet(parties=tuple(f.party(p, name=f"Party {p[-1]}") for p in ("P-A", "P-B", "P-C"))),
        actor="test",
        action="test",
    )
    return store


def bank(store: Store, party: str, currency: str = "EUR") -> BankDetails:
    return set_bank_details(
        store,
        party,
        iban=IBANS[party],
        bic="",
        holder=f"Holder {party}",
        currency=currency,
        caller="ops",
        operator=True,
    )


def earn(store: Store, settings: Settings, period: str, amounts: dict[tuple[str, str], int]) -> None:
    """Close ``period`` with these earnings (micro-units) posted to each party's payable account."""
    legs = [
        Leg(account_id(ledger.REVENUE, cur, "revenue_source"), account_id(party, cur, "payable"), amount, "royalty")
        for (party, cur), amount in sorted(amounts.items())
    ]
    key, _ = ensure_operator_key(settings.home)
    ensure_period(store, period)
    periods = Base.metadata.tables["royalty_periods"]
    with store.engine.begin() as conn:
        ledger.post(store, legs, period=period, conn=conn)
        conn.execute(update(periods).where(periods.c.period == period).values(status="closed"))
        heads.sign_head(store, conn, key, event="close", period=period)


def balance(store: Store, party: str, currency: str, kind: str) -> int:
    return ledger.balances(ledger.transfers(store)).get(account_id(party, currency, kind), 0)


# --- minor units ---------------------------------------------------------------------------------


def test_minor_units_come_from_the_iso_4217_table() -> None:
    assert [minor_unit_exponent(c) for c in ("JPY", "EUR", "USD", "BHD", "CLF")] == [0, 2, 2, 3, 4]
    assert minor_unit_micros("EUR") == 10_000 and minor_unit_micros("JPY") == MICROS
    assert payable_part(37_642_469, "EUR") == (37_640_000, 2_469)
    assert (format_major(37_640_000, "EUR"), format_major(1_234_000_000, "JPY"), format_major(1_234_000, "BHD")) == (
        "37.64",
        "1234",
        "1.234",
    )
    with pytest.raises(ValidationError, match=r"XAU.*no minor unit"):
        minor_unit_exponent("XAU")  # gold: ISO 4217 "N.A."
    with pytest.raises(ValidationError, match="not a whole number of minor units"):
        format_major(37_642_469, "EUR")


CURRENCIES = ("EUR", "JPY", "BHD", "USD")
step = st.tuples(
    st.dictionaries(
        st.tuples(st.sampled_from(("P-A", "P-B", "P-C")), st.sampled_from(CURRENCIES)),
        st.integers(min_value=1, max_value=5_000 * MICROS),
        max_size=6,
    ),
    st.booleans(),  # a payout after this period's earnings, or not
)


@given(steps=st.lists(step, min_size=1, max_size=8), threshold=st.sampled_from((0, 10_000, 25 * MICROS)))
@hsettings(max_examples=150, deadline=None)
def test_over_any_periods_paid_plus_carried_is_earned_exactly_and_each_payout_is_whole_minor_units(
    steps: list[tuple[dict[tuple[str, str], int], bool]], threshold: int
) -> None:
    accounts = {
        p: BankDetails(p, IBANS[p], "COBADEFFXXX", p, cur, None, "ops")  # type: ignore[arg-type]
        for p, cur in (("P-A", "EUR"), ("P-B", "JPY"), ("P-C", "BHD"))
    }
    bal: dict[str, int] = {}
    earned: dict[tuple[str, str], int] = {}

    def move(debit: str, credit: str, amount: int) -> None:
        bal[debit] = bal.get(debit, 0) - amount
        bal[credit] = bal.get(credit, 0) + amount

    for earnings, pay in steps:
        for (party, cur), amount in earnings.items():
            move(account_id(ledger.REVENUE, cur, "revenue_source"), account_id(party, cur, "payable"), amount)
            earned[(party, cur)] = earned.get((party, cur), 0) + amount
        if not pay:
            continue
        plan = plan_payouts(bal, threshold=threshold, accounts=accounts)
        for leg in plan.legs:
            move(leg.debit, leg.credit, leg.amount)
        for p in plan.payouts:
            assert p.amount % minor_unit_micros(p.currency) == 0 and p.amount >= threshold
            assert 0 <= p.carried < minor_unit_micros(p.currency)
            assert bal[account_id(p.party_id, p.currency, "payable")] == p.carried
        assert {(h.party_id, h.currency) for h in plan.held}.isdisjoint(
            {(p.party_id, p.currency) for p in plan.payouts}
        )
    for (party, cur), total in earned.items():
        paid = bal.get(account_id(party, cur, "paid"), 0)
        carried = bal.get(account_id(party, cur, "payable"), 0)
        assert paid + carried == total and paid % minor_unit_micros(cur) == 0
    assert sum(bal.values()) == 0


def test_through_the_store_paid_plus_carried_is_earned_over_random_periods(parties: Store, settings: Settings) -> None:
    """The same invariant after a round trip through the real store (SQLite and PostgreSQL): closes, payouts, heads."""
    store, cheap = parties, settings.model_copy(update=NO_THRESHOLD)
    for party, cur in (("P-A", "EUR"), ("P-B", "JPY"), ("P-C", "BHD")):
        bank(store, party, cur)
    key = ensure_operator_key(settings.home)[0]
    months = [f"2026-{m:02d}" for m in range(1, 13)]

    @given(steps=st.lists(step, min_size=1, max_size=4))
    @hsettings(max_examples=12, deadline=None)
    def run(steps: list[tuple[dict[tuple[str, str], int], bool]]) -> None:
        tables = ("ledger_heads", "royalty_payouts", "ledger_transfers", "ledger_accounts", "royalty_periods")
        with store.engine.begin() as conn:  # each example starts from an empty ledger
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
        earned: dict[tuple[str, str], int] = {}
        for month, (earnings, pay) in zip(months, steps, strict=False):
            earn(store, settings, month, earnings)
            for k, v in earnings.items():
                earned[k] = earned.get(k, 0) + v
            if pay:
                for p in payout_batch(store, cheap, month).payouts:
                    assert p.amount % minor_unit_micros(p.currency) == 0
        for (party, cur), total in earned.items():
            paid, carried = balance(store, party, cur, "paid"), balance(store, party, cur, "payable")
            assert paid + carried == total
        assert ledger.verify(store, key.public_hex).ok

    run()


def test_a_payout_is_rounded_down_to_whole_cents_and_the_rest_is_carried(parties: Store, settings: Settings) -> None:
    store, cheap = parties, settings.model_copy(update=NO_THRESHOLD)
    bank(store, "P-A")
    earn(store, settings, "2026-10", {("P-A", "EUR"): 37_642_469})
    (first,) = payout_batch(store, cheap, "2026-10").payouts
    assert (first.amount, first.carried) == (37_640_000, 2_469)  # 37.64 EUR wired, 0.002469 EUR stays payable
    assert balance(store, "P-A", "EUR", "payable") == 2_469 and balance(store, "P-A", "EUR", "paid") == 37_640_000
    earn(store, settings, "2026-11", {("P-A", "EUR"): 7_531})  # the carry and this make one whole cent
    (second,) = payout_batch(store, cheap, "2026-11").payouts
    assert (second.amount, second.carried) == (10_000, 0) and balance(store, "P-A", "EUR", "payable") == 0
    assert [h.event for h in heads.signed_heads(store)] == ["close", "payout", "close", "payout"]
    assert ledger.verify(store, ensure_operator_key(settings.home)[0].public_hex).ok


def test_each_currency_rounds_to_its_own_minor_unit(parties: Store, settings: Settings) -> None:
    store = parties
    bank(store, "P-B", "JPY")
    bank(store, "P-C", "BHD")
    earn(store, settings, "2026-10", {("P-B", "JPY"): 1_234_567_890, ("P-C", "BHD"): 1_234_567})
    paid = {p.party_id: p for p in payout_batch(store, settings.model_copy(update=NO_THRESHOLD), "2026-10").payouts}
    assert (paid["P-B"].amount, paid["P-B"].carried) == (1_234_000_000, 567_890)  # 1234 JPY, no sen
    assert (paid["P-C"].amount, paid["P-C"].carried) == (1_234_000, 567)  # 1.234 BHD (fils)


def test_parties_without_bank_details_are_held_and_paid_once_they_have_them(parties: Store, settings: Settings) -> None:
    store, cheap = parties, settings.model_copy(update=NO_THRESHOLD)
    bank(store, "P-A")
    bank(store, "P-C", "USD")
    earn(store, settings, "2026-10", {("P-A", "EUR"): 5 * MICROS, ("P-B", "EUR"): 7 * MICROS, ("P-C", "EUR"): MICROS})
    batch = payout_batch(store, cheap, "2026-10")
    assert [p.party_id for p in batch.payouts] == ["P-A"]
    held = {h.party_id: h for h in batch.held}
    assert (held["P-B"].amount, held["P-B"].reason) == (7 * MICROS, "no bank details on file")
    assert held["P-C"].reason == "bank account is in USD, not EUR"
    assert balance(store, "P-B", "EUR", "payable") == 7 * MICROS  # held, not dropped
    bank(store, "P-B")
    earn(store, settings, "2026-11", {})
    assert [(p.party_id, p.amount) for p in payout_batch(store, cheap, "2026-11").payouts] == [("P-B", 7 * MICROS)]


# --- bank details ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iban", "DE89 3704 0044 0532 0130 01"),  # check digits do not match
        ("iban", "XX00"),
        ("bic", "DEUTDEFFXX"),  # 10 characters
        ("holder", "   "),
        ("currency", "EURO"),
    ],
)
def test_bank_details_are_validated_naming_the_field(parties: Store, field: str, value: str) -> None:
    given = {"iban": IBANS["P-A"], "bic": "COBADEFFXXX", "holder": "Party A", "currency": "EUR", field: value}
    with pytest.raises(ValidationError) as err:
        set_bank_details(parties, "P-A", **given, caller="P-A", operator=False)
    assert err.value.field == field and str(err.value).startswith(f"{field}: ")


def test_bank_details_round_trip_and_the_bic_can_come_from_the_iban(parties: Store) -> None:
    set_bank_details(
        parties, "P-A", iban="de89 3704 0044 0532 0130 00", bic="", holder=" Party  A ", currency="eur",
        caller="P-A", operator=False,
    )  # fmt: skip
    got = bank_details(parties, "P-A", viewer="P-A", operator=False)
    assert (got.iban, got.bic, got.holder, got.currency) == ("DE89370400440532013000", "COBADEFFXXX", "Party A", "EUR")


def test_bank_details_are_only_for_the_party_itself_and_the_operator(parties: Store) -> None:
    store = parties
    with pytest.raises(Forbidden, match=r"P-B.*may not set the bank details of 'P-A'"):
        set_bank_details(
            store, "P-A", iban=IBANS["P-B"], bic="", holder="B", currency="EUR", caller="P-B", operator=False
        )
    set_bank_details(store, "P-A", iban=IBANS["P-A"], bic="", holder="A", currency="EUR", caller="P-A", operator=False)
    with pytest.raises(NotFound):
        bank_details(store, "P-A", viewer="P-B", operator=False)
    assert bank_details(store, "P-A", viewer="ops", operator=True).iban == IBANS["P-A"]
    bank(store, "P-A")  # the operator changes it: audited as such
    events = [e for e in store.audit_log() if e.action == "bank_details.set"]
    assert [(e.actor, e.subject, e.detail["by"]) for e in events] == [
        ("ops", "party:P-A", "operator"),
        ("P-A", "party:P-A", "party"),
    ]
    assert all(IBANS["P-A"] not in json.dumps(e.detail) for e in events)  # masked in the log: DE89…3000
    with pytest.raises(NotFound, match="P-NOBODY"):
        set_bank_details(
            store, "P-NOBODY", iban=IBANS["P-A"], bic="", holder="x", currency="EUR", caller="ops", operator=True
        )


def test_the_api_lets_a_party_set_and_see_only_its_own_bank_details(parties: Store, settings: Settings) -> None:
    keys = {
        name: create_key(parties, role=role, party_id=party)[1]
        for name, role, party in (
            ("a", "rights_holder", "P-A"),
            ("b", "rights_holder", "P-B"),
            ("ops", "operator", "ops"),
        )
    }
    auth = {name: {"Authorization": f"Bearer {secret}"} for name, secret in keys.items()}
    body = {"iban": IBANS["P-A"], "holder": "Party A", "currency": "EUR"}
    with TestClient(create_app(settings, store=parties)) as c:
        assert c.put("/v1/parties/P-A/bank-details", headers=auth["b"], json=body).status_code == 403
        bad = c.put("/v1/parties/P-A/bank-details", headers=auth["a"], json={**body, "iban": "DE00"})
        assert bad.status_code == 422 and "iban" in bad.text
        assert c.put("/v1/parties/P-A/bank-details", headers=auth["a"], json=body).json()["bic"] == "COBADEFFXXX"
        assert c.get("/v1/parties/P-A/bank-details", headers=auth["b"]).status_code == 404
        assert c.get("/v1/parties/P-A/bank-details", headers=auth["ops"]).json()["iban"] == IBANS["P-A"]


# --- payout files ----------------------------------------------------------------------------------

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def test_the_payout_command_writes_a_csv_per_currency_and_a_pain_001_for_euros(
    parties: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = parties
    monkeypatch.setenv("ACCORD_PAYOUT_THRESHOLD", "0")
    bank(store, "P-A")
    bank(store, "P-B", "JPY")
    bank(store, OPERATOR)
    earn(
        store,
        settings,
        "2026-10",
        {("P-A", "EUR"): 37_642_469, ("P-B", "JPY"): 1_234_567_890, ("P-C", "EUR"): 2 * MICROS},
    )
    out = tmp_path / "files"
    result = CliRunner().invoke(app, ["royalties", "payout", "--period", "2026-10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "held" in result.output and "P-C" in result.output and "no bank details" in result.output
    eur = (out / "payouts-2026-10-EUR.csv").read_text().splitlines()
    assert eur == [
        "party,name,iban,bic,amount,currency,reference",
        f"P-A,Holder P-A,{IBANS['P-A']},COBADEFFXXX,37.64,EUR,ACCORD P-A",
    ]
    assert (out / "payouts-2026-10-JPY.csv").read_text().splitlines()[1].split(",")[4] == "1234"
    root = SafeET.parse(out / "payouts-2026-10-EUR.pain.001.xml").getroot()
    assert root.find("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", NS).text == "1"
    tx = root.find("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS)
    amount = tx.find("p:Amt/p:InstdAmt", NS)
    assert (amount.text, amount.get("Ccy")) == ("37.64", "EUR")
    assert tx.find("p:CdtrAcct/p:Id/p:IBAN", NS).text == IBANS["P-A"]
    assert root.find("p:CstmrCdtTrfInitn/p:PmtInf/p:DbtrAcct/p:Id/p:IBAN", NS).text == IBANS[OPERATOR]
    assert not (out / "payouts-2026-10-JPY.pain.001.xml").exists()  # SEPA is for euros only


def test_without_the_operators_euro_account_there_is_no_pain_001_and_it_says_so(
    parties: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCORD_PAYOUT_THRESHOLD", "0")
    bank(parties, "P-A")
    earn(parties, settings, "2026-10", {("P-A", "EUR"): 3 * MICROS})
    out = tmp_path / "files"
    result = CliRunner().invoke(app, ["royalties", "payout", "--period", "2026-10", "--out", str(out)])
    assert result.exit_code == 0 and "no pain.001" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["payouts-2026-10-EUR.csv"]


def test_the_bank_command_refuses_a_bad_iban_naming_it(parties: Store, settings: Settings) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["bank", "set", "P-A", "--iban", "DE00 1234", "--holder", "A"])
    assert bad.exit_code != 0 and "iban" in bad.output
    good = runner.invoke(app, ["bank", "set", "P-A", "--iban", IBANS["P-A"], "--holder", "A"])
    assert good.exit_code == 0 and "DE89…3000" in good.output
    shown = json.loads(runner.invoke(app, ["bank", "show", "P-A", "--json"]).output)
    assert (shown["iban"], shown["bic"]) == (IBANS["P-A"], "COBADEFFXXX")
    with parties.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bank_details")).scalar_one() == 1
