"""Money and shares, exactly: integer micro-units and integer parts per million.

Nothing here touches a float. Every split goes through :func:`allocate`, which uses
largest-remainder rounding with a deterministic tie-break by a stable key, so the
parts always sum exactly to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import cache

import pycountry

from accord.errors import ValidationError
from accord.registry.entities import PPM_WHOLE, Money

MICROS = 1_000_000
"""Micro-units per major currency unit: amounts are stored as integer micro-units."""


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def check_currency(code: str, *, field: str = "currency") -> str:
    """Return the ISO 4217 code upper-cased, or raise naming the field."""
    norm = code.strip().upper() if isinstance(code, str) else ""
    if norm not in _currencies():
        msg = f"{field}: {code!r} is not an ISO 4217 currency code (e.g. EUR, USD, GBP)"
        raise ValidationError(msg, field=field, value=code)
    return norm


def _exact_decimal(value: object, *, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        msg = f'{field}: {value!r} is not a decimal number (write it as a string, e.g. "33.5")'
        raise ValidationError(msg, field=field, value=value)
    try:
        dec = Decimal(str(value).strip().rstrip("%").strip())
    except InvalidOperation:
        msg = f"{field}: {value!r} is not a decimal number"
        raise ValidationError(msg, field=field, value=value) from None
    if not dec.is_finite():
        msg = f"{field}: {value!r} is not a finite number"
        raise ValidationError(msg, field=field, value=value)
    return dec


def percent_to_ppm(value: object, *, field: str = "share") -> int:
    """Convert an exact percentage (``"33.3334"``, ``50``) to integer parts per million.

    Raises:
        ValidationError: not a number, negative, above 100%, or finer than 1 ppm.
    """
    dec = _exact_decimal(value, field=field)
    ppm = dec * 10_000
    if ppm != ppm.to_integral_value():
        msg = f"{field}: {value!r} is finer than one part per million (at most 4 decimals)"
        raise ValidationError(msg, field=field, value=value)
    return check_ppm(int(ppm), field=field)


def check_ppm(value: object, *, field: str = "share_ppm") -> int:
    """Check a parts-per-million integer lies in 0..1,000,000."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{field}: {value!r} is not an integer number of parts per million"
        raise ValidationError(msg, field=field, value=value)
    if not 0 <= value <= PPM_WHOLE:
        msg = f"{field}: {value} is outside 0..1,000,000 ppm (0%..100%)"
        raise ValidationError(msg, field=field, value=value)
    return value


def ppm_to_percent(ppm: int) -> str:
    """Display form: ``333334`` → ``"33.3334"``; ``500000`` → ``"50"``."""
    text = f"{Decimal(ppm) / 10_000:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_amount(amount: object, currency: str, *, field: str = "amount") -> Money:
    """An amount in major units (``"25000.00"``) to integer micro-units of a currency."""
    code = check_currency(currency, field=f"{field}.currency")
    dec = _exact_decimal(amount, field=field)
    micros = dec * MICROS
    if micros != micros.to_integral_value():
        msg = f"{field}: {amount!r} is finer than one micro-unit of {code}"
        raise ValidationError(msg, field=field, value=amount)
    if micros < 0:
        msg = f"{field}: {amount!r} is negative; expected an amount >= 0"
        raise ValidationError(msg, field=field, value=amount)
    return Money(int(micros), code)


def format_money(money: Money) -> str:
    """``Money(25_000_000_000, "EUR")`` → ``"25000.00 EUR"`` (micro-units kept when needed)."""
    whole, frac = divmod(money.micros, MICROS)
    frac_text = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{whole}.{frac_text} {money.currency}"


def allocate(total: int, weights: Sequence[int], keys: Sequence[str]) -> list[int]:
    """Split ``total`` in proportion to ``weights``, parts summing exactly to ``total``.

    Largest remainder: each part gets the floor of its exact share; the units left over
    go one each to the largest remainders, ties broken by ``keys`` ascending (a stable id,
    so the result never depends on input order).

    >>> allocate(100, [1, 1, 1], ["a", "b", "c"])
    [34, 33, 33]
    """
    if len(weights) != len(keys):
        msg = f"weights: {len(weights)} weights for {len(keys)} keys; expected one each"
        raise ValidationError(msg, field="weights")
    if any(w < 0 for w in weights):
        msg = "weights: negative weight; expected every weight >= 0"
        raise ValidationError(msg, field="weights")
    wsum = sum(weights)
    if total == 0 or not weights:
        return [0] * len(weights)
    if wsum == 0:
        msg = f"weights: all zero; cannot split {total}"
        raise ValidationError(msg, field="weights")
    sign = -1 if total < 0 else 1
    whole = abs(total)
    parts = [whole * w // wsum for w in weights]
    remainders = [whole * w % wsum for w in weights]
    left = whole - sum(parts)
    # Largest remainder first; ties by stable key so re-runs are byte-identical.
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], keys[i]))
    for i in order[:left]:
        parts[i] += 1
    return [sign * p for p in parts]


@cache
def minor_unit_exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of a currency (JPY 0, EUR 2, BHD 3), from the ``iso4217`` table.

    Raises:
        ValidationError: not a currency, or one without a minor unit (gold, SDR: ISO 4217 "N.A.").
    """
    from iso4217 import Currency as Iso4217

    code = check_currency(currency)
    try:
        exponent = Iso4217(code).exponent
    except ValueError:
        exponent = None
    if exponent is None or not 0 <= exponent <= 6:
        msg = f"currency: {code!r} has no minor unit in ISO 4217 (exponent {exponent}); expected a payable currency"
        raise ValidationError(msg, field="currency", value=code)
    return int(exponent)


def minor_unit_micros(currency: str) -> int:
    """Micro-units in one minor unit of a currency: EUR 10,000 (a cent), JPY 1,000,000 (a yen), BHD 1,000."""
    return MICROS // 10 ** minor_unit_exponent(currency)


def payable_part(micros: int, currency: str) -> tuple[int, int]:
    """Split a balance into what can be wired (whole minor units, rounded down) and the sub-unit remainder.

    >>> payable_part(37_642_469, "EUR")
    (37640000, 2469)
    """
    if micros <= 0:
        return 0, micros
    rest = micros % minor_unit_micros(currency)
    return micros - rest, rest


def format_major(micros: int, currency: str) -> str:
    """Whole minor units as a major-unit decimal with the currency's decimals: ``37_640_000 EUR`` → ``"37.64"``.

    Raises:
        ValidationError: the amount is not a whole number of minor units.
    """
    exponent, unit = minor_unit_exponent(currency), minor_unit_micros(currency)
    if micros % unit:
        msg = f"amount: {micros} micro-units of {currency} is not a whole number of minor units (10^-{exponent})"
        raise ValidationError(msg, field="amount", value=micros)
    minor = micros // unit
    sign, minor = ("-", -minor) if minor < 0 else ("", minor)
    if exponent == 0:
        return f"{sign}{minor}"
    whole, frac = divmod(minor, 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d}"
