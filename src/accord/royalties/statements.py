"""Statements of account: per party and period, what was earned, recouped, held and paid.

A :class:`Statement` is built by the royalty run (see :mod:`accord.royalties`) and written
here as line detail (CSV), the whole statement (canonical JSON, read back by
:func:`read_json`) and a readable HTML summary. Every writer gives byte-identical output
for the same statement. Amounts are integer micro-units; :meth:`Statement.check` proves
the statement reconciles before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from accord.errors import ValidationError
from accord.money import check_currency, format_money, ppm_to_percent
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
class Statement:
    """A party's statement of account for one period and currency.

    ``closing_balance == opening_balance + sum(income) - recouped - reserves - paid``;
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
    ) -> Statement:
        """Build a checked statement: lines sorted, income per basis and closing balance computed."""
        ordered = tuple(sorted(lines, key=StatementLine.sort_key))
        by_basis: dict[str, int] = {}
        for line in ordered:
            by_basis[line.basis] = by_basis.get(line.basis, 0) + line.amount
        income = tuple(sorted(by_basis.items()))
        closing = opening_balance + sum(by_basis.values()) - recouped - reserves - paid
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
        for name in ("opening_balance", "recouped", "reserves", "paid", "closing_balance"):
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
        expected = self.opening_balance + self.total_income - self.recouped - self.reserves - self.paid
        if self.closing_balance != expected:
            msg = (
                f"{who}: closing_balance {self.closing_balance} != opening {self.opening_balance} + income "
                f"{self.total_income} - recouped {self.recouped} - reserves {self.reserves} - paid {self.paid} "
                f"= {expected}"
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


def _money(micros: int, currency: str) -> dict[str, object]:
    return {"micros": micros, "decimal": decimal_text(micros, currency)}


# --- CSV: line detail ----------------------------------------------------------------------------

CSV_COLUMNS = (
    "party_id", "period", "currency", "basis", "side", "isrc", "work_id", "model_id", "output_id", "units",
    "share_ppm", "share_percent", "amount_micros", "amount",
)  # fmt: skip
"""Columns of the line-detail CSV, in order."""


def csv_text(statement: Statement) -> str:
    """The line detail as CSV text (``\\n`` line ends, header first, lines in canonical order)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        writer.writerow(
            (
                line.party_id,
                line.period,
                line.currency,
                line.basis,
                line.side,
                line.isrc,
                line.work_id,
                line.model_id,
                line.output_id,
                line.units,
                line.share_ppm,
                ppm_to_percent(line.share_ppm),
                line.amount,
                decimal_text(line.amount, line.currency),
            )
        )
    return buffer.getvalue()


def write_csv(statement: Statement, path: Path | str) -> Path:
    """Write the statement's line detail as CSV (checked first); return the path."""
    statement.check()
    return _write_bytes(Path(path), csv_text(statement).encode("utf-8"))


# --- JSON: the whole statement, canonical ---------------------------------------------------------

JSON_FORMAT = "accord.statement/1"
"""The ``format`` tag of a statement JSON document."""

_MONEY_FIELDS = ("opening_balance", "recouped", "reserves", "paid", "closing_balance")


def to_document(statement: Statement) -> dict[str, object]:
    """The statement as a JSON-ready dict (money as micro-units plus decimal text)."""
    cur = statement.currency
    doc: dict[str, object] = {
        "format": JSON_FORMAT,
        "party_id": statement.party_id,
        "party_name": statement.party_name,
        "period": statement.period,
        "currency": cur,
        "income": [{"basis": basis, **_money(amount, cur)} for basis, amount in statement.income],
        "total_income": _money(statement.total_income, cur),
        "lines": [
            {
                "basis": line.basis,
                "side": line.side,
                "isrc": line.isrc,
                "work_id": line.work_id,
                "model_id": line.model_id,
                "output_id": line.output_id,
                "units": line.units,
                "share_ppm": line.share_ppm,
                "share_percent": ppm_to_percent(line.share_ppm),
                "amount": _money(line.amount, cur),
            }
            for line in statement.lines
        ],
        "run": {
            "run_id": statement.run_id,
            "engine_version": statement.engine_version,
            "inputs_hash": statement.inputs_hash,
        },
    }
    for name in _MONEY_FIELDS:
        doc[name] = _money(getattr(statement, name), cur)
    return doc


def json_text(statement: Statement) -> str:
    """Canonical JSON text: sorted keys, no insignificant space, UTF-8 characters kept, final newline."""
    return json.dumps(to_document(statement), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def write_json(statement: Statement, path: Path | str) -> Path:
    """Write the whole statement as canonical JSON (checked first); return the path."""
    statement.check()
    return _write_bytes(Path(path), json_text(statement).encode("utf-8"))


def _read_money(value: object, currency: str, field: str) -> int:
    micros = value.get("micros") if isinstance(value, dict) else None
    text = value.get("decimal") if isinstance(value, dict) else None
    if isinstance(micros, bool) or not isinstance(micros, int) or not isinstance(text, str):
        _fail(f"{field}: {value!r} is not {{'micros': integer, 'decimal': text}}", field, value)
    if text != decimal_text(micros, currency):
        msg = f"{field}: decimal {text!r} disagrees with micros {micros} (= {decimal_text(micros, currency)!r})"
        _fail(msg, field, value)
    return micros


def from_document(doc: object) -> Statement:
    """Rebuild a statement from :func:`to_document` output, checking it reconciles."""
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        _fail(f"format: {found!r} is not a statement document; expected {JSON_FORMAT!r}", "format", found)
    try:
        cur = str(doc["currency"])
        party_id, period = str(doc["party_id"]), str(doc["period"])
        lines = tuple(
            StatementLine(
                party_id=party_id,
                period=period,
                currency=cur,
                basis=item["basis"],
                side=item["side"],
                isrc=item["isrc"],
                work_id=item["work_id"],
                model_id=item["model_id"],
                output_id=item["output_id"],
                units=item["units"],
                share_ppm=item["share_ppm"],
                amount=_read_money(item["amount"], cur, f"lines[{i}].amount"),
            )
            for i, item in enumerate(doc["lines"])
        )
        run = doc["run"]
        statement = Statement(
            party_id=party_id,
            party_name=str(doc["party_name"]),
            period=period,
            currency=cur,
            opening_balance=_read_money(doc["opening_balance"], cur, "opening_balance"),
            income=tuple(
                (str(item["basis"]), _read_money(item, cur, f"income[{item['basis']}]")) for item in doc["income"]
            ),
            recouped=_read_money(doc["recouped"], cur, "recouped"),
            reserves=_read_money(doc["reserves"], cur, "reserves"),
            paid=_read_money(doc["paid"], cur, "paid"),
            closing_balance=_read_money(doc["closing_balance"], cur, "closing_balance"),
            lines=lines,
            run_id=str(run["run_id"]),
            engine_version=str(run["engine_version"]),
            inputs_hash=str(run["inputs_hash"]),
        )
        total = _read_money(doc["total_income"], cur, "total_income")
    except (KeyError, TypeError, AttributeError) as exc:
        _fail(f"statement document: missing or malformed field {exc}", "document", str(exc))
    statement.check()
    if total != statement.total_income:
        _fail(f"total_income: {total} != sum of income {statement.total_income}", "total_income", total)
    return statement


def read_json(path: Path | str) -> Statement:
    """Read a statement written by :func:`write_json`, checking it reconciles."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        _fail(f"{path}: not JSON ({exc})", "path", str(path))
    return from_document(doc)


# --- HTML: a summary a person can read ------------------------------------------------------------


CHART_BARS = 12
"""At most this many recordings in the HTML bar chart (the largest; the rest are summed as "others")."""

HTML_LINES = 2_000
"""At most this many lines in the HTML line table (the largest first); the CSV and JSON hold them all."""

_CHART_WIDTH = 560  # px of the longest bar


@dataclass(frozen=True)
class _Bar:
    label: str
    amount: str
    width: int  # px, integer so the SVG bytes never depend on float formatting
    y: int


def _bars(items: list[tuple[str, int]], currency: str) -> tuple[_Bar, ...]:
    top = max((amount for _, amount in items), default=0)
    return tuple(
        _Bar(
            label=label,
            amount=decimal_text(amount, currency),
            width=(amount * _CHART_WIDTH // top) if top > 0 else 0,
            y=index * 26,
        )
        for index, (label, amount) in enumerate(items)
    )


def _recording_bars(statement: Statement) -> tuple[_Bar, ...]:
    per: dict[str, int] = {}
    for line in statement.lines:
        per[line.isrc] = per.get(line.isrc, 0) + line.amount
    # Largest first; ties by ISRC so the chart is the same on every run.
    ranked = sorted(per.items(), key=lambda item: (-item[1], item[0]))
    shown = ranked[:CHART_BARS]
    rest = ranked[CHART_BARS:]
    if rest:
        shown.append((f"{len(rest)} others", sum(amount for _, amount in rest)))
    return _bars(shown, statement.currency)


def html_text(statement: Statement) -> str:
    """The HTML summary: account summary, income by basis, bar charts (inline SVG) and the line table."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    cur = statement.currency
    summary = (
        ("Opening balance", decimal_text(statement.opening_balance, cur)),
        ("Income", decimal_text(statement.total_income, cur)),
        ("Recouped against advances", decimal_text(-statement.recouped, cur)),
        ("Reserves held", decimal_text(-statement.reserves, cur)),
        ("Paid", decimal_text(-statement.paid, cur)),
        ("Closing balance", decimal_text(statement.closing_balance, cur)),
    )
    units = {basis: sum(line.units for line in statement.lines if line.basis == basis) for basis, _ in statement.income}
    income = tuple((basis, units[basis], decimal_text(amount, cur)) for basis, amount in statement.income)
    shown = statement.lines
    if len(shown) > HTML_LINES:  # the largest amounts (ties by position), kept in statement order
        keep = sorted(range(len(shown)), key=lambda i: (-shown[i].amount, i))[:HTML_LINES]
        shown = tuple(shown[i] for i in sorted(keep))
    lines = tuple((line, ppm_to_percent(line.share_ppm), decimal_text(line.amount, cur)) for line in shown)
    return env.get_template("statement.html.j2").render(
        s=statement,
        summary=summary,
        income=income,
        total_income=decimal_text(statement.total_income, cur),
        basis_bars=_bars(list(statement.income), cur),
        recording_bars=_recording_bars(statement),
        lines=lines,
        hidden=len(statement.lines) - len(shown),
    )


def write_html(statement: Statement, path: Path | str) -> Path:
    """Write the self-contained HTML summary (checked first; no external assets); return the path."""
    statement.check()
    return _write_bytes(Path(path), html_text(statement).encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
