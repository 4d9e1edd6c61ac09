"""Instants: always timezone-aware, compared in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

from accord.errors import ValidationError


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_instant(value: object, *, field: str) -> datetime:
    """Read an ISO 8601 date (midnight UTC) or date-time with an offset, as UTC.

    Raises:
        ValidationError: not ISO 8601, or a date-time without an offset.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            msg = f"{field}: {value.isoformat()} has no UTC offset; expected e.g. 2026-01-01T00:00:00Z"
            raise ValidationError(msg, field=field, value=str(value))
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        msg = f"{field}: {value!r} is not a date; expected ISO 8601 like 2026-01-01 or 2026-01-01T09:30:00Z"
        raise ValidationError(msg, field=field, value=str(value))
    text = value.strip()
    if len(text) == 10:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            msg = f"{field}: {text!r} is not a valid date; expected YYYY-MM-DD"
            raise ValidationError(msg, field=field, value=text) from None
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        msg = f"{field}: {text!r} is not an ISO 8601 date-time; expected e.g. 2026-01-01T09:30:00Z"
        raise ValidationError(msg, field=field, value=text) from None
    if dt.tzinfo is None:
        msg = f"{field}: {text!r} has no UTC offset; add Z or +hh:mm"
        raise ValidationError(msg, field=field, value=text)
    return dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, or None."""
    if dt is None:
        return None
    text = dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return text
