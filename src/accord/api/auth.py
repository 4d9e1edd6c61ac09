"""Who is calling: API keys (kept only as hashes), principals, session cookies, roles, the API audit log.

A key's secret is ``acc_<key_id>_<random>``; only its sha256 is stored, and the secret is shown
once, when the key is made. A request proves who it is with ``Authorization: Bearer <secret>``
or with the portal's ``accord_session`` cookie, an HMAC (under a server secret kept in
``ACCORD_HOME/api/session.key``) of the key id, an expiry and the key's hash: revoking the key
ends its sessions too.

A request that proves itself with the cookie and changes anything (POST, PUT, PATCH, DELETE)
must also carry the portal's CSRF token in the ``X-CSRF-Token`` header (:func:`csrf_matches`):
a browser sends the cookie with any site's request, but only the portal's own pages can read
the token. A bearer request needs none (no browser sends a bearer key by itself).

Public functions the portal relies on (keep their signatures stable): :func:`create_key`,
:func:`revoke_key`, :func:`list_keys`, :func:`authenticate`, :func:`principal_from_request`,
:func:`session_cookie_for`, :func:`require_role`, :func:`audit`, :data:`SESSION_COOKIE`,
:func:`csrf_token_for`, :func:`csrf_matches`, :data:`CSRF_COOKIE`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import insert, select, update

from accord.errors import Forbidden, NotFound, Unauthenticated, ValidationError
from accord.registry import counters
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.settings import Settings, get_settings

T = Base.metadata.tables
SESSION_COOKIE = "accord_session"
SESSION_TTL = timedelta(hours=12)
CSRF_COOKIE = "accord_csrf"
"""A random nonce per browser; a CSRF token is HMAC(server secret, nonce) (:func:`csrf_token_for`)."""
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECRET_PREFIX = "acc_"
# acc_<16 hex key id>_<43 url-safe base64 chars>: the key id is readable in logs, the rest is 256 random bits
_SECRET_RE = re.compile(r"^acc_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")
_PARTY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class Role(StrEnum):
    """What a key may do: a rights holder sees its own catalog, a creator its own outputs, an operator all."""

    RIGHTS_HOLDER = "rights_holder"
    CREATOR = "creator"
    OPERATOR = "operator"


@dataclass(frozen=True)
class ApiKey:
    """One API key, without its secret.

    Attributes:
        key_id: public id (16 hex digits), also part of the secret.
        role: what the key may do.
        party_id: the rights holder's party id, the creator's id, or the operator's name.
        label: a note for people (``"label's ingest robot"``).
        created_at: when it was made.
        revoked_at: when it was revoked (``None``: in force).
    """

    key_id: str
    role: Role
    party_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "role": self.role.value,
            "party_id": self.party_id,
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class Principal:
    """The caller of one request.

    Attributes:
        key_id: the key it proved.
        role: the key's role.
        party_id: the party (or creator, or operator) the key belongs to.
    """

    key_id: str
    role: Role
    party_id: str

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def owns(self, party_ids: object) -> bool:
        """Whether this principal may see an object held by ``party_ids`` (an operator sees everything)."""
        if self.is_operator:
            return True
        if isinstance(party_ids, str):
            return party_ids == self.party_id
        return self.party_id in party_ids  # type: ignore[operator]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _role(value: str | Role) -> Role:
    try:
        return Role(value)
    except ValueError:
        msg = f"role: {value!r} is not one of {', '.join(r.value for r in Role)}"
        raise ValidationError(msg, field="role", value=str(value)) from None


def _key_of(r: Any) -> ApiKey:
    return ApiKey(r["key_id"], Role(r["role"]), r["party_id"], r["label"], r["created_at"], r["revoked_at"])


def create_key(store: Store, *, role: str | Role, party_id: str, label: str = "") -> tuple[ApiKey, str]:
    """Make a key for a party; the secret is returned here once and never stored (only its sha256)."""
    checked = _role(role)
    if not _PARTY_RE.match(party_id or ""):
        msg = f"party_id: {party_id!r} is not an id; expected 1-64 letters, digits, '.', '_', ':' or '-'"
        raise ValidationError(msg, field="party_id", value=party_id)
    key_id = secrets.token_hex(8)
    secret = f"{SECRET_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(key_id, checked, party_id, label, store.clock(), None)
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["api_keys"]).values(
                key_id=key_id,
                role=checked.value,
                party_id=party_id,
                secret_sha256=_hash(secret),
                label=label,
                created_at=key.created_at,
                revoked_at=None,
            )
        )
    return key, secret


def list_keys(store: Store, *, party_id: str | None = None) -> list[ApiKey]:
    """Every key (or one party's), oldest first (by creation, then id: a stable order)."""
    t = T["api_keys"]
    q = select(t).order_by(t.c.created_at, t.c.key_id)
    if party_id is not None:
        q = q.where(t.c.party_id == party_id)
    with store.engine.connect() as conn:
        return [_key_of(r) for r in conn.execute(q).mappings()]


def get_key(store: Store, key_id: str) -> ApiKey:
    t = T["api_keys"]
    with store.engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.key_id == key_id)).mappings().first()
    if r is None:
        msg = f"key_id: {key_id!r} is not a known API key"
        raise NotFound(msg)
    return _key_of(r)


def revoke_key(store: Store, key_id: str) -> ApiKey:
    """Revoke a key (and every session made from it); revoking twice keeps the first instant."""
    key = get_key(store, key_id)
    if key.revoked_at is not None:
        return key
    t = T["api_keys"]
    with store.engine.begin() as conn:
        conn.execute(update(t).where(t.c.key_id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=store.clock()))
        counters.bump(conn, "keys")  # every process's cached copy of this key is stale from this commit on
    return get_key(store, key_id)


# ---------------------------------------------------------------- the key cache

KEY_CACHE_SIZE = 10_000
"""Keys held per store and process; past that the cache starts again (only known keys are held)."""


class _KeyCache:
    """API key rows by key id, each with the ``keys`` counter read before the row was.

    A row is used only while the counter still reads what it read then: revoking a key bumps the
    counter in the revoking transaction (:func:`revoke_key`), so every process reads the row again
    on its next request, and a revoked key is refused from the commit on. Only rows that exist
    are held (an unknown id is looked up each time: guessing ids cannot fill memory).
    """

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def get(self, key_id: str, version: int) -> dict[str, Any] | None:
        held = self.rows.get(key_id)
        return held[1] if held is not None and held[0] == version else None

    def put(self, key_id: str, version: int, row: dict[str, Any]) -> None:
        with self.lock:
            if len(self.rows) >= KEY_CACHE_SIZE:
                self.rows.clear()
            self.rows[key_id] = (version, row)


_KEYS: weakref.WeakKeyDictionary[Store, _KeyCache] = weakref.WeakKeyDictionary()
_KEYS_LOCK = threading.Lock()


def _cache_of(store: Store) -> _KeyCache:
    cache = _KEYS.get(store)
    if cache is None:
        with _KEYS_LOCK:
            cache = _KEYS.setdefault(store, _KeyCache())
    return cache


def read_counters(store: Store) -> dict[str, int]:
    """Every version counter now (:mod:`accord.registry.counters`): one query."""
    return counters.read_now(store.engine)


def _key_row(store: Store, key_id: str, stamps: dict[str, int] | None = None) -> Any:
    """The key's row, from this process's cache while the ``keys`` counter is unchanged.

    ``stamps``: the counters as the caller read them at the start of its request (read here otherwise),
    always before the row, so a revocation committed in between shows as a newer counter.
    """
    version = (stamps if stamps is not None else read_counters(store))["keys"]
    cache = _cache_of(store)
    row = cache.get(key_id, version)
    if row is not None:
        return row
    t = T["api_keys"]
    with store.engine.connect() as conn:
        found = conn.execute(select(t).where(t.c.key_id == key_id)).mappings().first()
    if found is None:
        return None
    row = dict(found)
    cache.put(key_id, version, row)
    return row


def _principal(r: Any) -> Principal:
    return Principal(r["key_id"], Role(r["role"]), r["party_id"])


def authenticate(store: Store, secret: str, *, stamps: dict[str, int] | None = None) -> Principal:
    """The principal a secret proves; :class:`Unauthenticated` when malformed, unknown or revoked.

    ``stamps``: the version counters read at the start of the request (read here otherwise).
    """
    m = _SECRET_RE.match(secret or "")
    if m is None:
        msg = "authorization: not an Accord API key; expected 'Bearer acc_<key id>_<secret>'"
        raise Unauthenticated(msg)
    r = _key_row(store, m.group(1), stamps)
    # compare_digest: the time taken does not tell how much of the hash matched
    if r is None or not hmac.compare_digest(r["secret_sha256"], _hash(secret)):
        msg = f"authorization: API key {m.group(1)} is not known"
        raise Unauthenticated(msg)
    if r["revoked_at"] is not None:
        msg = f"authorization: API key {m.group(1)} was revoked"
        raise Unauthenticated(msg)
    return _principal(r)


# ---------------------------------------------------------------- session cookies


def server_secret(settings: Settings) -> bytes:
    """The key that signs session cookies: 32 random bytes in ``home/api/session.key`` (made on first use)."""
    path: Path = settings.home / "api" / "session.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _mac(settings: Settings, key_id: str, expires: int, secret_sha256: str) -> str:
    msg = f"{key_id}.{expires}.{secret_sha256}".encode()
    return hmac.new(server_secret(settings), msg, hashlib.sha256).hexdigest()


def session_cookie_for(secret: str, settings: Settings | None = None, *, now: datetime | None = None) -> str:
    """The ``accord_session`` cookie value for a key's secret (valid :data:`SESSION_TTL`).

    The caller must have checked the secret with :func:`authenticate` first.
    """
    settings = settings or get_settings()
    m = _SECRET_RE.match(secret or "")
    if m is None:
        msg = "secret: not an Accord API key; expected acc_<key id>_<secret>"
        raise Unauthenticated(msg)
    start = now or datetime.now().astimezone()
    expires = int((start + SESSION_TTL).timestamp())
    return f"{m.group(1)}.{expires}.{_mac(settings, m.group(1), expires, _hash(secret))}"


def principal_from_cookie(
    store: Store, cookie: str, settings: Settings | None = None, *, stamps: dict[str, int] | None = None
) -> Principal:
    """The principal an ``accord_session`` cookie proves; :class:`Unauthenticated` otherwise."""
    settings = settings or get_settings()
    parts = (cookie or "").split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise Unauthenticated("accord_session: malformed session cookie; sign in again")
    key_id, expires, mac = parts[0], int(parts[1]), parts[2]
    r = _key_row(store, key_id, stamps)
    if r is None or not hmac.compare_digest(mac, _mac(settings, key_id, expires, r["secret_sha256"])):
        raise Unauthenticated("accord_session: session cookie not valid; sign in again")
    if expires < store.clock().timestamp():
        raise Unauthenticated("accord_session: session expired; sign in again")
    if r["revoked_at"] is not None:
        msg = f"accord_session: API key {key_id} was revoked"
        raise Unauthenticated(msg)
    return _principal(r)


def request_counters(request: Request, store: Store) -> dict[str, int]:
    """The version counters as this request first read them (one query per request, then held on
    ``request.state``): the key cache and the read cache both check their entries against them."""
    stamps: dict[str, int] | None = getattr(request.state, "counters", None)
    if stamps is None:
        stamps = read_counters(store)
        request.state.counters = stamps
    return stamps


def principal_from_request(request: Request, store: Store) -> Principal:
    """Who made this request: the ``Authorization: Bearer`` key, else the ``accord_session`` cookie."""
    header = request.headers.get("authorization")
    settings = getattr(request.app.state, "settings", None)
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("authorization: expected 'Bearer <API key>'")
        return authenticate(store, secret.strip(), stamps=request_counters(request, store))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return principal_from_cookie(store, cookie, settings, stamps=request_counters(request, store))
    raise Unauthenticated("authorization: no API key; send 'Authorization: Bearer <API key>'")


# ---------------------------------------------------------------- CSRF


class CsrfRefused(Forbidden):
    """A state-changing request made with the session cookie but without this browser's CSRF token."""

    code = "csrf"
    field = CSRF_HEADER


def csrf_token_for(settings: Settings, nonce: str) -> str:
    """The CSRF token of a browser's nonce (the ``accord_csrf`` cookie): HMAC(server secret, nonce).

    An attacker's page can make the browser send the cookie but can neither read it nor
    compute its HMAC, and a cookie planted by someone else does not match a token made
    without the server secret.
    """
    return hmac.new(server_secret(settings), f"csrf|{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(request: Request, token: str, settings: Settings | None = None) -> bool:
    """Whether ``token`` is the CSRF token of this browser's ``accord_csrf`` nonce."""
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not token:
        return False
    settings = settings or getattr(request.app.state, "settings", None) or get_settings()
    return hmac.compare_digest(csrf_token_for(settings, nonce), token)


def require_csrf_header(request: Request) -> None:
    """:class:`CsrfRefused` (403) unless the request carries this browser's token in ``X-CSRF-Token``."""
    if not csrf_matches(request, request.headers.get(CSRF_HEADER, "")):
        msg = (
            f"{CSRF_HEADER}: missing or not this browser's token; a {request.method} made with the portal's "
            f"session cookie must send the token the portal's pages carry (or use 'Authorization: Bearer <API key>')"
        )
        raise CsrfRefused(msg)


# ---------------------------------------------------------------- FastAPI dependencies


def store_of(request: Request) -> Store:
    """The app's store (opened once by ``create_app``)."""
    store: Store = request.app.state.store
    return store


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (401 otherwise); a caller proved by the session
    cookie (no ``Authorization`` header) that changes anything needs the CSRF header too (403)."""
    principal = principal_from_request(request, store_of(request))
    if not request.headers.get("authorization") and request.method.upper() in UNSAFE_METHODS:
        require_csrf_header(request)
    return principal


def require_role(*roles: Role) -> Callable[[Request], Principal]:
    """FastAPI dependency factory: the caller, if its role is one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal.role not in allowed:
            msg = f"role: {principal.role.value} may not do this; needs {' or '.join(sorted(r.value for r in allowed))}"
            raise Forbidden(msg)
        return principal

    return dependency


# ---------------------------------------------------------------- audit log


# The API audit log lives in accord.api.audit; kept importable from here for the portal.
from accord.api.audit import ApiAuditEvent, audit, audit_events  # noqa: E402, F401
