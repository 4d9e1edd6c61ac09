"""Signing in and out of the portal, who is looking, and the CSRF check on every form.

Sign-in takes an API key (made with ``accord apikey create``), checks it with
:func:`accord.api.auth.authenticate` and gives the browser the ``accord_session`` cookie
made by :func:`accord.api.auth.session_cookie_for` (HttpOnly, SameSite=Lax): the key itself
is never stored in the browser. Every page asks :func:`accord.api.auth.principal_from_request`
who is looking; a party asking for a page of another role gets a 404, as for another
party's object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from accord.api.auth import (
    SESSION_COOKIE,
    Principal,
    Role,
    audit,
    authenticate,
    principal_from_request,
    session_cookie_for,
)
from accord.errors import Forbidden, NotFound, Unauthenticated
from accord.web.deps import (
    CSRF_COOKIE,
    PortalRoute,
    SignInRequired,
    csrf_valid,
    finish,
    render,
    settings_of,
    store_of,
    viewer_name,
)

router = APIRouter(prefix="/portal", route_class=PortalRoute, include_in_schema=False)

HOME = {
    Role.RIGHTS_HOLDER: "/portal/rights",
    Role.CREATOR: "/portal/studio",
    Role.OPERATOR: "/portal/operator",
}


def viewer(request: Request) -> Principal | None:
    """The signed-in principal, or ``None``; sets ``request.state.viewer`` for the page header."""
    try:
        principal = principal_from_request(request, store_of(request))
    except Unauthenticated:
        return None
    request.state.viewer = {
        "role": principal.role.value,
        "party_id": principal.party_id,
        "key_id": principal.key_id,
        "name": viewer_name(request, principal),
        "home": HOME[principal.role],
    }
    return principal


def signed_in(*roles: Role) -> Callable[[Request], Principal]:
    """Dependency: the signed-in principal of one of ``roles`` (anyone else: sign in, or 404)."""

    def dependency(request: Request) -> Principal:
        principal = viewer(request)
        if principal is None:
            raise SignInRequired
        if principal.role not in roles:
            raise NotFound(f"page {request.url.path!r}: not found")
        return principal

    return dependency


def require_csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Dependency for every POST: the form's token must match this browser's nonce."""
    if not csrf_valid(request, csrf):
        msg = "csrf: the form's token is missing or does not match this browser; reload the page and try again"
        raise Forbidden(msg)


CSRF = Depends(require_csrf)


def _safe_next(target: str) -> str:
    # only our own pages: never an absolute URL or a scheme-relative one (an open redirect)
    return target if target.startswith("/portal") and not target.startswith("//") else ""


@router.get("")
def portal_home(request: Request) -> Response:
    principal = viewer(request)
    return RedirectResponse(HOME[principal.role] if principal else "/portal/sign-in", status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "") -> Response:
    return render(request, "sign_in.html", {"next": _safe_next(next), "error": ""})


@router.post("/sign-in", dependencies=[CSRF])
def sign_in(request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    store = store_of(request)
    try:
        principal = authenticate(store, key.strip())
    except Unauthenticated as exc:
        return render(request, "sign_in.html", {"next": _safe_next(next), "error": str(exc)}, status=401)
    cookie = session_cookie_for(key.strip(), settings_of(request))
    audit(store, principal, "session.sign_in", "api_key", principal.key_id)
    response = RedirectResponse(_safe_next(next) or HOME[principal.role], status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", path="/", max_age=12 * 3600)
    response.delete_cookie(CSRF_COOKIE, path="/")  # a fresh nonce for the signed-in session
    return response


@router.post("/sign-out", dependencies=[CSRF])
def sign_out(request: Request) -> Response:
    principal = viewer(request)
    if principal is not None:
        audit(store_of(request), principal, "session.sign_out", "api_key", principal.key_id)
    response = RedirectResponse("/portal/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return finish(request, response)
