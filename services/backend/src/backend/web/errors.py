"""Errors on pages are pages: the API's JSON error handlers, wrapped to render HTML for a
browser's page requests. The message is the same one the API would give; never a traceback."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from backend.web.auth import NotSignedInError, check_session, sign_in_url
from backend.web.templating import render

MACHINE_PATHS = ("/api/", "/health", "/metrics", "/docs", "/redoc", "/openapi.json", "/static/")
"""Paths programs read: their errors stay JSON."""

TITLES = {
    400: "That link is damaged",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not found",
    409: "Not ready yet",
    413: "Too large",
    422: "Cannot do that",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}

Handler = Callable[[Request, Exception], Any]


def is_page_request(request: Request) -> bool:
    path = request.url.path
    return path != "/api" and not path.startswith(MACHINE_PATHS)


def _message(request: Request, response: Response) -> str:
    try:
        detail = str(json.loads(bytes(response.body))["detail"])
    except (ValueError, KeyError, TypeError):
        detail = ""
    if response.status_code in (404, 405) and detail.startswith(("No such endpoint", "Method")):
        return f"There is no page at {request.url.path}."
    return detail or "The server could not show this page."


def _as_page(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        response: Response = await result if inspect.isawaitable(result) else result
        if not is_page_request(request) or response.status_code < 400:
            return response
        code = response.status_code
        message = _message(request, response)
        if code >= 500 and code != status.HTTP_503_SERVICE_UNAVAILABLE:
            # The API's message points at its logs; a person on a page needs a next step.
            message = (
                "The server could not show this page. Try again in a moment; if it keeps "
                "happening, the backend logs (`inv logs --service backend`) say why."
            )
        return render(
            request,
            "error.html",
            session=check_session(request).session,
            status_code=code,
            title=TITLES.get(code, "Cannot do that"),
            message=message,
        )

    return handle


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedInError)
    return RedirectResponse(
        sign_in_url(exc.next_path, exc.state), status_code=status.HTTP_303_SEE_OTHER
    )


def install_page_errors(app: FastAPI) -> None:
    """Wrap every installed handler; call after backend.core.errors.install_error_handlers."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.add_exception_handler(exc_class, _as_page(handler))
    app.add_exception_handler(NotSignedInError, _sign_in)
