"""Small dependencies: a database session per request, and parsers that range-check parameters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from functools import partial
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from access.roles import Permission, User
from api.access import user_of
from api.errors import InvalidParameter, PayloadTooLarge
from api.params import in_calendar
from api.read_your_writes import PRIMARY, read_after
from cases.rules import Rules
from cases.worktime import SHANGHAI
from geo import crs
from geo.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request; committed by handlers that write, closed always.

    Reads (GET, HEAD) run in autocommit: no BEGIN and ROLLBACK round trips around a lookup that
    is one statement; a read made of several statements may see changes committed in between.
    """
    with request_session(request) as session:
        yield session


@contextmanager
def request_session(request: Request) -> Iterator[Session]:
    """The session of get_session as a context, for routes that need one only sometimes (a sync
    dependency costs two thread hand-offs on every request, used or not)."""
    factory = request.app.state.sessions
    if request.method in ("GET", "HEAD"):
        factory = request.app.state.read_sessions
        # A fresh standby when the settings allow; one that has the client's own writes if it
        # brought their WAL position (api.read_your_writes).
        standby = getattr(request.app.state, "standby_sessions", None)
        if standby is not None and (after := read_after(request)) != PRIMARY:
            factory = partial(standby, read_after=after)
    with factory() as session:
        yield session


# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in the thread pool, and a
# thread hop per parameter costs more than the parsing itself.


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


# Dates without a zone are Chinese local dates: "as of 2024-01-01" means midnight in Beijing.

SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def parse_at(at: str | None, name: str = "at") -> datetime | None:
    """A date (start of day, China time) or an ISO datetime; None means now/current."""
    if at is None or at == "":
        return None
    try:
        value = date.fromisoformat(at) if len(at) == 10 else datetime.fromisoformat(at)
    except ValueError:
        raise InvalidParameter(f"{name}={at!r} is not a date (YYYY-MM-DD) or an ISO 8601 datetime") from None
    in_calendar(name, value)
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=SHANGHAI)
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


async def at_param(
    at: Annotated[str | None, Query(description="Date (YYYY-MM-DD) or ISO datetime; default: now")] = None,
) -> datetime | None:
    """The `at` query parameter as an aware datetime."""
    return parse_at(at)


AtDep = Annotated[datetime | None, Depends(at_param)]


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    """`minlon,minlat,maxlon,maxlat` in storage lon/lat, checked for order and range."""
    if not bbox:
        return None
    parts = bbox.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise crs.CoordinateError(f"bbox={bbox!r} must be four numbers: minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise crs.CoordinateError(
            f"bbox={bbox!r}: need -180 ≤ minlon < maxlon ≤ 180 and -90 ≤ minlat < maxlat ≤ 90"
        )
    return minx, miny, maxx, maxy


async def bbox_param(
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (EPSG:4490)")] = None,
) -> tuple[float, float, float, float] | None:
    """The `bbox` query parameter."""
    return parse_bbox(bbox)


BboxDep = Annotated[tuple[float, float, float, float] | None, Depends(bbox_param)]


async def read_body(request: Request, limit: int, too_large: str) -> bytes:
    """The request body, read chunk by chunk and given up past `limit` bytes (PayloadTooLarge with
    `too_large`): a body without a Content-Length is never held whole before its size is known."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def actor(request: Request) -> str:
    """Who acts (for the audit log and history): the signed-in user's name, or `public`."""
    user = user_of(request)
    return user.username if user else "public"


ActorDep = Annotated[str, Depends(actor)]


async def get_rules(request: Request) -> Rules:
    """Categories, calendar and departments loaded when the app was built."""
    return request.app.state.rules


RulesDep = Annotated[Rules, Depends(get_rules)]


def entitled(user: User | None) -> bool:
    """Whether the caller may see reporters' names and phones (never a confidential reporter's)."""
    return user is not None and user.can(Permission.READ_PERSONAL)
