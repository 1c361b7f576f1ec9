"""One map from domain errors to HTTP answers, registered once on the app."""

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

from access.roles import AccessDenied
from api.access import LoginRequired
from api.live_feed import TooManyStreams
from cases.categories import UnknownCategory
from cases.intake_checks import OutsideUnits
from cases.lifecycle import IllegalMove, MissingNeeds
from cases.photos import PhotoRejected
from geo.codes import CodeError
from geo.crs import CoordinateError
from geo.importer import ImportRejected
from geo.patrols import PatrolRejected
from geo.plan_validation import problems_geojson
from geo.plans import EditError, PlanClosed, PlanConflict, PlanInvalid, PlanNotFound
from services.api_keys import ApiKeyNotFound, ApiKeyRefused
from store.cases import CaseNotFound, IdempotencyConflict, InvalidReport, InvalidTarget
from store.patrols import PatrolNotFound
from store.users import UserError

log = logging.getLogger("gridmap.api")


class NotFound(LookupError):
    """A resource that does not exist; the message names it."""


class InvalidParameter(ValueError):
    """A request parameter that cannot be used; the message says why."""


class UnsupportedMediaType(InvalidParameter):
    """A body in a format the endpoint does not read."""


class PayloadTooLarge(ValueError):
    """A body over the size limit; the message gives the limit."""


STATUS_BY_ERROR: dict[type[Exception], int] = {
    CoordinateError: 422,
    CodeError: 422,
    ImportRejected: 422,
    InvalidParameter: 422,
    UnsupportedMediaType: 415,
    PayloadTooLarge: 413,
    NotFound: 404,
    CaseNotFound: 404,
    UnknownCategory: 422,
    IdempotencyConflict: 422,
    InvalidTarget: 422,
    InvalidReport: 422,
    OutsideUnits: 422,
    MissingNeeds: 422,
    PhotoRejected: 422,
    IllegalMove: 409,
    AccessDenied: 403,
    UserError: 422,
    PlanNotFound: 404,
    EditError: 422,
    PlanInvalid: 422,
    PlanClosed: 409,
    PlanConflict: 409,
    PatrolRejected: 422,
    PatrolNotFound: 404,
    TooManyStreams: 429,
    ApiKeyRefused: 422,
    ApiKeyNotFound: 404,
}


# A photo's problem decides its answer: too big, not a kind we take, or broken.
PHOTO_STATUS = {"too_big": 413, "unsupported": 415, "corrupt": 422}


def _message(exc: Exception) -> str:
    # KeyError's str() is the repr of its argument; the argument is the message.
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


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
    for error, status in STATUS_BY_ERROR.items():

        async def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            if isinstance(exc, PhotoRejected):
                status = PHOTO_STATUS.get(exc.kind, 422)
            return _error(status, _message(exc), **_extra(exc))

        app.add_exception_handler(error, handler)

    async def database_down(request: Request, exc: DBAPIError | psycopg.OperationalError) -> JSONResponse:
        lost = isinstance(exc, OperationalError | psycopg.OperationalError)
        if not lost and not getattr(exc, "connection_invalidated", False):
            return await unexpected(request, exc)
        # A lost connection, a server shutting down, a primary turned standby (failover): the
        # pool has dropped the connection and the next request finds the primary again. Some
        # statements (the shared rate limits) go to psycopg directly: its error means the same.
        log.error("database unavailable: %s", getattr(exc, "orig", exc))
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
