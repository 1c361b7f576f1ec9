"""Plain ASGI middleware (no per-request task, as BaseHTTPMiddleware would add): headers added to
every answer (timing, hardening), and a limit on request bodies."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Sent with every answer unless the route set its own (pages set a Content-Security-Policy).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(self), camera=(self), microphone=()"),
]


class ResponseHeaders:
    """Adds headers to every HTTP answer as it starts: `extra(started, present)` says which."""

    def __init__(self, app: ASGIApp, extra: Callable[[float, set[bytes]], list[tuple[bytes, bytes]]]) -> None:
        self.app, self.extra = app, extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message = {**message, "headers": headers + self.extra(started, present)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def server_timing(started: float, present: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The standard Server-Timing header: time spent in the app until the response starts."""
    return [(b"server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode())]


def security_headers(started: float, present: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The hardening headers the route did not set itself (CORS stays off: no Access-Control headers)."""
    return [(k, v) for k, v in SECURITY_HEADERS if k not in present]


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, declared or streamed, before any route reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length up front and count the bytes of chunked bodies as they come."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"the request body is over the limit of {self.max_bytes:,} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})  # fmt: skip


class BodyTooLarge(Exception):
    """Raised from inside the app when a streamed body passes the limit."""
