"""The web UI: server-rendered pages at `/`, their scripts and styles under `/static`.

`install_web(app)` adds it to the API app; the pages use the API's own queries and, from
their scripts, the API itself (with the session cookie and a CSRF token, see auth.py).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from backend.web import pages, sign_in
from backend.web.errors import install_page_errors
from backend.web.templating import STATIC_DIR, STATIC_PREFIX

ROUTERS = (sign_in.router, pages.router)
"""Every page route (the prod nginx lets their own CSP through; tests/infra checks the map)."""


def install_web(app: FastAPI) -> None:
    """Pages, static files and HTML error pages; after the API's error handlers."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    install_page_errors(app)
