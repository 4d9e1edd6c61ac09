"""What closing a period posts to the ledger: a pure function of a run and the ledger so far.

Per currency, revenue leaves the revenue source account (``REVENUE:CUR:revenue_source``)
to each party's ``payable`` (one leg per party and basis), the operator's
``operator_revenue`` and the ``UNMATCHED`` suspense account; their sum is the period's
revenue. Then, per agreement and party:

* **minimum guarantee**: if the royalties earned under an agreement fall short of its
  guarantee, the shortfall moves from operator revenue to the licensor's ``guarantee``
  account (code ``mg_shortfall``, naming the agreement): recorded explicitly, never mixed
  into the royalty lines; it is paid out with the payable balance;
* **advance**: the first period an agreement with an advance is in force, the advance is
  recorded as paid to the licensor (``advance`` debited, ``paid`` credited);
* **reserves**: last period's reserve is released into payable, then ``reserve_ppm`` of this
  period's royalty income is held back;
* **recoupment**: while the party's advance account is outstanding, its payable balance is
  applied to it (``recoupment``), so nothing is paid out until the advance is recouped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from accord.money import allocate
from accord.registry.entities import PPM_WHOLE, Agreement
from accord.royalties.engine import RunResult
from accord.royalties.ledger import OPERATOR, REVENUE, UNMATCHED, Leg, Transfer, account_id, balances

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Guarantee:
    """A minimum guarantee checked in a period.

    Attributes:
        agreement_id, party_id, currency: whose, in what.
        guaranteed: the guarantee (micro-units).
        earned: royalties earned under the agreement this period.
        shortfall: ``max(0, guaranteed - earned)``, paid from operator revenue.
    """

    agreement_id: str
    party_id: str
    currency: str
    guaranteed: int
    earned: int
    shortfall: int


def plan(
    result: RunResult,
    agreements: Sequence[Agreement],
    history: Sequence[Transfer],
    *,
    reserve_ppm: int = 0,
) -> tuple[list[Leg], list[Guarantee]]:
    """The legs that close ``result``'s period, given every transfer of earlier periods."""
    legs: list[Leg] = []
    income: dict[tuple[str, str], int] = defaultdict(int)  # (party, currency) -> this period's income
    by_basis: dict[tuple[str, str, str], int] = defaultdict(int)
    earned: dict[tuple[str, str], int] = defaultdict(int)  # (agreement, currency)
    for r in result.lines.select(["party_id", "currency", "basis", "amount", "agreement_id"]).to_pylist():
        by_basis[(r["party_id"], r["currency"], r["basis"])] += r["amount"]
        earned[(r["agreement_id"], r["currency"])] += r["amount"]
    for (party, currency, basis), amount in sorted(by_basis.items()):
        source = account_id(REVENUE, currency, "revenue_source")
        legs.append(Leg(source, account_id(party, currency, "payable"), amount, "royalty", basis))
        income[(party, currency)] += amount
    unmatched = result.unmatched()
    for currency in sorted(result.revenue):
        source = account_id(REVENUE, currency, "revenue_source")
        if result.operator.get(currency, 0):
            legs.append(
                Leg(
                    source,
                    account_id(OPERATOR, currency, "operator_revenue"),
                    result.operator[currency],
                    "operator_share",
                )
            )
        if unmatched.get(currency, 0):
            legs.append(Leg(source, account_id(UNMATCHED, currency, "suspense"), unmatched[currency], "unmatched"))
    guarantees: list[Guarantee] = []
    granted = {tr.reason for tr in history if tr.code == "advance"}
    for a in sorted(agreements, key=lambda a: a.agreement_id):
        mg = a.terms.minimum_guarantee
        if mg is not None and mg.micros > 0:
            got = earned.get((a.agreement_id, mg.currency), 0)
            short = max(0, mg.micros - got)
            guarantees.append(Guarantee(a.agreement_id, a.licensor, mg.currency, mg.micros, got, short))
            if short:
                op = account_id(OPERATOR, mg.currency, "operator_revenue")
                due = account_id(a.licensor, mg.currency, "guarantee")
                legs.append(Leg(op, due, short, "mg_shortfall", a.agreement_id))
        adv = a.terms.advance
        if adv is not None and adv.micros > 0 and a.agreement_id not in granted:
            debit, credit = (
                account_id(a.licensor, adv.currency, "advance"),
                account_id(a.licensor, adv.currency, "paid"),
            )
            legs.append(Leg(debit, credit, adv.micros, "advance", a.agreement_id))
    before = balances(history)
    parties = sorted(set(income) | set(_reserved(before)))
    for party, currency in parties:
        payable = account_id(party, currency, "payable")
        reserve = account_id(party, currency, "reserve")
        held = before.get(reserve, 0)
        if held > 0:
            legs.append(Leg(reserve, payable, held, "reserve_release"))
        new_income = income.get((party, currency), 0)
        if reserve_ppm and new_income > 0:
            hold, _ = allocate(new_income, [reserve_ppm, PPM_WHOLE - reserve_ppm], ["reserve", "rest"])
            if hold:
                legs.append(Leg(payable, reserve, hold, "reserve"))
    after = balances([*history, *as_transfers(legs, result.period)])
    for acc in sorted(k for k in after if k.endswith(":advance")):
        party, currency = acc.split(":")[0], acc.split(":")[1]
        outstanding = -after[acc]
        available = after.get(account_id(party, currency, "payable"), 0)
        recoup = min(outstanding, available)
        if recoup > 0:
            legs.append(Leg(account_id(party, currency, "payable"), acc, recoup, "recoupment"))
    return legs, guarantees


def _reserved(bal: dict[str, int]) -> list[tuple[str, str]]:
    return [(k.split(":")[0], k.split(":")[1]) for k, v in sorted(bal.items()) if k.endswith(":reserve") and v > 0]


def as_transfers(legs: Sequence[Leg], period: str) -> list[Transfer]:
    """Planned legs shaped as transfers of ``period`` (balances and statements before posting)."""
    return [
        Transfer(
            0,
            "",
            "",
            leg.debit,
            leg.credit,
            leg.amount,
            leg.debit.split(":")[1],
            leg.code,
            period,
            "",
            "",
            leg.reason,
            _EPOCH,
            "",
            "",
        )
        for leg in legs
    ]
