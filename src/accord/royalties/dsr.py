"""DDEX Digital Sales Reporting (DSR) flat files: a reader with control totals, and a writer.

A DSR flat file is UTF-8, one record per line, cells separated by tabs, ``\\`` escaping a
tab, ``|`` (the multi-value separator) or itself. ``#`` lines are comments (the DSRF v3
files carry the column layout of each record type as a ``#TYPE`` comment). Order:
``HEAD`` first, then summary records (``SYxx``), then blocks of records sharing a
``BlockId`` (resource ``AS``, work ``MW``, release usage ``RU``, sales/usage ``SU``,
licensor ``LI``), ``FOOT`` last with control totals.

Two layouts are read, both as found in the public ``ddexnet/dsrf`` sample reports:

* ``dsrf/30`` — DSRF v3 (``HEAD`` with ``MessageVersion`` ``dsrf/30``): ``FOOT`` carries
  ``NumberOfLinesInFile``, ``NumberOfLinesInReport``, ``NumberOfSummaryRecords``,
  ``NumberOfBlocksInFile`` and ``NumberOfBlocksInReport``.
* ``legacy`` — the 2014 test schema (``sales-reporting-flat.xsd``): ``HEAD MessageId
  Profile ProfileVersion [FileNumber NumberOfFiles]`` and ``FOOT NumberOfLines``.

Lines are counted as the standard says: every line of the file, HEAD, FOOT, comments and
empty lines included. The writer (:func:`write_dsr`, mapping documented in ``docs/dsr.md``)
produces the ``dsrf/30`` UGC-profile structure of the sample reports and reads its file back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import NoReturn

from accord.errors import ValidationError
from accord.money import parse_amount, percent_to_ppm
from accord.royalties.statements import Statement, StatementLine, decimal_text

LAYOUTS_V3: dict[str, tuple[str, ...]] = {
    # Copied from the '#TYPE' comment lines of DSR_TEST_YouTube_AdSupport-music_2015-Q4_IS_1of1.
    "HEAD": (
        "MessageVersion", "Profile", "ProfileVersion", "MessageId", "MessageCreatedDateTime", "FileNumber",
        "NumberofFiles", "UsageStartDate", "UsageEndDate", "SenderPartyId", "SenderName", "ServiceDescription",
        "RecipientPartyId", "RecipientName", "RepresentedRepertoire",
    ),
    "SY02.01": (
        "SummaryRecordId", "DistributionChannel", "DistributionChannelDPID", "CommercialModel", "UseType",
        "Territory", "ServiceDescription", "Usages", "Users", "Currency", "NetRevenue", "RightsController",
        "RightsControllerPartyId", "AllocatedUsages", "AllocatedRevenue", "AllocatedNetRevenue", "RightsType",
    ),
    "AS01": (
        "BlockId", "ResourceReference", "DspResourceId", "ISRC", "Title", "SubTitle", "DisplayArtistName",
        "DisplayArtistPartyId", "Duration", "ResourceType",
    ),
    "MW01.01": (
        "BlockId", "DspWorkId", "ISWC", "Title", "SubTitle", "ComposerAuthor", "ComposerAuthorPartyId", "Arranger",
        "ArrangerPartyId", "MusicPublisher", "MusicPublisherPartyId", "WorkContributor", "WorkContributorPartyId",
        "DataProvider", "ProprietaryWorkId",
    ),
    "RU01": ("BlockId", "SummaryRecordId", "DspReleaseId", "Usages"),
    "SU03.01": (
        "BlockId", "SalesTransactionId", "SummaryRecordId", "DspReleaseId", "Usages", "NetRevenue",
        "ValidityPeriodStart", "ValidityPeriodEnd",
    ),
    "LI01.01": (
        "BlockId", "SummaryRecordId", "RightsController", "RightsControllerProprietaryID", "RightsControllerWorkID",
        "RightShare%", "RightType", "AllocatedNetRevenue", "AllocatedAmount",
    ),
    "FOOT": (
        "NumberOfLinesInFile", "NumberOfLinesInReport", "NumberOfSummaryRecords", "NumberOfBlocksInFile",
        "NumberOfBlocksInReport",
    ),
}  # fmt: skip
"""Column layouts of the DSRF v3 records (after the record type), as the sample reports declare them."""

LAYOUTS_LEGACY: dict[str, tuple[str, ...]] = {
    # Copied from sales-reporting-flat.xsd (the ddexnet/dsrf 2014 test schema) that the PADPIDA samples follow.
    "HEAD": ("MessageId", "Profile", "ProfileVersion", "FileNumber", "NumberOfFiles"),
    "SY03": ("CommercialModelType", "UseType", "Territory", "ServiceDescription", "NumberOfUsages"),
    "RE01": ("BlockId", "ReleaseReference", "DspReleaseId"),
    "AS02": ("BlockId", "ResourceReference", "DspResourceId", "ISRC", "Title"),
    "RU01": ("BlockId", "DspReleaseId", "NumberOfUsages"),
    "RU02": ("BlockId", "DspReleaseId", "ReleaseTitle", "ReleaseURL", "NumberOfUsages"),
    "SU02": (
        "BlockId", "SalesTransactionId", "TransactedReleaseOrResource", "CommercialModelType", "UseType", "Territory",
        "ServiceDescription", "IsRoyaltyBearing", "NumberOfStreams", "Currency", "PriceConsumerPaidExcSalesTax",
        "PromotionalActivity", "PreviewAvailable",
    ),
    "FOOT": ("NumberOfLines",),
}  # fmt: skip
"""Column layouts of the 2014 test-schema records."""

_ESCAPED = re.compile(r"\\(.)")
_FILENAME = re.compile(
    r"^DSR_(?P<sender>[^_]+)_(?P<recipient>[^_]+)_(?P<service>.+)_(?P<period>[^_]+)_(?P<territory>[^_]+)"
    r"_(?P<x>[0-9]+)of(?P<y>[0-9]+)_(?P<created>[0-9T]+)\.tsv(\.gz)?$"
)


@cache
def _positions(layout: tuple[str, ...]) -> dict[str, int]:
    return {name: i for i, name in enumerate(layout)}


def _fail(message: str, field: str, value: object = None) -> NoReturn:
    raise ValidationError(message, field=field, value=value)


def unescape(cell: str) -> str:
    """``Gët \\| Thîś`` → ``Gët | Thîś``: drop the escaping backslashes."""
    return _ESCAPED.sub(r"\1", cell) if "\\" in cell else cell


def escape(value: str, *, field: str = "value") -> str:
    """Escape ``\\`` and ``|`` for a cell; a tab or line break cannot be written and is refused."""
    if "\t" in value or "\n" in value or "\r" in value:
        _fail(f"{field}: {value!r} contains a tab or line break; a DSR cell cannot hold one", field, value)
    return value.replace("\\", "\\\\").replace("|", "\\|")


def split_cells(line: str) -> list[str]:
    """Split a record at tabs that are not escaped; cells keep their escapes."""
    if "\\" not in line:
        return line.split("\t")
    cells: list[str] = []
    start = 0
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "\t":
            cells.append(line[start:i])
            start = i + 1
        i += 1
    cells.append(line[start:])
    return cells


def split_values(cell: str) -> tuple[str, ...]:
    """Split a raw cell at unescaped ``|`` into unescaped values (``""`` gives ``()``)."""
    if cell == "":
        return ()
    parts = re.split(r"(?<!\\)((?:\\\\)*)\|", cell)
    # re.split keeps the captured run of escaped backslashes: glue it back to the value before it.
    values = [parts[0]]
    for k in range(1, len(parts), 2):
        values[-1] += parts[k]
        values.append(parts[k + 1])
    return tuple(unescape(v) for v in values)


@dataclass(frozen=True)
class DsrRecord:
    """One record (line) of a DSR file.

    Attributes:
        record_type: ``"SU03.01"``, ``"AS01"`` ...
        cells: the raw cells after the record type (escapes kept), padded to the layout.
        layout: the column names of ``cells``.
        line_number: 1-based line in the file.
    """

    record_type: str
    cells: tuple[str, ...]
    layout: tuple[str, ...]
    line_number: int
    _at: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_at", _positions(self.layout))

    def get(self, column: str) -> str:
        """The unescaped text of a column (``""`` when empty)."""
        index = self._at.get(column)
        if index is None:
            _fail(f"{self.record_type} (line {self.line_number}): no column {column!r}; has {self.layout}", column)
        return unescape(self.cells[index])

    def values(self, column: str) -> tuple[str, ...]:
        """A multi-value column split at unescaped ``|``."""
        if column not in self.layout:
            _fail(f"{self.record_type} (line {self.line_number}): no column {column!r}; has {self.layout}", column)
        return split_values(self.cells[self.layout.index(column)])

    def as_dict(self) -> dict[str, str]:
        """Column name → unescaped text."""
        return {name: unescape(cell) for name, cell in zip(self.layout, self.cells, strict=True)}


@dataclass(frozen=True)
class DsrHeader:
    """The HEAD record. Fields a layout lacks are ``""``; the file number and count come from the
    file name when the HEAD does not carry them.

    Attributes:
        layout: ``"dsrf/30"`` or ``"legacy"``.
        represented_repertoire: the ``|``-separated list, split.
    """

    layout: str
    message_version: str
    profile: str
    profile_version: str
    message_id: str
    created: str
    file_number: int
    number_of_files: int
    usage_start: str
    usage_end: str
    sender_party_id: str
    sender_name: str
    service_description: str
    recipient_party_id: str
    recipient_name: str
    represented_repertoire: tuple[str, ...]
    record: DsrRecord


@dataclass(frozen=True)
class DsrFooter:
    """The FOOT record's control totals (``None`` where the layout has no such count)."""

    lines_in_file: int
    lines_in_report: int | None
    summary_records: int | None
    blocks_in_file: int | None
    blocks_in_report: int | None
    record: DsrRecord


@dataclass(frozen=True)
class DsrBlock:
    """The records of one block, in file order."""

    block_id: str
    records: tuple[DsrRecord, ...]

    def of_type(self, prefix: str) -> tuple[DsrRecord, ...]:
        """Records whose type starts with ``prefix`` (``"SU"``, ``"AS01"`` ...)."""
        return tuple(r for r in self.records if r.record_type.startswith(prefix))


@dataclass(frozen=True)
class DsrCounts:
    """What the file holds, counted by the reader, to compare with the FOOT."""

    lines: int
    summary_records: int
    blocks: int


@dataclass(frozen=True)
class DsrReport:
    """One DSR file: header, summaries, blocks, footer, the counts found and the declared layouts.

    Attributes:
        name: the file name.
        declared: ``#TYPE`` comment layouts found in the file (record type → column names).
    """

    name: str
    header: DsrHeader
    summaries: tuple[DsrRecord, ...]
    blocks: tuple[DsrBlock, ...]
    footer: DsrFooter
    counts: DsrCounts
    declared: tuple[tuple[str, tuple[str, ...]], ...]

    def name_problems(self) -> list[str]:
        """Where the file name (``DSR_..._XofY_...``) disagrees with the HEAD's file number and count.

        Not fatal: the ``ddexnet/dsrf`` reference library logs these and reads on.
        """
        m = _FILENAME.match(self.name)
        if not m:
            return []
        said = (self.header.file_number, self.header.number_of_files)
        named = (int(m["x"]), int(m["y"]))
        return (
            []
            if said == named
            else [f"{self.name}: HEAD says file {said[0]} of {said[1]}; the name says {m['x']} of {m['y']}"]
        )

    def record_types(self) -> tuple[str, ...]:
        """Record types in order of first appearance (HEAD … FOOT)."""
        seen: dict[str, None] = {"HEAD": None}
        for record in (*self.summaries, *(r for b in self.blocks for r in b.records)):
            seen.setdefault(record.record_type, None)
        seen["FOOT"] = None
        return tuple(seen)


def _int(record: DsrRecord, column: str) -> int:
    text = record.get(column)
    if not text.isdigit():
        _fail(f"{record.record_type} (line {record.line_number}): {column} {text!r} is not a count", column, text)
    return int(text)


def _header(record: DsrRecord, layout: str, file_name: str) -> DsrHeader:
    m = _FILENAME.match(file_name)
    from_name = (int(m["x"]), int(m["y"])) if m else (1, 1)
    get = record.as_dict().get
    number = _int(record, "FileNumber") if get("FileNumber") else from_name[0]
    count_column = "NumberofFiles" if layout == "dsrf/30" else "NumberOfFiles"
    count = _int(record, count_column) if get(count_column) else from_name[1]
    if not 1 <= number <= count:
        _fail(f"{file_name}: HEAD FileNumber {number} is outside 1..{count}", "FileNumber", number)
    return DsrHeader(
        layout=layout,
        message_version=get("MessageVersion", ""),
        profile=get("Profile", ""),
        profile_version=get("ProfileVersion", ""),
        message_id=get("MessageId", ""),
        created=get("MessageCreatedDateTime", ""),
        file_number=number,
        number_of_files=count,
        usage_start=get("UsageStartDate", ""),
        usage_end=get("UsageEndDate", ""),
        sender_party_id=get("SenderPartyId", ""),
        sender_name=get("SenderName", ""),
        service_description=get("ServiceDescription", ""),
        recipient_party_id=get("RecipientPartyId", ""),
        recipient_name=get("RecipientName", ""),
        represented_repertoire=record.values("RepresentedRepertoire") if layout == "dsrf/30" else (),
        record=record,
    )


def _footer(record: DsrRecord, layout: str) -> DsrFooter:
    if layout == "legacy":
        return DsrFooter(_int(record, "NumberOfLines"), None, None, None, None, record)
    return DsrFooter(
        lines_in_file=_int(record, "NumberOfLinesInFile"),
        lines_in_report=_int(record, "NumberOfLinesInReport"),
        summary_records=_int(record, "NumberOfSummaryRecords"),
        blocks_in_file=_int(record, "NumberOfBlocksInFile"),
        blocks_in_report=_int(record, "NumberOfBlocksInReport"),
        record=record,
    )


def parse_dsr(text: str, name: str = "<dsr>", *, check_totals: bool = True) -> DsrReport:
    """Parse DSR text; with ``check_totals`` refuse it unless the FOOT's control totals match.

    Raises:
        ValidationError: bad structure (no HEAD first, no FOOT last, a record after FOOT, an
            unknown record type, a block id that comes back, too many cells), or a control
            total that disagrees with the file (naming the record, the expected and the found count).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line break ends the last line; it does not start a new one
    declared: dict[str, tuple[str, ...]] = {}
    records: list[DsrRecord] = []
    layouts: dict[str, tuple[str, ...]] = {}
    layout = ""
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if line.startswith("#"):
            cells = split_cells(line[1:])
            declared.setdefault(cells[0], tuple(cells[1:]))
            continue
        if line.strip() == "":
            continue  # an empty record: counted as a line, holds nothing
        cells = split_cells(line)
        rtype = cells[0].upper()
        if not records:
            if rtype != "HEAD":
                _fail(f"{name}: line {number} is a {rtype} record; a DSR file starts with HEAD", "HEAD", rtype)
            layout = "dsrf/30" if cells[1:2] and cells[1].lower().startswith("dsrf/") else "legacy"
            layouts = LAYOUTS_V3 if layout == "dsrf/30" else LAYOUTS_LEGACY
        elif records[-1].record_type == "FOOT":
            _fail(f"{name}: line {number} ({rtype}) comes after FOOT; FOOT is the last record", "FOOT", rtype)
        columns = layouts.get(rtype) or declared.get(rtype)
        if columns is None:
            msg = f"{name}: line {number}: record type {rtype!r} is neither in the {layout} layouts nor declared"
            _fail(msg, "RecordType", rtype)
        if len(cells) - 1 > len(columns):
            msg = f"{name}: line {number}: {rtype} has {len(cells) - 1} cells; its layout has {len(columns)}"
            _fail(msg, rtype, len(cells) - 1)
        padded = tuple(cells[1:]) + ("",) * (len(columns) - len(cells) + 1)
        records.append(DsrRecord(rtype, padded, columns, number))
    if not records:
        _fail(f"{name}: empty file; a DSR file starts with HEAD", "HEAD")
    if records[-1].record_type != "FOOT":
        _fail(f"{name}: the last record is {records[-1].record_type}; a DSR file ends with FOOT", "FOOT")
    summaries: list[DsrRecord] = []
    blocks: list[DsrBlock] = []
    current: list[DsrRecord] = []
    closed: set[str] = set()
    for record in records[1:-1]:
        if record.record_type in ("HEAD", "FOOT"):
            _fail(f"{name}: line {record.line_number}: a second {record.record_type}", record.record_type)
        if record.record_type.startswith("SY"):
            if blocks or current:
                msg = f"{name}: line {record.line_number}: summary record {record.record_type} after the first block"
                _fail(msg, record.record_type)
            summaries.append(record)
            continue
        block_id = record.get("BlockId")
        if current and current[0].get("BlockId") != block_id:
            blocks.append(DsrBlock(current[0].get("BlockId"), tuple(current)))
            closed.add(blocks[-1].block_id)
            current = []
        if block_id in closed:
            msg = f"{name}: line {record.line_number}: block {block_id} appears again after other blocks"
            _fail(msg, "BlockId", block_id)
        current.append(record)
    if current:
        blocks.append(DsrBlock(current[0].get("BlockId"), tuple(current)))
    report = DsrReport(
        name=name,
        header=_header(records[0], layout, name),
        summaries=tuple(summaries),
        blocks=tuple(blocks),
        footer=_footer(records[-1], layout),
        counts=DsrCounts(lines=len(lines), summary_records=len(summaries), blocks=len(blocks)),
        declared=tuple(sorted(declared.items())),
    )
    if check_totals:
        problems = control_total_problems(report)
        if problems:
            _fail(f"{name}: control totals disagree: " + "; ".join(problems), "FOOT", problems)
    return report


def control_total_problems(report: DsrReport) -> list[str]:
    """The FOOT counts that disagree with the file, each naming the count, expected and found."""
    foot, found = report.footer, report.counts
    where = f"FOOT (line {foot.record.line_number})"
    checks: list[tuple[str, int | None, int]] = []
    if report.header.layout == "legacy":
        checks.append(("NumberOfLines", foot.lines_in_file, found.lines))
    else:
        checks += [
            ("NumberOfLinesInFile", foot.lines_in_file, found.lines),
            ("NumberOfSummaryRecords", foot.summary_records, found.summary_records),
            ("NumberOfBlocksInFile", foot.blocks_in_file, found.blocks),
        ]
        if report.header.number_of_files == 1:  # a one-file report: the report totals are the file's
            checks += [
                ("NumberOfLinesInReport", foot.lines_in_report, found.lines),
                ("NumberOfBlocksInReport", foot.blocks_in_report, found.blocks),
            ]
    return [f"{where} {name} says {said}, found {count}" for name, said, count in checks if said != count]


def read_dsr(path: Path | str, *, check_totals: bool = True) -> DsrReport:
    """Read one DSR file (UTF-8); see :func:`parse_dsr`."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"{path.name}: not UTF-8 at byte {exc.start}; DSR files are UTF-8", "encoding", exc.start)
    return parse_dsr(text, path.name, check_totals=check_totals)


def read_dsr_message(paths: Iterable[Path | str], *, check_totals: bool = True) -> tuple[DsrReport, ...]:
    """Read the files of one multi-part report, each with its own totals, then the report-wide ones.

    Checks that the parts share one MessageId, are numbered 1..N of N with no gap or repeat,
    never reuse a block id across files, and (``dsrf/30``) that every FOOT's
    ``NumberOfLinesInReport`` / ``NumberOfBlocksInReport`` equals the sum over the parts.
    """
    parts = sorted((read_dsr(p, check_totals=check_totals) for p in paths), key=lambda r: r.header.file_number)
    if not parts:
        _fail("paths: no DSR files given", "paths")
    ids = sorted({p.header.message_id for p in parts})
    if len(ids) != 1:
        _fail(f"MessageId: the parts carry {ids}; expected one message", "MessageId", ids)
    want = parts[0].header.number_of_files
    numbers = [p.header.file_number for p in parts]
    if numbers != list(range(1, want + 1)) or any(p.header.number_of_files != want for p in parts):
        _fail(f"FileNumber: parts {numbers} of {want}; expected 1..{want} each once", "FileNumber", numbers)
    owner: dict[str, str] = {}
    for part in parts:
        for block in part.blocks:
            if block.block_id in owner:
                msg = f"BlockId: block {block.block_id} is in both {owner[block.block_id]} and {part.name}"
                _fail(msg, "BlockId", block.block_id)
            owner[block.block_id] = part.name
    if check_totals and parts[0].header.layout == "dsrf/30":
        lines = sum(p.counts.lines for p in parts)
        blocks = sum(p.counts.blocks for p in parts)
        for part in parts:
            foot = part.footer
            if (foot.lines_in_report, foot.blocks_in_report) != (lines, blocks):
                msg = (
                    f"{part.name}: FOOT (line {foot.record.line_number}) NumberOfLinesInReport/NumberOfBlocksInReport "
                    f"say {foot.lines_in_report}/{foot.blocks_in_report}, found {lines}/{blocks} over {want} files"
                )
                _fail(msg, "FOOT", (foot.lines_in_report, foot.blocks_in_report))
    return tuple(parts)


def summaries_by_id(report: DsrReport) -> dict[str, DsrRecord]:
    """``SummaryRecordId`` → SY record, refusing duplicates (for reports whose ids are unique)."""
    out: dict[str, DsrRecord] = {}
    for record in report.summaries:
        key = record.get("SummaryRecordId")
        if key in out:
            _fail(f"{report.name}: SummaryRecordId {key} repeats (lines {out[key].line_number}, "
                  f"{record.line_number})", "SummaryRecordId", key)  # fmt: skip
        out[key] = record
    return out


def iter_records(reports: Sequence[DsrReport]) -> Iterable[DsrRecord]:
    """Every record of the reports in file order (HEAD, summaries, blocks, FOOT)."""
    for report in reports:
        yield report.header.record
        yield from report.summaries
        for block in report.blocks:
            yield from block.records
        yield report.footer.record


# --- writer ---------------------------------------------------------------------------------------

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
            first, last = _validity(line.period)
            rows.append(["SU03.01", bid, f"T{transaction}", sid, escape(line.output_id, field="output_id"),
                         str(line.units), money, first, last])  # fmt: skip
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
