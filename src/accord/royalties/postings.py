"""What closing a period posts to the ledger: a pure function of a run, the ledger so far and the period's rates.

Per currency, revenue leaves the revenue source account (``REVENUE:CUR:revenue_source``)
to each party's ``payable`` (one leg per party and basis), the operator's
``operator_revenue`` and the ``UNMATCHED`` suspense account; their sum is the period's
revenue. Then, per agreement and party:

* **advance**: the first period an agreement with an advance is in force, the advance is
  recorded as paid to the licensor (``advance`` debited, ``paid`` credited, the agreement
  as the reason);
* **minimum guarantee** (:mod:`accord.royalties.terms`): the agreement's earnings this period,
  converted to the guarantee's currency at the period's rate, are recorded on the term's memo
  account ``AGR.<agreement>.<term start>:CUR:term_earnings`` (code ``term_earnings``, the
  rate in the reason); the term's earnings to date are that account's balance, never
  recomputed. A shortfall moves from operator revenue to the licensor's ``guarantee``
  account (``mg_shortfall``, the agreement as the reason) and onto the term's
  ``term_shortfall`` memo; a pro rata shortfall paid beyond the term's final shortfall is
  taken back as an advance (``mg_take_back``: ``advance`` debited, operator revenue credited);
* **reserves**: last period's reserve is released into payable, then ``reserve_ppm`` of this
  period's royalty income is held back;
* **recoupment**: while a party's advance in a currency is outstanding, its payable in that
  currency is applied to it, then its payable in other currencies, converted at the
  period's rate (``conversion`` legs through ``FX.AAA-BBB:AAA:conversion`` and
  ``FX.AAA-BBB:BBB:conversion``, the rate in the reason) as far as needed; recoupment legs
  name the agreement whose advance they recoup (oldest agreement id first). An advance is
  never recouped beyond what is outstanding.

Every leg is in one currency, so each currency's books balance on their own; a conversion
is the pair of legs through the pair's two conversion accounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from math import ceil

from accord.money import allocate
from accord.registry.entities import PPM_WHOLE, Agreement, GuaranteeSettlement
from accord.royalties.engine import RunResult
from accord.royalties.fx import Pair, PeriodRates, convert_many, rate_date, require_rates
from accord.royalties.ledger import OPERATOR, REVENUE, UNMATCHED, Leg, Transfer, account_id, balances, parse_account
from accord.royalties.terms import Settlement, Term, settle, term_of, term_party

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Guarantee:
    """A minimum guarantee checked in a period.

    Attributes:
        agreement_id, party_id, currency: whose, in what.
        guaranteed: the term's guarantee (micro-units, prorated by days in force).
        earned: the term's earnings to date, in the guarantee's currency.
        shortfall: shortfall paid this period (from operator revenue).
        term: the term (``2026-12-01..2027-03-01``).
        settled: whether the term ended this period.
        taken_back: pro rata shortfall taken back as an advance at the term's end.
    """

    agreement_id: str
    party_id: str
    currency: str
    guaranteed: int
    earned: int
    shortfall: int
    term: str = ""
    settled: bool = True
    taken_back: int = 0


def fx_party(pair: Pair) -> str:
    """The party part of a pair's conversion accounts: ``FX.EUR-USD``."""
    return f"FX.{pair[0]}-{pair[1]}"


def _earnings(result: RunResult) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(agreement, currency) -> earned, and (party, currency) -> income, from the run's lines."""
    by_agreement: dict[tuple[str, str], int] = defaultdict(int)
    by_party: dict[tuple[str, str], int] = defaultdict(int)
    for r in result.lines.select(["party_id", "currency", "amount", "agreement_id"]).to_pylist():
        by_agreement[(r["agreement_id"], r["currency"])] += r["amount"]
        by_party[(r["party_id"], r["currency"])] += r["amount"]
    return by_agreement, by_party


def _advance_currencies(
    agreements: Iterable[Agreement], history: Sequence[Transfer], period: str
) -> dict[str, set[str]]:
    """party -> currencies in which it may have an advance outstanding at this close.

    Those outstanding before it, those granted at it (an agreement's first close), and those a
    pro rata guarantee ending at it may take back.
    """
    granted = {tr.reason for tr in history if tr.code == "advance"}
    out: dict[str, set[str]] = defaultdict(set)
    for a in agreements:
        adv, mg = a.terms.advance, a.terms.minimum_guarantee
        if adv is not None and adv.micros > 0 and a.agreement_id not in granted:
            out[a.licensor].add(adv.currency)
        term = term_of(a, period)
        pro_rata = a.terms.guarantee_settlement == GuaranteeSettlement.PRO_RATA
        if term is not None and mg is not None and pro_rata and term.last_period == period:
            out[a.licensor].add(mg.currency)
    for acc, value in balances(history).items():
        party, currency, kind = parse_account(acc)
        if kind == "advance" and value < 0:
            out[party].add(currency)
    return out


def needed_pairs(result: RunResult, agreements: Sequence[Agreement], history: Sequence[Transfer]) -> set[Pair]:
    """The currency pairs a close converts: earnings to guarantee currencies, payables to advance currencies."""
    by_agreement, by_party = _earnings(result)
    pairs: set[Pair] = set()
    for a in agreements:
        mg = a.terms.minimum_guarantee
        if term_of(a, result.period) is not None and mg is not None:
            pairs |= {(cur, mg.currency) for (aid, cur), v in by_agreement.items() if aid == a.agreement_id and v}
    before = balances(history)
    held: dict[str, set[str]] = defaultdict(set)
    for (party, cur), v in by_party.items():
        if v:
            held[party].add(cur)
    for acc, value in before.items():
        party, cur, kind = parse_account(acc)
        if kind == "payable" and value > 0:
            held[party].add(cur)
    for party, currencies in _advance_currencies(agreements, history, result.period).items():
        pairs |= {(d, c) for c in currencies for d in held.get(party, ()) if d != c}
    return {p for p in pairs if p[0] != p[1]}


def plan(
    result: RunResult,
    agreements: Sequence[Agreement],
    history: Sequence[Transfer],
    *,
    reserve_ppm: int = 0,
    rates: PeriodRates | None = None,
) -> tuple[list[Leg], list[Guarantee]]:
    """The legs that close ``result``'s period, given every transfer of earlier periods and the period's rates.

    Raises :class:`~accord.errors.ValidationError` naming every missing currency pair and date
    when a conversion needs a rate ``rates`` lacks.
    """
    period = result.period
    rates = rates or PeriodRates(period, rate_date(period), {"EUR": Fraction(1)})
    require_rates(rates, needed_pairs(result, agreements, history))
    legs: list[Leg] = []
    income: dict[tuple[str, str], int] = defaultdict(int)  # (party, currency) -> this period's income
    by_basis: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in result.lines.select(["party_id", "currency", "basis", "amount"]).to_pylist():
        by_basis[(r["party_id"], r["currency"], r["basis"])] += r["amount"]
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
    ordered = sorted(agreements, key=lambda a: a.agreement_id)
    granted = {tr.reason for tr in history if tr.code == "advance"}
    for a in ordered:
        adv = a.terms.advance
        if adv is not None and adv.micros > 0 and a.agreement_id not in granted:
            debit, credit = (
                account_id(a.licensor, adv.currency, "advance"),
                account_id(a.licensor, adv.currency, "paid"),
            )
            legs.append(Leg(debit, credit, adv.micros, "advance", a.agreement_id))
    before = balances(history)
    guarantees = _guarantees(result, ordered, before, rates, legs)
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
    legs += _recoupment([*history, *as_transfers(legs, period)], rates)
    return legs, guarantees


def _guarantees(
    result: RunResult, ordered: Sequence[Agreement], before: dict[str, int], rates: PeriodRates, legs: list[Leg]
) -> list[Guarantee]:
    """Each guarantee term's memo legs and shortfall (appended to ``legs``), and what was checked."""
    by_agreement, _ = _earnings(result)
    terms: list[tuple[Agreement, Term]] = []
    for a in ordered:
        term = term_of(a, result.period)
        if term is not None:
            terms.append((a, term))
    # earnings measured in each guarantee's currency: per pair, one conversion over the agreements
    measured: dict[tuple[str, str], int] = {}  # (agreement, from currency) -> amount in the guarantee currency
    wanted: dict[Pair, list[tuple[str, int]]] = defaultdict(list)
    for a, _ in terms:
        target = a.terms.minimum_guarantee.currency  # type: ignore[union-attr]
        for (aid, cur), amount in sorted(by_agreement.items()):
            if aid == a.agreement_id and amount:
                wanted[(cur, target)].append((aid, amount))
    for pair, amounts in sorted(wanted.items()):
        converted = convert_many(amounts, rates.rate(pair))
        measured |= {(aid, pair[0]): v for aid, v in converted.items()}
    out: list[Guarantee] = []
    for a, term in terms:
        currency = a.terms.minimum_guarantee.currency  # type: ignore[union-attr]
        memo = term_party(term)
        basis = account_id(memo, currency, "term_basis")
        earned_acc = account_id(memo, currency, "term_earnings")
        short_acc = account_id(memo, currency, "term_shortfall")
        earned = 0
        for (aid, cur), amount in sorted(measured.items()):
            if aid != a.agreement_id or not amount:
                continue
            native = by_agreement[(aid, cur)]
            why = term.label if cur == currency else f"{term.label} {cur} {native} at {rates.text((cur, currency))}"
            legs.append(Leg(basis, earned_acc, amount, "term_earnings", why))
            earned += amount
        s: Settlement = settle(
            a,
            term,
            result.period,
            earned_before=before.get(earned_acc, 0),
            earned=earned,
            shortfall_before=before.get(short_acc, 0),
        )
        if s.shortfall:
            op = account_id(OPERATOR, currency, "operator_revenue")
            legs.append(
                Leg(op, account_id(a.licensor, currency, "guarantee"), s.shortfall, "mg_shortfall", a.agreement_id)
            )
            legs.append(Leg(basis, short_acc, s.shortfall, "term_shortfall", term.label))
        if s.taken_back:
            op = account_id(OPERATOR, currency, "operator_revenue")
            legs.append(
                Leg(account_id(a.licensor, currency, "advance"), op, s.taken_back, "mg_take_back", a.agreement_id)
            )
            legs.append(Leg(short_acc, basis, s.taken_back, "term_shortfall", term.label))
        out.append(
            Guarantee(
                a.agreement_id,
                a.licensor,
                currency,
                s.guaranteed,
                s.earned_before + s.earned,
                s.shortfall,
                s.term,
                s.settled,
                s.taken_back,
            )
        )
    return out


def outstanding_by_agreement(items: Iterable[Transfer], account: str) -> dict[str, int]:
    """Each agreement's part of an advance account's outstanding balance, oldest agreement id first.

    Advances (and guarantee take-backs) debit the account naming their agreement; recoupments
    credit it and are applied to the agreements in id order (cross-collateralised per party and
    currency), so the parts sum to the account's outstanding balance.
    """
    given: dict[str, int] = defaultdict(int)
    recouped = 0
    for tr in items:
        if tr.debit_account == account:
            given[tr.reason] += tr.amount
        elif tr.credit_account == account:
            recouped += tr.amount
    out: dict[str, int] = {}
    for aid in sorted(given):
        take = min(given[aid], recouped)
        recouped -= take
        out[aid] = given[aid] - take
    return out


def _recoupment(items: list[Transfer], rates: PeriodRates) -> list[Leg]:
    """Recoup outstanding advances from payable: same currency first, then other currencies converted."""
    after = balances(items)
    legs: list[Leg] = []
    remaining: dict[tuple[str, str], int] = {}
    for acc in sorted(k for k, v in after.items() if k.endswith(":advance") and v < 0):
        party, currency, _ = parse_account(acc)
        outstanding = -after[acc]
        direct = min(outstanding, max(0, after.get(account_id(party, currency, "payable"), 0)))
        if direct:
            new = _recoup_legs(items, party, currency, direct)
            legs += new
            items = [*items, *as_transfers(new, "")]
        if outstanding - direct:
            remaining[(party, currency)] = outstanding - direct
    # other currencies, converted at the period's rate as far as needed (per pair, one conversion)
    requests: dict[Pair, list[tuple[str, int]]] = defaultdict(list)
    spent: dict[tuple[str, str], int] = defaultdict(int)
    for (party, currency), need in sorted(remaining.items()):
        for acc in sorted(
            k for k, v in after.items() if v > 0 and k.startswith(f"{party}:") and k.endswith(":payable")
        ):
            _, source, _ = parse_account(acc)
            if source == currency or need <= 0:
                continue
            rate = rates.rate((source, currency))
            available = after[acc] - spent[(party, source)]
            take = min(available, ceil(Fraction(need) / rate))
            if take > 0:
                requests[(source, currency)].append((party, take))
                spent[(party, source)] += take
                need -= int(take * rate)
    converted: dict[tuple[str, str], int] = defaultdict(int)
    for pair, amounts in sorted(requests.items()):
        source, target = pair
        why = rates.text(pair)
        out = convert_many(amounts, rates.rate(pair))
        for party, take in amounts:
            legs.append(
                Leg(
                    account_id(party, source, "payable"),
                    account_id(fx_party(pair), source, "conversion"),
                    take,
                    "conversion",
                    why,
                )
            )
            if out[party]:
                legs.append(
                    Leg(
                        account_id(fx_party(pair), target, "conversion"),
                        account_id(party, target, "payable"),
                        out[party],
                        "conversion",
                        why,
                    )
                )
                converted[(party, target)] += out[party]
    for (party, currency), got in sorted(converted.items()):
        recoup = min(got, remaining[(party, currency)])
        if recoup:
            new = _recoup_legs(items, party, currency, recoup)
            legs += new
            items = [*items, *as_transfers(new, "")]
    return legs


def _recoup_legs(items: Sequence[Transfer], party: str, currency: str, amount: int) -> list[Leg]:
    """``amount`` of the party's payable applied to its advance, split over the agreements oldest first."""
    acc = account_id(party, currency, "advance")
    payable = account_id(party, currency, "payable")
    legs = []
    for aid, owed in sorted(outstanding_by_agreement(items, acc).items()):
        take = min(owed, amount)
        if take > 0:
            legs.append(Leg(payable, acc, take, "recoupment", aid))
            amount -= take
    if amount > 0:  # an outstanding balance no agreement names (ledgers posted before agreements were named)
        legs.append(Leg(payable, acc, amount, "recoupment"))
    return legs


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
