"""Exchange rates: the ECB file imported exactly into the store, a period's rate date, conversion rounding."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.cli import app
from accord.errors import Conflict, ValidationError
from accord.money import allocate
from accord.registry.store import Store
from accord.royalties.fx import (
    PeriodRates,
    convert_many,
    import_file,
    is_business_day,
    period_rates,
    rate_date,
    rates_on,
    require_rates,
)
from accord.settings import Settings

HISTORY = "Date,USD,JPY,GBP,\n2026-12-31,1.0400,163.86,N/A,\n2026-12-30,1.0412,164.01,0.83215,\n"
DAILY = "Date, USD, JPY, GBP, \n29 January 2027, 1.0800, 160.00, 0.8400, \n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rates_are_stored_exactly_with_the_files_hash_and_read_back_as_fractions(store: Store, tmp_path: Path) -> None:
    done = import_file(store, write(tmp_path, "eurofxref-hist.csv", HISTORY))
    assert (done.dates, done.added, done.already) == (2, 5, 0)  # N/A is no rate
    assert rates_on(store, date(2026, 12, 30)) == {
        "EUR": 1,
        "USD": Fraction(10412, 10000),
        "JPY": Fraction(16401, 100),
        "GBP": Fraction(83215, 100000),
    }
    assert "GBP" not in rates_on(store, date(2026, 12, 31))
    again = import_file(store, write(tmp_path, "copy.csv", HISTORY))
    assert (again.source_sha256, again.added, again.already) == (done.source_sha256, 0, 5)
    daily = import_file(store, write(tmp_path, "eurofxref.csv", DAILY))
    assert daily.added == 3 and rates_on(store, date(2027, 1, 29))["USD"] == Fraction(108, 100)


def test_an_import_that_changes_a_stored_rate_is_refused_and_stores_nothing(store: Store, tmp_path: Path) -> None:
    import_file(store, write(tmp_path, "a.csv", HISTORY))
    changed = HISTORY.replace("1.0400", "1.0401") + "2026-12-29,1.05,,,\n"
    with pytest.raises(Conflict, match=r"USD on 2026-12-31 is 1\.0401; the store already holds 1\.04"):
        import_file(store, write(tmp_path, "b.csv", changed))
    assert rates_on(store, date(2026, 12, 29)) == {"EUR": 1}  # all or nothing
    assert rates_on(store, date(2026, 12, 31))["USD"] == Fraction(104, 100)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("When,USD\n2026-12-31,1.04\n", "header"),
        ("Date,USX\n2026-12-31,1.04\n", "header 'USX'"),
        ("Date,USD\n31/12/2026,1.04\n", "Date"),
        ("Date,USD\n2026-12-31,-1.04\n", "USD"),
        ("Date,USD\n2026-12-31,1.04\n2026-12-31,1.05\n", "Date"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_field(store: Store, tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        import_file(store, write(tmp_path, "bad.csv", text))
    assert err.value.field == field


def test_a_periods_rate_date_is_its_last_target_business_day() -> None:
    assert rate_date("2026-12") == date(2026, 12, 31)  # a Thursday
    assert rate_date("2027-01") == date(2027, 1, 29)  # the 31st is a Sunday, the 30th a Saturday
    assert rate_date("2027-04") == date(2027, 4, 30)
    assert rate_date("2027-03") == date(2027, 3, 31)
    # Easter 2027 is 28 March: Good Friday (26th) and Easter Monday (29th) are no business days
    assert not is_business_day(date(2027, 3, 26)) and not is_business_day(date(2027, 3, 29))
    assert is_business_day(date(2027, 3, 30))
    assert not is_business_day(date(2026, 12, 25)) and not is_business_day(date(2026, 12, 26))
    assert not is_business_day(date(2027, 5, 1)) and not is_business_day(date(2027, 1, 1))


def test_a_missing_rate_is_named_with_its_pair_and_date(store: Store, tmp_path: Path) -> None:
    import_file(store, write(tmp_path, "a.csv", HISTORY))
    rates = period_rates(store, "2026-12")
    require_rates(rates, [("EUR", "USD"), ("USD", "JPY"), ("EUR", "EUR")])  # all there (cross rate via EUR)
    assert rates.rate(("USD", "JPY")) == Fraction(16386, 100) / Fraction(104, 100)
    with pytest.raises(ValidationError) as err:
        require_rates(rates, [("GBP", "USD"), ("EUR", "CHF"), ("EUR", "USD")])
    msg = str(err.value)
    assert "EUR->CHF, GBP->USD" in msg and "2026-12-31" in msg and "CHF, GBP" in msg and "EUR->USD" not in msg


def test_a_rate_is_written_exactly_in_the_ledger_reason() -> None:
    rates = PeriodRates("2026-12", date(2026, 12, 31), {"EUR": Fraction(1), "USD": Fraction(104, 100)})
    assert rates.text(("EUR", "USD")) == "EURUSD 1.04 2026-12-31"
    assert rates.text(("USD", "EUR")) == "USDEUR 25/26 2026-12-31"  # 1/1.04 is no finite decimal


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(st.integers(0, 10**13), min_size=1, max_size=6),
    num=st.integers(1, 10**7),
    den=st.integers(1, 10**7),
)
def test_a_conversion_rounds_the_total_once_and_splits_it_by_largest_remainder(
    amounts: list[int], num: int, den: int
) -> None:
    rate = Fraction(num, den)
    keys = [f"k{i}" for i in range(len(amounts))]
    got = convert_many(list(zip(keys, amounts, strict=True)), rate)
    total = round(sum(amounts) * rate)  # half to even
    assert sum(got.values()) == (total if any(amounts) else 0)
    if any(amounts):
        assert list(got.values()) == allocate(total, amounts, keys)
        for k, a in zip(keys, amounts, strict=True):  # each part within one micro-unit of its exact value
            assert abs(got[k] - a * rate) < 2


def test_accord_fx_import_through_the_cli(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "eurofxref-hist.csv", HISTORY)
    result = CliRunner().invoke(app, ["fx", "import", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["added"] == 5
    result = CliRunner().invoke(app, ["fx", "import", str(path)])
    assert result.exit_code == 0 and "0 rate(s) added, 5 already stored" in result.output
    bad = write(tmp_path, "bad.csv", "Date,USD\n2026-12-31,abc\n")
    result = CliRunner().invoke(app, ["fx", "import", str(bad)])
    assert result.exit_code != 0 and "USD='abc'" in result.output
