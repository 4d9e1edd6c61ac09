"""One error shape for the API: ``{"error": {"code", "message", "field", "problems"}}``.

Every :class:`accord.errors.AccordError` (and FastAPI's own request-validation and HTTP
errors) is mapped here, in one place, to a status and this body; routes never build errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.errors import (
    AccordError,
    Conflict,
    Forbidden,
    LedgerError,
    NotFound,
    NotLicensed,
    Rejected,
    StoreError,
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
)
HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "not_allowed"}


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


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(AccordError, _accord)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http)
