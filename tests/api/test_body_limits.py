"""Bodies are judged while they stream in: a JSON report past its limit, any body past the
service's, and a NUL split across chunks are refused without reading (or holding) the rest."""

from __future__ import annotations

import asyncio
import json

from api.app import create_app
from api.reports import JSON_LIMIT
from tests.conftest import act_as_admin, use_session

CHUNK = 16 * 1024


def chunked_request(app, path: str, chunks, content_type: str = "application/json", headers=()) -> tuple:
    """POST `chunks` to `app` without a Content-Length, as a chunked upload arrives:
    (status, answer body, chunks the app read)."""
    read = 0
    sent: list[dict] = []
    source = iter(chunks)

    async def receive() -> dict:
        nonlocal read
        try:
            body = next(source)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode()), *headers],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 443), "state": {},
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), read


def endless(first: bytes = b'{"description": "'):
    """A body that would go on for 64 MiB."""
    yield first
    for _ in range(64 * 1024 * 1024 // CHUNK):
        yield b"x" * CHUNK


def test_a_chunked_json_report_over_its_limit_is_refused_once_the_limit_is_read(client):
    status, answer, read = chunked_request(client.app, "/cases", endless())
    assert status == 413 and f"{JSON_LIMIT:,}" in answer["detail"]
    assert read <= JSON_LIMIT // CHUNK + 2  # stopped at the limit, not at the end of 64 MiB


def test_a_chunked_open311_request_over_its_limit_is_refused_once_the_limit_is_read(client):
    status, answer, read = chunked_request(
        client.app, "/open311/v2/requests.json", endless(b"description="), "application/x-www-form-urlencoded"
    )
    assert status == 413 and f"{JSON_LIMIT:,}" in str(answer) and read <= JSON_LIMIT // CHUNK + 2


def test_any_chunked_body_over_the_service_limit_is_413_with_a_reason(session, settings, engine):
    app = create_app(settings.model_copy(update={"max_request_bytes": 100_000}), engine=engine)
    use_session(app, session)
    admin = [(b"authorization", act_as_admin(app)["Authorization"].encode())]
    status, answer, read = chunked_request(app, "/plans", endless(b'{"title": "'), headers=admin)
    assert status == 413 and "100,000 bytes" in answer["detail"]
    assert read <= 100_000 // CHUNK + 2


def test_a_nul_escape_split_across_chunks_is_refused(client):
    # Both reports lack lon: refused for that once read and parsed, unless refused for a NUL before.
    chunks = [b'{"lat": 33.43, "category": "0101", "description": "a\\u0', b'000b"}']
    status, answer, _ = chunked_request(client.app, "/cases", chunks)
    assert status == 422 and "NUL" in answer["detail"]
    # An escaped backslash before u0000 is the text "\u0000", not a NUL: the run's length decides.
    chunks = [b'{"lat": 33.43, "category": "0101", "description": "a\\', b'\\u0000b"}']
    status, answer, _ = chunked_request(client.app, "/cases", chunks)
    assert status == 422 and "both lon and lat" in answer["detail"], answer
