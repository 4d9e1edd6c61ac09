"""Exchange rates: imported reference rates, a period's rate, and conversion by largest remainder.

* **Import** (``accord fx import FILE``): the ECB's reference-rate CSV, either the history file
  (``Date,USD,JPY,...`` with ISO dates, ``N/A`` where no rate) or the daily file
  (``Date, USD, ...`` with ``03 December 2026``). Rates are units of the currency per 1 EUR,
  stored exactly as ``units / 10**scale`` integers (never a float), with the file's sha256
  and name. Re-importing a file is a no-op; a file that gives another rate for a day and
  currency already stored is refused (rates used by a closed period never change).
* **A period's rate** is the rate of the period's **last TARGET business day**: the last day
  of the month that is not a Saturday, Sunday, 1 January, Good Friday, Easter Monday,
  1 May, 25 or 26 December (the days the ECB publishes). 2026-12 → 2026-12-31;
  2027-01 → 2027-01-29. A run that needs a rate the store lacks stops and names every
  missing pair and date (:func:`require_rates`).
* **Cross rates** go through the euro: from ``A`` to ``B`` is ``rate(B) / rate(A)`` (an exact
  fraction; EUR's rate is 1).
* **Conversion** (:func:`convert_many`): the amounts converted in one period for one pair are
  converted once as a total (exact product, rounded half to even to the micro-unit) and the
  total is split back over the amounts by largest remainder (:func:`accord.money.allocate`,
  ties by key), so the parts sum exactly to the converted total.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from dateutil.easter import easter
from sqlalchemy import insert, select

from accord.errors import Conflict, ValidationError
from accord.money import allocate, check_currency
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.royalties.periods import period_bounds

T = Base.metadata.tables
BASE = "EUR"
"""The reference currency of the imported rates (ECB: units per 1 EUR)."""

Pair = tuple[str, str]


@dataclass(frozen=True)
class FxImport:
    """What an import stored.

    Attributes:
        source_sha256: the file's content hash.
        name: the file's name.
        dates: days in the file.
        added: rates newly stored.
        already: rates already stored with the same value (a re-import).
    """

    source_sha256: str
    name: str
    dates: int
    added: int
    already: int


def _parse_day(text: str, row: int) -> date:
    value = text.strip()
    for fmt in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    msg = f"row {row}: Date={text!r} is not a date; expected YYYY-MM-DD or '03 December 2026'"
    raise ValidationError(msg, field="Date", value=text)


def _parse_rate(text: str, currency: str, row: int) -> tuple[int, int] | None:
    value = text.strip()
    if value in ("", "N/A"):
        return None
    try:
        dec = Decimal(value)
    except InvalidOperation:
        dec = Decimal("NaN")
    if not dec.is_finite() or dec <= 0:
        msg = f"row {row}: {currency}={text!r} is not a rate; expected a decimal number > 0 (units per 1 EUR)"
        raise ValidationError(msg, field=currency, value=text)
    _sign, digits, exponent = dec.normalize().as_tuple()
    units = int("".join(map(str, digits)))
    scale = -int(exponent)
    if scale < 0:
        units, scale = units * 10**-scale, 0
    return units, scale


def parse_rates(text: str) -> dict[date, dict[str, tuple[int, int]]]:
    """The rates of an ECB CSV text: day → currency → ``(units, scale)`` (rate = units / 10**scale)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header or header[0].strip() != "Date":
        msg = f"header: {header!r}; expected the ECB format: Date, then one column per currency"
        raise ValidationError(msg, field="header", value=header)
    currencies = [check_currency(c.strip(), field=f"header {c.strip()!r}") if c.strip() else "" for c in header[1:]]
    out: dict[date, dict[str, tuple[int, int]]] = {}
    for n, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        day = _parse_day(row[0], n)
        if day in out:
            msg = f"row {n}: Date {day.isoformat()} appears twice; expected one row per day"
            raise ValidationError(msg, field="Date", value=day.isoformat())
        rates = out.setdefault(day, {})
        for currency, cell in zip(currencies, row[1:], strict=False):
            parsed = _parse_rate(cell, currency, n) if currency else None
            if parsed is not None:
                rates[currency] = parsed
    return out


def import_file(store: Store, path: Path | str, *, actor: str = "") -> FxImport:
    """Store a reference-rate file's rates (idempotent by content; a changed rate is refused)."""
    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"file {path.name}: not UTF-8 text; expected the ECB reference-rate CSV"
        raise ValidationError(msg, field="file", value=path.name) from None
    parsed = parse_rates(text)
    src, r = T["fx_sources"], T["fx_rates"]
    added = already = 0
    with store.engine.begin() as conn:
        stored = {
            (row.day, row.currency): (row.units, row.scale)
            for row in conn.execute(
                select(r.c.day, r.c.currency, r.c.units, r.c.scale).where(r.c.day.in_(list(parsed)))
            )
        }
        rows = []
        for day in sorted(parsed):
            for currency, value in sorted(parsed[day].items()):
                old = stored.get((day, currency))
                if old is None:
                    rows.append({"day": day, "currency": currency, "units": value[0], "scale": value[1]})
                elif Fraction(old[0], 10 ** old[1]) == Fraction(value[0], 10 ** value[1]):
                    already += 1
                else:
                    msg = (
                        f"{path.name}: {currency} on {day.isoformat()} is {_text(value)}; the store already "
                        f"holds {_text(old)} (imported rates never change)"
                    )
                    raise Conflict(msg)
        if rows:
            conn.execute(insert(r), [{**x, "source_sha256": digest} for x in rows])
            added = len(rows)
        if conn.execute(select(src.c.source_sha256).where(src.c.source_sha256 == digest)).first() is None:
            conn.execute(
                insert(src).values(
                    source_sha256=digest,
                    name=path.name,
                    imported_at=store.clock(),
                    imported_by=actor,
                    dates=len(parsed),
                    rates=sum(len(v) for v in parsed.values()),
                )
            )
    return FxImport(digest, path.name, len(parsed), added, already)


def _text(value: tuple[int, int]) -> str:
    units, scale = value
    return str(Decimal(units).scaleb(-scale))


def is_business_day(d: date) -> bool:
    """A TARGET business day: Monday to Friday, except 1 Jan, Good Friday, Easter Monday, 1 May, 25-26 Dec."""
    if d.weekday() >= 5 or (d.month, d.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return False
    e = easter(d.year)
    return d not in (e - timedelta(days=2), e + timedelta(days=1))


def rate_date(period: str) -> date:
    """The day whose rates a period uses: its last TARGET business day."""
    d = period_bounds(period)[1].date() - timedelta(days=1)
    while not is_business_day(d):
        d -= timedelta(days=1)
    return d


def rates_on(store: Store, day: date) -> dict[str, Fraction]:
    """Every currency's rate per 1 EUR stored for ``day`` (EUR itself is 1)."""
    r = T["fx_rates"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(r.c.currency, r.c.units, r.c.scale).where(r.c.day == day)).all()
    return {BASE: Fraction(1)} | {c: Fraction(u, 10**s) for c, u, s in rows}


def pair_rate(per_eur: Mapping[str, Fraction], pair: Pair) -> Fraction | None:
    """Units of ``pair[1]`` per unit of ``pair[0]`` (through the euro), or ``None`` when a rate is missing."""
    a, b = pair
    if a == b:
        return Fraction(1)
    if a not in per_eur or b not in per_eur:
        return None
    return per_eur[b] / per_eur[a]


@dataclass(frozen=True)
class PeriodRates:
    """The rates a period uses.

    Attributes:
        period: ``YYYY-MM``.
        day: its rate date (:func:`rate_date`).
        per_eur: currency → units per 1 EUR on that day.
    """

    period: str
    day: date
    per_eur: Mapping[str, Fraction]

    def rate(self, pair: Pair) -> Fraction:
        value = pair_rate(self.per_eur, pair)
        if value is None:
            msg = f"fx: no {pair[0]}->{pair[1]} rate for {self.period} (rate date {self.day.isoformat()})"
            raise ValidationError(msg, field="fx", value=f"{pair[0]}{pair[1]}")
        return value

    def text(self, pair: Pair) -> str:
        """The rate as the ledger records it: ``EURUSD 1.0456 2026-12-31``, exact (a fraction when not decimal)."""
        value = self.rate(pair)
        return f"{pair[0]}{pair[1]} {_fraction_text(value)} {self.day.isoformat()}"


def _fraction_text(value: Fraction) -> str:
    d = value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    return str(Decimal(value.numerator * 10**places // value.denominator).scaleb(-places))


def period_rates(store: Store, period: str) -> PeriodRates:
    day = rate_date(period)
    return PeriodRates(period, day, rates_on(store, day))


def require_rates(rates: PeriodRates, pairs: Iterable[Pair]) -> None:
    """Stop, naming every missing currency pair and date, unless ``rates`` has every pair."""
    missing = sorted({p for p in pairs if p[0] != p[1] and pair_rate(rates.per_eur, p) is None})
    if missing:
        names = ", ".join(f"{a}->{b}" for a, b in missing)
        lacking = sorted({c for p in missing for c in p if c not in rates.per_eur})
        msg = (
            f"fx: period {rates.period} needs the {names} rate(s) of {rates.day.isoformat()} (its last business "
            f"day); no rate stored for {', '.join(lacking)} on that day (accord fx import FILE)"
        )
        raise ValidationError(msg, field="fx", value=names)


def convert_many(amounts: Sequence[tuple[str, int]], rate: Fraction) -> dict[str, int]:
    """Convert keyed amounts at ``rate``: the total once (half to even), split by largest remainder."""
    keys = [k for k, _ in amounts]
    weights = [a for _, a in amounts]
    if not amounts or not any(weights):
        return {k: 0 for k in keys}
    total = round(sum(weights) * rate)
    return dict(zip(keys, allocate(total, weights, keys), strict=True))
