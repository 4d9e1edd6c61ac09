"""DDEX DSR flat files: the public sample reports parse with their control totals checked, and
Accord's writer produces the same record structure, which reads back to the same money."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.errors import ValidationError
from accord.royalties.dsr import (
    LAYOUTS_V3,
    WRITTEN_TYPES,
    control_total_problems,
    dsr_text,
    escape,
    parse_dsr,
    read_dsr,
    read_dsr_message,
    reconciliation_problems,
    split_cells,
    split_values,
    statement_lines,
    write_dsr,
)
from accord.royalties.statements import Statement, StatementLine

FIXTURES = Path(__file__).resolve().parent / "data" / "ddex" / "dsr"  # copies of ../shared/fixtures/ddex/dsr
TEST = FIXTURES / "DSR_TEST_YouTube_AdSupport-music_2015-Q4_IS_1of1_20160121T150926.tsv"
TEST2 = FIXTURES / "DSR_TEST2_YouTube_AdSupport-music_2015-Q4_IS_1of1_20160121T150926.tsv"
LEGACY = sorted(FIXTURES.glob("DSR_PADPIDA*.tsv"))
PART = "DSR_PADPIDA2014999999Z_PADPIDA2014111801Y_AdSupport_2015-02_AU_{}of2_20150723T092522.tsv"

pytestmark = pytest.mark.skipif(not TEST.exists(), reason=f"DDEX sample reports not found at {FIXTURES}")


# --- the sample reports ------------------------------------------------------------------------


def test_the_dsrf_v3_sample_parses_with_every_control_total_checked():
    report = read_dsr(TEST)
    assert report.header.layout == "dsrf/30"
    assert (report.header.profile, report.header.message_id, report.header.sender_name) == (
        "UGCProfile",
        "1453417766009915",
        "YouTube",
    )
    assert (report.header.usage_start, report.header.usage_end) == ("2015-10-01", "2015-12-31")
    assert report.header.represented_repertoire == ("PUB_3", "PUB_2", "PUB_1", "SOC_1", "Residual")
    foot = report.footer
    assert (foot.lines_in_file, foot.lines_in_report, foot.summary_records, foot.blocks_in_file) == (35, 35, 4, 3)
    assert (report.counts.lines, report.counts.summary_records, report.counts.blocks) == (35, 4, 3)
    assert report.record_types() == ("HEAD", "SY02.01", "AS01", "MW01.01", "RU01", "SU03.01", "LI01.01", "FOOT")
    assert [b.block_id for b in report.blocks] == ["1", "2", "3"]
    assert report.blocks[0].of_type("AS01")[0].get("ISRC") == "USSM19803037"
    assert [r.get("Usages") for r in report.blocks[2].of_type("SU")] == ["18", "4", "258", "75"]
    assert report.summaries[2].get("NetRevenue") == "3424.29"
    # The reader's layouts are the ones the file declares in its '#TYPE' comments.
    assert dict(report.declared) == {k: v for k, v in LAYOUTS_V3.items()}


def test_the_second_v3_sample_is_refused_because_its_foot_counts_a_deleted_li_line():
    # DSR_TEST2 is DSR_TEST with block 1's LI01.01 removed and the FOOT left at 35 lines.
    with pytest.raises(ValidationError) as caught:
        read_dsr(TEST2)
    assert "FOOT (line 34) NumberOfLinesInFile says 35, found 34" in str(caught.value)
    report = read_dsr(TEST2, check_totals=False)
    assert report.counts.lines == 34
    assert len(report.blocks[0].of_type("LI")) == 0


@pytest.mark.parametrize("path", LEGACY, ids=lambda p: p.name[-30:])
def test_the_legacy_samples_parse_but_their_placeholder_foot_is_refused(path: Path):
    report = read_dsr(path, check_totals=False)
    assert report.header.layout == "legacy"
    assert report.record_types() == ("HEAD", "SY03", "RE01", "AS02", "FOOT")
    assert report.blocks[0].of_type("AS02")[0].get("ISRC") == "USUM70600055"
    assert control_total_problems(report) == ["FOOT (line 7) NumberOfLines says 123, found 7"]
    with pytest.raises(ValidationError, match="NumberOfLines says 123, found 7"):
        read_dsr(path)


def test_escaped_pipe_in_a_title_is_text_not_a_separator():
    path = FIXTURES / "DSR_PADPIDA2014999999Z_PADPIDA2014111801Y_AdSupport_2015-02_AU_1of1_20150723T092522.tsv"
    title = read_dsr(path, check_totals=False).blocks[0].records[1].get("Title")
    assert title == 'Lët Më Gët | Thîś "Rîght'
    assert split_values("a\\|b|c") == ("a|b", "c")


def _fixed(path: Path, tmp_path: Path) -> Path:
    """A derived copy of a legacy sample with its FOOT set to the file's real line count."""
    out = tmp_path / path.name
    out.write_text(path.read_text(encoding="utf-8").replace("FOOT\t123", "FOOT\t7"), encoding="utf-8")
    return out


def test_multi_part_report_parses_each_part_with_its_own_totals(tmp_path: Path):
    parts = [_fixed(FIXTURES / PART.format(n), tmp_path) for n in (2, 1)]
    for part in parts:
        read_dsr(part)  # each part's own totals
    # The two sample parts both call their block '1': the report-wide check refuses that.
    with pytest.raises(ValidationError, match="block 1 is in both"):
        read_dsr_message(parts)
    second = parts[0].read_text(encoding="utf-8").replace("RE01\t1\t", "RE01\t2\t").replace("AS02\t1\t", "AS02\t2\t")
    parts[0].write_text(second, encoding="utf-8")
    got = read_dsr_message(parts)
    assert [p.header.file_number for p in got] == [1, 2]
    with pytest.raises(ValidationError, match="parts \\[2\\] of 2"):
        read_dsr_message(parts[:1])


def test_a_tampered_foot_count_is_refused_naming_the_count():
    text = TEST.read_text(encoding="utf-8").replace("FOOT\t35\t35\t4\t3\t3", "FOOT\t35\t35\t5\t3\t3")
    with pytest.raises(ValidationError, match="NumberOfSummaryRecords says 5, found 4"):
        parse_dsr(text, TEST.name)


def test_a_deleted_su_line_is_refused():
    lines = TEST.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.startswith("SU03.01\t3\tU2\t")]
    assert len(kept) == len(lines) - 1
    with pytest.raises(ValidationError, match="NumberOfLinesInFile says 35, found 34"):
        parse_dsr("".join(kept), TEST.name)


def test_structure_errors_are_named():
    good = TEST.read_text(encoding="utf-8")
    with pytest.raises(ValidationError, match="starts with HEAD"):
        parse_dsr(good.split("\n", 1)[1])
    with pytest.raises(ValidationError, match="ends with FOOT"):
        parse_dsr(good.rsplit("FOOT", 1)[0])
    with pytest.raises(ValidationError, match="'XX99' is neither"):
        parse_dsr(good.replace("RU01\t2\t", "XX99\t2\t"))
    with pytest.raises(ValidationError, match="block 1 appears again"):
        parse_dsr(good.replace("LI01.01\t2\t1\tResidual", "LI01.01\t1\t1\tResidual").replace("FOOT", "FOOT"))


# --- Accord's writer ---------------------------------------------------------------------------

CREATED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _statements() -> list[Statement]:
    def ln(party: str, basis: str, side: str, isrc: str, amount: int, **kw: object) -> StatementLine:
        return StatementLine(
            party_id=party,
            period="2026-11",
            currency="EUR",
            basis=basis,
            side=side,
            isrc=isrc,
            work_id=str(kw.get("work", "W-0001" if side == "publishing" else "")),
            model_id="M-1",
            output_id=str(kw.get("output", "OUT-1" if basis == "output" else "")),
            units=int(kw.get("units", 4)),  # type: ignore[call-overload]
            share_ppm=int(kw.get("share", 1_000_000)),  # type: ignore[call-overload]
            amount=amount,
        )

    label = [
        ln("P-LABEL", "training", "master", "GBXYZ2600001", 1_234_567),
        ln("P-LABEL", "output", "master", "GBXYZ2600002", 3),
    ]
    pub = [ln("P-PUB", "training", "publishing", "GBXYZ2600001", 999_999, share=333_334)]
    common = {"period": "2026-11", "currency": "EUR"}
    return [
        Statement.from_lines(party_id="P-LABEL", party_name="Label | Co", lines=label, **common),
        Statement.from_lines(party_id="P-PUB", party_name="Pub", lines=pub, **common),
    ]


def _write(tmp_path: Path, statements: list[Statement], name: str = "out.tsv") -> Path:
    write_dsr(
        statements,
        tmp_path / name,
        sender="PADPIDA2013020802I",
        recipient="PADPIDA20070627029",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        message_id="ACCORD-2026-11",
        created=CREATED,
    )
    return tmp_path / name


def test_written_report_has_the_sample_profile_structure_and_matching_totals(tmp_path: Path):
    path = _write(tmp_path, _statements())
    text = path.read_text(encoding="utf-8")
    rows = text.splitlines()
    assert rows[0].startswith("HEAD\tdsrf/30\tUGCProfile\t1.1\tACCORD-2026-11\t2026-12-01T09:30:00Z\t1\t1\t")
    assert rows[-1].startswith("FOOT\t")
    report = read_dsr(path)  # totals checked
    assert report.record_types() == WRITTEN_TYPES
    sample_types = set(read_dsr(TEST).record_types())
    assert set(report.record_types()) <= sample_types
    for rtype in WRITTEN_TYPES:  # the exact column layouts of the sample
        assert f"#{rtype}\t" + "\t".join(LAYOUTS_V3[rtype]) in rows
    assert rows[-1] == f"FOOT\t{len(rows)}\t{len(rows)}\t{report.counts.summary_records}\t2\t2"
    assert [b.block_id for b in report.blocks] == ["1", "2"]
    ids = [r.get("SalesTransactionId") for b in report.blocks for r in b.of_type("SU")]
    assert ids == ["T1", "T2", "T3"] and len(set(ids)) == len(ids)
    assert reconciliation_problems(report) == []


def test_writer_reader_round_trip_gives_the_same_lines(tmp_path: Path):
    statements = _statements()
    report = read_dsr(_write(tmp_path, statements))
    key = lambda ln: (ln.party_id, ln.sort_key())  # noqa: E731
    assert sorted(statement_lines(report), key=key) == sorted((ln for s in statements for ln in s.lines), key=key)


def test_writer_is_deterministic_whatever_the_statement_order(tmp_path: Path):
    statements = _statements()
    a = _write(tmp_path, statements, "a.tsv").read_bytes()
    b = _write(tmp_path, list(reversed(statements)), "b.tsv").read_bytes()
    assert a == b


def test_an_edited_amount_in_a_written_report_fails_reconciliation(tmp_path: Path):
    text = _write(tmp_path, _statements()).read_text(encoding="utf-8")
    edited = parse_dsr(text.replace("\t1.234567\t20261101", "\t1.234568\t20261101"), "edited.tsv")
    problems = reconciliation_problems(edited)
    assert any("NetRevenue says 1.234567, SU lines sum to 1.234568" in p for p in problems)


def test_writer_refuses_a_statement_outside_the_period_and_unwritable_text(tmp_path: Path):
    statements = _statements()
    with pytest.raises(ValidationError, match="outside the report period"):
        dsr_text(statements, sender="S", recipient="R", period_start=date(2026, 12, 1), period_end=date(2026, 12, 31),
                 message_id="M", created=CREATED)  # fmt: skip
    with pytest.raises(ValidationError, match="tab or line break"):
        dsr_text(statements, sender="S\tX", recipient="R", period_start=date(2026, 11, 1),
                 period_end=date(2026, 11, 30), message_id="M", created=CREATED)  # fmt: skip
    assert not list(tmp_path.iterdir())


_ids = st.text(alphabet="ABCDEFGHJK0123456789-|\\é", min_size=1, max_size=8)


@st.composite
def _random_statements(draw: st.DrawFn) -> list[Statement]:
    currency = draw(st.sampled_from(["EUR", "USD", "JPY"]))
    parties = draw(st.lists(_ids, min_size=1, max_size=3, unique=True))
    out = []
    for party in parties:
        lines = []
        for _ in range(draw(st.integers(0, 6))):
            basis = draw(st.sampled_from(["training", "output"]))
            side = draw(st.sampled_from(["master", "publishing"]))
            lines.append(
                StatementLine(
                    party_id=party,
                    period="2026-02",
                    currency=currency,
                    basis=basis,
                    side=side,
                    isrc=draw(st.sampled_from(["GBXYZ2600001", "GBXYZ2600002", "USABC2600003"])),
                    work_id=draw(_ids) if side == "publishing" else "",
                    model_id=draw(_ids),
                    output_id=draw(_ids) if basis == "output" else "",
                    units=draw(st.integers(0, 10**9)),
                    share_ppm=draw(st.integers(0, 1_000_000)),
                    amount=draw(st.integers(0, 10**15)),
                )
            )
        out.append(Statement.from_lines(party_id=party, party_name=party.lower(), period="2026-02",
                                         currency=currency, lines=lines))  # fmt: skip
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statements=_random_statements())
def test_property_round_trip_preserves_every_amount_exactly(tmp_path: Path, statements: list[Statement]):
    path = tmp_path / "p.tsv"
    report = write_dsr(statements, path, sender="S", recipient="R", period_start=date(2026, 2, 1),
                       period_end=date(2026, 2, 28), message_id="M", created=CREATED)  # fmt: skip
    back = statement_lines(read_dsr(path))
    key = lambda ln: (ln.party_id, *ln.sort_key(), ln.units, ln.share_ppm, ln.amount)  # noqa: E731
    assert sorted(back, key=key) == sorted((ln for s in statements for ln in s.lines), key=key)
    assert sum(ln.amount for ln in back) == sum(s.total_income for s in statements)
    assert report.counts.blocks == len({ln.isrc for s in statements for ln in s.lines})


@given(values=st.lists(st.text(alphabet="ab|\\x", min_size=1, max_size=6), min_size=1, max_size=5))
def test_property_escaped_multi_values_split_back_exactly(values: list[str]):
    cell = "|".join(escape(v) for v in values)
    assert split_values(cell) == tuple(values)
    assert split_cells(f"X\t{cell}\t{cell}") == ["X", cell, cell]
