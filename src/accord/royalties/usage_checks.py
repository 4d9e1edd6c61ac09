"""Checking a usage batch before anything is written: reading files strictly, and the limits.

:func:`read_usage_file` reads a CSV or JSON Lines file into string columns, refusing what a
reader must not guess about: bytes that are not UTF-8 (named by line and byte offset), NUL
bytes, a last line without its line break (a truncated file), an unbalanced quote, a row with
too few or too many fields, unknown or repeated columns. :func:`text_problems` refuses NUL
characters and lone surrogates in any value (events handed over in code or by the API too).
:func:`period_total_problems` bounds a period's revenue.

The rules of each field are checked twice over: on the fast path
(:mod:`accord.royalties.usage_fast`, Arrow over whole columns, for batches whose every row is
plainly good) and on the precise path (:mod:`accord.royalties.usage_precise`, DuckDB, which
names every problem by row and field).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pycountry

from accord.errors import Problem, Rejected, ValidationError
from accord.jsonload import load_json_lines

FIELDS = (
    "event_id",
    "kind",
    "timestamp",
    "creator",
    "output_id",
    "model_id",
    "territory",
    "amount",
    "currency",
    "period",
    "source",
)
ALIASES = {"at": "timestamp", "creator_id": "creator"}
MICROS = 1_000_000
AMOUNT_DIGITS = 9
"""Integer digits of one revenue amount: each event is below 10^9 major units (10^15 micro-units)."""
PERIOD_REVENUE_LIMIT = 10**15
"""Micro-units of revenue one period may hold per currency (10^9 major units). A run's summary and
statements are signed as canonical JSON (RFC 8785), which carries integers exactly only up to
2^53 - 1 (about 9.007 * 10^15), and the ledger sums periods: the limit keeps a period's revenue 9
times below that (and far below 2^63), so a period that was ingested can always be run and closed."""
MAX_FILE_BYTES = 4 * 1024**3
"""The largest usage file read (4 GiB): about 20 million events."""

USAGE_KINDS = ("generation", "play", "stream", "download")
KINDS = (*USAGE_KINDS, "revenue")
REVENUE_SOURCES = ("subscription", "sale")
MAX_PROBLEMS = 1000


@cache
def countries() -> pa.Array:
    """The ISO 3166-1 alpha-2 codes (pycountry's table), sorted."""
    return pa.array(sorted(c.alpha_2 for c in pycountry.countries), pa.string())


@cache
def currencies() -> pa.Array:
    """The ISO 4217 alphabetic codes (pycountry's table), sorted."""
    return pa.array(sorted(c.alpha_3 for c in pycountry.currencies), pa.string())


def micro_units(amount: str) -> int:
    """A checked decimal amount (``1250.5``) in integer micro-units, exactly (no float on the way)."""
    whole, _, frac = amount.partition(".")
    return int(whole) * MICROS + int(frac.ljust(6, "0"))


def period_total_problems(
    new: dict[tuple[str, str], int], held: dict[tuple[str, str], int], source: str
) -> list[Problem]:
    """A problem for each (period, currency) whose revenue, held plus new, would pass the limit."""
    found = []
    for (period, currency), amount in sorted(new.items()):
        before = held.get((period, currency), 0)
        if before + amount > PERIOD_REVENUE_LIMIT:
            why = (
                f"a period's revenue per currency of at most {PERIOD_REVENUE_LIMIT // MICROS:,} {currency} "
                f"(so that it can be run and closed); the period holds {_major(before)} already"
            )
            value = f"{currency} {_major(amount)} in this batch"
            found.append(Problem(source, f"period {period}", "amount", value, why, "period_total_too_large"))
    return found


def _major(micros: int) -> str:
    return f"{micros // MICROS:,}.{micros % MICROS:06d}"


def read_usage_file(path: Path) -> pa.Table:
    """A CSV (``.csv``) or JSON Lines (``.jsonl``/``.json``/``.ndjson``) file of usage events as
    string columns (:data:`FIELDS`, aliases folded in, missing fields null).

    Raises:
        ValidationError: no such file, or an unknown suffix.
        Rejected: every problem of the file (encoding, truncation, quotes, columns, fields).
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json", ".ndjson"):
        msg = f"file: {path.name!r} has suffix {path.suffix!r}; expected .jsonl, .json, .ndjson or .csv"
        raise ValidationError(msg, field="file", value=str(path))
    if not path.is_file():
        msg = f"file: {str(path)!r} does not exist; expected a JSON-lines or CSV file of usage events"
        raise ValidationError(msg, field="file", value=str(path))
    if path.stat().st_size > MAX_FILE_BYTES:
        msg = f"file: {path.name!r} has {path.stat().st_size} bytes; expected at most {MAX_FILE_BYTES}"
        raise ValidationError(msg, field="file", value=str(path))
    name = path.name
    data = path.read_bytes()  # a snapshot: a file changed while read is read as it was
    found = _byte_problems(data, name)
    if found:
        raise Rejected(f"usage file {name}", found)
    if suffix == ".csv":
        table, found = _csv_table(data, name)
    else:
        table, found = _json_table(data, name)
    if found:
        raise Rejected(f"usage file {name}", found[:MAX_PROBLEMS])
    return table


def table_of(rows: list[dict[str, str | None]]) -> pa.Table:
    """String columns :data:`FIELDS` from rows keyed by field or alias (a field wins over its alias)."""
    cols: dict[str, list[str | None]] = {f: [] for f in FIELDS}
    for row in rows:
        for f in FIELDS:
            value = row.get(f)
            if value is None:
                value = next((row[a] for a, t in ALIASES.items() if t == f and row.get(a) is not None), None)
            cols[f].append(value)
    return pa.table({f: pa.array(cols[f], pa.string()) for f in FIELDS})


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _byte_problems(data: bytes, name: str) -> list[Problem]:
    """Bytes a text reader must not guess about: not UTF-8, NUL, a last line cut short."""
    found = []
    try:
        if not data.isascii():  # ASCII is UTF-8 already (the common case, checked at memory speed)
            data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, bad = _line_of(data, exc.start), data[exc.start : exc.start + 4]
        why = f"UTF-8 text (byte offset {exc.start} is not: {exc.reason})"
        found.append(Problem(name, f"line {line}", "file", repr(bad), why, "bad_encoding"))
    nul = data.find(b"\x00")
    if nul >= 0:
        why = f"text without NUL bytes (one at byte offset {nul})"
        found.append(Problem(name, f"line {_line_of(data, nul)}", "file", "\\x00", why, "nul_byte"))
    if data and not data.endswith(b"\n"):
        line = _line_of(data, len(data))
        tail = data[data.rfind(b"\n") + 1 :][-40:].decode("utf-8", "replace")
        why = "a last line that ends with a line break (the file looks truncated: its last line is partial)"
        found.append(Problem(name, f"line {line}", "file", tail, why, "truncated"))
    return found


def _columns(names: list[str], name: str, where: str) -> list[Problem]:
    """Unknown columns and columns given twice (a field and its alias count as one)."""
    known = (*FIELDS, *ALIASES)
    found, seen = [], set()
    for col in names:
        field = ALIASES.get(col, col)
        if col not in known:
            why = f"a usage column: one of {', '.join(FIELDS)} (or {', '.join(ALIASES)})"
            found.append(Problem(name, where, col, col, why, "unknown_column"))
        elif field in seen:
            why = f"each column once ({col} is {field}, given already)" if col != field else "each column once"
            found.append(Problem(name, where, col, col, why, "duplicate_column"))
        seen.add(field)
    return found


def _csv_table(data: bytes, name: str) -> tuple[pa.Table, list[Problem]]:
    """The CSV's columns (Arrow's parser, on the bytes); the row-by-row checks, with line numbers, run
    when it fails."""
    body = pa.py_buffer(data)
    if data.startswith(BOM):
        body = body.slice(len(BOM))
    line_end = data.find(b"\n")
    first = data[: line_end + 1 if line_end >= 0 else len(data)]
    if b'"' in first:  # a quoted header (perhaps over several lines): Python's reader finds where it ends
        reader = csv.reader(io.StringIO(_text(data), newline=""), strict=True)
    else:
        reader = csv.reader(io.StringIO(first.decode("utf-8").removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        why = f"well-formed CSV: {exc} (an unbalanced quote?)"
        return pa.table({}), [Problem(name, f"line {reader.line_num}", "file", "", why, "bad_csv")]
    found = _columns(header, name, "line 1 (header)")
    if found or not header:  # no header: an empty file, no events
        return table_of([]), found
    slots = [f"c{i}" for i in range(len(header))]
    try:
        parsed = pa_csv.read_csv(
            pa.BufferReader(body),
            read_options=pa_csv.ReadOptions(column_names=slots, skip_rows=reader.line_num),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(slots, pa.string()),
                check_utf8=False,  # the bytes were checked (_byte_problems) before
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        found = _row_problems(_text(data), header, name)
        why = f"well-formed CSV: {' '.join(str(exc).split())[:200]}"
        return pa.table({}), found or [Problem(name, "", "file", "", why, "bad_csv")]
    quoted = b'"' in data and any(pc.any(pc.match_substring(c, '"')).as_py() for c in parsed.columns)
    if quoted:  # a quote mark inside a value: an unbalanced quote somewhere
        return pa.table({}), _row_problems(_text(data), header, name)
    cols = {ALIASES.get(h, h): parsed.column(slot) for h, slot in zip(header, slots, strict=True)}
    return pa.table({f: cols.get(f, pa.nulls(parsed.num_rows, pa.string())) for f in FIELDS}), []


BOM = "\ufeff".encode()


def _text(data: bytes) -> str:
    return data.decode("utf-8").removeprefix("\ufeff")


def _row_problems(text: str, header: list[str], name: str) -> list[Problem]:
    """Rows with too few or too many fields, and values holding a quote mark or a line break, by line."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    next(reader, None)
    found: list[Problem] = []
    line, row = reader.line_num, 0
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not cells:
                continue
            row += 1
            where = f"row {row} (line {start})"
            if len(cells) != len(header):
                why = f"{len(header)} fields, as in the header (a missing or extra comma, or an unbalanced quote?)"
                found.append(Problem(name, where, "row", f"{len(cells)} fields", why, "bad_row"))
            for col, value in zip(header, cells, strict=False):
                if '"' in value or "\n" in value or "\r" in value:
                    why = "a value without quote marks or line breaks (an unbalanced quote?)"
                    found.append(Problem(name, where, col, value[:80], why, "unbalanced_quote"))
            if len(found) >= MAX_PROBLEMS:
                break
    except csv.Error as exc:
        why = f"well-formed CSV: {exc} (an unbalanced quote?)"
        found.append(Problem(name, f"line {reader.line_num}", "file", "", why, "bad_csv"))
    return found


def _json_table(data: bytes, name: str) -> tuple[pa.Table, list[Problem]]:
    """JSON Lines (the shared safe loader: duplicate keys, NaN, surrogates, depth refused) as columns."""
    try:
        records = load_json_lines(data, what=name, max_bytes=MAX_FILE_BYTES, parse_float=str)
    except ValidationError as exc:
        return pa.table({}), [Problem(name, "", "file", "", f"JSON Lines: {exc}", "bad_json")]
    rows = [r for r in records if type(r) is dict]
    found = [
        Problem(name, f"row {n}", "row", type(r).__name__, "a JSON object", "bad_row")
        for n, r in enumerate(records, start=1)
        if type(r) is not dict
    ]
    keys: set[str] = set().union(*rows)
    for key in keys - {*FIELDS, *ALIASES}:
        n = next(n for n, r in enumerate(records, 1) if type(r) is dict and key in r)
        why = f"a usage field: one of {', '.join(FIELDS)} (or {', '.join(ALIASES)})"
        found.append(Problem(name, f"row {n}", key, key, why, "unknown_column"))
    for alias, field in ALIASES.items():
        both = (n for n, r in enumerate(records, 1) if type(r) is dict and alias in r and field in r)
        if (n := next(both, 0)) > 0:
            why = f"each field once ({alias} is {field}, given already)"
            found.append(Problem(name, f"row {n}", alias, alias, why, "duplicate_column"))
    cols: dict[str, list[Any]] = {}
    for f in FIELDS:
        col = [r.get(f) for r in rows]
        other = _ALIAS_OF.get(f)
        if other in keys:
            col = [r.get(other) if v is None else v for v, r in zip(col, rows, strict=True)]
        if set(map(type, col)) - {str, type(None)}:  # numbers as text; anything else refused
            for n, v in enumerate(col, start=1):
                if v is not None and type(v) is not str and (isinstance(v, bool) or not isinstance(v, int)):
                    found.append(Problem(name, f"row {n}", f, str(v)[:80], "a string or a number", "bad_value"))
            col = [v if v is None or type(v) is str else str(v) for v in col]
        cols[f] = col
    if found:
        return pa.table({}), sorted(found, key=lambda p: (int(p.location.split()[1]), p.code != "unknown_column"))
    return pa.table({f: pa.array(c, pa.string()) for f, c in cols.items()}), []


_ALIAS_OF = {target: alias for alias, target in ALIASES.items()}


def text_problems(table: pa.Table, source: str) -> list[Problem]:
    """Values no store should hold: NUL characters, by row and field."""
    found = []
    for f in FIELDS:
        col = table.column(f)
        if not any(_has_nul(chunk) for chunk in col.chunks):
            continue  # no NUL byte in the column's text at all (the common case, checked at memory speed)
        hits = pc.fill_null(pc.match_substring(col, "\x00"), False)
        for i in pc.indices_nonzero(hits).to_pylist()[:MAX_PROBLEMS]:
            value = col[i].as_py().replace("\x00", "\\x00")[:80]
            found.append(Problem(source, f"row {i + 1}", f, value, "text without NUL characters", "nul_character"))
    return sorted(found, key=lambda p: (int(p.location.split()[1]), FIELDS.index(p.field)))[:MAX_PROBLEMS]


def _has_nul(chunk: pa.Array) -> bool:
    """Whether a string array's data buffer holds a NUL byte (all of the buffer: a slice's neighbours too)."""
    buffers = chunk.buffers()
    if len(buffers) < 3 or buffers[2] is None or buffers[2].size == 0:
        return False
    return bool(np.frombuffer(buffers[2], np.uint8).min() == 0)  # read in place, no copy


def event_row(n: int, event: Mapping[str, object], source: str) -> tuple[dict[str, str | None], list[Problem]]:
    """One event handed over in code or by the API, as text fields (dates in ISO 8601), and its
    problems: an unknown field, a value that is not text, a number or a date, a lone surrogate."""
    row: dict[str, str | None] = {}
    found: list[Problem] = []
    where = f"row {n}"
    for key, value in event.items():
        if key not in FIELDS and key not in ALIASES:
            why = f"a usage field: one of {', '.join(FIELDS)} (or {', '.join(ALIASES)})"
            found.append(Problem(source, where, str(key)[:80], str(key)[:80], why, "unknown_column"))
        elif value is None:
            continue
        elif isinstance(value, bool) or not isinstance(value, str | int | float | Decimal | date):
            found.append(Problem(source, where, key, str(value)[:80], "a string or a number", "bad_value"))
        else:
            text = value.isoformat() if isinstance(value, date) else str(value)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = text.encode("utf-8", "replace").decode("utf-8")
                found.append(Problem(source, where, key, text[:80], "Unicode text (no lone surrogates)", "bad_text"))
            row[key] = text
    return row, found
