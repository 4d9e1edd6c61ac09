"""Payouts: what can be wired, what waits, and the bank files that wire it.

The ledger and the statements keep micro-units; a bank moves whole minor units (cents, yen,
fils). So a party's payout is its payable balance *rounded down* to the currency's minor unit
(ISO 4217 exponent, :func:`accord.money.minor_unit_exponent`); the sub-unit remainder is not
moved and stays on its ``payable`` account, where the next period's payout finds it: over any
number of periods, paid + still payable == earned, exactly.

A party is paid only with bank details on file in the payout's currency
(:mod:`accord.registry.bank`); one without is *held*: listed with the reason, its balance left
payable, never dropped. :func:`plan_payouts` is the pure rule; :func:`write_payout_files` writes
one CSV per currency and, for EUR, an ISO 20022 ``pain.001`` credit transfer built and checked
against its schema by ``sepaxml``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from accord.errors import AccordError
from accord.money import format_major, minor_unit_exponent, minor_unit_micros, payable_part
from accord.registry.bank import BankDetails
from accord.royalties import ledger

PAID_FROM = ("guarantee", "payable")
"""The accounts a payout draws on, in this order: a guarantee's top-up first, then earnings;
the sub-unit remainder is left on the last drawn (``payable``) wherever it can be."""
CSV_COLUMNS = ("party", "name", "iban", "bic", "amount", "currency", "reference")


@dataclass(frozen=True)
class Payout:
    """One payout: a party's balance moved from payable (and guarantee) to paid.

    Attributes:
        party_id: who is paid.
        currency: in what.
        amount: micro-units moved to ``paid``, a whole number of minor units.
        transfer_ids: the ledger transfers that moved it (empty in a plan not yet posted).
        carried: micro-units below one minor unit left payable, carried to the next period.
    """

    party_id: str
    currency: str
    amount: int
    transfer_ids: tuple[str, ...]
    carried: int = 0

    @property
    def reference(self) -> str:
        return f"ACCORD {self.party_id}"


@dataclass(frozen=True)
class Held:
    """A balance not paid this time, and why (it stays payable).

    Attributes:
        party_id, currency: whose balance.
        amount: micro-units owed (payable and guarantee), all of it still payable.
        reason: why it was not paid (no bank details, below the threshold, advance not recouped, ...).
    """

    party_id: str
    currency: str
    amount: int
    reason: str


@dataclass(frozen=True)
class PayoutPlan:
    """What :func:`plan_payouts` decided: the legs to post, the payouts they make, the balances held."""

    legs: tuple[ledger.Leg, ...]
    payouts: tuple[Payout, ...]
    held: tuple[Held, ...]


def plan_payouts(
    balances: Mapping[str, int], *, threshold: int, accounts: Mapping[str, BankDetails], labels: str = ""
) -> PayoutPlan:
    """Decide each party's payout from ledger balances (pure: no store, no clock).

    ``threshold``: micro-units a payable amount must reach; ``accounts``: bank details by party.
    Per party and currency the owed amount (payable + guarantee) is rounded down to whole minor
    units; nothing is paid while an advance is outstanding, below the threshold, or without
    bank details in that currency.
    """
    owed: dict[tuple[str, str], dict[str, int]] = {}
    for acc, amount in sorted(balances.items()):  # sorted: legs and files in a stable order
        party, currency, kind = ledger.parse_account(acc)
        if kind in PAID_FROM and amount > 0:
            owed.setdefault((party, currency), {})[kind] = amount
    legs: list[ledger.Leg] = []
    payouts: list[Payout] = []
    held: list[Held] = []
    for (party, currency), by_kind in sorted(owed.items()):
        total = sum(by_kind.values())
        amount, carried = payable_part(total, currency)
        outstanding = -balances.get(ledger.account_id(party, currency, "advance"), 0)
        bank = accounts.get(party)
        reason = ""
        if outstanding > 0:
            reason = f"advance not recouped ({outstanding} micro-units outstanding)"
        elif amount == 0 or amount < threshold:
            reason = "below the payout threshold" if amount else f"below one minor unit of {currency}"
        elif bank is None:
            reason = "no bank details on file"
        elif bank.currency != currency:
            reason = f"bank account is in {bank.currency}, not {currency}"
        if reason:
            held.append(Held(party, currency, total, reason))
            continue
        paid_acc, left = ledger.account_id(party, currency, "paid"), amount
        for kind in PAID_FROM:
            take = min(by_kind.get(kind, 0), left)
            if take > 0:
                legs.append(ledger.Leg(ledger.account_id(party, currency, kind), paid_acc, take, "payout", kind))
                left -= take
        payouts.append(Payout(party, currency, amount, (), carried))
    return PayoutPlan(tuple(legs), tuple(payouts), tuple(held))


def payout_csv(payouts: list[Payout], accounts: Mapping[str, BankDetails]) -> str:
    """One currency's payouts as CSV: party, name, IBAN, BIC, amount (major units, the currency's decimals)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in payouts:
        bank = accounts[p.party_id]
        amount = format_major(p.amount, p.currency)
        writer.writerow((p.party_id, bank.holder, bank.iban, bank.bic, amount, p.currency, p.reference))
    return buf.getvalue()


def pain001(payouts: list[Payout], accounts: Mapping[str, BankDetails], debtor: BankDetails, when: date) -> bytes:
    """EUR payouts as an ISO 20022 pain.001.001.03 SEPA credit transfer (schema-validated by sepaxml)."""
    from sepaxml import SepaTransfer

    config = {"name": debtor.holder, "IBAN": debtor.iban, "BIC": debtor.bic, "batch": True, "currency": "EUR"}
    sepa = SepaTransfer(config, schema="pain.001.001.03", clean=True)
    unit = minor_unit_micros("EUR")
    for p in payouts:
        bank = accounts[p.party_id]
        sepa.add_payment(
            {
                "name": bank.holder,
                "IBAN": bank.iban,
                "BIC": bank.bic,
                "amount": p.amount // unit,  # sepaxml takes cents
                "execution_date": when,
                "description": p.reference,
                "endtoend_id": p.reference.replace(" ", "-")[:35],
            }
        )
    try:
        return bytes(sepa.export(validate=True, pretty_print=True))
    except Exception as exc:  # sepaxml raises bare exceptions (and xmlschema's) on invalid input
        msg = f"pain.001: the credit transfer did not validate against its schema ({exc})"
        raise AccordError(msg) from exc


def write_payout_files(
    payouts: list[Payout],
    accounts: Mapping[str, BankDetails],
    folder: Path,
    *,
    period: str,
    debtor: BankDetails | None,
    when: date,
) -> tuple[list[Path], list[str]]:
    """Write ``payouts-P-CUR.csv`` per currency and ``payouts-P-EUR.pain.001.xml``; return paths and notes.

    The pain.001 file needs the operator's own EUR account (bank details of party ``OPERATOR``);
    without it the note says so and only the CSV is written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    notes: list[str] = []
    for currency in sorted({p.currency for p in payouts}):
        mine = [p for p in payouts if p.currency == currency]
        minor_unit_exponent(currency)  # refuses a currency without a minor unit before anything is written
        path = folder / f"payouts-{period}-{currency}.csv"
        path.write_text(payout_csv(mine, accounts), encoding="utf-8")
        paths.append(path)
        if currency != "EUR":
            continue
        if debtor is None or debtor.currency != "EUR":
            notes.append("no pain.001 file: the operator has no EUR bank details (accord bank set OPERATOR ...)")
            continue
        xml = folder / f"payouts-{period}-EUR.pain.001.xml"
        xml.write_bytes(pain001(mine, accounts, debtor, when))
        paths.append(xml)
    return paths, notes
