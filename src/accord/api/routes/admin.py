"""Who am I, API keys (operator), and the audit logs (operator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from accord.api import auth, services
from accord.api.auth import Role
from accord.api.deps import Caller, StoreDep, record
from accord.api.pagination import Cursor, Limit, decode_cursor, encode_cursor
from accord.api.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, AuditEventOut, Page, PrincipalOut
from accord.errors import ValidationError

router = APIRouter(tags=["admin"])


@router.get("/me", response_model=PrincipalOut)
def me(principal: Caller) -> PrincipalOut:
    """The key this request was made with: its role and party."""
    return PrincipalOut(key_id=principal.key_id, role=principal.role.value, party_id=principal.party_id)


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated)
def create_api_key(request: Request, body: ApiKeyIn, principal: Caller, store: StoreDep) -> ApiKeyCreated:
    """Make a key for a party (operator); the secret is in this response only."""
    services.require(principal, Role.OPERATOR)
    key, secret = auth.create_key(store, role=body.role, party_id=body.party_id, label=body.label)
    record(request, principal, "apikey.create", "api_key", key.key_id, role=key.role.value, party_id=key.party_id)
    return ApiKeyCreated(**key.to_dict(), secret=secret)


@router.get("/api-keys", response_model=Page[ApiKeyOut])
def list_api_keys(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[ApiKeyOut]:
    """Every key, never its secret (operator)."""
    from accord.api.pagination import paginate

    services.require(principal, Role.OPERATOR)
    page, nxt = paginate(auth.list_keys(store), lambda k: k.key_id, limit, cursor)
    return Page[ApiKeyOut](items=[ApiKeyOut(**k.to_dict()) for k in page], next_cursor=nxt)


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyOut)
def revoke_api_key(request: Request, key_id: str, principal: Caller, store: StoreDep) -> ApiKeyOut:
    """Revoke a key and its portal sessions (operator)."""
    services.require(principal, Role.OPERATOR)
    key = auth.revoke_key(store, key_id)
    record(request, principal, "apikey.revoke", "api_key", key_id)
    return ApiKeyOut(**key.to_dict())


@router.get("/audit-events", response_model=Page[AuditEventOut])
def audit_events(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[AuditEventOut]:
    """Every change made through the API or the portal, oldest first (operator)."""
    services.require(principal, Role.OPERATOR)
    after = 0
    if cursor:
        text = decode_cursor(cursor)
        if not text.isdigit():
            raise ValidationError(f"cursor: {cursor!r} is not a cursor this API gave", field="cursor", value=cursor)
        after = int(text)
    rows = auth.audit_events(store, after=after, limit=limit + 1)
    page = rows[:limit]
    nxt = encode_cursor(str(page[-1].seq)) if len(rows) > limit else None
    return Page[AuditEventOut](items=[AuditEventOut(**e.__dict__) for e in page], next_cursor=nxt)


@router.get("/registry-log", response_model=Page[dict[str, Any]])
def registry_log(principal: Caller, store: StoreDep, limit: Limit = 50, cursor: Cursor = None) -> Page[dict[str, Any]]:
    """The registry's own log of changes to rights, newest first (operator; ``accord log``)."""
    before = None
    if cursor:
        text = decode_cursor(cursor)
        if not text.isdigit():
            raise ValidationError(f"cursor: {cursor!r} is not a cursor this API gave", field="cursor", value=cursor)
        before = int(text)
    rows = services.registry_log(store, principal, before=before, limit=limit + 1)
    page = rows[:limit]
    nxt = encode_cursor(str(page[-1]["pk"])) if len(rows) > limit else None
    return Page[dict[str, Any]](items=page, next_cursor=nxt)
