"""The API's app factory: ``create_app(settings)`` gives the FastAPI app ``accord serve`` runs.

Routes live in :mod:`accord.api.routes` (thin), rules in :mod:`accord.api.services`, the error
shape in :mod:`accord.api.errors`. The portal (:mod:`accord.web`, built separately) mounts its
pages on the same app through ``accord.web.mount(app)`` when that package is present.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response

from accord import __version__
from accord.api import errors
from accord.api.jobs import JobRunner, fail_interrupted
from accord.api.routes import admin, catalog, datasets, rights, studio
from accord.api.schemas import ErrorBody
from accord.registry.store import Store
from accord.settings import Settings, get_settings

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": why}
    for status, why in (
        (400, "A request Accord cannot act on (an unreadable key, file or proof)."),
        (401, "No API key, or an unknown or revoked one."),
        (403, "This role may not do this."),
        (404, "Not found, or not yours."),
        (409, "Refused by the state of the registry, the licences or the plan."),
        (422, "The request breaks a rule; the field at fault is named."),
    )
}
ROUTERS = (admin.router, catalog.router, rights.router, datasets.router, studio.router)
OPTIONAL_ROUTERS = ("accord.api.routes.royalties",)  # present once the royalties engine is


def api_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    for r in ROUTERS:
        router.include_router(r)
    for name in OPTIONAL_ROUTERS:
        if importlib.util.find_spec(name) is not None:
            router.include_router(importlib.import_module(name).router)
    return router


def create_app(settings: Settings | None = None, *, store: Store | None = None, job_workers: int = 1) -> FastAPI:
    """The API (and, when :mod:`accord.web` exists, the portal) over one registry."""
    settings = settings or get_settings()
    store = store or Store.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.jobs.shutdown()

    app = FastAPI(
        title="Accord API",
        version=__version__,
        description=(
            "Licensed-by-design AI music: catalog, licences, opt-outs, consented training sets and proofs, "
            "models, generation, usage. Authenticate with `Authorization: Bearer <API key>` "
            '(`accord apikey create`). Errors: `{"error": {"code", "message", "field"}}`.'
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    fail_interrupted(store)
    app.state.jobs = JobRunner(store, settings, workers=job_workers)
    errors.install(app)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id", "")[:64] or secrets.token_hex(8)
        request.state.request_id = rid
        response = await call_next(request)
        response.headers["X-Request-ID"] = rid
        return response

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: answers without touching the registry (the load benchmark's baseline)."""
        return {"status": "ok", "version": __version__}

    app.include_router(api_router())
    # The portal is built in its own package; mount it when it is there (the API works without it).
    if importlib.util.find_spec("accord.web") is not None:
        web = importlib.import_module("accord.web")
        if hasattr(web, "mount"):
            web.mount(app)
        elif hasattr(web, "router"):
            app.include_router(web.router)
    return app
