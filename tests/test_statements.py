"""Statements of account: they reconcile, belong to one party, and are written byte-identically."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from accord.errors import ValidationError
from accord.royalties.statements import (
    CSV_COLUMNS,
    Statement,
    StatementLine,
    decimal_text,
    read_json,
    write_csv,
    write_html,
    write_json,
)

PERIOD = "2026-11"


def line(
    basis: str = "training",
    side: str = "master",
    isrc: str = "GBXYZ2600001",
    *,
    party: str = "P-LABEL",
    work: str = "",
    model: str = "M-1",
    output: str = "",
    units: int = 10,
    share: int = 1_000_000,
    amount: int = 1_000_000,
) -> StatementLine:
    if side == "publishing" and not work:
        work = "W-0001"
    if basis == "output" and not output:
        output = "OUT-1"
    return StatementLine(party, PERIOD, "EUR", basis, side, isrc, work, model, output, units, share, amount)


def statement(*lines: StatementLine, opening: int = 500_000, recouped: int = 0, paid: int = 0) -> Statement:
    return Statement.from_lines(
        party_id="P-LABEL",
        party_name="Label & Sons <Records>",
        period=PERIOD,
        currency="EUR",
        lines=lines or (line(), line("output", amount=2_345_678, units=3), line(isrc="GBXYZ2600002", amount=1)),
        opening_balance=opening,
        recouped=recouped,
        paid=paid,
        run_id="RUN-2026-11-1",
        engine_version="accord-royalties/1",
        inputs_hash="sha256:abc",
    )


def test_from_lines_sorts_lines_and_totals_income_per_basis():
    st = statement()
    assert st.income == (("output", 2_345_678), ("training", 1_000_001))
    assert st.total_income == 3_345_679
    assert st.closing_balance == 500_000 + 3_345_679
    assert [ln.basis for ln in st.lines] == ["output", "training", "training"]


def test_check_refuses_an_unbalanced_statement():
    st = dataclasses.replace(statement(), closing_balance=statement().closing_balance + 1)
    with pytest.raises(ValidationError, match="closing_balance"):
        st.check()


def test_balance_equation_counts_recouped_reserves_and_paid():
    st = statement(opening=0, recouped=100, paid=200)
    assert st.closing_balance == st.total_income - 300
    dataclasses.replace(st, reserves=50, closing_balance=st.closing_balance - 50).check()


def test_check_refuses_a_line_of_another_party():
    st = statement()
    foreign = dataclasses.replace(st.lines[0], party_id="P-OTHER")
    with pytest.raises(ValidationError, match="belongs to P-OTHER"):
        dataclasses.replace(st, lines=(foreign, *st.lines[1:])).check()


def test_check_refuses_a_line_of_another_period_or_currency():
    st = statement()
    for change in ({"period": "2026-10"}, {"currency": "USD"}):
        moved = dataclasses.replace(st.lines[0], **change)
        with pytest.raises(ValidationError, match="belongs to"):
            dataclasses.replace(st, lines=(moved, *st.lines[1:])).check()


def test_check_refuses_a_negative_line():
    st = statement()
    bad = dataclasses.replace(st.lines[1], amount=-5)
    with pytest.raises(ValidationError, match="negative"):
        dataclasses.replace(st, lines=(st.lines[0], bad, st.lines[2])).check()


def test_check_refuses_lines_that_do_not_sum_to_income():
    st = statement()
    with pytest.raises(ValidationError, match="training lines sum to 1000001; income on training is 1000002"):
        income = (("output", 2_345_678), ("training", 1_000_002))
        dataclasses.replace(st, income=income, closing_balance=st.closing_balance + 1).check()


def test_check_refuses_lines_out_of_order_and_malformed_lines():
    st = statement()
    with pytest.raises(ValidationError, match="out of order"):
        dataclasses.replace(st, lines=tuple(reversed(st.lines))).check()
    with pytest.raises(ValidationError, match="work_id"):
        statement(line(work="W-9"))
    with pytest.raises(ValidationError, match="output_id"):
        statement(line(output="OUT-9"))
    with pytest.raises(ValidationError, match="basis"):
        statement(line(basis="bonus"))
    with pytest.raises(ValidationError, match="period"):
        dataclasses.replace(statement(), period="2026-13").check()


def test_writers_are_byte_identical_for_the_same_statement(tmp_path: Path):
    st = statement()
    for writer, suffix in ((write_csv, "csv"), (write_json, "json"), (write_html, "html")):
        a, b = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
        writer(st, a)
        writer(dataclasses.replace(st), b)
        assert a.read_bytes() == b.read_bytes(), suffix


def test_json_round_trip_and_canonical_form(tmp_path: Path):
    st = statement(line(), line("output", "publishing", work="W-7", amount=7, share=333_334))
    path = write_json(st, tmp_path / "s.json")
    assert read_json(path) == st
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc) == sorted(doc)
    assert doc["closing_balance"] == {"micros": st.closing_balance, "decimal": decimal_text(st.closing_balance, "EUR")}
    assert doc["lines"][0]["share_percent"] == "33.3334"


def test_read_json_refuses_an_edited_amount(tmp_path: Path):
    path = write_json(statement(), tmp_path / "s.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["lines"][0]["amount"] = {"micros": 9, "decimal": "0.000009"}
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValidationError, match="output lines sum to 9"):
        read_json(path)
    doc["lines"][0]["amount"] = {"micros": 2_345_678, "decimal": "9.99"}
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValidationError, match="disagrees with micros"):
        read_json(path)


def test_csv_lines_sum_to_the_total(tmp_path: Path):
    st = statement()
    with write_csv(st, tmp_path / "s.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(st.lines)
    assert sum(int(r["amount_micros"]) for r in rows) == st.total_income
    assert {r["party_id"] for r in rows} == {"P-LABEL"}


def test_html_shows_party_totals_and_chart(tmp_path: Path):
    st = statement()
    html = write_html(st, tmp_path / "s.html").read_text(encoding="utf-8")
    assert "Label &amp; Sons &lt;Records&gt;" in html  # escaped, not injected
    assert "<Records>" not in html
    for amount in (st.total_income, st.closing_balance, st.opening_balance):
        assert decimal_text(amount, "EUR") in html
    assert "<svg" in html and "GBXYZ2600002" in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained


def test_decimal_text_is_signed_and_exact():
    assert decimal_text(0, "EUR") == "0.00"
    assert decimal_text(-1_500_000, "EUR") == "-1.50"
    assert decimal_text(1, "EUR") == "0.000001"


def test_writers_refuse_a_statement_that_does_not_reconcile(tmp_path: Path):
    st = dataclasses.replace(statement(), paid=1)
    with pytest.raises(ValidationError):
        write_json(st, tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()
