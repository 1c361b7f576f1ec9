"""Read your own writes when reads go to standbys: a client that just wrote reads from the primary.

A case just reported, a move just made, a plan just published must show on the next page even if
the standbys have not replayed it yet. For GRIDMAP_READ_YOUR_WRITES_S after a successful write,
the client's reads use the primary: it is known by a short cookie (pages, and every process of a
`--workers N` service alike) and by its user name in this process (API clients without cookies).
Only installed when reads go to standbys (store.standby_reads).
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "gridmap_wrote"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REMEMBERED = 10_000  # user names; the oldest are forgotten first


class RecentWriters:
    """User names that wrote lately, each until its window ends."""

    def __init__(self, window_s: float) -> None:
        """Remember writers for `window_s` seconds."""
        self.window_s = window_s
        self._until: dict[str, float] = {}

    def mark(self, username: str) -> None:
        """`username` just wrote."""
        if len(self._until) >= MAX_REMEMBERED:
            now = time.monotonic()
            self._until = {k: v for k, v in self._until.items() if v > now}
            while len(self._until) >= MAX_REMEMBERED:
                self._until.pop(next(iter(self._until)))
        self._until.pop(username, None)
        self._until[username] = time.monotonic() + self.window_s

    def wrote_lately(self, username: str) -> bool:
        """Whether `username` wrote within the window."""
        return self._until.get(username, 0.0) > time.monotonic()


def must_read_primary(request: Request) -> bool:
    """Whether this request's reads must see its client's own recent writes."""
    if COOKIE in request.cookies:
        return True
    writers: RecentWriters | None = getattr(request.app.state, "recent_writers", None)
    user = getattr(request.state, "user", None)
    return writers is not None and user is not None and writers.wrote_lately(user.username)


class ReadYourWrites:
    """Marks the client of every successful write (cookie and user name)."""

    def __init__(self, app: ASGIApp, writers: RecentWriters) -> None:
        """Wrap `app`; `writers` is shared with must_read_primary through app.state."""
        self.app, self.writers = app, writers
        cookie = SimpleCookie()
        cookie[COOKIE] = "1"
        cookie[COOKIE].update({"max-age": str(round(writers.window_s)), "path": "/", "httponly": True})
        cookie[COOKIE]["samesite"] = "Lax"
        self._set_cookie = cookie[COOKIE].OutputString().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass reads through untouched; mark the client of a write answered below 400."""
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return

        async def marking(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                message["headers"] = [*message.get("headers", []), (b"set-cookie", self._set_cookie)]
                user = (scope.get("state") or {}).get("user")
                if user is not None:
                    self.writers.mark(user.username)
            await send(message)

        await self.app(scope, receive, marking)
