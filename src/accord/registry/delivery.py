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

SECTIONS = ("sources", "parties", "works", "recordings", "agreements", "optouts")
HEADER_KEYS = ("accord_delivery", "delivery_id", "sender", "created")
LIST_SEP = ";"


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
        return value
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
        doc = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "$"
        p = Problem("catalog.json", where, "", "", f"valid UTF-8 JSON ({exc})", "unreadable")
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
    path = folder / name
    if not path.is_file():
        if name in CSV_REQUIRED:
            problems.append(Problem(name, "", "", "", f"the file {name}", "missing_file"))
        return []
    out = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = CSV_FILES[name]
            header = reader.fieldnames or []
            for col in header:
                if col not in columns:
                    problems.append(
                        Problem(
                            name,
                            "row 1",
                            col,
                            col,
                            f"a known column ({', '.join(columns)})",
                            "unknown_field",
                        )
                    )
            for rowno, row in enumerate(reader, start=2):
                if None in row:
                    problems.append(
                        Problem(
                            name,
                            f"row {rowno}",
                            "",
                            ",".join(row[None]),
                            "no more cells than header columns",
                            "wrong_type",
                        )
                    )
                cells = {k: (v or "").strip() for k, v in row.items() if k in columns}
                out.append((Loc(name, f"row {rowno}", csv=True), cells))
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, "", "", "", f"UTF-8 text ({exc})", "unreadable"))
    return out


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
