"""Reading a delivery folder (``catalog.json`` or CSV files) into located items.

Nothing here judges the content: it only reads it, remembering where each value came
from (file and JSON path, or file, row and column) so that every problem found later
can point at it. See ``docs/delivery-format.md``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from accord.errors import Problem, Rejected
from accord.jsonload import JSONRefused, load_json

SECTIONS = ("sources", "parties", "works", "recordings", "agreements", "optouts")
HEADER_KEYS = ("accord_delivery", "delivery_id", "sender", "created")
LIST_SEP = ";"
MAX_FILE_BYTES = 64 * 1024 * 1024
"""The largest delivery file read (``catalog.json`` or one CSV file): 64 MiB."""
MAX_CSV_CELL = 65_536
"""The longest CSV cell read, in characters (each field has its own, smaller, limit: docs/delivery-format.md)."""


@dataclass(frozen=True)
class Loc:
    """Where a value sits in a delivery.

    Attributes:
        file: file name relative to the delivery folder.
        base: JSON path of the object (``$.recordings[3]``) or ``row 7`` of a CSV file.
        csv: whether ``base`` is a CSV row (fields are columns, not JSON keys).
    """

    file: str
    base: str
    csv: bool = False

    def at(self, path: str) -> str:
        if self.csv:
            return self.base
        if not path:
            return self.base
        return f"{self.base}{'' if path.startswith('[') else '.'}{path}"

    def problem(self, path: str, value: object, expected: str, code: str) -> Problem:
        fieldname = path.rsplit(".", 1)[-1].split("[", 1)[0] if path else ""
        return Problem(
            file=self.file,
            location=self.at(path),
            field=fieldname,
            value=_show(value),
            expected=expected,
            code=code,
        )

    def child(self, path: str) -> Loc:
        return self if self.csv else Loc(self.file, self.at(path))


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, Decimal):
        return str(value)
    try:
        return json.dumps(value, default=str, ensure_ascii=False)[:200]
    except TypeError:
        return str(value)[:200]


@dataclass(frozen=True)
class Item:
    """One object of a delivery section with its location.

    Attributes:
        loc: where it is.
        data: its fields as read (JSON values; CSV cells as strings or lists).
    """

    loc: Loc
    data: dict[str, Any]


@dataclass
class RawDelivery:
    """A delivery as read, before validation.

    Attributes:
        folder: the delivery folder.
        format: ``json`` or ``csv``.
        header: header fields with their location.
        sections: items per section name.
        problems: problems found while reading (unreadable files, bad JSON ...).
    """

    folder: Path
    format: str
    header: Item
    sections: dict[str, list[Item]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def content_sha256(self, media_hashes: dict[str, str]) -> str:
        """Hash of the delivery's content: its fields and the bytes of its media files."""
        canon = {
            "header": self.header.data,
            "sections": {k: [i.data for i in v] for k, v in sorted(self.sections.items())},
            "media": dict(sorted(media_hashes.items())),
        }
        text = json.dumps(canon, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def read_delivery(folder: Path) -> RawDelivery:
    """Read a delivery folder; raises :class:`Rejected` only if nothing can be read."""
    folder = Path(folder)
    if not folder.is_dir():
        if folder.is_file() and folder.name == "catalog.json":
            folder = folder.parent
        else:
            p = Problem(
                "",
                "",
                "path",
                str(folder),
                "a delivery folder holding catalog.json or CSV files",
                "not_found",
            )
            raise Rejected(f"delivery {folder}", [p])
    if (folder / "catalog.json").is_file():
        return _read_json(folder)
    if (folder / "recordings.csv").is_file() or (folder / "delivery.csv").is_file():
        return _read_csv(folder)
    p = Problem("", "", "path", str(folder), "catalog.json, or delivery.csv and recordings.csv", "not_found")
    raise Rejected(f"delivery {folder}", [p])


def _read_json(folder: Path) -> RawDelivery:
    path = folder / "catalog.json"
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # one byte past the limit is enough to refuse it
        doc = load_json(data, what="catalog.json", max_bytes=MAX_FILE_BYTES, parse_float=Decimal)
    except JSONRefused as exc:
        p = Problem("catalog.json", exc.location, "", "", exc.reason, "unreadable")
        raise Rejected(f"delivery {folder}", [p]) from None
    root = Loc("catalog.json", "$")
    if not isinstance(doc, dict):
        raise Rejected(f"delivery {folder}", [root.problem("", doc, "a JSON object at the top", "wrong_type")])
    raw = RawDelivery(folder, "json", Item(root, {k: doc.get(k) for k in HEADER_KEYS if k in doc}))
    for key in doc:
        if key not in HEADER_KEYS and key not in SECTIONS:
            raw.problems.append(
                root.problem(
                    key,
                    doc[key],
                    f"a known key ({', '.join(HEADER_KEYS + SECTIONS)})",
                    "unknown_field",
                )
            )
    for section in SECTIONS:
        value = doc.get(section, [])
        if not isinstance(value, list):
            raw.problems.append(root.problem(section, value, "a list", "wrong_type"))
            continue
        items = []
        for i, obj in enumerate(value):
            loc = Loc("catalog.json", f"$.{section}[{i}]")
            if not isinstance(obj, dict):
                raw.problems.append(loc.problem("", obj, "an object", "wrong_type"))
                continue
            items.append(Item(loc, obj))
        raw.sections[section] = items
    return raw


PARTY_FIELDS = ("id", "kind", "name", "ipi", "isni", "dpid", "territory", "disclose")
"""A party's fields: the same in catalog.json and as parties.csv columns."""

CSV_FILES: dict[str, tuple[str, ...]] = {
    "delivery.csv": HEADER_KEYS,
    "parties.csv": PARTY_FIELDS,
    "works.csv": ("id", "iswc", "title", "writers"),
    "work_shares.csv": ("work", "party", "share"),
    "recordings.csv": (
        "isrc",
        "title",
        "artists",
        "duration_ms",
        "genre",
        "works",
        "media_path",
        "media_kind",
        "media_sha256",
        "source",
    ),
    "recording_shares.csv": ("isrc", "party", "share"),
}
CSV_REQUIRED = {"delivery.csv", "recordings.csv"}


def _read_csv_file(folder: Path, name: str, problems: list[Problem]) -> list[tuple[Loc, dict[str, str]]]:
    """One CSV file's rows as ``{column: cell}``; every problem (the first syntax error stops the file)
    goes to ``problems`` with the file and line it is on."""
    path = folder / name
    if not path.is_file():
        if name in CSV_REQUIRED:
            problems.append(Problem(name, "", "", "", f"the file {name}", "missing_file"))
        return []
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        problems.append(Problem(name, "", "", str(size), f"a file of at most {MAX_FILE_BYTES} bytes", "too_large"))
        return []
    out: list[tuple[Loc, dict[str, str]]] = []
    columns = CSV_FILES[name]
    reader = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            # strict: an unbalanced quote is an error with its line, not a cell that swallows the rest
            reader = csv.reader(fh, strict=True)
            header = next(reader, [])
            problems.extend(_header_problems(name, header, columns))
            for rowno, cells in enumerate(reader, start=2):
                where = f"row {rowno}"
                if len(cells) > len(header):
                    extra = ",".join(cells[len(header) :])
                    problems.append(Problem(name, where, "", extra, "no more cells than header columns", "wrong_type"))
                row: dict[str, str] = {}
                for col, cell in zip(header, cells, strict=False):
                    if col not in columns:
                        continue
                    if bad := _cell_problem(cell):
                        problems.append(Problem(name, where, col, _clip(cell), bad, "invalid_value"))
                        continue
                    row[col] = cell.strip()
                out.append((Loc(name, where, csv=True), row))
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, "", "", "", f"UTF-8 text ({exc})", "unreadable"))
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        expected = f"well-formed CSV (RFC 4180 quoting: {exc})"
        problems.append(Problem(name, f"line {line}", "", "", expected, "unreadable"))
    return out


def _header_problems(name: str, header: list[str], columns: tuple[str, ...]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for col in header:
        if col not in columns:
            expected = f"a known column ({', '.join(columns)})"
            problems.append(Problem(name, "row 1", col, _clip(col), expected, "unknown_field"))
        elif col in seen:
            problems.append(Problem(name, "row 1", col, col, "each column once in the header", "duplicate"))
        seen.add(col)
    return problems


def _cell_problem(cell: str) -> str:
    """Why a CSV cell is refused before any field rule looks at it ("" when it is not)."""
    if len(cell) > MAX_CSV_CELL:
        return f"a cell of at most {MAX_CSV_CELL:,} characters (this one has {len(cell):,})"
    if "\x00" in cell:
        return "a cell without NUL characters"
    return ""


def _clip(value: str) -> str:
    return value if len(value) <= 200 else f"{value[:200]}… ({len(value):,} characters)"


def _split(cell: str) -> list[str]:
    return [p.strip() for p in cell.split(LIST_SEP) if p.strip()] if cell else []


def _read_csv(folder: Path) -> RawDelivery:
    problems: list[Problem] = []
    head_rows = _read_csv_file(folder, "delivery.csv", problems)
    if head_rows:
        hloc, hdata = head_rows[0]
        if len(head_rows) > 1:
            problems.append(hloc.problem("", len(head_rows), "exactly one row in delivery.csv", "wrong_type"))
    else:
        hloc, hdata = Loc("delivery.csv", "row 2", csv=True), {}
    raw = RawDelivery(folder, "csv", Item(hloc, {k: v for k, v in hdata.items() if v}), problems=problems)

    raw.sections["parties"] = [
        Item(loc, {k: v for k, v in row.items() if v}) for loc, row in _read_csv_file(folder, "parties.csv", problems)
    ]
    wshares: dict[str, list[dict[str, Any]]] = {}
    for loc, row in _read_csv_file(folder, "work_shares.csv", problems):
        wshares.setdefault(row.get("work", ""), []).append(
            {"party": row.get("party", ""), "share": row.get("share", ""), "__loc__": loc}
        )
    works = []
    for loc, row in _read_csv_file(folder, "works.csv", problems):
        data: dict[str, Any] = {
            "id": row.get("id", ""),
            "title": row.get("title", ""),
            "writers": _split(row.get("writers", "")),
        }
        if row.get("iswc"):
            data["iswc"] = row["iswc"]
        data["shares"] = wshares.pop(data["id"], [])
        works.append(Item(loc, data))
    for work_id, orphans in wshares.items():
        for s in orphans:
            problems.append(s["__loc__"].problem("work", work_id, "a work id listed in works.csv", "unknown_reference"))
    raw.sections["works"] = works

    rshares: dict[str, list[dict[str, Any]]] = {}
    for loc, row in _read_csv_file(folder, "recording_shares.csv", problems):
        rshares.setdefault(row.get("isrc", ""), []).append(
            {"party": row.get("party", ""), "share": row.get("share", ""), "__loc__": loc}
        )
    recordings = []
    for loc, row in _read_csv_file(folder, "recordings.csv", problems):
        data = {
            "isrc": row.get("isrc", ""),
            "title": row.get("title", ""),
            "artists": _split(row.get("artists", "")),
            "duration_ms": row.get("duration_ms", ""),
            "works": _split(row.get("works", "")),
        }
        for key in ("genre", "source"):
            if row.get(key):
                data[key] = row[key]
        if row.get("media_path"):
            media: dict[str, Any] = {
                "path": row["media_path"],
                "kind": row.get("media_kind") or "midi",
            }
            if row.get("media_sha256"):
                media["sha256"] = row["media_sha256"]
            data["media"] = [media]
        data["shares"] = rshares.pop(data["isrc"], [])
        recordings.append(Item(loc, data))
    for isrc, orphans in rshares.items():
        for s in orphans:
            problems.append(s["__loc__"].problem("isrc", isrc, "an ISRC listed in recordings.csv", "unknown_reference"))
    raw.sections["recordings"] = recordings
    raw.sections.setdefault("sources", [])
    raw.sections.setdefault("agreements", [])
    raw.sections.setdefault("optouts", [])
    return raw
