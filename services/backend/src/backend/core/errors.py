"""Every error leaves the API as JSON `{"detail": "..."}` saying what to do next."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    where = f"{request.method} {request.url.path}"
    if exc.status_code == status.HTTP_404_NOT_FOUND and detail == "Not Found":
        detail = f"No such endpoint: {where}. The API is described at /docs."
    elif exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        detail = f"Method not allowed: {where}. See /docs for the methods this path accepts."
    return JSONResponse({"detail": detail}, exc.status_code, headers=exc.headers)


def _describe(error: dict[str, object]) -> str:
    loc = error.get("loc") or ()
    where = ".".join(str(part) for part in loc) if isinstance(loc, list | tuple) else str(loc)
    return f"{where}: {error.get('msg')}"


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    detail = (
        "Invalid request: "
        + "; ".join(_describe(e) for e in errors)
        + ". Fix these values and retry (parameters are documented at /docs)."
    )
    return JSONResponse(
        {"detail": detail, "errors": jsonable_encoder(errors)},
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "The database is unavailable; retry in a moment (`inv health` shows why)."},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "Internal server error; the backend logs have the traceback."},
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Connection-level failures only: a broken query is a bug and stays a 500.
    for unavailable in (OperationalError, psycopg.OperationalError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
