"""The live feed of case changes: server-sent events fed by PostgreSQL LISTEN/NOTIFY.

Each server process keeps one listening connection and one reader of the event log
(api.live_feed.Feed): a NOTIFY (sent by the trigger on `cases`, whichever process made the
change) makes the process read the log once, and every open stream takes its user's new events
from memory. The log, not the notification, is the source of truth: the reader also looks every
few seconds, and a client reconnecting with Last-Event-ID resumes exactly where it was (from the
database, when the process no longer holds events that old). When reading the log fails (the
database went away), the open streams end cleanly, and EventSource clients reconnect with their
Last-Event-ID after RETRY_MS. See docs/live-feed.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from access.roles import User
from api.access import user_of
from api.errors import InvalidParameter
from api.live_deflate import DeflatedStream, Segment, accepts_deflate, segment
from api.live_feed import KEEP, Feed, StreamSlots, feed_event, sse_for
from geo import geojson
from store import case_events as store
from store.engine import session_factory

log = logging.getLogger("gridmap.live")

router = APIRouter(tags=["cases"])

CHANNEL = "case_events"  # sent by the trigger on cases (migration 0002_cases)
RETRY_MS = 2000  # what EventSource clients wait before reconnecting
PING_S = 15  # a comment sent on a stream quiet this long, so that proxies keep it open
_CONNECTED = ServerSentEvent(comment="connected", retry=RETRY_MS).encode()
_PING = segment(ServerSentEvent(comment="ping").encode())
Part = bytes | Segment | None  # what _events gives a stream to send next (see there)


def make_feed(engine: Engine, keep: int = KEEP) -> Feed:
    """The process's reader of the event log on `engine`, keeping `keep` events in memory.

    Sessions of its own (autocommit): a background task, it shares no request's session.
    """
    factory = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))

    def read(cursor: store.EventCursor) -> list[dict]:
        with factory() as session:
            return store.read_events(session, cursor, limit=store.EVENT_BATCH)

    def head() -> store.EventCursor:
        with factory() as session:
            return store.event_head(session)

    return Feed(read, head, event_json, keep)


# Each event's data is the case as GET /cases/{id} shows it, with `kind` (created, updated) and `at`.
EVENTS = {"type": "string", "description": "`event: created|updated`, `id:` and `data:` (the case as JSON)"}


@router.get(
    "/cases/stream",
    response_class=EventSourceResponse,
    responses={
        200: {"description": "Server-sent events", "content": {"text/event-stream": {"schema": EVENTS}}},
        429: {"description": "Too many live feeds open for this user or this server"},
    },
)
async def stream(
    request: Request,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this event (set by EventSource)")
    ] = None,
) -> EventSourceResponse:
    """Server-sent events: one `created` or `updated` event per case change, with the case's state."""
    cursor = _cursor(last_event_id) if last_event_id else None
    feed: Feed = request.app.state.feed
    slots: StreamSlots = request.app.state.stream_slots
    user = user_of(request)
    release = slots.take(user)  # 429 beyond the limits, before anything is sent
    deflate = accepts_deflate(request.headers.get("accept-encoding"))  # browsers do: a tenth of the bytes
    parts = _events(feed, request.app.state.read_sessions, user, cursor, deflate)
    if deflate:
        return EventSourceResponse(
            _deflated(parts),
            ping=0,  # sse-starlette's pings would go uncompressed: _deflated sends its own
            headers={"Content-Encoding": "deflate", "Vary": "Accept-Encoding"},
            background=BackgroundTask(release),
        )
    return EventSourceResponse(
        _raw(parts), ping=PING_S, headers={"Vary": "Accept-Encoding"}, background=BackgroundTask(release)
    )


async def _raw(parts: AsyncIterator[Part]) -> AsyncIterator[bytes]:
    async for part in parts:
        if isinstance(part, bytes):
            yield part


async def _deflated(parts: AsyncIterator[Part]) -> AsyncIterator[bytes]:
    """The stream compressed (api.live_deflate): shared segments, its own pings, a proper end."""
    out = DeflatedStream()
    loop = asyncio.get_running_loop()
    sent = loop.time()
    async for part in parts:
        if part is not None:
            yield out.send(segment(part) if isinstance(part, bytes) else part)
            sent = loop.time()
        elif loop.time() - sent >= PING_S:
            yield out.send(_PING)
            sent = loop.time()
    yield out.end()


async def _events(
    feed: Feed, factory, user: User | None, cursor: store.EventCursor | None, deflate: bool = False
) -> AsyncIterator[Part]:
    """The stream of one client: its user's events after `cursor` (or from now), until the end.

    Chunks of SSE bytes, or with `deflate` the same compressed once for every stream (a Segment);
    None after a wait that brought nothing (a compressed stream pings then).
    """
    failures = feed.failures  # a failed read after this ends the stream
    yield _CONNECTED
    while cursor is None:  # from now: where this process's reader stands (once it has read)
        cursor = feed.head
        if cursor is None:
            await feed.changed(RETRY_MS / 1000)
            if feed.failures != failures:
                return
            yield None
    while True:
        news = feed.next_deflated_for(user, cursor) if deflate else feed.next_for(user, cursor)
        if news is None:  # older than the process holds: replay from the database
            try:
                news = await run_in_threadpool(_replay, factory, user, cursor)
            except SQLAlchemyError as e:
                log.warning("replaying the case event log failed (%s); ending a stream", e)
                return
        part, after = news
        if len(part):  # one write for all the new events this stream may see
            yield part
        if after != cursor:
            cursor = after
            continue
        await feed.changed(RETRY_MS / 1000)
        if feed.failures != failures:  # the database went away: end cleanly, the client comes back
            return
        yield None


def _replay(factory, user: User | None, cursor: store.EventCursor) -> tuple[bytes, store.EventCursor]:
    with factory() as session:
        events = [feed_event(e, event_json) for e in store.read_events(session, cursor)]
    return sse_for(user, events), events[-1].cursor if events else cursor


def _cursor(text: str) -> store.EventCursor:
    try:
        return store.EventCursor.parse(text)
    except ValueError:
        raise InvalidParameter(f"Last-Event-ID {text[:40]!r} is not an event id of this feed") from None


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def event_json(event: dict[str, Any]) -> str:
    """An event's data line: the case as it is now."""
    return json.dumps(
        {"kind": event["kind"], "at": event["at"], **geojson.with_position(event["body"])},  # as in /cases
        default=_json_default, ensure_ascii=False,
    )  # fmt: skip
