"""Statements of account built from a run and the ledger, their files, and the period's reconciliation.

A party's statement for a period and currency reads its ``payable`` account: the opening
balance is the balance after every earlier period (so it equals last period's closing);
income is the period's ``royalty`` credits by basis, with the run's lines behind them;
``recouped`` is what went to the advance; ``reserves`` is what was held back net of what was
released (reversing adjustments on the account are shown there too); ``paid`` is the payouts.
For a period not yet closed, the postings the close would make are used (a preview).

Reconciliation (:func:`reconcile`): each statement's lines sum to its income, and per
currency all statements' income + unmatched + the operator's share == the period's revenue,
to the micro-unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from accord.errors import LedgerError
from accord.registry.entities import Agreement
from accord.registry.store import Store
from accord.royalties import ledger
from accord.royalties.dsr import dsr_filename, write_dsr
from accord.royalties.engine import RunResult
from accord.royalties.fx import period_rates
from accord.royalties.heads import write_head_file
from accord.royalties.inputs import load_inputs
from accord.royalties.periods import CLOSED, period_bounds, period_status
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.postings import as_transfers, outstanding_by_agreement, plan
from accord.royalties.run import RoyaltyRun, latest_run, load_result
from accord.royalties.statements import Statement, StatementLine, write_csv, write_html, write_json
from accord.royalties.statements_model import TermLine
from accord.royalties.terms import term_of, term_party
from accord.settings import Settings

PAYABLE_CODES = {
    "royalty": "income",
    "recoupment": "recouped",
    "reserve": "reserves",
    "reserve_release": "reserves",
    "reversal": "reserves",
    "payout": "paid",
    "conversion": "converted",
}


@dataclass(frozen=True)
class PeriodBooks:
    """A period's run, its result and the transfers of the period and before (posted or planned).

    Attributes:
        run: the run.
        result: its result.
        transfers: every transfer up to and including the period (planned ones when open).
        closed: whether the period is closed (the transfers are posted).
        agreements: the agreements in force in the period (their guarantee terms and advances).
    """

    run: RoyaltyRun
    result: RunResult
    transfers: tuple[ledger.Transfer, ...]
    closed: bool
    agreements: tuple[Agreement, ...] = ()


def books(store: Store, settings: Settings, period: str) -> PeriodBooks:
    """The period's books: posted if closed, else its latest run with the postings a close would make."""
    run = latest_run(store, settings, period)
    result = load_result(run)
    closed = period_status(store, period) == CLOSED
    history = ledger.transfers(store, upto=period)
    policy = RoyaltyPolicy.from_dict(run.summary["policy"])
    agreements = list(load_inputs(store, period, policy).agreements.values())
    if not closed:
        earlier = [t for t in history if t.period < period]
        rates = period_rates(store, period)
        legs, _ = plan(result, agreements, earlier, reserve_ppm=policy.reserve_ppm, rates=rates)
        history = [*history, *as_transfers(legs, period)]
    return PeriodBooks(run, result, tuple(history), closed, tuple(agreements))


def term_lines(pb: PeriodBooks, party: str | None = None) -> dict[tuple[str, str], list[TermLine]]:
    """(party, currency) -> the statement rows of its agreements' guarantee terms and advances, from the ledger.

    Each row reads the ledger: the term's memo accounts (earnings to date, this period's
    ``term_earnings``), the ``mg_shortfall`` / ``mg_take_back`` legs naming the agreement, and the
    party's advance account split by agreement (:func:`outstanding_by_agreement`).
    """
    period = pb.run.period
    out: dict[tuple[str, str], list[TermLine]] = defaultdict(list)
    before = [t for t in pb.transfers if t.period < period]
    now = [t for t in pb.transfers if t.period == period]
    totals = ledger.balances(pb.transfers)
    earned: dict[tuple[str, str], int] = defaultdict(int)  # (agreement, currency) -> this period's lines
    for r in pb.result.lines.select(["currency", "amount", "agreement_id"]).to_pylist():
        earned[(r["agreement_id"], r["currency"])] += r["amount"]
    for a in sorted(pb.agreements, key=lambda a: a.agreement_id):
        if party is not None and a.licensor != party:
            continue
        mg, adv = a.terms.minimum_guarantee, a.terms.advance
        term = term_of(a, period)
        currencies = {m.currency for m in (mg, adv) if m is not None and m.micros > 0}
        for cur in sorted(currencies):
            label, guaranteed, term_earnings = "", 0, 0
            if term is not None and mg is not None and mg.currency == cur:
                earned_acc = ledger.account_id(term_party(term), cur, "term_earnings")
                label, guaranteed = term.label, term.guarantee
                earnings = sum(t.amount for t in now if t.credit_account == earned_acc)
                term_earnings = totals.get(earned_acc, 0)
            else:
                earnings = earned.get((a.agreement_id, cur), 0)
            mine = [t for t in now if t.reason == a.agreement_id]
            shortfall = sum(t.amount for t in mine if t.code == "mg_shortfall" and t.currency == cur)
            acc = ledger.account_id(a.licensor, cur, "advance")
            opening = outstanding_by_agreement(before, acc).get(a.agreement_id, 0)
            advanced = sum(t.amount for t in mine if t.code == "advance" and t.debit_account == acc)
            taken = sum(t.amount for t in mine if t.code == "mg_take_back" and t.debit_account == acc)
            recouped = sum(t.amount for t in mine if t.code == "recoupment" and t.credit_account == acc)
            if not (mg and mg.currency == cur) and not (opening or advanced or recouped):
                continue  # an advance recouped in full before this period: nothing to show
            out[(a.licensor, cur)].append(
                TermLine(
                    agreement_id=a.agreement_id,
                    term=label,
                    guaranteed=guaranteed,
                    earnings=earnings,
                    term_earnings=term_earnings,
                    shortfall_paid=shortfall,
                    opening_balance=opening,
                    advanced=advanced,
                    recouped=recouped,
                    taken_back=taken,
                    closing_balance=opening + advanced + taken - recouped,
                )
            )
    return out


def build_statements(
    store: Store, settings: Settings, period: str, *, party: str | None = None, pb: PeriodBooks | None = None
) -> list[Statement]:
    """Every party's statement for the period (one per party and currency), or one party's."""
    pb = pb or books(store, settings, period)
    names = dict(store.snapshot(min(period_bounds(period)[1], store.clock())).parties.items())
    lines: dict[tuple[str, str], list[StatementLine]] = defaultdict(list)
    for r in pb.result.lines.to_pylist():
        if party is None or r["party_id"] == party:
            lines[(r["party_id"], r["currency"])].append(
                StatementLine(
                    party_id=r["party_id"],
                    period=period,
                    currency=r["currency"],
                    basis=r["basis"],
                    side=r["side"],
                    isrc=r["isrc"],
                    work_id=r["work_id"],
                    model_id=r["model_id"],
                    output_id=r["output_id"],
                    units=r["units"],
                    share_ppm=r["share_ppm"],
                    amount=r["amount"],
                )
            )
    moves: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    opening: dict[tuple[str, str], int] = defaultdict(int)
    for tr in pb.transfers:
        for acc, sign in ((tr.credit_account, 1), (tr.debit_account, -1)):
            who, currency, kind = ledger.parse_account(acc)
            if kind != "payable" or (party is not None and who != party):
                continue
            if tr.period < period:
                opening[(who, currency)] += sign * tr.amount
            elif tr.period == period:
                field = PAYABLE_CODES.get(tr.code, "reserves")
                moves[(who, currency)][field] += sign * tr.amount
    terms = term_lines(pb, party)
    out = []
    for key in sorted(set(lines) | set(moves) | set(terms) | {k for k, v in opening.items() if v}):
        who, currency = key
        m = moves.get(key, {})
        statement = Statement.from_lines(
            party_id=who,
            party_name=names[who].name if who in names else who,
            period=period,
            currency=currency,
            lines=lines.get(key, ()),
            opening_balance=opening.get(key, 0),
            recouped=-m.get("recouped", 0),
            converted=m.get("converted", 0),
            terms=terms.get(key, ()),
            reserves=-m.get("reserves", 0),
            paid=-m.get("paid", 0),
            run_id=pb.run.run_id,
            engine_version=pb.run.engine_version,
            inputs_hash=pb.run.inputs_hash,
        )
        if statement.total_income != m.get("income", 0):
            msg = (
                f"statement {who}/{period}/{currency}: lines sum to {statement.total_income}, "
                f"ledger income {m.get('income', 0)}"
            )
            raise LedgerError(msg)
        out.append(statement)
    return out


@dataclass(frozen=True)
class Reconciliation:
    """Per currency: revenue, statements' income, unmatched, operator share (net of guarantee shortfalls).

    Attributes:
        rows: ``(currency, revenue, income, unmatched, operator, guarantees)`` sorted by currency.
        problems: every way it fails to reconcile (empty: it does, to the micro-unit).
    """

    rows: tuple[tuple[str, int, int, int, int, int], ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(statements: Sequence[Statement], pb: PeriodBooks) -> Reconciliation:
    """Check statements + unmatched + operator share == revenue, per currency, to the micro-unit."""
    problems: list[str] = []
    income: dict[str, int] = defaultdict(int)
    for st in statements:
        st.check()  # each statement's lines sum to its income, and its balance equation holds
        income[st.currency] += st.total_income
    unmatched = pb.result.unmatched()
    guarantees: dict[str, int] = defaultdict(int)
    for tr in pb.transfers:
        if tr.period == pb.run.period and tr.code == "mg_shortfall":
            guarantees[tr.currency] += tr.amount
    rows = []
    for currency, revenue in sorted(pb.result.revenue.items()):
        operator = pb.result.operator.get(currency, 0)
        got = income[currency] + unmatched.get(currency, 0) + operator
        rows.append((currency, revenue, income[currency], unmatched.get(currency, 0), operator, guarantees[currency]))
        if got != revenue:
            problems.append(
                f"{currency}: statements {income[currency]} + unmatched {unmatched.get(currency, 0)} + operator "
                f"{operator} = {got}, revenue {revenue}"
            )
    return Reconciliation(tuple(rows), tuple(problems))


def write_statements(
    store: Store,
    settings: Settings,
    period: str,
    *,
    party: str | None = None,
    out: Path | None = None,
    sender: str = "ACCORD",
    created: datetime | None = None,
) -> tuple[list[Statement], list[Path]]:
    """Write each statement as CSV, JSON and HTML, and the period's DSR flat file; return them and the paths."""
    pb = books(store, settings, period)
    statements = build_statements(store, settings, period, party=party, pb=pb)
    folder = out or settings.home / "statements" / period
    paths: list[Path] = []
    for st in statements:
        stem = f"{st.party_id}_{period}_{st.currency}"
        paths.append(write_csv(st, folder / f"{stem}.csv"))
        paths.append(write_json(st, folder / f"{stem}.json"))
        paths.append(write_html(st, folder / f"{stem}.html"))
    with_lines = [st for st in statements if st.lines]
    if with_lines:
        start, end = period_bounds(period)
        when = created or datetime.combine(end.date(), datetime.min.time(), UTC)
        recipient = party or "ALL"
        name = dsr_filename(sender, recipient, "Accord", period, when)
        write_dsr(
            with_lines,
            folder / name,
            sender=sender,
            recipient=recipient,
            period_start=start.date(),
            period_end=(end - timedelta(days=1)).date(),
            message_id=f"{pb.run.run_id[:16]}-{recipient}",
            created=when,
        )
        paths.append(folder / name)
    # the close's signed ledger head, for the recipient to keep (none for a period closed before heads)
    if pb.closed and statements and (head := write_head_file(store, period, folder)) is not None:
        paths.append(head)
    return statements, paths
