"""The web portal: server-rendered pages for rights holders, creators and the operator.

``mount(app)`` adds the portal to the API's FastAPI app (``accord serve``): the pages under
``/portal`` (Jinja2 templates, a little vanilla JavaScript, no build step) and their static
files under ``/portal/static``. The pages call the same domain functions as the CLI and the
API, through :mod:`accord.api.services` for who may see what.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from accord.web import pages_creator, pages_operator, pages_rights, session
from accord.web.deps import HERE

STATIC_PATH = "/portal/static"


def mount(app: FastAPI) -> None:
    """Add the portal's pages and static files to ``app`` (and ``/`` → the portal, if ``/`` is free)."""
    for module in (session, pages_rights, pages_creator, pages_operator):
        app.include_router(module.router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="portal-static")
    if not any(getattr(route, "path", None) == "/" for route in app.routes):

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/portal", status_code=307)


__all__ = ["mount"]
