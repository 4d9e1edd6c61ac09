"""DDEX DSR flat files, the reading half: records, the parser and its control totals.

The format and the two layouts read are described in :mod:`accord.royalties.dsr`, the public
entry point that re-exports these names; the writer is :mod:`accord.royalties.dsr_write`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NoReturn

from accord.errors import ValidationError

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
