"""Statements of account as files: line detail (CSV), the whole statement (canonical JSON, read
back by :func:`read_json`) and a readable HTML summary. Every writer checks the statement first
and gives byte-identical output for the same statement; files are written atomically.

The records are in :mod:`accord.royalties.statements_model`; :mod:`accord.royalties.statements`
re-exports both modules' public names.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from accord.money import ppm_to_percent
from accord.royalties.statements_model import Statement, StatementLine, TermLine, _fail, decimal_text


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

_MONEY_FIELDS = ("opening_balance", "recouped", "reserves", "paid", "closing_balance", "converted")
_TERM_MONEY = (
    "guaranteed", "opening_balance", "advanced", "earnings", "term_earnings", "recouped", "shortfall_paid",
    "taken_back", "closing_balance",
)  # fmt: skip


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
    doc["terms"] = [
        {"agreement_id": t.agreement_id, "term": t.term, **{k: _money(getattr(t, k), cur) for k in _TERM_MONEY}}
        for t in statement.terms
    ]
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
            converted=_read_money(doc["converted"], cur, "converted") if "converted" in doc else 0,
            terms=tuple(
                TermLine(
                    agreement_id=str(t["agreement_id"]),
                    term=str(t["term"]),
                    **{k: _read_money(t[k], cur, f"terms[{i}].{k}") for k in _TERM_MONEY},
                )
                for i, t in enumerate(doc.get("terms", ()))
            ),
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
        *((("Converted at the period's rate", decimal_text(statement.converted, cur)),) if statement.converted else ()),
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
        terms=tuple((t, {k: decimal_text(getattr(t, k), cur) for k in _TERM_MONEY}) for t in statement.terms),
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
