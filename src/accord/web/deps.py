"""What every portal page shares: the store and settings of the app, templates, HTML errors.

Pages are thin: they read through the domain functions (the same ones the CLI and the
API call) and render a template. An :class:`~accord.errors.AccordError` raised by a page
becomes an HTML error page with the status the API would give (a missing or foreign
object is a 404 that says nothing of whether it exists).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from accord.api.auth import CSRF_COOKIE, Principal, csrf_matches, csrf_token_for
from accord.api.deps import ranged
from accord.errors import AccordError, Conflict, Forbidden, NotFound, NotLicensed, Rejected, ValidationError
from accord.outputs.store import Output
from accord.registry.store import Store
from accord.settings import Settings, get_settings
from accord.timeutil import iso

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["iso"] = lambda dt: (iso(dt) or "")[:19].replace("T", " ")
templates.env.filters["day"] = lambda dt: (iso(dt) or "")[:10]

STATUS_OF: dict[type[AccordError], int] = {
    NotFound: 404,
    Conflict: 409,
    NotLicensed: 403,
    Forbidden: 403,
    ValidationError: 422,
    Rejected: 422,
}
_LOCK = threading.Lock()


class SignInRequired(Exception):
    """The page needs a signed-in party: the browser is sent to the sign-in page."""


def settings_of(request: Request) -> Settings:
    """The app's settings (``app.state.settings``), else the environment's."""
    found = getattr(request.app.state, "settings", None)
    if isinstance(found, Settings):
        return found
    with _LOCK:
        if not isinstance(getattr(request.app.state, "portal_settings", None), Settings):
            request.app.state.portal_settings = get_settings()
    return request.app.state.portal_settings  # type: ignore[no-any-return]


def store_of(request: Request) -> Store:
    """The app's registry (``app.state.store``), else one opened once for the portal."""
    found = getattr(request.app.state, "store", None)
    if isinstance(found, Store):
        return found
    with _LOCK:
        if not isinstance(getattr(request.app.state, "portal_store", None), Store):
            request.app.state.portal_store = Store.open(settings_of(request))
    return request.app.state.portal_store  # type: ignore[no-any-return]


def status_for(exc: AccordError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


class PortalRoute(APIRoute):
    """A route whose domain errors become HTML pages and whose anonymous visitors are sent to sign in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return RedirectResponse(f"/portal/sign-in?next={request.url.path}", status_code=303)
            except NotFound:
                return error_page(request, 404, "Not found", "There is nothing here you may see.")
            except AccordError as exc:
                return error_page(request, status_for(exc), "That did not work", str(exc))

        return handle


# ---------------------------------------------------------------- CSRF and rendering

# CSRF_COOKIE (from accord.api.auth): a random nonce per browser; every form carries
# HMAC(server secret, nonce) (accord.api.auth.csrf_token_for), checked on POST, and the API
# checks the same token in the X-CSRF-Token header of a request made with the session cookie.


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry (a nonce is made on its first page)."""
    nonce = getattr(request.state, "csrf_nonce", None) or request.cookies.get(CSRF_COOKIE)
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        request.state.csrf_nonce_new = nonce
    request.state.csrf_nonce = nonce
    return csrf_token_for(settings_of(request), nonce)


def csrf_valid(request: Request, token: str) -> bool:
    return csrf_matches(request, token, settings_of(request))


def finish(request: Request, response: Response) -> Response:
    """Set the CSRF nonce cookie on a response if this request made a new one."""
    nonce = getattr(request.state, "csrf_nonce_new", None)
    if nonce:
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict", path="/")
    return response


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200) -> Response:
    """A page: the template with the viewer, the CSRF token and the current path."""
    ctx = {
        "viewer": getattr(request.state, "viewer", None),
        "csrf": csrf_token(request),
        "path": request.url.path,
        **(context or {}),
    }
    return finish(request, templates.TemplateResponse(request, name, ctx, status_code=status))


def viewer_name(request: Request, principal: Principal) -> str:
    """How the header names the signed-in party (its registry name when it has one)."""
    party = store_of(request).snapshot(isrcs=()).parties.get(principal.party_id)
    return f"{party.name} ({principal.party_id})" if party else principal.party_id


def attachment(body: bytes | str, media_type: str, filename: str) -> Response:
    """A file the browser saves rather than shows."""
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


MEDIA = {"audio": "audio/wav", "pianoroll": "image/png"}
"""The files a portal page shows of an output: its audio (to listen) and its piano roll."""


def media_file(request: Request, output: Output, kind: str) -> Response:
    """An output's audio or piano roll, inline (``Range`` honoured, as the API's stream); the caller
    has checked that the viewer may see the output. Any other kind, or a missing file, is a 404."""
    info = output.files.get(kind) if kind in MEDIA else None
    if info is None:
        raise NotFound(f"output {output.output_id!r}: no {kind!r} file")
    try:
        data = store_of(request).media.read_verified(info["sha256"])
    except NotFound:
        raise NotFound(f"output {output.output_id!r}: its {kind} file is missing from the media store") from None
    return ranged(data, request.headers.get("range"), MEDIA[kind])
