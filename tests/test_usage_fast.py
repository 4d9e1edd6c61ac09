"""The fast path of the usage checks agrees with the precise one: same batches accepted, same events,
same problems (the precise path's, by row and field), same files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from accord.errors import Problem, Rejected
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties import usage
from accord.royalties.usage import IngestResult, KnownIds, committed_files, ingest_file
from accord.royalties.usage_checks import AMOUNT_DIGITS, micro_units, table_of
from accord.royalties.usage_fast import fast_events, id_order, micro_units_of
from accord.royalties.usage_precise import precise_events
from accord.settings import Settings
from tests.test_royalty_run import world

KNOWN = KnownIds(
    pa.table({"output_id": ["O-1", "O-2", "O-3"], "model_id": ["M-1", "M-1", "M-2"]}),
    pa.table({"model_id": ["M-1", "M-3"]}),  # M-2 made O-3 but is not registered
)

GOOD_TIMES = ["2026-11-10T12:00:00Z", "2026-11-03T05:06:07+05:30", "2026-11-30T22:59:59.5-01:00",
              "2026-11-01 00:00:00Z", "2026-11-15T08:00:00.123456+0100"]  # fmt: skip
ODD_TIMES = [
    "2026-10-31T23:59:59Z",  # October
    "2026-12-01T00:30:00+01:00",  # November in UTC
    "2026-11-10T12:00:00",  # no offset
    "2026-11-10T12:00:00z",
    "2026-11-10T12:00:00+05",  # an offset without minutes
    "2026-11-10T12:00Z",  # no seconds
    "2026-11-10T12:00:00.1234567Z",  # past microseconds
    "2026-02-30T12:00:00Z",
    "2026-11-10T24:00:00Z",
    "1969-12-31T23:00:00Z",
    "1970-01-01T00:30:00+01:00",
    "2026-11-10",
    "\u20032026-11-10T12:00:00Z ",
    "\t2026-11-10T12:00:00Z",
    "yesterday",
    "",
]
SPACED = ["{}", " {} ", "\u00a0{}", "{}\u3000", "\t{}", "{}\u200b"]  # what trim() removes, and what it keeps


@st.composite
def text(draw: st.DrawFn, good: list[str], odd: list[str], *, clean: bool = False) -> str | None:
    """One of the good values (in canonical form when ``clean``), else sometimes spaced, odd or absent."""
    if clean:
        return draw(st.sampled_from(good))
    value = draw(st.sampled_from([*good, *odd, None]))
    if value:
        value = draw(st.sampled_from(SPACED)).format(value)
    return value


@st.composite
def event(draw: st.DrawFn, *, clean: bool = False) -> dict[str, Any]:
    kind = draw(
        text(["play", "stream", "download", "generation", "revenue"], ["PLAY", "Revenue", "like", ""], clean=clean)
    )
    row = {
        "event_id": draw(st.sampled_from(["e1", "e2", "e3", "é4", "e5", "x" * 96])) if clean else draw(
            text(["e1", "e2", "e3", "é4", "e5"], ["", "x" * 97, "é" * 96])
        ),
        "kind": kind,
        "timestamp": draw(text(GOOD_TIMES, ODD_TIMES, clean=clean)),
    }  # fmt: skip
    if kind == "revenue" or (not clean and draw(st.booleans())):
        odd = ["-5", "1e3", "0.1234567", "1" * 10, "9.", ".5"]
        row["amount"] = draw(text(["9.99", "0", "12.345678", "999999999.999999"], odd, clean=clean))
        row["currency"] = draw(text(["EUR", "USD", "JPY"], ["eur", "EURO", "XXX", "\u0131QD"], clean=clean))
        row["source"] = draw(text(["subscription", "sale"], ["Sale", "gift"], clean=clean))
        row["period"] = draw(text(["2026-11"], ["2026-12", "2026-13", "2026-1", "11-2026"], clean=clean))
    if kind != "revenue" or (not clean and draw(st.booleans())):
        row["creator"] = draw(text(["C-1", "C-2"], [""], clean=clean))
        output = draw(text(["O-1", "O-2"], ["O-3", "O-NOPE", ""], clean=clean))
        row["output_id"] = output
        row["model_id"] = "M-1" if clean else draw(text(["M-1"], ["M-2", "M-3", "M-NOPE", "m-1", ""]))
    if kind != "revenue" or draw(st.booleans()):
        row["territory"] = draw(text(["GB", "FR", "DE"], ["gb", "XX", "G", "\u0131T", ""], clean=clean))
    return {k: v for k, v in row.items() if v is not None}


def precise(raw: pa.Table, period: str | None) -> pa.Table | list[Problem]:
    try:
        return precise_events(raw, KNOWN.outputs, KNOWN.models, period, "batch")
    except Rejected as exc:
        return exc.problems


def by_id(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table.column("event_id")))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(event(), min_size=1, max_size=6), period=st.sampled_from([None, "2026-11"]))
def test_the_fast_path_accepts_only_what_the_precise_path_accepts_and_reads_it_the_same(
    rows: list[dict[str, Any]], period: str | None
) -> None:
    raw = table_of(rows)
    fast = fast_events(raw, KNOWN.outputs, KNOWN.models, period)
    checked = precise(raw, period)
    if fast is None:
        return  # the precise path decides (and names every problem): nothing of the fast path is used
    assert isinstance(checked, pa.Table), checked  # never accepted by the fast path alone
    table, order, ranked = fast
    assert by_id(table).equals(by_id(checked))
    assert order.tolist() == pc.sort_indices(table.column("event_id")).to_pylist()
    assert ranked.to_pylist() == sorted(table.column("event_id").to_pylist(), key=lambda s: s.encode())


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(event(clean=True), min_size=1, max_size=6, unique_by=lambda r: r["event_id"]))
def test_plainly_good_batches_take_the_fast_path(rows: list[dict[str, Any]]) -> None:
    """Canonical files (the forms producers write) are vouched for by the fast path, not only by the precise one."""
    raw = table_of(rows)
    fast = fast_events(raw, KNOWN.outputs, KNOWN.models, None)
    assert fast is not None, precise(raw, None)
    assert by_id(fast[0]).equals(by_id(precise(raw, None)))  # type: ignore[arg-type]


def test_an_id_given_twice_goes_the_precise_way_which_keeps_the_first_or_names_the_conflict() -> None:
    row = {"event_id": "a", "kind": "play", "timestamp": "2026-11-10T12:00:00Z", "creator": "C-1",
           "output_id": "O-1", "model_id": "M-1", "territory": "GB"}  # fmt: skip
    same, other = table_of([row, row]), table_of([row, {**row, "territory": "FR"}])
    assert fast_events(same, KNOWN.outputs, KNOWN.models, None) is None
    assert precise(same, None).num_rows == 1  # type: ignore[union-attr]
    assert fast_events(other, KNOWN.outputs, KNOWN.models, None) is None
    assert [(p.location, p.code) for p in precise(other, None)] == [("row 2", "duplicate_id")]  # type: ignore[union-attr]


@given(whole=st.integers(0, 10**AMOUNT_DIGITS - 1), frac=st.text("0123456789", min_size=0, max_size=6))
def test_amounts_become_the_same_micro_units_on_both_paths(whole: int, frac: str) -> None:
    amount = f"{whole}.{frac}" if frac else str(whole)
    assert micro_units_of(pa.array([amount])).tolist() == [micro_units(amount)] == [int(Decimal(amount) * 10**6)]


def test_ids_sort_in_utf8_byte_order_and_repeats_are_found() -> None:
    order, ranked, repeats = id_order(pa.array(["b", "é", "a", "Z", "ab"]))
    assert ranked.to_pylist() == ["Z", "a", "ab", "b", "é"] and order.tolist() == [3, 2, 4, 0, 1]
    assert not repeats and id_order(pa.array(["a", "b", "a"]))[2]


# ------------------------------------------------------------------- through the store, both ways

HEAD = "event_id,kind,timestamp,creator,output_id,model_id,territory,amount,currency,period,source\n"
LINES = [
    "p{i},play,2026-11-{d:02d}T1{h}:00:00Z,C-1,O-1,M-1,GB,,,,\n",
    "s{i},stream,2026-11-{d:02d}T0{h}:30:00+01:00,C-1,O-2,M-1,FR,,,,\n",
    "r{i},revenue,2026-11-{d:02d}T12:00:00Z,,,,,{i}.5,EUR,2026-11,subscription\n",
]


def both_ways(
    store: Store, settings: Settings, path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[IngestResult, dict[str, bytes]] | list[tuple[str, str, str]]]:
    """Ingest ``path`` by the precise path alone, forget the batch, then ingest it again by the fast path."""
    outcomes: list[tuple[IngestResult, dict[str, bytes]] | list[tuple[str, str, str]]] = []
    vouched: list[bool] = []

    def fast_path(*args: Any) -> Any:
        found = fast_events(*args)
        vouched.append(found is not None)
        return found

    for fast in (False, True):
        with monkeypatch.context() as m:
            m.setattr(usage, "fast_events", fast_path if fast else lambda *_: None)
            try:
                result = ingest_file(store, settings, path)
            except Rejected as exc:
                outcomes.append([(p.location, p.field, p.code) for p in exc.problems])
                continue
        root = settings.home / "usage"
        outcomes.append((result, {str(f.relative_to(root)): f.read_bytes() for f in committed_files(store, settings)}))
        with store.engine.begin() as conn:
            conn.execute(delete(Base.metadata.tables["usage_batches"]))
        for f in root.rglob("*.parquet"):
            f.unlink()
    assert vouched == [isinstance(outcomes[0], tuple)]  # the fast path vouched for a good file, not a bad one
    return outcomes


def test_a_good_file_gives_the_same_batch_and_the_same_bytes_both_ways(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world(store, settings)
    path = tmp_path / "b.csv"
    body = [line.format(i=i, d=1 + i % 28, h=i % 10) for i in range(60) for line in LINES]
    path.write_text(HEAD + "".join(body), encoding="utf-8")
    precise_way, fast_way = both_ways(store, settings, path, monkeypatch)
    assert precise_way == fast_way
    result, files = fast_way  # type: ignore[misc]
    assert (result.new, result.duplicates, len(files)) == (180, 0, 29)  # 2026-11-01T00:30+01:00 is October 31 in UTC


def test_a_bad_file_gives_the_same_problems_both_ways(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world(store, settings)
    path = tmp_path / "b.csv"
    lines = [line.format(i=i, d=3, h=1) for i in range(3) for line in LINES]
    lines[4] = lines[4].replace("O-2", "O-9")
    lines[5] = lines[5].replace("EUR", "EURO")
    path.write_text(HEAD + "".join(lines), encoding="utf-8")
    precise_way, fast_way = both_ways(store, settings, path, monkeypatch)
    assert precise_way == fast_way == [("row 5", "output_id", "unknown_output"), ("row 6", "currency", "bad_currency")]
    assert committed_files(store, settings) == []


def test_ids_seen_before_are_found_whatever_their_bytes(store: Store, settings: Settings) -> None:
    """The log is searched only in the batch's range of ids (byte order): ids around it still count once."""
    world(store, settings)

    def plays(ids: list[str]) -> list[dict[str, Any]]:
        return [{"event_id": i, "kind": "play", "timestamp": "2026-11-10T12:00:00Z", "creator": "C-1",
                 "output_id": "O-1", "model_id": "M-1", "territory": "GB"} for i in ids]  # fmt: skip

    first = ["a", "é", "Z", "ab", "e\u0301", "日本"]
    assert usage.ingest_events(store, settings, plays(first)).new == 6
    again = usage.ingest_events(store, settings, plays([*first, "zz", "É", "A", "日"]))
    assert (again.new, again.duplicates) == (4, 6)
    assert usage.period_events(store, settings, "2026-11").num_rows == 10
