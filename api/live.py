"""The live feed of case changes: server-sent events fed by PostgreSQL LISTEN/NOTIFY.

Each server process keeps one listening connection; a NOTIFY (sent by the trigger on `cases`,
whichever process made the change) wakes every open stream, which then reads the event log
from its cursor. The log, not the notification, is the source of truth: a stream also looks
every few seconds, and a client reconnecting with Last-Event-ID resumes exactly where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.access import user_of
from api.errors import InvalidParameter
from api.routes.cases import event_json
from geo.db import case_events as store

router = APIRouter(tags=["cases"])

CHANNEL = "case_events"  # sent by the trigger on cases (migration 0002_cases)
POLL_S = 2.0  # look at the log this often even without a notification
RETRY_MS = 2000  # what EventSource clients wait before reconnecting


class Wakeup:
    """Something every waiting stream can await; fired on each notification."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Wake every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Until the next fire, or `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


@router.get("/cases/stream", response_class=EventSourceResponse)
async def stream(
    request: Request,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this event (set by EventSource)")
    ] = None,
) -> EventSourceResponse:
    """Server-sent events: one `created` or `updated` event per case change, with the case's state."""
    factory = request.app.state.read_sessions
    cursor = _cursor(last_event_id) if last_event_id else None
    if cursor is None:
        cursor = await run_in_threadpool(_head, factory)
    wakeup: Wakeup = request.app.state.wakeup
    user = user_of(request)

    def visible(event: dict) -> bool:
        body = event["body"]
        return user is None or user.may_see_case(
            body.get("unit_code"), body.get("grid_code"), body.get("department")
        )

    async def events() -> AsyncIterator[ServerSentEvent]:
        nonlocal cursor
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        while True:
            batch = await run_in_threadpool(_read, factory, cursor)
            for event in batch:
                cursor = event["cursor"]
                if visible(event):  # only cases in the subscriber's jurisdiction
                    yield ServerSentEvent(data=event_json(event), event=event["kind"], id=str(cursor))
            if len(batch) < store.EVENT_BATCH:
                await wakeup.wait(POLL_S)

    return EventSourceResponse(events(), ping=15)


def _cursor(text: str) -> store.EventCursor:
    try:
        return store.EventCursor.parse(text)
    except ValueError:
        raise InvalidParameter(f"Last-Event-ID {text[:40]!r} is not an event id of this feed") from None


def _head(factory) -> store.EventCursor:
    with factory() as session:
        return store.event_head(session)


def _read(factory, cursor: store.EventCursor) -> list[dict]:
    with factory() as session:
        return store.read_events(session, cursor, limit=store.EVENT_BATCH)
