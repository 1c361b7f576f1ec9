"""One process's share of the live feed: a single reader of the event log for all its streams.

A notification (any process's commit of a case change) makes this process read the log once,
whatever the number of open streams; the events read are kept in memory, encoded once, and every
stream of the process takes what is new since its own cursor from there, filtered by its user's
jurisdiction (access.roles.User.may_see_case, the rule every case route applies). Only a client
resuming from an event older than the memory reads the database itself (the replay).

Notifications arriving while a read runs, or within an interval of its start, are answered by one
further read: under heavy intake a process reads the log a few times a second, and a stream is
woken (and sent one chunk holding all its new events) as often. The interval grows with the
process's open streams (interval()), which bounds what they cost the process.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError
from sse_starlette import ServerSentEvent

from access.roles import User
from api.live_deflate import Segment, segment
from errors import TooMany
from store import case_events as store

log = logging.getLogger("gridmap.live")

POLL_S = 2.0  # read the log this often even without a notification (one may have been missed)
# ... and no more often than this: notifications meanwhile share the next read. Each read wakes
# every stream with news once (one write per stream), so the pause grows with the open streams to
# keep their writes within WRITES_PER_S, between MIN_INTERVAL_S and MAX_INTERVAL_S.
MIN_INTERVAL_S = 0.05
MAX_INTERVAL_S = 1.0
WRITES_PER_S = 500
NOTHING = segment(b"")  # what a stream is sent when nothing new is for it
KEEP = 20_000  # events kept in memory; a client resuming from an older one is replayed from the database


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """An event as the streams need it: its position, whose it is, and its SSE bytes."""

    cursor: store.EventCursor
    unit_code: str | None
    grid_code: str | None
    department: str | None
    sse: bytes

    def visible_to(self, user: User | None) -> bool:
        """Whether the user's jurisdiction covers the case (the rule of the case routes)."""
        return user is None or user.may_see_case(self.unit_code, self.grid_code, self.department)


def feed_event(event: dict[str, Any], data: Callable[[dict[str, Any]], str]) -> FeedEvent:
    """Encode one event of the log (store.case_events.read_events) once, for every stream."""
    body = event["body"]
    sse = ServerSentEvent(data=data(event), event=event["kind"], id=str(event["cursor"])).encode()
    where = body.get("unit_code"), body.get("grid_code"), body.get("department")
    return FeedEvent(event["cursor"], *where, sse)


def sse_for(user: User | None, events: list[FeedEvent]) -> bytes:
    """The events the user may see, as one chunk of the stream."""
    return b"".join(e.sse for e in events if e.visible_to(user))


class Feed:
    """The events this process has read from the log, in delivery order, and a wakeup for streams.

    `read(cursor)` reads the next batch of the log after `cursor` (a blocking call: it runs on the
    thread pool); `head()` is where the log stands now. Events after `base` are all in memory.
    """

    def __init__(
        self,
        read: Callable[[store.EventCursor], list[dict[str, Any]]],
        head: Callable[[], store.EventCursor],
        data: Callable[[dict[str, Any]], str],
        keep: int = KEEP,
    ) -> None:
        self._read, self._head, self._data, self._keep = read, head, data, keep
        self.base: store.EventCursor | None = None  # None until the first read succeeded
        self._events: list[FeedEvent] = []
        self._cursors: list[store.EventCursor] = []
        self.failures = 0  # reads that failed so far: a stream open across one ends (see live.py)
        self.reads = 0  # reads that succeeded (for tests and figures)
        self.open_streams: Callable[[], int] = lambda: 0  # set by the app (StreamSlots.open)
        self._changed = asyncio.Event()
        self._due = asyncio.Event()
        # What streams of one user at one position are sent next: worked out once per read.
        self._next: dict[tuple[User | None, store.EventCursor], tuple[bytes, store.EventCursor]] = {}
        self._deflated: dict[tuple[User | None, store.EventCursor], Segment] = {}  # the same, compressed

    @property
    def head(self) -> store.EventCursor | None:
        """The last event read (or where the log stood at the first read); None before it."""
        return self._cursors[-1] if self._cursors else self.base

    def notify(self) -> None:
        """A notification arrived: read the log soon (called by the LISTEN loop)."""
        self._due.set()

    def after(self, cursor: store.EventCursor) -> list[FeedEvent] | None:
        """The events after `cursor` held in memory; None if they do not reach back that far."""
        if self.base is None or cursor < self.base:
            return None
        return self._events[bisect.bisect_right(self._cursors, cursor) :]

    def next_for(
        self, user: User | None, cursor: store.EventCursor
    ) -> tuple[bytes, store.EventCursor] | None:
        """What a stream of `user` at `cursor` is sent next: the SSE bytes of the new events the user
        may see (maybe none) and the cursor after them; None if memory does not reach back that far."""
        key = (user, cursor)
        known = self._next.get(key)
        if known is None:
            events = self.after(cursor)
            if events is None:
                return None
            if not events:
                return b"", cursor
            known = sse_for(user, events), events[-1].cursor
            self._next[key] = known
        return known

    def next_deflated_for(
        self, user: User | None, cursor: store.EventCursor
    ) -> tuple[Segment, store.EventCursor] | None:
        """`next_for` as a deflate segment, compressed once for every stream of `user` at `cursor`."""
        known = self.next_for(user, cursor)
        if known is None:
            return None
        chunk, after = known
        key = (user, cursor)
        part = self._deflated.get(key)
        if part is None and not chunk:
            return NOTHING, after
        if part is None:
            part = self._deflated[key] = segment(chunk)
        return part, after

    async def changed(self, timeout: float) -> None:
        """Until the next read that found events or failed, or `timeout` seconds."""
        event = self._changed
        # asyncio.timeout, not wait_for: no task per waiting stream and wakeup
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    def _fire(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Read the log on each notification (and every POLL_S), until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), POLL_S)
            self._due.clear()
            started = loop.time()
            await self.read_once()
            await asyncio.sleep(max(0.0, started + self.interval() - loop.time()))

    def interval(self) -> float:
        """The least time between two reads: what keeps the streams' writes within WRITES_PER_S."""
        return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, self.open_streams() / WRITES_PER_S))

    async def read_once(self) -> None:
        """Read everything new in the log; on a database error, count it and wake the streams."""
        try:
            if self.base is None:
                self.base = await run_in_threadpool(self._head)
                self._fire()  # streams waiting for a starting point have one
            found = False
            while True:
                batch = await run_in_threadpool(self._read, self.head)
                self._append([feed_event(e, self._data) for e in batch])
                found = found or bool(batch)
                if len(batch) < store.EVENT_BATCH:
                    break
            self.reads += 1
            if found:
                self._fire()
        except Exception as e:  # the database went away (or worse): the streams must not wait forever
            if isinstance(e, SQLAlchemyError):
                log.warning("reading the case event log failed (%s); ending the open streams", e)
            else:
                log.exception("reading the case event log failed; ending the open streams")
            self.failures += 1
            self._fire()

    def _append(self, events: list[FeedEvent]) -> None:
        if events:
            self._next.clear()
            self._deflated.clear()
        self._events.extend(events)
        self._cursors.extend(e.cursor for e in events)
        extra = len(self._events) - self._keep
        if extra > 0:
            self.base = self._cursors[extra - 1]
            del self._events[:extra], self._cursors[:extra]


class TooManyStreams(TooMany):
    """The user, or the process, has as many open streams as allowed; the message says which."""


class StreamSlots:
    """Counts open streams per user and in all, and refuses one beyond either limit."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user, self.total = per_user, total
        self._by_user: Counter[int | None] = Counter()
        self.open = 0

    def take(self, user: User | None) -> Callable[[], None]:
        """A slot for one more stream of `user`, or TooManyStreams; returns its release (idempotent)."""
        key = user.id if user else None
        if self.open >= self.total:
            raise TooManyStreams(f"this server has {self.open} live feeds open, its limit; try again later")
        if self._by_user[key] >= self.per_user:
            raise TooManyStreams(
                f"you have {self._by_user[key]} live feeds open, the limit per user; close one first"
            )
        self._by_user[key] += 1
        self.open += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1
                self._by_user[key] -= 1
                if not self._by_user[key]:
                    del self._by_user[key]

        return release
