"""One error shape for the API: ``{"error": {"code", "message", "field", "problems"}}``.

Every :class:`accord.errors.AccordError` (and FastAPI's own request-validation and HTTP
errors) is mapped here, in one place, to a status and this body; routes never build errors.
Any other exception is a bug: it is logged with its traceback and answered 500 with a generic
message and the request's id, never its internals. :class:`BodyLimit` refuses request bodies
past ``ACCORD_API_MAX_BODY_MB`` (413), in the same shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.errors import (
    AccordError,
    Conflict,
    Forbidden,
    LedgerError,
    NotFound,
    NotLicensed,
    Rejected,
    StoreError,
    TooLarge,
    Unauthenticated,
    ValidationError,
)
from accord.outputs.plans import Refused

# Most specific first: the first class an error is an instance of decides its status.
STATUS: tuple[tuple[type[AccordError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Rejected, 422),
    (ValidationError, 422),
    (Conflict, 409),
    (NotLicensed, 409),  # the request is well formed; the state of the licences refuses it
    (Refused, 409),  # the plan's allowance refuses it now
    (LedgerError, 409),
    (StoreError, 503),
    (TooLarge, 413),
)
HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "not_allowed"}
log = logging.getLogger("accord.api")


def status_of(exc: AccordError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 400)


def body(
    code: str, message: str, field: str | None = None, problems: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if problems is not None:
        error["problems"] = problems
    return {"error": error}


def _accord(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AccordError)  # registered for AccordError only
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, Rejected):
        problems = [p.to_dict() for p in exc.problems]
        first = exc.problems[0].field if exc.problems else None
        return JSONResponse(body(exc.code, str(exc), first, problems), status_code=status)
    field = getattr(exc, "field", None)
    return JSONResponse(body(exc.code, str(exc), field), status_code=status, headers=headers)


def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field_of(first.get("loc", ()))
    problems = [
        {
            "code": "validation",
            "file": "",
            "location": ".".join(str(p) for p in e.get("loc", ())),
            "field": _field_of(e.get("loc", ())),
            "value": str(e.get("input", ""))[:200],
            "expected": str(e.get("msg", "")),
        }
        for e in errors
    ]
    message = f"{field}: {first.get('msg', 'invalid')}"
    return JSONResponse(body("validation", message, field, problems), status_code=422)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse(
        body(code, str(exc.detail), None), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def _internal(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback; the caller gets a generic message and the request's id."""
    rid = str(request.scope.get("state", {}).get("request_id", ""))
    log.error("internal error in %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
    message = f"internal error: the request could not be completed; quote request id {rid or '(none)'} to the operator"
    headers = {"x-request-id": rid} if rid else None
    return JSONResponse(body("internal", message, None), status_code=500, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers on an app (``Exception``: Starlette's last resort, for bugs)."""
    app.add_exception_handler(AccordError, _accord)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _internal)


class BodyLimit:
    """Refuses a request body past ``max_bytes`` with 413: at once when ``Content-Length`` says so,
    else as soon as the bytes received pass it (a chunked body), so no route reads an unbounded body.

    Before answering it reads and discards the rest of the body (up to ``4 * max_bytes`` more), so the
    client, still sending, reads the 413 rather than a connection reset.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen, refused, answered, finished = 0, "", False, False

        async def counted() -> Message:
            nonlocal seen, refused, finished
            message = await receive()
            finished = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not refused:
                    refused = self._message(seen)
                    raise TooLarge(refused)  # stops the route reading; whatever it answers, 413 goes out
            return message

        async def refuse(message: str) -> None:
            left = 4 * self.max_bytes  # read the rest (up to a bound) so the client sees the answer
            while not finished and left > 0:
                left -= len((await counted()).get("body", b""))
            await _send_error(send, 413, body("too_large", message, "body"))

        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not text.isdigit():
                msg = f"Content-Length: {text[:40]!r} is not a number of bytes"
                await _send_error(send, 400, body("bad_request", msg, "Content-Length"))
                return
            if int(text) > self.max_bytes:
                refused = self._message(int(text))
                await refuse(refused)
                return

        async def guarded(message: Message) -> None:
            nonlocal answered
            if not refused:
                await send(message)
            elif message["type"] == "http.response.start" and not answered:
                answered = True
                await refuse(refused)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise
        if refused and not answered:
            await refuse(refused)

    def _message(self, size: int) -> str:
        return (
            f"body: {size} bytes or more; expected at most {self.max_bytes} bytes "
            f"(ACCORD_API_MAX_BODY_MB={self.max_bytes // 2**20})"
        )


async def _send_error(send: Send, status: int, content: dict[str, Any]) -> None:
    data = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
