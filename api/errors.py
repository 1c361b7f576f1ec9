"""One map from domain errors to HTTP answers, registered once on the app."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from geo.codes import CodeError
from geo.crs import CoordinateError
from geo.importer import ImportRejected

log = logging.getLogger("gridmap.api")


class NotFound(LookupError):
    """A resource that does not exist; the message names it."""


class InvalidParameter(ValueError):
    """A request parameter that cannot be used; the message says why."""


STATUS_BY_ERROR: dict[type[Exception], int] = {
    CoordinateError: 422,
    CodeError: 422,
    ImportRejected: 422,
    InvalidParameter: 422,
    NotFound: 404,
}


def _error(status: int, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def register(app: FastAPI) -> None:
    """Install the handlers: domain errors become 4xx with a reason, anything else a bare 500."""
    for error, status in STATUS_BY_ERROR.items():

        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            extra = {"errors": exc.report.errors} if isinstance(exc, ImportRejected) else {}
            return _error(status, str(exc), **extra)

        app.add_exception_handler(error, handler)

    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc.orig)
        return _error(503, "the database is unavailable; try again shortly")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the traceback for operators; never send it to clients.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; it has been logged")

    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(Exception, unexpected)
