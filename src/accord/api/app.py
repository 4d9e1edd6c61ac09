"""The API's app factory: ``create_app(settings)`` gives the FastAPI app ``accord serve`` runs.

Routes live in :mod:`accord.api.routes` (thin), rules in :mod:`accord.api.services`, the error
shape in :mod:`accord.api.errors`. The portal (:mod:`accord.web`, built separately) mounts its
pages on the same app through ``accord.web.mount(app)`` when that package is present.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord import __version__
from accord.api import errors
from accord.api.jobs import JobQueue
from accord.api.readcache import ReadCache
from accord.api.routes import admin, attribution, catalog, datasets, rights, royalties, studio
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
        (413, "The request body is larger than ACCORD_API_MAX_BODY_MB."),
        (422, "The request breaks a rule; the field at fault is named."),
        (500, "A bug in Accord: a generic message with the request id (details only in the server's log)."),
    )
}
ROUTERS = (  # the busiest first: a request is matched against the routes in this order (no paths overlap)
    catalog.router,
    studio.router,
    admin.router,
    rights.router,
    datasets.router,
    royalties.router,
    attribution.router,
)


class RequestIdMiddleware:
    """Gives each request an id (the caller's ``X-Request-ID``, or a new one) and echoes it back.

    Plain ASGI rather than ``@app.middleware("http")``: it adds no task or stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1")[:64] for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given or secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_id)


def api_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    for r in ROUTERS:
        router.include_router(r)
    return router


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """The API (and, when :mod:`accord.web` exists, the portal) over one registry.

    Jobs submitted here are only queued (``app.state.jobs``); ``accord worker`` processes run them.
    """
    settings = settings or get_settings()
    store = store or Store.open(settings)

    app = FastAPI(
        title="Accord API",
        version=__version__,
        description=(
            "Licensed-by-design AI music: catalog, licences, opt-outs, consented training sets and proofs, "
            "models, generation, usage. Authenticate with `Authorization: Bearer <API key>` "
            '(`accord apikey create`). Errors: `{"error": {"code", "message", "field"}}`.'
        ),
    )
    app.state.settings = settings
    app.state.store = store
    app.state.jobs = JobQueue(store)
    app.state.reads = ReadCache()  # rendered reads, kept while the registry counter stands
    errors.install(app)

    app.add_middleware(errors.BodyLimit, max_bytes=settings.api_max_body_mb * 2**20)
    app.add_middleware(RequestIdMiddleware)  # outermost: even a refused body gets its request id

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
