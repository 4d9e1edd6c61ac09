"""One safe loader for every piece of untrusted JSON (deliveries, credentials, manifests, usage lines).

``json.loads`` alone accepts things an importer must not: input nested so deep that the parser
overflows the stack (``RecursionError``), duplicate keys (the later silently wins), ``NaN`` and
``Infinity`` (not JSON at all), lone UTF-16 surrogates (``"\\ud800"``, which no database can store),
and it takes any size. :func:`load_json` refuses each of them with one
:class:`~accord.errors.ValidationError` whose message names the source, where in it the problem is
(byte offset, line and column, or a JSON path) and what was expected, so the CLI exits 2 and the
API answers 4xx. The nesting depth is measured by a flat scan of the brackets outside strings
*before* parsing, so no input, however deep, reaches the recursive parser.

:func:`load_json_lines` does the same for JSON Lines (one value per line, blank lines skipped),
naming the line number of the first bad line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from accord.errors import ValidationError

MAX_BYTES = 64 * 1024 * 1024
"""Default size limit of one JSON document (64 MiB): far above any real delivery, below memory trouble."""

MAX_DEPTH = 64
"""Default nesting limit: Accord's deepest document (a delivery) nests five levels; the stdlib parser
recurses once per level, so a limit far below Python's recursion limit keeps it safe."""

MAX_LINE_BYTES = 1024 * 1024
"""Default size limit of one JSON Lines line (1 MiB)."""

# A JSON string (with escapes) or one bracket. Strings are matched whole so brackets inside them do
# not count; an unterminated string runs to the end of the input (the parser reports it later).
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
# A \\u escape of a UTF-16 surrogate: only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONRefused(ValidationError):
    """Untrusted JSON refused: ``"{what}: {location}: {reason}"``.

    Attributes:
        location: where in the input (``"byte 14"``, ``"line 2 column 7"``, ``"$.recordings[0]"``).
        reason: what is wrong and what was expected instead.
    """

    def __init__(self, what: str, location: str, reason: str, *, field: str = "json", value: object = None) -> None:
        super().__init__(f"{what}: {location}: {reason}", field=field, value=value)
        self.location = location
        self.reason = reason


class _Duplicates(dict[str, Any]):
    """An object in which a key appeared more than once (found after parsing, to name its path)."""

    duplicate: str = ""


def _decode(data: bytes | str, what: str, max_bytes: int) -> str:
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        reason = f"JSON of {size} bytes; expected at most {max_bytes} bytes"
        raise JSONRefused(what, "size", reason, value=size)
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 4]
        reason = f"{bad!r} is not valid UTF-8; expected UTF-8 encoded JSON"
        raise JSONRefused(what, f"byte {exc.start}", reason, value=exc.start) from None


def check_depth(text: str, max_depth: int, what: str = "input") -> None:
    """Refuse ``text`` if its arrays and objects nest deeper than ``max_depth``, without recursion.

    Brackets inside strings do not count. Raises :class:`JSONRefused` naming the line and character.
    """
    # Cheap exit: fewer opening brackets than the limit cannot nest past it.
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, m.start()) + 1
                where = f"line {line} (character {m.start()})"
                reason = f"JSON nested deeper than {max_depth} levels; expected at most {max_depth} levels"
                raise JSONRefused(what, where, reason, value=depth)
        elif token in "]}":
            depth -= 1


def _refuse_constant(name: str) -> Any:
    msg = f"{name} is not a JSON number; expected a finite number"
    raise ValueError(msg)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        msg = f"number {text[:40]} is out of range; expected a finite number"
        raise ValueError(msg)
    return value


def _pairs_hook(seen: list[str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """An ``object_pairs_hook`` that marks objects with a repeated key and records that it did."""

    def pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                marked = _Duplicates(pairs)
                marked.duplicate = key
                seen.append(key)
                return marked
            out[key] = value
        return out

    return pairs


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{path}[{json.dumps(key)}]"


def _check_tree(doc: Any, what: str, surrogates: bool) -> None:
    """Walk the parsed value (iteratively) for marked duplicate keys and, if any, lone surrogates."""
    stack: list[tuple[str, Any]] = [("$", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value, _Duplicates):
                reason = f"duplicate key {value.duplicate!r}; expected each key once per object"
                raise JSONRefused(what, path, reason, field=value.duplicate, value=value.duplicate)
            for key, item in reversed(value.items()):
                if surrogates:
                    _check_text(key, f"{path} (a key)", what)
                stack.append((_key_path(path, key), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif surrogates and isinstance(value, str):
            _check_text(value, path, what)


def _check_text(text: str, path: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        reason = (
            f"a string holds a lone UTF-16 surrogate ({text[exc.start]!r}); "
            "expected Unicode text (surrogates only in valid pairs)"
        )
        raise JSONRefused(what, path, reason, value=text[exc.start]) from None


def load_json(
    data: bytes | str,
    *,
    what: str = "input",
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """Parse untrusted JSON, refusing what ``json.loads`` would accept or crash on.

    Args:
        data: the document, as UTF-8 bytes or text (a leading byte-order mark is ignored).
        what: the source's name for messages (``"catalog.json"``, ``"credential"``).
        max_bytes: the largest accepted size, in UTF-8 bytes.
        max_depth: the deepest accepted nesting of arrays and objects.
        parse_float: how to build non-integer numbers (``decimal.Decimal`` keeps them exact).

    Returns:
        The parsed value (dicts, lists, str, int, float or ``parse_float``'s type, bool, None).

    Raises:
        ValidationError: too large, invalid UTF-8 (with the byte offset), nested too deep, not JSON
            (with line and column), a duplicate key (with its path), ``NaN``/``Infinity``, or a lone
            surrogate in a string.
    """
    text = _decode(data, what, max_bytes)
    check_depth(text, max_depth, what)
    duplicates: list[str] = []
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_pairs_hook(duplicates),
            parse_constant=_refuse_constant,
            parse_float=parse_float or _finite_float,
        )
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg}"
        raise JSONRefused(what, f"line {exc.lineno} column {exc.colno}", reason, value=exc.pos) from None
    except (ValueError, RecursionError) as exc:
        # parse_constant's refusal, an integer longer than Python's digit limit, a float overflow.
        raise JSONRefused(what, "$", f"not acceptable JSON: {exc}") from None
    surrogates = bool(_SURROGATE_ESCAPE.search(text))
    if duplicates or surrogates:  # the walk names the path; most documents need none
        _check_tree(doc, what, surrogates)
    return doc


def load_json_lines(
    data: bytes | str,
    *,
    what: str = "input",
    max_bytes: int = MAX_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_depth: int = MAX_DEPTH,
    parse_float: Callable[[str], Any] | None = None,
) -> list[Any]:
    """Parse untrusted JSON Lines: one JSON value per line; blank lines are skipped.

    Each line goes through :func:`load_json` with the same rules; a bad line's error names its
    line number (``"usage.jsonl line 7: ..."``).

    Raises:
        ValidationError: the whole input or one line too large, invalid UTF-8, or a bad line.
    """
    text = _decode(data, what, max_bytes)
    values: list[Any] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        values.append(
            load_json(
                line,
                what=f"{what} line {number}",
                max_bytes=max_line_bytes,
                max_depth=max_depth,
                parse_float=parse_float,
            )
        )
    return values
