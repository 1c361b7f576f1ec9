"""A request that lost its database connection is run again, within a bound, when that is safe.

A planned switchover shuts the old primary down: the statements running at that moment fail
with a lost connection, whatever the pool does. A read (GET, HEAD) and a request with an
Idempotency-Key can be run again without harm (the key settles whether a write happened), so
instead of answering them 503 this runs them again until GRIDMAP_DATABASE_WAIT_S after they
arrived; their next connection waits for the new primary (store.connect_wait). Anything else,
and anything past the bound, keeps its 503 with Retry-After (api.errors).
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOST = "database_lost"  # set in the request's state by api.errors when it answers 503 for a lost database
SAFE_METHODS = frozenset({"GET", "HEAD"})
PAUSE_S = 0.2


def safe_to_run_again(scope: Scope) -> bool:
    """A read, or a request whose Idempotency-Key makes a second run find the first's write."""
    if scope["method"] in SAFE_METHODS:
        return True
    return any(name == b"idempotency-key" for name, _ in scope.get("headers", []))


class ReplayWhenLost:
    """Runs a safe request again while its answer would be 503 for a lost database connection."""

    def __init__(self, app: ASGIApp, wait_s: float) -> None:
        """`wait_s`: how long after its arrival a request may still be run again."""
        self.app, self.wait_s = app, wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; hold back a lost-database 503 and run the request again instead."""
        if scope["type"] != "http" or self.wait_s <= 0 or not safe_to_run_again(scope):
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.wait_s
        received: list[Message] = []  # the body as it came, for the next run

        async def recording(message_source: Receive = receive) -> Message:
            message = await message_source()
            if message["type"] == "http.request":
                received.append(message)
            return message

        source: Receive = recording
        while True:
            held = await self._run(scope, source, send, last=time.monotonic() + PAUSE_S >= deadline)
            if held is None:
                return
            await asyncio.sleep(PAUSE_S)
            source = _replaying(list(received), recording)

    async def _run(self, scope: Scope, receive: Receive, send: Send, *, last: bool) -> list[Message] | None:
        """Run the app once; the held-back messages of a lost-database 503, else None (answered)."""
        state = scope.setdefault("state", {})
        state.pop(LOST, None)
        held: list[Message] = []

        async def holding(message: Message) -> None:
            if message["type"] == "http.response.start" and not last and state.get(LOST):
                held.append(message)
            elif held:
                held.append(message)  # the 503's body: dropped with it
            else:
                await send(message)

        await self.app(scope, receive, holding)
        return held or None


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the recorded body again, then whatever the client sends next."""

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay
