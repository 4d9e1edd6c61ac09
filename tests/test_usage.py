"""Usage ingest: validated per row, all or nothing, idempotent by event id, atomic per batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.errors import Rejected, ValidationError
from accord.outputs import store as outputs
from accord.registry.store import Store
from accord.royalties import usage
from accord.royalties.run import close_period, run_period
from accord.royalties.usage import committed_files, ingest_events, ingest_file, period_events, sync_platform_events
from accord.royalties.usage_checks import AMOUNT_DIGITS, PERIOD_REVENUE_LIMIT, micro_units, read_usage_file
from accord.settings import Settings
from tests.test_royalty_run import usage as demo_usage
from tests.test_royalty_run import world


@pytest.fixture
def registry(store: Store, settings: Settings) -> Store:
    world(store, settings)
    return store


def play(event_id: str, **over: Any) -> dict[str, Any]:
    event = {"event_id": event_id, "kind": "play", "timestamp": "2026-11-10T12:00:00Z", "creator": "C-1",
             "output_id": "O-1", "model_id": "M-1", "territory": "GB"}  # fmt: skip
    return {**event, **over}


def visible_events(store: Store, settings: Settings) -> int:
    return sum(pq.read_metadata(p).num_rows for p in committed_files(store, settings))


def test_a_batch_sent_twice_counts_once(registry: Store, settings: Settings) -> None:
    first = ingest_events(registry, settings, demo_usage(3))
    second = ingest_events(registry, settings, demo_usage(3))
    assert (first.new, first.duplicates) == (6, 0)
    assert (second.new, second.duplicates, second.batch_id) == (0, 6, "")
    third = ingest_events(registry, settings, demo_usage(4))  # one new play among known ones
    assert (third.new, third.duplicates) == (1, 6)
    assert visible_events(registry, settings) == 7
    assert period_events(registry, settings, "2026-11").num_rows == 7


def test_the_same_id_twice_in_a_batch_counts_once_but_different_content_is_an_error(
    registry: Store, settings: Settings
) -> None:
    assert ingest_events(registry, settings, [play("a"), play("a")]).new == 1
    with pytest.raises(Rejected) as exc:
        ingest_events(registry, settings, [play("b"), play("b", territory="FR")])
    assert [(p.location, p.field, p.code) for p in exc.value.problems] == [("row 2", "event_id", "duplicate_id")]


def test_every_bad_row_is_reported_by_row_and_field_and_nothing_is_written(registry: Store, settings: Settings) -> None:
    rows = [
        play("ok"),
        play("e2", output_id="O-NOPE"),
        play("e3", model_id="M-NOPE"),
        play("e4", timestamp="2026-11-10 12:00"),
        {"event_id": "r1", "kind": "revenue", "timestamp": "2026-11-02T00:00:00Z", "amount": "-5", "currency": "EUR",
         "period": "2026-11", "source": "subscription"},
        {"event_id": "r2", "kind": "revenue", "timestamp": "2026-11-02T00:00:00Z", "amount": "5", "currency": "EURO",
         "period": "2026-11", "source": "subscription"},
        {"event_id": "r3", "kind": "revenue", "timestamp": "2026-10-31T23:59:59Z", "amount": "5", "currency": "EUR",
         "period": "2026-11", "source": "sale"},
        play("e8", kind="like"),
    ]  # fmt: skip
    with pytest.raises(Rejected) as exc:
        ingest_events(registry, settings, rows, source="batch.jsonl")
    got = [(p.location, p.field, p.code) for p in exc.value.problems]
    assert got == [
        ("row 2", "output_id", "unknown_output"),
        ("row 3", "model_id", "unknown_model"),
        ("row 4", "timestamp", "bad_timestamp"),
        ("row 5", "amount", "negative_amount"),
        ("row 6", "currency", "bad_currency"),
        ("row 7", "timestamp", "outside_period"),
        ("row 8", "kind", "bad_kind"),
    ]
    assert "nothing was written" in str(exc.value)
    assert committed_files(registry, settings) == []


def test_a_period_option_refuses_events_outside_it(registry: Store, settings: Settings) -> None:
    with pytest.raises(Rejected) as exc:
        ingest_events(registry, settings, [play("x", timestamp="2026-12-01T00:00:00Z")], period="2026-11")
    assert exc.value.problems[0].code == "outside_period"


def test_a_crash_between_files_leaves_nothing_visible_and_a_retry_succeeds(
    registry: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [play("d1", timestamp="2026-11-10T12:00:00Z"), play("d2", timestamp="2026-11-11T12:00:00Z")]
    calls: list[Path] = []
    real = usage._publish

    def crash_on_second(tmp: Path, final: Path) -> None:
        calls.append(final)
        if len(calls) == 2:
            raise OSError("disk full")
        real(tmp, final)

    monkeypatch.setattr(usage, "_publish", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        ingest_events(registry, settings, rows)
    assert committed_files(registry, settings) == []
    assert not list((settings.home / "usage").rglob("*.parquet"))  # the first file was removed too
    monkeypatch.setattr(usage, "_publish", real)
    result = ingest_events(registry, settings, rows)
    assert result.new == 2 and len(result.files) == 2  # one file per day
    assert visible_events(registry, settings) == 2


def test_files_are_partitioned_by_day_and_revenue_is_in_micro_units(registry: Store, settings: Settings) -> None:
    result = ingest_events(registry, settings, demo_usage(1, "12.345678"))
    assert result.files == (f"day=2026-11-10/batch-{result.batch_id}.parquet",)
    table = period_events(registry, settings, "2026-11")
    revenue = [r for r in table.to_pylist() if r["kind"] == "revenue"]
    assert [(r["amount"], r["currency"], r["source"]) for r in revenue] == [(12_345_678, "EUR", "subscription")]


def test_jsonl_and_csv_files_ingest_the_same_events(registry: Store, settings: Settings, tmp_path: Path) -> None:
    jl = tmp_path / "b.jsonl"
    jl.write_text("\n".join(json.dumps(play(f"j{i}")) for i in range(3)) + "\n", encoding="utf-8")
    assert ingest_file(registry, settings, jl).new == 3
    csv_path = tmp_path / "b.csv"
    head = "event_id,kind,timestamp,creator,output_id,model_id,territory"
    csv_path.write_text(head + "\nc1,stream,2026-11-12T08:00:00Z,C-1,O-2,M-1,FR\n", encoding="utf-8")
    assert ingest_file(registry, settings, csv_path).new == 1
    (tmp_path / "b.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValidationError, match="suffix"):
        ingest_file(registry, settings, tmp_path / "b.txt")


def test_the_platforms_own_plays_and_downloads_land_in_the_log_once(registry: Store, settings: Settings) -> None:
    out, creator = outputs.get_output(registry, "O-1"), outputs.get_creator(registry, "C-1")
    outputs.record_event(registry, "play", out, creator, at=datetime(2026, 11, 12, tzinfo=UTC))
    outputs.record_event(registry, "download", out, creator, at=datetime(2026, 11, 13, tzinfo=UTC))
    assert sync_platform_events(registry, settings).new == 2
    assert sync_platform_events(registry, settings).new == 0
    kinds = sorted(period_events(registry, settings, "2026-11").column("kind").to_pylist())
    assert kinds == ["download", "play"]


# ------------------------------------------------------------- reading files strictly (issue 15)

HEAD = "event_id,kind,timestamp,creator,output_id,model_id,territory\n"
ROW = "c1,stream,2026-11-12T08:00:00Z,C-1,O-2,M-1,FR\n"


def refused(path: Path) -> list[tuple[str, str, str]]:
    """The (location, field, code) of every problem :func:`read_usage_file` finds in a file."""
    with pytest.raises(Rejected) as exc:
        read_usage_file(path)
    assert "nothing was written" in str(exc.value)
    return [(p.location, p.field, p.code) for p in exc.value.problems]


def test_a_file_that_is_not_utf8_is_refused_naming_its_line_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes((HEAD + ROW).encode() + b"c2,play,\xff\xfe\n")
    with pytest.raises(Rejected) as exc:
        read_usage_file(path)
    (problem,) = exc.value.problems
    assert (problem.location, problem.code) == ("line 3", "bad_encoding")
    assert f"byte offset {len(HEAD) + len(ROW) + 8}" in problem.expected
    path.with_suffix(".jsonl").write_bytes(b'{"event_id": "\xc3"}\n')
    assert refused(path.with_suffix(".jsonl")) == [("line 1", "file", "bad_encoding")]


def test_a_truncated_file_is_refused_rather_than_its_partial_last_line_dropped(tmp_path: Path) -> None:
    jl = tmp_path / "u.jsonl"
    jl.write_text(json.dumps(play("j1")) + "\n" + json.dumps(play("j2"))[:30], encoding="utf-8")
    assert refused(jl) == [("line 2", "file", "truncated")]
    csv_path = tmp_path / "u.csv"
    csv_path.write_text(HEAD + ROW + "c2,stream,2026-11-1", encoding="utf-8")
    assert refused(csv_path) == [("line 3", "file", "truncated")]
    csv_path.write_text(HEAD + ROW + "c2,stream,2026-11-12T08:00:00Z\n", encoding="utf-8")  # a row cut short
    assert refused(csv_path) == [("row 2 (line 3)", "row", "bad_row")]


def test_nul_bytes_are_refused_in_files_and_in_events_handed_over(
    registry: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes((HEAD + ROW.replace("c1", "c\x001")).encode())
    assert refused(path) == [("line 2", "file", "nul_byte")]
    with pytest.raises(Rejected) as exc:
        ingest_events(registry, settings, [play("ok"), play("n\x00ul")])
    assert [(p.location, p.field, p.code) for p in exc.value.problems] == [("row 2", "event_id", "nul_character")]
    assert committed_files(registry, settings) == []


def test_an_unbalanced_quote_is_refused_with_its_line_not_read_as_part_of_an_id(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(HEAD + ROW.replace("c1", '"u-1') + ROW.replace("c1", "u-1"), encoding="utf-8")
    assert refused(path) == [("line 3", "file", "bad_csv")]  # the quote runs to the end of the file
    path.write_text(HEAD + ROW.replace("c1", 'u-1"') + ROW.replace("c1", "u-1"), encoding="utf-8")
    assert refused(path) == [("row 1 (line 2)", "event_id", "unbalanced_quote")]


def test_unknown_and_repeated_columns_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(HEAD.replace("\n", ",colour,timestamp\n") + ROW.replace("\n", ",red,x\n"), encoding="utf-8")
    assert refused(path) == [
        ("line 1 (header)", "colour", "unknown_column"),
        ("line 1 (header)", "timestamp", "duplicate_column"),
    ]
    jl = tmp_path / "u.jsonl"
    jl.write_text(json.dumps({**play("j1"), "colour": "red", "at": "2026-11-10T12:00:00Z"}) + "\n", encoding="utf-8")
    assert refused(jl) == [("row 1", "colour", "unknown_column"), ("row 1", "at", "duplicate_column")]


def revenue(event_id: str, amount: str) -> dict[str, Any]:
    return {"event_id": event_id, "kind": "revenue", "timestamp": "2026-11-02T00:00:00Z", "amount": amount,
            "currency": "EUR", "period": "2026-11", "source": "subscription"}  # fmt: skip


def test_an_amount_of_more_than_nine_digits_is_refused_not_overflowed(registry: Store, settings: Settings) -> None:
    with pytest.raises(Rejected) as exc:
        ingest_events(registry, settings, [revenue("r1", "9999999999999")])
    assert [(p.field, p.code) for p in exc.value.problems] == [("amount", "bad_amount")]
    assert committed_files(registry, settings) == []


def test_a_period_whose_revenue_would_pass_the_bound_refuses_the_batch_and_can_still_be_run_and_closed(
    registry: Store, settings: Settings
) -> None:
    top = "999999999.999999"  # the largest amount one event may carry: 10^15 - 1 micro-units
    ingest_events(registry, settings, [*demo_usage(1, "0.000001"), revenue("big-0", top)])
    files = committed_files(registry, settings)
    with pytest.raises(Rejected) as exc:  # nine more: past 2^53 micro-units, which no signed run summary holds
        ingest_events(registry, settings, [revenue(f"big-{i}", top) for i in range(1, 10)])
    (problem,) = exc.value.problems
    assert (problem.location, problem.field, problem.code) == ("period 2026-11", "amount", "period_total_too_large")
    assert problem.value.startswith("EUR 8,999,999,999.999991") and "1,000,000,000 EUR" in problem.expected
    assert committed_files(registry, settings) == files  # nothing written
    run = run_period(registry, settings, "2026-11")
    assert run.summary["revenue"] == {"EUR": PERIOD_REVENUE_LIMIT}
    assert close_period(registry, settings, "2026-11").run.run_id == run.run_id


@given(whole=st.integers(0, 10**AMOUNT_DIGITS - 1), frac=st.text("0123456789", min_size=0, max_size=6))
def test_amounts_become_micro_units_exactly(whole: int, frac: str) -> None:
    text = f"{whole}.{frac}" if frac else str(whole)
    assert micro_units(text) == int(Decimal(text) * 1_000_000)
    assert micro_units(text) < PERIOD_REVENUE_LIMIT  # one event always fits in a period
