"""One map from the error vocabulary (errors.py) to HTTP answers, registered once on the app.

Every error a user can act on is of one kind of errors.KINDS; STATUS_BY_KIND gives its status and
the answer is `{"detail": message}` (plus what some errors carry, `_extra`), or under /open311/ the
Open311 error list (api/open311_format.py). docs/errors.md has the table.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException

import errors
from api.access import LoginRequired
from api.replay_when_lost import LOST
from cases.lifecycle import IllegalMove
from errors import Conflict, Denied, Invalid, NotFound, Refused, TooLarge, TooMany, Unsupported, kind_of
from geo.importer import ImportRejected
from geo.plan_validation import problems_geojson
from geo.plans import PlanConflict, PlanInvalid

log = logging.getLogger("gridmap.api")

__all__ = ["InvalidParameter", "NotFound", "PayloadTooLarge", "UnsupportedMediaType", "register"]


class InvalidParameter(Invalid):
    """A request parameter that cannot be used; the message says why."""


class UnsupportedMediaType(InvalidParameter, Unsupported):
    """A body in a format the endpoint does not read."""


class PayloadTooLarge(TooLarge):
    """A body over the size limit; the message gives the limit."""


# THE map: each kind of the vocabulary (errors.KINDS), its HTTP status.
STATUS_BY_KIND: dict[type[Refused], int] = {
    Invalid: 422,
    TooLarge: 413,
    Unsupported: 415,
    NotFound: 404,
    Conflict: 409,
    Denied: 403,
    TooMany: 429,
}


def status_of(exc: Refused) -> int:
    """The HTTP status of an error of the vocabulary."""
    return STATUS_BY_KIND[kind_of(exc) or Invalid]


def _extra(exc: Exception) -> dict[str, object]:
    if isinstance(exc, ImportRejected):
        return {"errors": exc.report.errors}
    if isinstance(exc, IllegalMove):
        return {"current": exc.current, "allowed": exc.allowed}
    if isinstance(exc, PlanConflict):
        return {"conflicts": exc.conflicts}
    if isinstance(exc, PlanInvalid):
        return {"problems": problems_geojson(exc.problems)}
    return {}


# What a client waits before retrying while the database is away: a Patroni failover takes ~10 s.
DATABASE_RETRY_AFTER_S = 5


def _readable(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _error(status: int, detail: str, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def _open311(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response | None:
    """The answer in Open311's error format for a path under /open311/, else None."""
    from api import open311_format  # here: it imports this module's error classes

    path = request.url.path
    if not open311_format.is_open311(path):
        return None
    fmt = open311_format.format_of(path)
    return open311_format.error_response(fmt, open311_format.open311_status(status), detail, headers)


def register(app: FastAPI) -> None:
    """Install the handlers: domain errors become 4xx with a reason, anything else a bare 500."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        status, detail = status_of(exc), errors.message_of(exc)
        return _open311(request, status, detail) or _error(status, detail, **_extra(exc))

    app.add_exception_handler(Refused, refused)

    async def database_down(request: Request, exc: DBAPIError | psycopg.OperationalError) -> JSONResponse:
        lost = isinstance(exc, OperationalError | psycopg.OperationalError)
        if not lost and not getattr(exc, "connection_invalidated", False):
            return await unexpected(request, exc)
        # A lost connection, a server shutting down, a primary turned standby (failover): the
        # pool has dropped the connection and the next request finds the primary again. Some
        # statements (the shared rate limits) go to psycopg directly: its error means the same.
        log.error("database unavailable: %s", getattr(exc, "orig", exc))
        setattr(request.state, LOST, True)  # api.replay_when_lost may run a safe request again
        detail = "the database is unavailable; try again shortly"
        retry = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
        response = _open311(request, 503, detail, retry) or _error(503, detail)
        response.headers.update(retry)
        return response

    async def http_error(request: Request, exc: HTTPException) -> Response:
        # Unknown paths (404) and methods (405) under /open311/ never reach an Open311 route.
        answer = _open311(request, exc.status_code, str(exc.detail), exc.headers)
        return answer or await http_exception_handler(request, exc)

    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler fails on the bytes a body that is not UTF-8 leaves in the errors.
        errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: _readable})
        return JSONResponse(status_code=422, content={"detail": errors})

    async def value_refused(request: Request, exc: DataError) -> JSONResponse:
        # SQLSTATE class 22 (a value PostgreSQL cannot take: NUL in text, out of range) comes from
        # what the request sent, as every statement takes its values as parameters. The parameter
        # types (api.params) refuse these first; this answers whatever they did not foresee.
        log.warning("value refused by the database on %s %s: %s", request.method, request.url.path, exc.orig)
        return _error(422, f"a value in the request cannot be stored or compared: {_first_line(exc.orig)}")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the traceback for operators; never send it to clients.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = "internal error; it has been logged"
        return _open311(request, 500, detail) or _error(500, detail)

    async def login_required(request: Request, exc: Exception) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(DBAPIError, database_down)  # its subclass DataError has its own
    app.add_exception_handler(psycopg.OperationalError, database_down)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(DataError, value_refused)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
