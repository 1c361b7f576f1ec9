"""Plain ASGI middleware (no per-request task, as BaseHTTPMiddleware would add): headers added to
every answer (timing, hardening), a limit on request bodies, and no NUL in what a request says."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import open311_format
from api.params import NUL_REFUSED

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


class RefuseNul:
    """Refuses with 422, before any route runs, a request whose path, query string or text body
    carries a NUL character (PostgreSQL text cannot hold one): the one place it is checked.

    Bodies are looked at as they stream through: a form's `%00` or raw NUL, JSON's `\\u0000`
    escape (raw NUL is not JSON; in multipart only the JSON `case` field is text this service reads
    as such). A NUL that still reaches PostgreSQL is answered 422 by the error map (api.errors).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the URL at once and the body chunk by chunk; refuse on the first NUL."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await _answer(scope, send, 422, NUL_REFUSED)
            return
        scan = _nul_scanner(dict(scope["headers"]).get(b"content-type", b""))
        if scan is None:
            await self.app(scope, receive, send)
            return
        tail = b""

        async def scanned() -> Message:
            nonlocal tail
            message = await receive()
            if message["type"] == "http.request":
                text = tail + message.get("body", b"")
                if scan(text):
                    raise TextRefused()
                tail = _tail(text)
            return message

        try:
            await self.app(scope, scanned, send)
        except TextRefused:
            await _answer(scope, send, 422, NUL_REFUSED)


JSON_NUL = re.compile(rb"(\\+)u0000")  # a run of backslashes before u0000: an escape if the run is odd
FORM_NUL = re.compile(rb"%00|\x00")


def _nul_scanner(content_type: bytes) -> Callable[[bytes], bool] | None:
    """The test for a NUL in a body of this type, or None for bodies not read as text."""
    kind = content_type.split(b";")[0].strip().lower()
    if kind == b"application/x-www-form-urlencoded":
        return lambda text: FORM_NUL.search(text) is not None
    if kind.endswith(b"json") or kind == b"multipart/form-data":
        return lambda text: any(len(m.group(1)) % 2 for m in JSON_NUL.finditer(text))
    return None


def _tail(text: bytes) -> bytes:
    """The end of what was scanned that a NUL split across chunks may begin in: the last 6 bytes,
    and the whole run of backslashes they end (its length decides whether `\\u0000` escapes)."""
    keep = text[-6:]
    rest = text[:-6]
    return rest[len(rest.rstrip(b"\\")) :] + keep


class TextRefused(HTTPException):
    """Raised from inside the app when a streamed body carries a NUL (an HTTPException: a route
    reading the body lets it through to the app's handlers, which answer it)."""

    def __init__(self) -> None:
        super().__init__(422, NUL_REFUSED)


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
            await self._refuse(scope, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await _answer(scope, send, 413, f"the request body is over the limit of {self.max_bytes:,} bytes")


async def _answer(scope: Scope, send: Send, status: int, detail: str) -> None:
    """An error answer sent by a middleware, in the shape of the app's ({"detail": reason}), or
    Open311's under /open311/ (its own format and status, as api.errors answers there)."""
    body, kind = json.dumps({"detail": detail}).encode(), b"application/json"
    if open311_format.is_open311(scope["path"]):
        status = open311_format.open311_status(status)
        answer = open311_format.error_response(open311_format.format_of(scope["path"]), status, detail)
        body, kind = answer.body, answer.headers["content-type"].encode()
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """Raised from inside the app when a streamed body passes the limit (answered as TextRefused is)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over the limit of {max_bytes:,} bytes")
