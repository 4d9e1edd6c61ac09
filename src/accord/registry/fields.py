"""Reading typed fields out of a located delivery item, collecting problems as values.

A :class:`FieldReader` never raises on bad data: it appends a :class:`Problem` naming
file, location, field, value and expectation, and returns ``None`` so validation can go
on and report everything at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import pycountry

from accord import identifiers
from accord.errors import InvalidIdentifier, Problem, ValidationError
from accord.money import check_ppm, parse_amount, percent_to_ppm
from accord.registry.delivery import Item, Loc
from accord.registry.entities import Money
from accord.timeutil import parse_instant

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
E = TypeVar("E", bound=StrEnum)

MAX_TEXT = 1_000
"""The longest free-text value (a title, a name), in characters, unless :data:`TEXT_LIMITS` says otherwise."""
TEXT_LIMITS: dict[str, int] = {
    "accord_delivery": 16,
    "delivery_id": 128,
    "genre": 100,
    "terms": 10_000,
    "origin": 2_000,
    "target": 64,
}
"""Per-field maximum lengths, in characters (after NFC normalisation); docs/delivery-format.md lists them."""
MULTILINE_FIELDS = frozenset({"terms"})
"""Fields where line breaks and tabs are allowed; no other control character is allowed anywhere."""
MAX_LIST = 1_000
"""The most values in one list field (artists, writers, works, shares, media)."""
MAX_INTEGER = 2**53
"""The largest integer any field accepts unless it says less (exact in JSON, fits in int64)."""
MAX_AMOUNT = 10**12
"""The largest money amount, in major units: 10^12 × 10^6 micro-units stays below int64 (9.2 × 10^18)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_problem(key: str, value: str) -> str:
    """Why a text value is refused for field ``key`` ("" when it is not); ``value`` is NFC already."""
    limit = TEXT_LIMITS.get(key, MAX_TEXT)
    if len(value) > limit:
        return f"text of at most {limit:,} characters (this one has {len(value):,})"
    control = (_CONTROL_MULTILINE if key in MULTILINE_FIELDS else _CONTROL).search(value)
    if control:
        return f"text without control characters (U+{ord(control.group()):04X} at character {control.start()})"
    return ""


def bounded_decimal(value: object, bound: int) -> str:
    """Why a number is refused for being beyond ``bound`` in size ("" when it is in range or not a number).

    Checked before any arithmetic, so ``1e999999999`` is refused instead of overflowing a context.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return ""
    if isinstance(value, str) and len(value) > 64:
        return f"a number of at most 64 characters (this one has {len(value):,})"
    try:
        dec = Decimal(str(value).strip().rstrip("%").strip())
    except ArithmeticError:
        return ""
    if dec.is_finite() and dec.copy_abs() > bound:  # copy_abs: no context, no overflow
        return f"a number of at most {bound:,}"
    return ""


_COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


def is_country(code: str) -> bool:
    return code.upper() in _COUNTRIES


class FieldReader:
    """Typed access to one item's fields; problems go to a shared list.

    Attributes:
        item: the item read.
        problems: where problems are appended.
    """

    def __init__(self, item: Item, problems: list[Problem], *, allowed: Iterable[str]) -> None:
        self.item = item
        self.loc: Loc = item.loc
        self.data = item.data
        self.problems = problems
        self.ok = True
        allowed = set(allowed)
        for key in self.data:
            if key not in allowed and key != "__loc__":
                self.fail(
                    key,
                    self.data[key],
                    f"a known field ({', '.join(sorted(allowed))})",
                    "unknown_field",
                )

    def fail(self, path: str, value: object, expected: str, code: str, loc: Loc | None = None) -> None:
        self.ok = False
        self.problems.append((loc or self.loc).problem(path, value, expected, code))

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def present(self, key: str) -> bool:
        v = self.data.get(key)
        return v is not None and v != "" and v != []

    def text(self, key: str, *, required: bool = True, pattern: re.Pattern[str] | None = None) -> str | None:
        v = self.data.get(key)
        if v is None or v == "":
            if required:
                self.fail(key, v, "a non-empty text value", "missing_field")
            return None
        if not isinstance(v, str):
            self.fail(key, v, "text", "wrong_type")
            return None
        v = unicodedata.normalize("NFC", v.strip())
        if bad := text_problem(key, v):
            self.fail(key, v, bad, "invalid_value")
            return None
        if pattern is not None and not pattern.match(v):
            self.fail(key, v, f"text matching {pattern.pattern}", "invalid_value")
            return None
        return v

    def ident(self, key: str, *, required: bool = True) -> str | None:
        return self.text(key, required=required, pattern=ID_PATTERN)

    def text_list(
        self, key: str, *, required: bool = True, pattern: re.Pattern[str] | None = ID_PATTERN
    ) -> list[str] | None:
        v = self.data.get(key)
        if v is None:
            if required:
                self.fail(key, v, "a list", "missing_field")
                return None
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(key, v, "a list of text values", "wrong_type")
            return None
        if len(v) > MAX_LIST:
            self.fail(key, f"{len(v)} values", f"a list of at most {MAX_LIST:,} values", "invalid_value")
            return None
        out = []
        for i, x in enumerate(v):
            x = unicodedata.normalize("NFC", x.strip())
            if bad := text_problem(key, x):
                self.fail(f"{key}[{i}]", x, bad, "invalid_value")
                continue
            if pattern is not None and not pattern.match(x):
                self.fail(f"{key}[{i}]", x, f"text matching {pattern.pattern}", "invalid_value")
                continue
            out.append(x)
        dupes = sorted({x for x in out if out.count(x) > 1})
        if dupes:
            self.fail(key, dupes, "each value listed once", "duplicate")
        return out

    def integer(
        self, key: str, *, required: bool = True, minimum: int | None = None, maximum: int = MAX_INTEGER
    ) -> int | None:
        v = self.data.get(key)
        if v is None or v == "":
            if required:
                self.fail(key, v, "an integer", "missing_field")
            return None
        if isinstance(v, str) and self.loc.csv and re.fullmatch(r"-?\d{1,20}", v):
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(key, v, "an integer", "wrong_type")
            return None
        if minimum is not None and v < minimum:
            self.fail(key, v, f"an integer >= {minimum}", "invalid_value")
            return None
        if v > maximum:
            self.fail(key, v, f"an integer <= {maximum:,}", "invalid_value")
            return None
        return v

    def boolean(self, key: str, *, default: bool = False) -> bool:
        v = self.data.get(key)
        if v is None:
            return default
        if isinstance(v, str) and self.loc.csv and v.lower() in ("true", "false"):
            return v.lower() == "true"
        if not isinstance(v, bool):
            self.fail(key, v, "true or false", "wrong_type")
            return default
        return v

    def choice(self, key: str, enum: type[E], *, required: bool = True, default: E | None = None) -> E | None:
        v = self.data.get(key)
        if v is None or v == "":
            if required:
                self.fail(key, v, f"one of {', '.join(e.value for e in enum)}", "missing_field")
            return default
        try:
            return enum(str(v).strip().lower())
        except ValueError:
            self.fail(key, v, f"one of {', '.join(e.value for e in enum)}", "invalid_value")
            return None

    def instant(self, key: str, *, required: bool = True) -> datetime | None:
        v = self.data.get(key)
        if v is None or v == "":
            if required:
                self.fail(key, v, "an ISO 8601 date or date-time with offset", "missing_field")
            return None
        if isinstance(v, str) and len(v) > 64:
            self.fail(key, v, "an ISO 8601 date or date-time (at most 64 characters)", "invalid_date")
            return None
        try:
            return parse_instant(v, field=key)
        except ValidationError as exc:
            self.fail(key, v, str(exc).split(": ", 1)[-1], "invalid_date")
            return None

    def identifier(self, key: str, kind: identifiers.IdentifierKind, *, required: bool = False) -> str | None:
        v = self.data.get(key)
        if v is None or v == "":
            if required:
                self.fail(key, v, f"a {kind.value.upper()}", "missing_field")
            return None
        if not isinstance(v, str):
            self.fail(key, v, f"a {kind.value.upper()} as text", "wrong_type")
            return None
        try:
            return identifiers.validate(kind, v)
        except InvalidIdentifier as exc:
            self.fail(key, v, f"a valid {kind.value.upper()}: {exc}", "invalid_identifier")
            return None

    def country(self, key: str, *, required: bool = False) -> str | None:
        v = self.text(key, required=required)
        if v is None:
            return None
        if not is_country(v):
            self.fail(key, v, "an ISO 3166-1 alpha-2 country code", "invalid_value")
            return None
        return v.upper()

    def percent(self, key: str, value: object, *, loc: Loc | None = None, path: str | None = None) -> int | None:
        if bad := bounded_decimal(value, 100):
            self.fail(path or key, value, f"a percentage from 0 to 100: {bad}", "invalid_value", loc)
            return None
        return _convert(self, path or key, value, loc, lambda v: percent_to_ppm(v, field=key))

    def money(self, key: str) -> Money | None:
        v = self.data.get(key)
        if v is None:
            return None
        if not isinstance(v, dict) or set(v) - {"amount", "currency"} or "amount" not in v or "currency" not in v:
            self.fail(key, v, '{"amount": "25000.00", "currency": "EUR"} or null', "wrong_type")
            return None
        if bad := bounded_decimal(v["amount"], MAX_AMOUNT):
            self.fail(f"{key}.amount", v["amount"], f"an amount in major units: {bad}", "invalid_value")
            return None
        return _convert(self, key, v, None, lambda m: parse_amount(m["amount"], m["currency"], field=key))

    def share(self, obj: object, path: str, loc: Loc | None = None) -> tuple[str, int] | None:
        """A ``{party, share}`` / ``{party, share_ppm}`` pair."""
        if not isinstance(obj, dict):
            self.fail(path, obj, '{"party": ..., "share": "50"}', "wrong_type", loc)
            return None
        extra = set(obj) - {"party", "share", "share_ppm", "__loc__"}
        if extra:
            self.fail(
                f"{path}.{sorted(extra)[0]}",
                obj,
                "only party and share (or share_ppm)",
                "unknown_field",
                loc,
            )
        party = obj.get("party")
        if not isinstance(party, str) or not ID_PATTERN.match(party):
            self.fail(
                f"{path}.party",
                party,
                "a party id",
                "missing_field" if not party else "invalid_value",
                loc,
            )
            party = None
        if "share_ppm" in obj and "share" in obj:
            self.fail(f"{path}.share", obj, "share or share_ppm, not both", "invalid_value", loc)
            return None
        if "share_ppm" in obj:
            ppm = _convert(
                self,
                f"{path}.share_ppm",
                obj["share_ppm"],
                loc,
                lambda v: check_ppm(v, field="share_ppm"),
            )
        elif bad := bounded_decimal(obj.get("share"), 100):
            self.fail(f"{path}.share", obj.get("share"), f"a percentage from 0 to 100: {bad}", "invalid_value", loc)
            return None
        elif obj.get("share") not in (None, ""):
            ppm = _convert(self, f"{path}.share", obj["share"], loc, lambda v: percent_to_ppm(v, field="share"))
        else:
            self.fail(f"{path}.share", None, "a share (percent) or share_ppm", "missing_field", loc)
            return None
        if party is None or ppm is None:
            return None
        return party, ppm


def _convert(reader: FieldReader, path: str, value: Any, loc: Loc | None, fn: Callable[[Any], Any]) -> Any:
    try:
        return fn(value)
    except ValidationError as exc:
        shown = str(value) if isinstance(value, Decimal) else value
        reader.fail(path, shown, str(exc).split(": ", 1)[-1], "invalid_value", loc)
        return None
