"""Statements of account: per party and period, what was earned, recouped, held and paid.

A :class:`Statement` is built by the royalty run (see :mod:`accord.royalties`); amounts are
integer micro-units, and :meth:`Statement.check` proves the statement reconciles before
anything is written. The files (CSV, JSON, HTML) are written by
:mod:`accord.royalties.statements_render`; :mod:`accord.royalties.statements` re-exports both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

from accord.errors import ValidationError
from accord.money import check_currency, format_money
from accord.registry.entities import PPM_WHOLE, Money

BASES = ("output", "training")
"""The two income bases: the output pool (attribution) and the training pool (manifests)."""

SIDES = ("master", "publishing")
"""The two sides of a recording's rights."""


@dataclass(frozen=True)
class StatementLine:
    """One line of a statement: one party's money from one recording, work, model and output.

    Attributes:
        party_id: the rights holder paid.
        period: ``"YYYY-MM"``.
        currency: ISO 4217 code.
        basis: ``"training"`` or ``"output"``.
        side: ``"master"`` or ``"publishing"``.
        isrc: the recording.
        work_id: the musical work; ``""`` on master-side lines.
        model_id: the model whose use earned it.
        output_id: the generated output; ``""`` for training-basis lines.
        units: usage events behind the line.
        share_ppm: the party's ownership share on that side, in parts per million.
        amount: micro-units.
    """

    party_id: str
    period: str
    currency: str
    basis: str
    side: str
    isrc: str
    work_id: str
    model_id: str
    output_id: str
    units: int
    share_ppm: int
    amount: int

    def sort_key(self) -> tuple[str, str, str, str, str, str]:
        """Canonical order of lines in a statement (``side`` last to make the order total)."""
        return (self.basis, self.isrc, self.work_id, self.model_id, self.output_id, self.side)

    def check(self) -> None:
        """Raise :class:`ValidationError` unless the line is well formed on its own."""
        where = f"line {self.basis}/{self.side}/{self.isrc}/{self.work_id}/{self.model_id}/{self.output_id}"
        if self.basis not in BASES:
            _fail(f"{where}: basis {self.basis!r} is not one of {', '.join(BASES)}", "basis", self.basis)
        if self.side not in SIDES:
            _fail(f"{where}: side {self.side!r} is not one of {', '.join(SIDES)}", "side", self.side)
        if not self.isrc:
            _fail(f"{where}: isrc is empty; expected the recording's ISRC", "isrc", self.isrc)
        if not self.model_id:
            _fail(f"{where}: model_id is empty; expected the model whose use earned the line", "model_id", "")
        if self.side == "master" and self.work_id:
            _fail(f'{where}: work_id {self.work_id!r} on a master-side line; expected ""', "work_id", self.work_id)
        if self.side == "publishing" and not self.work_id:
            _fail(f"{where}: publishing-side line without a work_id", "work_id", self.work_id)
        if self.basis == "training" and self.output_id:
            msg = f'{where}: output_id {self.output_id!r} on a training-basis line; expected ""'
            _fail(msg, "output_id", self.output_id)
        if self.basis == "output" and not self.output_id:
            _fail(f"{where}: output-basis line without an output_id", "output_id", self.output_id)
        for name in ("units", "share_ppm", "amount"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(f"{where}: {name} {value!r} is not an integer", name, value)
        if self.amount < 0:
            _fail(f"{where}: amount {self.amount} is negative; expected >= 0 micro-units", "amount", self.amount)
        if self.units < 0:
            _fail(f"{where}: units {self.units} is negative; expected a count >= 0", "units", self.units)
        if not 0 <= self.share_ppm <= PPM_WHOLE:
            _fail(f"{where}: share_ppm {self.share_ppm} is outside 0..1,000,000", "share_ppm", self.share_ppm)


@dataclass(frozen=True)
class TermLine:
    """One agreement's guarantee term and advance on a statement, in the statement's currency.

    ``closing_balance == opening_balance + advanced + taken_back - recouped`` (the advance the
    licensor has still to earn back); :meth:`check` raises otherwise.

    Attributes:
        agreement_id: the agreement.
        term: its guarantee term this period (``2026-12-01..2027-03-01``), ``""`` without a guarantee.
        guaranteed: the term's guarantee (prorated by days in force), 0 without one.
        opening_balance: the agreement's advance outstanding at the period's start.
        advanced: advance paid this period.
        earnings: this period's earnings under the agreement (converted to this currency at the
            period's rate when the guarantee is in it; else the earnings in this currency).
        term_earnings: the term's earnings to date, this period included.
        recouped: advance recouped this period.
        shortfall_paid: guarantee shortfall paid this period.
        taken_back: pro rata shortfall taken back as an advance at the term's end.
        closing_balance: the agreement's advance outstanding at the period's end.
    """

    agreement_id: str
    term: str
    guaranteed: int
    opening_balance: int
    advanced: int
    earnings: int
    term_earnings: int
    recouped: int
    shortfall_paid: int
    taken_back: int
    closing_balance: int

    def check(self, who: str) -> None:
        where = f"{who}: term line {self.agreement_id} {self.term}".rstrip()
        for name in ("guaranteed", "opening_balance", "advanced", "earnings", "term_earnings", "recouped",
                     "shortfall_paid", "taken_back", "closing_balance"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(f"{where}: {name} {value!r} is not an integer number of micro-units", name, value)
        expected = self.opening_balance + self.advanced + self.taken_back - self.recouped
        if self.closing_balance != expected:
            msg = (
                f"{where}: closing_balance {self.closing_balance} != opening {self.opening_balance} + advanced "
                f"{self.advanced} + taken back {self.taken_back} - recouped {self.recouped} = {expected}"
            )
            _fail(msg, "closing_balance", self.closing_balance)


@dataclass(frozen=True)
class Statement:
    """A party's statement of account for one period and currency.

    ``closing_balance == opening_balance + sum(income) + converted - recouped - reserves - paid``;
    :meth:`check` raises :class:`accord.errors.ValidationError` otherwise.

    Attributes:
        party_id, party_name: the rights holder.
        period: ``"YYYY-MM"``.
        currency: ISO 4217 code.
        opening_balance: last period's closing balance, micro-units.
        income: ``(basis, amount)`` pairs sorted by basis.
        recouped: income applied against an advance.
        reserves: income held back.
        paid: paid out in the period.
        closing_balance: what the party is owed at period end.
        lines: line detail sorted by ``(basis, isrc, work_id, model_id, output_id)``.
        run_id, engine_version, inputs_hash: the royalty run that produced it.
        converted: payable converted into this currency (negative: out of it) at the period's rate.
        terms: the party's agreements' guarantee terms and advances in this currency, by agreement.
    """

    party_id: str
    party_name: str
    period: str
    currency: str
    opening_balance: int
    income: tuple[tuple[str, int], ...]
    recouped: int
    reserves: int
    paid: int
    closing_balance: int
    lines: tuple[StatementLine, ...]
    run_id: str
    engine_version: str
    inputs_hash: str
    converted: int = 0
    terms: tuple[TermLine, ...] = ()

    @property
    def total_income(self) -> int:
        """Income over every basis, micro-units."""
        return sum(amount for _, amount in self.income)

    @classmethod
    def from_lines(
        cls,
        *,
        party_id: str,
        party_name: str,
        period: str,
        currency: str,
        lines: Iterable[StatementLine],
        opening_balance: int = 0,
        recouped: int = 0,
        reserves: int = 0,
        paid: int = 0,
        run_id: str = "",
        engine_version: str = "",
        inputs_hash: str = "",
        converted: int = 0,
        terms: Iterable[TermLine] = (),
    ) -> Statement:
        """Build a checked statement: lines sorted, income per basis and closing balance computed."""
        ordered = tuple(sorted(lines, key=StatementLine.sort_key))
        by_basis: dict[str, int] = {}
        for line in ordered:
            by_basis[line.basis] = by_basis.get(line.basis, 0) + line.amount
        income = tuple(sorted(by_basis.items()))
        closing = opening_balance + sum(by_basis.values()) + converted - recouped - reserves - paid
        statement = cls(
            party_id=party_id,
            party_name=party_name,
            period=period,
            currency=currency,
            opening_balance=opening_balance,
            income=income,
            recouped=recouped,
            reserves=reserves,
            paid=paid,
            closing_balance=closing,
            lines=ordered,
            run_id=run_id,
            engine_version=engine_version,
            inputs_hash=inputs_hash,
            converted=converted,
            terms=tuple(sorted(terms, key=lambda t: t.agreement_id)),
        )
        statement.check()
        return statement

    def income_for(self, basis: str) -> int:
        """Income on one basis, 0 when the statement has none."""
        return dict(self.income).get(basis, 0)

    def check(self) -> None:
        """Raise :class:`ValidationError` unless the statement reconciles.

        Checks: the party, period (``YYYY-MM``) and currency are well formed; the balance
        equation holds; income is sorted by basis with each basis once; every line belongs
        to this party, period and currency, is well formed and non-negative; lines are in
        canonical order; and the lines of each basis sum exactly to that basis's income.
        """
        who = f"statement {self.party_id}/{self.period}/{self.currency}"
        if not self.party_id:
            _fail(f"{who}: party_id is empty", "party_id", self.party_id)
        if not _PERIOD.fullmatch(self.period):
            _fail(f"{who}: period {self.period!r} is not YYYY-MM", "period", self.period)
        if check_currency(self.currency) != self.currency:
            _fail(f"{who}: currency {self.currency!r} is not upper-case ISO 4217", "currency", self.currency)
        for name in ("opening_balance", "recouped", "reserves", "paid", "closing_balance", "converted"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(f"{who}: {name} {value!r} is not an integer number of micro-units", name, value)
        bases = [basis for basis, _ in self.income]
        if bases != sorted(set(bases)):
            _fail(f"{who}: income bases {bases} are not sorted and unique", "income", bases)
        for basis, amount in self.income:
            if basis not in BASES:
                _fail(f"{who}: income basis {basis!r} is not one of {', '.join(BASES)}", "income", basis)
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                _fail(f"{who}: income on {basis} is {amount!r}; expected micro-units >= 0", "income", amount)
        expected = self.opening_balance + self.total_income + self.converted - self.recouped - self.reserves - self.paid
        if self.closing_balance != expected:
            msg = (
                f"{who}: closing_balance {self.closing_balance} != opening {self.opening_balance} + income "
                f"{self.total_income} + converted {self.converted} - recouped {self.recouped} - reserves "
                f"{self.reserves} - paid {self.paid} = {expected}"
            )
            _fail(msg, "closing_balance", self.closing_balance)
        sums: dict[str, int] = {}
        previous: tuple[str, ...] | None = None
        for index, line in enumerate(self.lines):
            mine = (self.party_id, self.period, self.currency)
            theirs = (line.party_id, line.period, line.currency)
            if theirs != mine:
                msg = f"{who}: line {index} belongs to {'/'.join(theirs)}; expected {'/'.join(mine)}"
                _fail(msg, "lines", theirs)
            line.check()
            key = line.sort_key()[:5]
            if previous is not None and key < previous:
                order = "(basis, isrc, work_id, model_id, output_id)"
                msg = f"{who}: line {index} {key} is out of order; expected sorted by {order}"
                _fail(msg, "lines", key)
            previous = key
            sums[line.basis] = sums.get(line.basis, 0) + line.amount
        for term in self.terms:
            term.check(who)
        for basis in sorted(set(sums) | set(bases)):
            if sums.get(basis, 0) != self.income_for(basis):
                msg = f"{who}: {basis} lines sum to {sums.get(basis, 0)}; income on {basis} is {self.income_for(basis)}"
                _fail(msg, "income", basis)


_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _fail(message: str, field: str, value: object) -> NoReturn:
    raise ValidationError(message, field=field, value=value)


# --- money display -------------------------------------------------------------------------------


def decimal_text(micros: int, currency: str) -> str:
    """Signed decimal text of an amount, via :func:`accord.money.format_money`: ``-1500000`` → ``"-1.50"``."""
    text = format_money(Money(abs(micros), currency)).rsplit(" ", 1)[0]
    return f"-{text}" if micros < 0 else text
