"""What routes share: the store, the caller, the request id, the audit helper, instants from query text."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from accord.api.auth import Principal, audit, current_principal, store_of
from accord.registry.store import Store
from accord.settings import Settings
from accord.timeutil import parse_instant

Caller = Annotated[Principal, Depends(current_principal)]
StoreDep = Annotated[Store, Depends(store_of)]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]


def request_id(request: Request) -> str:
    """The request's id: the caller's ``X-Request-ID``, or the one the middleware gave it."""
    rid: str = getattr(request.state, "request_id", "")
    return rid


def record(request: Request, principal: Principal, action: str, obj_type: str, obj_id: str, **detail: Any) -> None:
    """Write one change to the API audit log, with the request's id."""
    audit(store_of(request), principal, action, obj_type, obj_id, detail, request_id=request_id(request))


def instant_or_now(store: Store, value: str | None, field: str) -> datetime:
    return store.clock() if value is None else parse_instant(value, field=field)
