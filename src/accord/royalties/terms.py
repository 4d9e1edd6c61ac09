"""Minimum-guarantee terms over periods: which term a period belongs to, and what it guarantees.

Pure functions of an :class:`~accord.registry.entities.Agreement` and a period (``YYYY-MM``).

The contract rules (docs/royalties.md, "Terms over periods"):

* **The term grid.** Terms are counted from the month of the agreement's start, in steps of
  1 (``monthly``), 3 (``quarterly``) or 12 (``yearly``) months; ``agreement`` is one term
  over the whole agreement. Terms follow the accounting periods (calendar months), so a
  period belongs to exactly one term of each agreement.
* **A term in force for part of its length is prorated by days.** A term's nominal span is
  its months; the days in force are those from ``max(term start, agreement start)`` to
  ``min(term end, agreement end)`` (UTC calendar days: a day counts when the agreement is in
  force at its start, so an agreement ending ``2027-01-16T00:00Z`` is in force 15 days of
  January). The term's guarantee is ``guarantee × days in force / nominal days``, rounded
  half to even to the micro-unit. An agreement ending mid-period, or revoked mid-term
  (a revocation is an amendment that sets the agreement's end), thus ends its last term
  at the end (revocation) and guarantees only the days it was in force. For ``agreement``
  terms the nominal span is the agreement's span as the registry records it at the
  period's end: a revocation shortens the one term, which still guarantees the whole
  amount (choose a monthly, quarterly or yearly term for a guarantee that follows the days).
* **Settlement.** ``term_end``: the shortfall ``max(0, term guarantee - term earnings)`` is
  paid once, at the close of the term's last period. ``pro_rata``: each period is due its
  part of the term guarantee (split by days in force with :func:`accord.money.allocate`, so
  the parts sum exactly to it); a period pays what is due to date less what the term has
  earned and been paid; at the term's end any shortfall paid beyond
  ``max(0, term guarantee - term earnings)`` is taken back as an advance to recoup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from fractions import Fraction

from accord.money import allocate
from accord.registry.entities import Agreement, GuaranteeSettlement, GuaranteeTerm
from accord.royalties.periods import period_bounds

TERM_MONTHS = {GuaranteeTerm.MONTHLY: 1, GuaranteeTerm.QUARTERLY: 3, GuaranteeTerm.YEARLY: 12}


@dataclass(frozen=True)
class Term:
    """One term of an agreement's minimum guarantee.

    Attributes:
        agreement_id: whose term.
        start, end: the nominal span (UTC days, ``[start, end)``).
        in_force_start, in_force_end: the days the agreement is in force within it.
        periods: the accounting periods (``YYYY-MM``) the term's days in force fall in, in order.
        period_days: the days in force in each of :attr:`periods`.
        guarantee: the term's guarantee (micro-units of the agreement's guarantee currency),
            prorated by days in force.
    """

    agreement_id: str
    start: date
    end: date
    in_force_start: date
    in_force_end: date
    periods: tuple[str, ...]
    period_days: tuple[int, ...]
    guarantee: int

    @property
    def label(self) -> str:
        """``2026-12-01..2027-03-01`` (nominal span, end exclusive): names the term in the ledger."""
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def last_period(self) -> str:
        return self.periods[-1]

    def due_to(self, period: str) -> int:
        """The part of the guarantee due up to and including ``period`` (pro rata by days in force)."""
        parts = allocate(self.guarantee, list(self.period_days), list(self.periods))
        return sum(p for p, name in zip(parts, self.periods, strict=True) if name <= period)


def _day(at: datetime) -> date:
    """The first UTC day that starts at or after ``at`` (a day counts when the agreement is in force at its start)."""
    at = at.astimezone(UTC)
    d = at.date()
    return d if at == datetime.combine(d, time(0), UTC) else date.fromordinal(d.toordinal() + 1)


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + (d.month - 1) + months
    return date(total // 12, total % 12 + 1, 1)


def _months_of(start: date, end: date) -> list[str]:
    out, d = [], date(start.year, start.month, 1)
    while d < end:
        out.append(f"{d.year:04d}-{d.month:02d}")
        d = _add_months(d, 1)
    return out


def term_of(agreement: Agreement, period: str) -> Term | None:
    """The guarantee term of ``agreement`` that ``period`` falls in (``None``: no guarantee, or not in force)."""
    mg = agreement.terms.minimum_guarantee
    if mg is None or mg.micros <= 0:
        return None
    first = _day(agreement.start)
    last = _day(agreement.end) if agreement.end is not None else None  # exclusive
    p_start, p_end = (x.date() for x in period_bounds(period))
    if p_end <= first or (last is not None and last <= p_start):
        return None
    anchor = date(first.year, first.month, 1)
    kind = agreement.terms.guarantee_term
    if kind == GuaranteeTerm.AGREEMENT:
        if last is None:
            return None  # refused on delivery; an open-ended agreement has no agreement term
        start, end = first, last
    else:
        step = TERM_MONTHS[GuaranteeTerm(kind)]
        months = (p_start.year * 12 + p_start.month) - (anchor.year * 12 + anchor.month)
        start = _add_months(anchor, (months // step) * step)
        end = _add_months(start, step)
    in_start = max(start, first)
    in_end = min(end, last) if last is not None else end
    periods = _months_of(in_start, in_end)
    days = []
    for name in periods:
        a, b = (x.date() for x in period_bounds(name))
        days.append((min(b, in_end) - max(a, in_start)).days)
    nominal = (end - start).days
    if kind == GuaranteeTerm.AGREEMENT:
        nominal = (last - first).days if last is not None else nominal
    guarantee = round(Fraction(mg.micros * sum(days), nominal))
    return Term(agreement.agreement_id, start, end, in_start, in_end, tuple(periods), tuple(days), guarantee)


def is_last_period(term: Term, period: str) -> bool:
    """Whether ``period`` is the term's last (where a ``term_end`` shortfall is settled)."""
    return period == term.last_period


# --- the ledger side: term memo accounts and the shortfall legs ------------------------------------


PARTY_ID_MAX = 64
"""The ledger's party ids are at most this long (``ledger_accounts.party_id``)."""


def term_party(term: Term) -> str:
    """The party part of a term's memo accounts: ``AGR.<agreement id>.<term start>``.

    An agreement id too long for a ledger party id is replaced by the first 32 hex digits of
    its sha256 (deterministic, so the term's accounts are found again every period).
    """
    name = f"AGR.{term.agreement_id}.{term.start.isoformat()}"
    if len(name) <= PARTY_ID_MAX:
        return name
    digest = hashlib.sha256(term.agreement_id.encode()).hexdigest()[:32]
    return f"AGR.{digest}.{term.start.isoformat()}"


@dataclass(frozen=True)
class Settlement:
    """What a period's close does for one agreement's guarantee term.

    Attributes:
        agreement_id, party_id, currency: whose guarantee, in what.
        term: the term (:attr:`Term.label`).
        guaranteed: the term's guarantee (prorated by days in force).
        earned_before: the term's earnings in earlier periods (its memo account).
        earned: this period's earnings under the agreement, in the guarantee's currency.
        shortfall_before: shortfall paid earlier in the term (pro rata settlement).
        shortfall: shortfall paid this period.
        taken_back: pro rata shortfall paid beyond the term's final shortfall, taken back as an advance.
        settled: whether the term ends this period.
    """

    agreement_id: str
    party_id: str
    currency: str
    term: str
    guaranteed: int
    earned_before: int
    earned: int
    shortfall_before: int
    shortfall: int
    taken_back: int
    settled: bool


def settle(
    agreement: Agreement, term: Term, period: str, *, earned_before: int, earned: int, shortfall_before: int
) -> Settlement:
    """The shortfall a period pays on a term, from the term's balances so far and this period's earnings.

    ``term_end``: ``max(0, guarantee - earnings)`` in the term's last period, else nothing.
    ``pro_rata``: ``max(0, due to date - earnings to date - shortfall paid)``; in the last period
    any shortfall paid beyond ``max(0, guarantee - earnings)`` is taken back. Either way, over the
    term, shortfall paid less taken back is exactly ``max(0, guarantee - term earnings)``.
    """
    mg = agreement.terms.minimum_guarantee
    currency = mg.currency if mg is not None else ""
    total = earned_before + earned
    last = is_last_period(term, period)
    final = max(0, term.guarantee - total)
    shortfall = taken_back = 0
    if agreement.terms.guarantee_settlement == GuaranteeSettlement.PRO_RATA:
        shortfall = max(0, term.due_to(period) - total - shortfall_before)
        if last and shortfall_before + shortfall > final:
            taken_back = shortfall_before + shortfall - final
    elif last:
        shortfall = final
    return Settlement(
        agreement.agreement_id,
        agreement.licensor,
        currency,
        term.label,
        term.guarantee,
        earned_before,
        earned,
        shortfall_before,
        shortfall,
        taken_back,
        last,
    )
