"""Keyset pagination for every list: ``?limit=&cursor=``, answered with ``next_cursor``.

Lists are sorted by a stable key; the cursor is the last key given, base64url-encoded, so a
page never repeats or skips an item when others are added before it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

from accord.errors import ValidationError

T = TypeVar("T")

DEFAULT_LIMIT, MAX_LIMIT = 50, 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-500).")]
Cursor = Annotated[str | None, Query(max_length=512, description="The next_cursor of the previous page.")]


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        msg = f"cursor: {cursor!r} is not a cursor this API gave; pass next_cursor from the previous page"
        raise ValidationError(msg, field="cursor", value=cursor) from None


def paginate(items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted here by ``key``) after ``cursor``, and the cursor of the next page."""
    ordered = sorted(items, key=key)  # the key is unique per list: the order is total and stable
    if cursor:
        after = decode_cursor(cursor)
        ordered = [i for i in ordered if key(i) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (encode_cursor(key(page[-1])) if more and page else None)
