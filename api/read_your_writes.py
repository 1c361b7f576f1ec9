"""Read your own writes when reads go to standbys, in every server process alike.

A case just reported, a move just made, a plan just published must show on the client's next
read even if the standbys have not replayed it yet, whichever process of `serve --workers N`
answers that read. No state is shared between the processes: the answer to a successful write
carries the primary's WAL position after its commit (store.wal_positions), in the header
`Gridmap-Wrote-LSN` and the cookie `gridmap_wrote`. A read that brings it back (an API client
echoes the header; a browser sends the cookie) uses a standby only if that standby has replayed
up to it, else the primary. A client that echoes nothing is still remembered by its user name in
the process that answered its write. Only installed when reads go to standbys (store.standby_reads).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from http.cookies import SimpleCookie

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import InvalidParameter
from store.wal_positions import lsn_token, parse_lsn_token

log = logging.getLogger("gridmap.read_your_writes")

COOKIE = "gridmap_wrote"
HEADER = "Gridmap-Wrote-LSN"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REMEMBERED = 10_000  # user names; the oldest are forgotten first
PRIMARY = 1 << 64  # beyond any WAL position: no standby has it, the primary has everything
OLD_COOKIE = "1"  # the value before positions: this client's reads go to the primary


class RecentWriters:
    """User names that wrote lately, each with its last write's WAL position, until its window ends."""

    def __init__(self, window_s: float) -> None:
        """Remember writers for `window_s` seconds."""
        self.window_s = window_s
        self._until: dict[str, tuple[float, int]] = {}

    def mark(self, username: str, lsn: int = PRIMARY) -> None:
        """`username` just wrote, up to `lsn` of the primary's WAL."""
        if len(self._until) >= MAX_REMEMBERED:
            now = time.monotonic()
            self._until = {k: v for k, v in self._until.items() if v[0] > now}
            while len(self._until) >= MAX_REMEMBERED:
                self._until.pop(next(iter(self._until)))
        self._until.pop(username, None)
        self._until[username] = (time.monotonic() + self.window_s, lsn)

    def written_up_to(self, username: str) -> int | None:
        """The WAL position of `username`'s last write within the window, None if none."""
        until, lsn = self._until.get(username, (0.0, 0))
        return lsn if until > time.monotonic() else None


def _cookie_position(cookie: str) -> int:
    """The position a cookie names; PRIMARY for an older release's cookie (`1`: "read the
    primary") or one whose write's position was unknown (`primary`)."""
    if cookie == OLD_COOKIE:
        return PRIMARY
    try:
        return parse_lsn_token(cookie)
    except ValueError:
        return PRIMARY


def read_after(request: Request) -> int | None:
    """The WAL position this request's reads must see (its client's last write): None when any
    fresh standby will do, PRIMARY when only the primary will."""
    wanted = []
    if (echoed := request.headers.get(HEADER)) is not None:
        try:
            wanted.append(parse_lsn_token(echoed.strip()))
        except ValueError as exc:
            raise InvalidParameter(f"{HEADER}: {exc}") from None
    if (cookie := request.cookies.get(COOKIE)) is not None:
        wanted.append(_cookie_position(cookie))
    writers: RecentWriters | None = getattr(request.app.state, "recent_writers", None)
    user = getattr(request.state, "user", None)
    if writers is not None and user is not None and (lsn := writers.written_up_to(user.username)) is not None:
        wanted.append(lsn)
    return max(wanted, default=None)


class PrimaryPosition:
    """The primary's WAL position after a commit, asked once for all the writes answered meanwhile:
    every caller gets a position read after it called (so above its own commit), and one query
    serves every write that finished while the previous one ran."""

    def __init__(self, ask: Callable[[], int]) -> None:
        """`ask`: reads the primary's position (blocking: run in a thread)."""
        self._ask = ask
        self._next: asyncio.Future[int] | None = None

    async def after_commit(self) -> int:
        """A WAL position at or past every commit made before this call."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._read(self._next))
        return await asyncio.shield(self._next)

    async def _read(self, future: asyncio.Future[int]) -> None:
        # Callers that arrive from here on wait for the next query: this one may have started
        # before their commit.
        self._next = None
        try:
            future.set_result(await asyncio.to_thread(self._ask))
        except Exception as exc:  # the primary went away just after the write
            future.set_exception(exc)
            future.exception()  # retrieved: a caller may have gone


class ReadYourWrites:
    """Gives the client of every successful write its WAL position (header and cookie), and
    remembers it by user name in this process."""

    def __init__(self, app: ASGIApp, writers: RecentWriters, position: PrimaryPosition) -> None:
        """Wrap `app`; `writers` is shared with read_after through app.state."""
        self.app, self.writers, self.position = app, writers, position

    def _cookie(self, value: str) -> bytes:
        cookie = SimpleCookie()
        cookie[COOKIE] = value
        cookie[COOKIE].update({"max-age": str(round(self.writers.window_s)), "path": "/", "httponly": True})
        cookie[COOKIE]["samesite"] = "Lax"
        return cookie[COOKIE].OutputString().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass reads through untouched; mark the client of a write answered below 400."""
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return

        async def marking(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                lsn = await self._written_up_to()
                token = lsn_token(lsn) if lsn != PRIMARY else "primary"
                headers = [(b"set-cookie", self._cookie(token))]
                if lsn != PRIMARY:
                    headers.append((HEADER.lower().encode(), token.encode()))
                message["headers"] = [*message.get("headers", []), *headers]
                user = (scope.get("state") or {}).get("user")
                if user is not None:
                    self.writers.mark(user.username, lsn)
            await send(message)

        await self.app(scope, receive, marking)

    async def _written_up_to(self) -> int:
        """The primary's position after this write; PRIMARY if it cannot be known now."""
        try:
            return await self.position.after_commit()
        except Exception as exc:  # the write stands; this client's reads go to the primary
            log.warning("the primary's WAL position is unknown after a write (%s)", exc)
            return PRIMARY
