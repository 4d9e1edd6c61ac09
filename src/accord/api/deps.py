"""What routes share: the store, the caller, the request id, the audit helper, instants from query text,
byte ranges of a stream."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Connection

from accord.api.auth import Principal, audit, current_principal, store_of
from accord.api.errors import body as error_body
from accord.registry.store import Store
from accord.settings import Settings
from accord.timeutil import parse_instant


async def _store(request: Request) -> Store:
    """The app's store, as a dependency (``async``: FastAPI runs it in the event loop, not a thread)."""
    return store_of(request)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _settings(request: Request) -> Settings:
    return settings_of(request)


Caller = Annotated[Principal, Depends(current_principal)]
StoreDep = Annotated[Store, Depends(_store)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def request_id(request: Request) -> str:
    """The request's id: the caller's ``X-Request-ID``, or the one the middleware gave it."""
    rid: str = getattr(request.state, "request_id", "")
    return rid


def record(
    request: Request,
    principal: Principal,
    action: str,
    obj_type: str,
    obj_id: str,
    *,
    conn: Connection | None = None,
    **detail: Any,
) -> None:
    """Write one change to the API audit log, with the request's id (in ``conn``'s transaction when given)."""
    audit(store_of(request), principal, action, obj_type, obj_id, detail, request_id=request_id(request), conn=conn)


def instant_or_now(store: Store, value: str | None, field: str) -> datetime:
    return store.clock() if value is None else parse_instant(value, field=field)


# ---------------------------------------------------------------- byte ranges (streams)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def ranged(data: bytes, range_header: str | None, media_type: str, headers: dict[str, str] | None = None) -> Response:
    """``data`` as a 200, or the one byte range a ``Range: bytes=...`` header asks for as a 206.

    A player seeks with ``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``. Several ranges at
    once are answered with the whole (RFC 9110 lets a server ignore Range); a range that is malformed
    or lies past the end is a 416 with ``Content-Range: bytes */size`` and the API's error body.
    """
    size = len(data)
    base = {"Accept-Ranges": "bytes", **(headers or {})}
    if not range_header or "," in range_header:
        return Response(data, media_type=media_type, headers=base)
    m = _RANGE.match(range_header.strip().replace(" ", ""))
    first, last = (m.group(1), m.group(2)) if m else ("", "")
    if m is None or (first == "" and last == ""):
        start, end = size, size  # unsatisfiable
    elif first == "":
        start, end = max(0, size - int(last)), size - 1
        if int(last) == 0:
            start = size
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        msg = f"range: {range_header!r} is not a byte range of this {size}-byte file; expected bytes=first-last"
        return JSONResponse(
            error_body("range_not_satisfiable", msg, "range"),
            status_code=416,
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )
    part = {**base, "Content-Range": f"bytes {start}-{end}/{size}"}
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=part)
