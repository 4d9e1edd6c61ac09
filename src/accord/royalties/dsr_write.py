"""DDEX DSR flat files, the writing half: Accord statements as a ``dsrf/30`` UGC-profile report.

:func:`write_dsr` writes the report (mapping documented in ``docs/dsr.md``), reads the file
back through :func:`accord.royalties.dsr_read.parse_dsr` with its control totals checked,
reconciles its amounts (:func:`reconciliation_problems`) and rebuilds the statement lines
from it (:func:`statement_lines`). The public names are re-exported by :mod:`accord.royalties.dsr`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

from accord.errors import ValidationError
from accord.money import parse_amount, percent_to_ppm
from accord.royalties.dsr_read import (
    LAYOUTS_V3,
    DsrRecord,
    DsrReport,
    _fail,
    _int,
    escape,
    parse_dsr,
    summaries_by_id,
)
from accord.royalties.statements import Statement, StatementLine, decimal_text

MESSAGE_VERSION, PROFILE, PROFILE_VERSION = "dsrf/30", "UGCProfile", "1.1"
"""What Accord's reports declare in HEAD: the DSRF v3 UGC profile of the sample reports."""

COMMERCIAL_MODEL = "accord::RoyaltyPool"
"""SY02.01 CommercialModel: Accord's pooled licensing revenue (user-defined, ``namespace::value``)."""

USE_TYPES = {"output": "accord::AiGeneratedOutput", "training": "accord::AiModelTraining"}
"""SY02.01 UseType per statement basis; DDEX's allowed values have no AI use (user-defined)."""

RIGHTS_TYPES = {"master": "accord::MasterRight", "publishing": "accord::PublishingRight"}
"""SY02.01 RightsType and LI01.01 RightType per side (user-defined: one Accord side is several DDEX rights)."""

TERRITORY = "Worldwide"
"""SY02.01 Territory: Accord's pools are not split by territory."""

WRITTEN_TYPES = ("HEAD", "SY02.01", "AS01", "MW01.01", "SU03.01", "LI01.01", "FOOT")
"""Record types the writer emits (RU01 of the samples is not: Accord has no DSP releases)."""


def dsr_filename(sender: str, recipient: str, service: str, period: str, created: datetime) -> str:
    """The sample reports' naming: ``DSR_{sender}_{recipient}_{service}_{period}_{territory}_1of1_{created}.tsv``."""
    return f"DSR_{sender}_{recipient}_{service}_{period}_{TERRITORY}_1of1_{created.strftime('%Y%m%dT%H%M%S')}.tsv"


@cache
def _month_bounds(period: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{period}-01")
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


@cache
def _validity(period: str) -> tuple[str, str]:
    first, last = _month_bounds(period)
    return first.strftime("%Y%m%d"), last.strftime("%Y%m%d")


def _share(ppm: int) -> str:
    return f"{Decimal(ppm) / 10_000:.4f}"


def _line_key(line: StatementLine) -> tuple[object, ...]:
    # Every field, party first: a total order, so the blocks and SU lines never depend on input order.
    return (
        line.party_id, line.currency, line.period, line.basis, line.model_id, line.output_id, line.side, line.isrc,
        line.work_id, line.units, line.share_ppm, line.amount,
    )  # fmt: skip


def dsr_text(
    statements: Sequence[Statement],
    *,
    sender: str,
    recipient: str,
    period_start: date,
    period_end: date,
    message_id: str,
    created: datetime,
    sender_name: str = "Accord",
    recipient_name: str = "",
    titles: Mapping[str, str] | None = None,
    iswcs: Mapping[str, str] | None = None,
) -> str:
    """The DSR text for ``statements`` (see :func:`write_dsr`)."""
    if created.tzinfo is None:
        _fail(f"created: {created!r} has no time zone; expected an aware UTC datetime", "created", created)
    if period_end < period_start:
        _fail(f"period_end: {period_end} is before period_start {period_start}", "period_end", period_end)
    seen: set[tuple[str, str, str]] = set()
    names: dict[str, str] = {}
    for st in statements:
        st.check()
        first, last = _month_bounds(st.period)
        if first < period_start or last > period_end:
            msg = f"statement {st.party_id}/{st.period}: outside the report period {period_start}..{period_end}"
            _fail(msg, "period", st.period)
        key = (st.party_id, st.period, st.currency)
        if key in seen:
            _fail(f"statements: two statements for {'/'.join(key)}", "statements", key)
        seen.add(key)
        names[st.party_id] = st.party_name
    lines = sorted((line for st in statements for line in st.lines), key=_line_key)
    rows: list[list[str]] = [
        ["HEAD", MESSAGE_VERSION, PROFILE, PROFILE_VERSION, escape(message_id, field="message_id"),
         created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "1", "1", period_start.isoformat(),
         period_end.isoformat(), escape(sender, field="sender"), escape(sender_name, field="sender_name"), "Accord",
         escape(recipient, field="recipient"), escape(recipient_name, field="recipient_name"),
         "|".join(escape(p, field="party_id") for p in sorted(names))],
    ]  # fmt: skip
    rows += [[f"#{rtype}", *LAYOUTS_V3[rtype]] for rtype in WRITTEN_TYPES]
    summary_ids: dict[tuple[str, str, str, str, str], str] = {}
    totals: dict[str, list[int]] = {}
    for line in lines:
        sy = (line.party_id, line.currency, line.basis, line.model_id, line.side)
        sid = summary_ids.setdefault(sy, str(len(summary_ids) + 1))
        units_amount = totals.setdefault(sid, [0, 0])
        units_amount[0] += line.units
        units_amount[1] += line.amount
    for (party, currency, basis, model, side), sid in summary_ids.items():
        usages, amount = totals[sid]
        money = decimal_text(amount, currency)
        who = (escape(names[party], field="party_name"), escape(party, field="party_id"))
        rows.append(
            ["SY02.01", sid, "", "", COMMERCIAL_MODEL, USE_TYPES[basis], TERRITORY, escape(model, field="model_id"),
             str(usages), "", currency, money, *who, str(usages), money, money, RIGHTS_TYPES[side]]
        )  # fmt: skip
    by_isrc: dict[str, list[StatementLine]] = {}
    for line in lines:
        by_isrc.setdefault(line.isrc, []).append(line)
    transaction = 0
    for block_no, isrc in enumerate(sorted(by_isrc), start=1):
        bid, rec = str(block_no), escape(isrc, field="isrc")
        title = escape((titles or {}).get(isrc, ""), field="title")
        rows.append(["AS01", bid, rec, rec, rec, title, "", "", "", "", "SoundRecording"])
        for work in sorted({line.work_id for line in by_isrc[isrc] if line.work_id}):
            w = escape(work, field="work_id")
            iswc = escape((iswcs or {}).get(work, ""), field="iswc")
            rows.append(["MW01.01", bid, w, iswc, "", "", "", "", "", "", "", "", "", "", "Accord", f"accord::{w}"])
        for line in by_isrc[isrc]:
            transaction += 1
            sid = summary_ids[(line.party_id, line.currency, line.basis, line.model_id, line.side)]
            money = decimal_text(line.amount, line.currency)
            valid_from, valid_to = _validity(line.period)
            rows.append(["SU03.01", bid, f"T{transaction}", sid, escape(line.output_id, field="output_id"),
                         str(line.units), money, valid_from, valid_to])  # fmt: skip
            rows.append(["LI01.01", bid, sid, escape(names[line.party_id], field="party_name"),
                         escape(line.party_id, field="party_id"), escape(line.work_id, field="work_id"),
                         _share(line.share_ppm), RIGHTS_TYPES[line.side], money, money])  # fmt: skip
    n_lines, n_blocks = len(rows) + 1, len(by_isrc)
    rows.append(["FOOT", str(n_lines), str(n_lines), str(len(summary_ids)), str(n_blocks), str(n_blocks)])
    return "".join("\t".join(row) + "\n" for row in rows)


def write_dsr(
    statements: Sequence[Statement],
    path: Path | str,
    *,
    sender: str,
    recipient: str,
    period_start: date,
    period_end: date,
    message_id: str,
    created: datetime,
    sender_name: str = "Accord",
    recipient_name: str = "",
    titles: Mapping[str, str] | None = None,
    iswcs: Mapping[str, str] | None = None,
) -> DsrReport:
    """Write the statements as one DSR flat file, read it back and verify it; return the report read.

    One SY02.01 per (party, currency, basis, model, side); one block per recording (AS01, an
    MW01.01 per work, then an SU03.01 + LI01.01 pair per statement line, SalesTransactionId
    ``T1``, ``T2`` … unique in the message). Control totals are computed on write; the file is
    then re-read with its totals checked, its SY totals reconciled with its SU lines, and the
    statement lines rebuilt from it must equal the lines given.

    Raises:
        ValidationError: a statement that does not reconcile or lies outside the period, a value
            a DSR cell cannot hold, or a written file that does not read back to the same lines.
    """
    text = dsr_text(
        statements, sender=sender, recipient=recipient, period_start=period_start, period_end=period_end,
        message_id=message_id, created=created, sender_name=sender_name, recipient_name=recipient_name,
        titles=titles, iswcs=iswcs,
    )  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text.encode("utf-8"))
    try:
        report = parse_dsr(tmp.read_bytes().decode("utf-8"), path.name)
        problems = reconciliation_problems(report)
        if problems:
            _fail(f"{path.name}: written report does not reconcile: " + "; ".join(problems), "report", problems)
        back = sorted(statement_lines(report), key=_line_key)
        given = sorted((line for st in statements for line in st.lines), key=_line_key)
        if back != given:
            _fail(f"{path.name}: written report reads back {len(back)} lines that differ from the {len(given)} given",
                  "report", len(back))  # fmt: skip
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return report


_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]{1,6}))?")


def _micros(record: DsrRecord, column: str, currency: str) -> int:
    """An amount cell in micro-units, exactly; the fast path for the writer's own ``123.456789`` form."""
    text = record.get(column)
    m = _AMOUNT.fullmatch(text)
    if m:
        return int(m[1]) * 1_000_000 + int((m[2] or "").ljust(6, "0"))
    try:  # anything else (exponents, signs, more decimals): the general rule, with its message
        return parse_amount(text, currency, field=column).micros
    except ValidationError as exc:
        _fail(f"{record.record_type} (line {record.line_number}): {exc}", column, text)


def statement_lines(report: DsrReport) -> tuple[StatementLine, ...]:
    """Rebuild Accord statement lines from a report Accord wrote (SU03.01 + LI01.01 pairs).

    Raises:
        ValidationError: the report does not follow Accord's mapping (an unknown use or rights
            type, an SU without its LI, a block without one AS01, a repeated summary id).
    """
    sy = summaries_by_id(report)
    basis_of = {v: k for k, v in USE_TYPES.items()}
    side_of = {v: k for k, v in RIGHTS_TYPES.items()}
    out: list[StatementLine] = []
    for block in report.blocks:
        resources = block.of_type("AS01")
        if len(resources) != 1:
            _fail(f"{report.name}: block {block.block_id} has {len(resources)} AS01 records; expected 1", "AS01")
        isrc = resources[0].get("ISRC")
        records = block.records
        for i, su in enumerate(records):
            if su.record_type != "SU03.01":
                continue
            li = records[i + 1] if i + 1 < len(records) else None
            if li is None or li.record_type != "LI01.01" or li.get("SummaryRecordId") != su.get("SummaryRecordId"):
                _fail(f"{report.name}: SU03.01 at line {su.line_number} has no LI01.01 after it", "LI01.01")
            summary = sy.get(su.get("SummaryRecordId"))
            if summary is None:
                msg = f"{report.name}: SU03.01 at line {su.line_number}: no SY record {su.get('SummaryRecordId')!r}"
                _fail(msg, "SummaryRecordId", su.get("SummaryRecordId"))
            basis = basis_of.get(summary.get("UseType"))
            side = side_of.get(summary.get("RightsType"))
            if basis is None or side is None:
                found = f"{summary.get('UseType')!r}/{summary.get('RightsType')!r}"
                msg = (
                    f"{report.name}: SY02.01 at line {summary.line_number} has UseType/RightsType {found}; "
                    f"expected Accord's {sorted(basis_of)}/{sorted(side_of)}"
                )
                _fail(msg, "UseType", summary.get("UseType"))
            start = su.get("ValidityPeriodStart")
            currency = summary.get("Currency")
            out.append(
                StatementLine(
                    party_id=summary.get("RightsControllerPartyId"),
                    period=f"{start[:4]}-{start[4:6]}",
                    currency=currency,
                    basis=basis,
                    side=side,
                    isrc=isrc,
                    work_id=li.get("RightsControllerWorkID"),
                    model_id=summary.get("ServiceDescription"),
                    output_id=su.get("DspReleaseId"),
                    units=_int(su, "Usages"),
                    share_ppm=percent_to_ppm(li.get("RightShare%"), field="RightShare%"),
                    amount=_micros(su, "NetRevenue", currency),
                )
            )
    return tuple(out)


def reconciliation_problems(report: DsrReport) -> list[str]:
    """Amount checks for a report Accord wrote: each SY's Usages and NetRevenue equal the sums of
    its SU lines, each LI allocates exactly its SU's NetRevenue, and SalesTransactionIds are unique."""
    sy = summaries_by_id(report)
    sums = {sid: [0, 0] for sid in sy}
    problems: list[str] = []
    ids: set[str] = set()
    for block in report.blocks:
        records = block.records
        for i, su in enumerate(records):
            if su.record_type != "SU03.01":
                continue
            tid, sid = su.get("SalesTransactionId"), su.get("SummaryRecordId")
            if tid in ids:
                problems.append(f"SU03.01 (line {su.line_number}) SalesTransactionId {tid} repeats")
            ids.add(tid)
            if sid not in sy:
                problems.append(f"SU03.01 (line {su.line_number}) SummaryRecordId {sid} has no SY record")
                continue
            currency = sy[sid].get("Currency")
            amount = _micros(su, "NetRevenue", currency)
            sums[sid][0] += _int(su, "Usages")
            sums[sid][1] += amount
            li = records[i + 1] if i + 1 < len(records) else None
            if li is not None and li.record_type == "LI01.01":
                for column in ("AllocatedNetRevenue", "AllocatedAmount"):
                    if _micros(li, column, currency) != amount:
                        problems.append(
                            f"LI01.01 (line {li.line_number}) {column} {li.get(column)} "
                            f"!= SU NetRevenue {su.get('NetRevenue')}"
                        )
    for sid, record in sy.items():
        usages, amount = sums[sid]
        if _int(record, "Usages") != usages:
            problems.append(
                f"SY02.01 {sid} (line {record.line_number}) Usages says {record.get('Usages')}, "
                f"SU lines sum to {usages}"
            )
        want = _micros(record, "NetRevenue", record.get("Currency"))
        if want != amount:
            found = decimal_text(amount, record.get("Currency"))
            problems.append(
                f"SY02.01 {sid} (line {record.line_number}) NetRevenue says {record.get('NetRevenue')}, "
                f"SU lines sum to {found}"
            )
    return problems
