"""Music-industry identifiers: normalise, validate, display.

Store compact, display grouped. python-stdnum does ISRC, ISNI, GRid, EAN/GTIN and
ISO 7064; ISWC, IPI name/base numbers and DDEX party ids (DPID) are written here.
Every failure is an :class:`~accord.errors.InvalidIdentifier` whose ``rule`` names
what broke (``length``, ``format``, ``prefix``, ``check_digit``)::

    >>> validate_iswc("T-034.524.680-1")
    'T0345246801'
    >>> display("isni", "000000012281955X")
    '0000 0001 2281 955X'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from stdnum import ean, grid, isni, isrc
from stdnum import exceptions as stdnum_errors
from stdnum.iso7064 import mod_11_2, mod_37_36

from accord.errors import InvalidIdentifier

__all__ = [
    "IdentifierCheck",
    "IdentifierKind",
    "display",
    "format_isni",
    "format_isrc",
    "format_iswc",
    "identify",
    "iswc_check_digit",
    "make_iswc",
    "normalise",
    "validate",
    "validate_dpid",
    "validate_grid",
    "validate_gtin",
    "validate_ipi_base",
    "validate_ipi_name",
    "validate_isni",
    "validate_isrc",
    "validate_iswc",
]


class IdentifierKind(StrEnum):
    """The identifier kinds Accord understands."""

    ISRC = "isrc"
    ISWC = "iswc"
    IPI_NAME = "ipi_name"
    IPI_BASE = "ipi_base"
    ISNI = "isni"
    GRID = "grid"
    DPID = "dpid"
    GTIN = "gtin"  # UPC, EAN and GTIN alike (DDEX calls it ICPN)


# Human name and the standard that defines each kind, for messages.
_NAME: dict[IdentifierKind, tuple[str, str]] = {
    IdentifierKind.ISRC: ("ISRC", "ISO 3901"),
    IdentifierKind.ISWC: ("ISWC", "ISO 15707"),
    IdentifierKind.IPI_NAME: ("IPI name number", "CISAC IPI"),
    IdentifierKind.IPI_BASE: ("IPI base number", "CISAC IPI"),
    IdentifierKind.ISNI: ("ISNI", "ISO 27729"),
    IdentifierKind.GRID: ("GRid", "IFPI GRid, ISO 7064 MOD 37-36"),
    IdentifierKind.DPID: ("DPID", "DDEX party id, ISO 7064 MOD 37-36"),
    IdentifierKind.GTIN: ("GTIN", "GS1 mod 10"),
}

# Other spellings accepted for a kind; the enum values are always accepted.
_ALIASES: dict[str, IdentifierKind] = {
    "ean": IdentifierKind.GTIN,
    "upc": IdentifierKind.GTIN,
    "icpn": IdentifierKind.GTIN,
}

_LABEL_RE = re.compile(r"^(?:ISRC|ISWC|ISNI|GRID)(?P<sep>[\s:]*)")
_SEPARATORS_RE = re.compile(r"[\s.\-]+")
_ISRC_LENGTH = 12
_DPID_PREFIX = "PADPIDA"


def normalise(value: str) -> str:
    """Trim, upper-case, drop ``-``, ``.`` and spaces, and a leading label.

    The labels are ``ISRC``, ``ISWC``, ``ISNI`` and ``GRid``. A label followed by a
    colon or space is always dropped; one glued to the value only when the whole is
    longer than an ISRC, because ``ISRC01900001`` is itself a valid ISRC (IS = Iceland).
    """
    text = value.strip().upper()
    label = _LABEL_RE.match(text)
    if label is not None:
        rest = _SEPARATORS_RE.sub("", text[label.end() :])
        whole = _SEPARATORS_RE.sub("", text)
        if label.group("sep") or len(whole) > _ISRC_LENGTH:
            return rest
    return _SEPARATORS_RE.sub("", text)


def _invalid(kind: IdentifierKind, compact: str, value: str, rule: str, detail: str) -> InvalidIdentifier:
    name, standard = _NAME[kind]
    msg = f"{name} {compact or repr(value)}: {detail} ({standard})"
    return InvalidIdentifier(msg, kind=kind.value, rule=rule, value=value)


def _require_length(kind: IdentifierKind, compact: str, value: str, lengths: tuple[int, ...], shape: str) -> None:
    if len(compact) not in lengths:
        detail = f"has {len(compact)} characters, expected {shape}"
        raise _invalid(kind, compact, value, "length", detail)


def _require_format(kind: IdentifierKind, compact: str, value: str, pattern: str, shape: str) -> None:
    if re.fullmatch(pattern, compact) is None:
        raise _invalid(kind, compact, value, "format", f"expected {shape}")


def _require_check(kind: IdentifierKind, compact: str, value: str, found: str, expected: str, what: str) -> None:
    if found != expected:
        detail = f"{what} {found}, expected {expected}"
        raise _invalid(kind, compact, value, "check_digit", detail)


def _with_stdnum(
    kind: IdentifierKind,
    value: str,
    check: Callable[[str], str],
    shape: str,
    calc: Callable[[str], str] = lambda body: "another",
) -> str:
    """Run a python-stdnum validator, turning its exceptions into InvalidIdentifier."""
    compact = normalise(value)
    try:
        return check(compact)
    except stdnum_errors.InvalidLength:  # a subclass of InvalidFormat: catch it first
        rule, detail = "length", f"has {len(compact)} characters, expected {shape}"
    except stdnum_errors.InvalidChecksum:
        what = "check character" if kind in (IdentifierKind.ISNI, IdentifierKind.GRID) else "check digit"
        rule, detail = "check_digit", f"{what} is {compact[-1]}, expected {calc(compact[:-1])}"
    except stdnum_errors.InvalidComponent:  # only ISRC has a component stdnum looks up
        rule = "prefix"
        detail = f"prefix {compact[:2]} is neither an ISO 3166-1 country nor an ISRC agency prefix"
    except stdnum_errors.ValidationError:
        rule, detail = "format", f"expected {shape}"
    raise _invalid(kind, compact, value, rule, detail)


# --- ISRC (python-stdnum) -------------------------------------------------------


def validate_isrc(value: str) -> str:
    """Return the compact ISRC ``CCXXXYYNNNNN`` or raise InvalidIdentifier.

    The prefix must be an ISO 3166-1 country code or an agency prefix python-stdnum
    knows (``ZZ``, ``QM``, ``QZ`` ...). No check digit exists.
    """
    shape = "2 letters, 3 letters or digits, a 2-digit year, a 5-digit designation"
    return _with_stdnum(IdentifierKind.ISRC, value, isrc.validate, shape)


def format_isrc(compact: str) -> str:
    """Display form ``CC-XXX-YY-NNNNN``."""
    return isrc.format(validate_isrc(compact))


# --- ISWC and IPI base number (written here) ------------------------------------


def _mod10_check(nine_digits: str, start: int) -> int:
    """ISWC-style check: ``(10 - (start + Σ i·dᵢ) mod 10) mod 10``, i = 1..9."""
    if re.fullmatch(r"\d{9}", nine_digits) is None:
        msg = f"nine_digits={nine_digits!r}: expected exactly 9 digits"
        raise ValueError(msg)
    total = start + sum(i * int(d) for i, d in enumerate(nine_digits, start=1))
    return (10 - total % 10) % 10


def iswc_check_digit(nine_digits: str) -> int:
    """Check digit for the 9 body digits of an ISWC (the ``T`` counts as 1)."""
    return _mod10_check(nine_digits, start=1)


def make_iswc(n: int) -> str:
    """Compact ISWC whose body is ``n`` zero-padded to 9 digits."""
    if not 0 <= n <= 999_999_999:
        msg = f"n={n}: an ISWC body is 0..999999999"
        raise ValueError(msg)
    body = f"{n:09d}"
    return f"T{body}{iswc_check_digit(body)}"


def validate_iswc(value: str) -> str:
    """Return the compact ISWC ``T`` + 10 digits or raise InvalidIdentifier."""
    kind, compact = IdentifierKind.ISWC, normalise(value)
    shape = "'T' + 9 digits + a check digit"
    _require_length(kind, compact, value, (11,), f"11: {shape}")
    _require_format(kind, compact, value, r"T\d{10}", shape)
    check = str(iswc_check_digit(compact[1:10]))
    _require_check(kind, compact, value, compact[-1], check, "check digit is")
    return compact


def format_iswc(compact: str) -> str:
    """Display form ``T-034.524.680-1``."""
    c = validate_iswc(compact)
    return f"T-{c[1:4]}.{c[4:7]}.{c[7:10]}-{c[10]}"


def validate_ipi_base(value: str) -> str:
    """Return the compact IPI base number ``I`` + 10 digits or raise InvalidIdentifier.

    The check is the ISWC one with the leading ``I`` counting as 2.
    """
    kind, compact = IdentifierKind.IPI_BASE, normalise(value)
    shape = "'I' + 9 digits + a check digit"
    _require_length(kind, compact, value, (11,), f"11: {shape}")
    _require_format(kind, compact, value, r"I\d{10}", shape)
    check = str(_mod10_check(compact[1:10], start=2))
    _require_check(kind, compact, value, compact[-1], check, "check digit is")
    return compact


# --- IPI name number (written here) ---------------------------------------------


def _ipi_name_check(nine_digits: str) -> str:
    """``s = Σ dᵢ·(10−i) mod 101`` (i = 0..8); ``00`` if s = 0 else ``(101 − s) mod 100``."""
    s = sum(int(d) * (10 - i) for i, d in enumerate(nine_digits)) % 101
    return f"{0 if s == 0 else (101 - s) % 100:02d}"


def validate_ipi_name(value: str) -> str:
    """Return the 11-digit IPI name number or raise InvalidIdentifier."""
    kind, compact = IdentifierKind.IPI_NAME, normalise(value)
    _require_length(kind, compact, value, (11,), "11 digits")
    _require_format(kind, compact, value, r"\d{11}", "11 digits")
    check = _ipi_name_check(compact[:9])
    _require_check(kind, compact, value, compact[9:], check, "check digits are")
    return compact


# --- ISNI, GRid, GTIN (python-stdnum) and DPID ----------------------------------


def validate_isni(value: str) -> str:
    """Return the compact 16-character ISNI or raise InvalidIdentifier."""
    shape = "15 digits and a digit or X"
    return _with_stdnum(IdentifierKind.ISNI, value, isni.validate, shape, mod_11_2.calc_check_digit)


def format_isni(compact: str) -> str:
    """Display form ``0000 0001 2281 955X``."""
    return isni.format(validate_isni(compact))


def validate_grid(value: str) -> str:
    """Return the compact 18-character GRid or raise InvalidIdentifier."""
    shape = "18 letters or digits"
    return _with_stdnum(IdentifierKind.GRID, value, grid.validate, shape, mod_37_36.calc_check_digit)


def validate_dpid(value: str) -> str:
    """Return the compact DDEX party id ``PADPIDA`` + 10 digits + check character."""
    kind, compact = IdentifierKind.DPID, normalise(value)
    shape = f"{_DPID_PREFIX!r} + 10 digits + a check character"
    _require_length(kind, compact, value, (18,), f"18: {shape}")
    if not compact.startswith(_DPID_PREFIX):
        detail = f"starts {compact[:7]}, expected {_DPID_PREFIX}"
        raise _invalid(kind, compact, value, "prefix", detail)
    _require_format(kind, compact, value, r"PADPIDA\d{10}[0-9A-Z]", shape)
    check = mod_37_36.calc_check_digit(compact[:-1])
    _require_check(kind, compact, value, compact[-1], check, "check character is")
    return compact


def validate_gtin(value: str) -> str:
    """Return the compact UPC/EAN/GTIN (8, 12, 13 or 14 digits) or raise InvalidIdentifier."""
    shape = "8, 12, 13 or 14 digits"
    return _with_stdnum(IdentifierKind.GTIN, value, ean.validate, shape, ean.calc_check_digit)


# --- dispatch -------------------------------------------------------------------

_VALIDATORS: dict[IdentifierKind, Callable[[str], str]] = {
    IdentifierKind.ISRC: validate_isrc,
    IdentifierKind.ISWC: validate_iswc,
    IdentifierKind.IPI_NAME: validate_ipi_name,
    IdentifierKind.IPI_BASE: validate_ipi_base,
    IdentifierKind.ISNI: validate_isni,
    IdentifierKind.GRID: validate_grid,
    IdentifierKind.DPID: validate_dpid,
    IdentifierKind.GTIN: validate_gtin,
}

_DISPLAY: dict[IdentifierKind, Callable[[str], str]] = {
    IdentifierKind.ISRC: format_isrc,
    IdentifierKind.ISWC: format_iswc,
    IdentifierKind.IPI_BASE: lambda c: f"I-{c[1:10]}-{c[10]}",
    IdentifierKind.ISNI: format_isni,
    IdentifierKind.GRID: grid.format,
}


def _kind(kind: IdentifierKind | str) -> IdentifierKind:
    """The kind named by ``kind``; ValueError naming the accepted kinds otherwise."""
    if isinstance(kind, IdentifierKind):
        return kind
    key = kind.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return IdentifierKind(key)
    except ValueError:
        accepted = ", ".join([*(k.value for k in IdentifierKind), *_ALIASES])
        msg = f"kind={kind!r}: unknown identifier kind, expected one of {accepted}"
        raise ValueError(msg) from None


MAX_INPUT = 64
"""The longest text taken as an identifier (the longest, a GRid with separators, is under 30):
anything longer is refused at once, without normalising megabytes or echoing them in the message."""


def validate(kind: IdentifierKind | str, value: str) -> str:
    """Validate ``value`` as ``kind`` and return its compact form."""
    k = _kind(kind)
    if isinstance(value, str) and len(value) > MAX_INPUT:
        detail = f"has {len(value):,} characters, expected at most {MAX_INPUT}"
        raise _invalid(k, "", f"{value[:20]}…", "length", detail)
    return _VALIDATORS[k](value)


def display(kind: IdentifierKind | str, compact: str) -> str:
    """The grouped display form (IPI name, DPID and GTIN display as stored)."""
    k = _kind(kind)
    c = validate(k, compact)
    show = _DISPLAY.get(k)
    return show(c) if show is not None else c


# --- identify -------------------------------------------------------------------

# Shapes tried in this order; the first that fits decides the kind. An 11-digit
# number is always an IPI name number, never a UPC-A that lost its leading zero.
_SHAPES: tuple[tuple[re.Pattern[str], IdentifierKind], ...] = (
    (re.compile(r"T\d{10}"), IdentifierKind.ISWC),
    (re.compile(r"PADPIDA.*"), IdentifierKind.DPID),
    (re.compile(r"I\d{10}"), IdentifierKind.IPI_BASE),
    (re.compile(r"[A-Z]{2}[A-Z0-9]{10}"), IdentifierKind.ISRC),
    (re.compile(r"[A-Z0-9]{18}"), IdentifierKind.GRID),
    (re.compile(r"\d{15}[\dX]"), IdentifierKind.ISNI),
    (re.compile(r"\d{11}"), IdentifierKind.IPI_NAME),
    (re.compile(r"\d{8}|\d{12,14}"), IdentifierKind.GTIN),
)

_SHAPES_HELP = (
    "ISWC T+10 digits, DPID PADPIDA+10 digits+check, IPI base I+10 digits, ISRC 12 "
    "letters/digits starting with 2 letters, GRid 18 letters/digits, ISNI 15 digits + digit/X, "
    "IPI name 11 digits, GTIN 8/12/13/14 digits"
)


@dataclass(frozen=True)
class IdentifierCheck:
    """The outcome of checking one identifier.

    Attributes:
        kind: the kind checked against, or None when no kind fits the shape.
        input: the value as given.
        compact: the normalised value (the stored form when valid).
        display: the grouped display form when valid, else the compact value.
        valid: whether every rule passed.
        rule: the rule that failed, ``""`` when valid.
        message: what was found, in words.
    """

    kind: IdentifierKind | None
    input: str
    compact: str
    display: str
    valid: bool
    rule: str
    message: str

    def to_dict(self) -> dict[str, str | bool | None]:
        return {
            "kind": None if self.kind is None else self.kind.value,
            "input": self.input,
            "compact": self.compact,
            "display": self.display,
            "valid": self.valid,
            "rule": self.rule,
            "message": self.message,
        }


def _guess(compact: str) -> IdentifierKind | None:
    for pattern, kind in _SHAPES:
        if pattern.fullmatch(compact):
            return kind
    return None


def identify(value: str, kind: IdentifierKind | str | None = None) -> IdentifierCheck:
    """Check ``value`` as ``kind``, or as the kind its shape suggests when none is given.

    Never raises for a bad value; an unknown ``kind`` raises ValueError.
    """
    compact = normalise(value) if len(value) <= MAX_INPUT else f"{value[:20]}…"
    chosen = _kind(kind) if kind is not None else _guess(compact)
    if chosen is None:
        shown = compact or repr(value)
        msg = f"{shown}: no identifier kind has this shape; expected {_SHAPES_HELP}"
        return IdentifierCheck(None, value, compact, compact, False, "unknown_kind", msg)
    try:
        stored = validate(chosen, value)
    except InvalidIdentifier as error:
        msg = str(error)
        if kind is None and chosen is IdentifierKind.IPI_NAME and ean.is_valid("0" + compact):
            msg += f"; 0{compact} would be a valid UPC/EAN (leading zero lost?)"
        return IdentifierCheck(chosen, value, compact, compact, False, error.rule, msg)
    name, standard = _NAME[chosen]
    msg = f"valid {name} ({standard})"
    return IdentifierCheck(chosen, value, stored, display(chosen, stored), True, "", msg)
