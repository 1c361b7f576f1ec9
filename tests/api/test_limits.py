"""Limits that hold behind a proxy and over several processes: the client address comes from
forwarded headers only when a configured proxy sends them, and every app on one database counts
against the same limit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from access.lockout import LoginPolicy
from api.app import create_app
from store import throttles
from tests.conftest import DB_PREFIX, fresh_database
from tests.live import server


@pytest.fixture(scope="module")
def limits_url(settings) -> Iterator[str]:
    """A database of this module's own: the counters and audit entries it leaves stay here."""
    yield fresh_database(settings, f"{DB_PREFIX}_limits")


def audit_ips(url: str, actor: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT ip FROM audit_log WHERE actor = :a ORDER BY id"), {"a": actor})
        ips = [r.ip for r in rows]
    engine.dispose()
    return ips


def test_a_forged_forwarded_for_is_ignored_by_default(limits_url):
    # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: a forged header
    # rotated per request got past every limit and put 6.6.6.x into the audit log.
    name = f"probe-{uuid.uuid4().hex[:8]}"
    with server(limits_url, login_per_minute="3") as base:
        codes = [
            httpx.post(f"{base}/auth/token", data={"username": name, "password": "x" * 8},
                       headers={"X-Forwarded-For": f"6.6.6.{i}"}).status_code
            for i in range(5)
        ]  # fmt: skip
    assert codes == [401, 401, 401, 429, 429]
    assert audit_ips(limits_url, name) == ["127.0.0.1"] * 3


def test_a_configured_proxy_is_believed_and_nobody_else(limits_url, settings):
    behind = settings.model_copy(update={"database_url": limits_url, "trusted_proxies": "127.0.0.1"})
    engine = create_engine(limits_url)
    app = create_app(behind, engine=engine)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    # The proxy appends the peer it saw to what the client sent: the rightmost untrusted entry counts.
    tries = ((("127.0.0.1", 1), "203.0.113.9"), (("198.51.100.5", 1), "6.6.6.6"),
             (("127.0.0.1", 1), "6.6.6.6, 203.0.113.77"))  # fmt: skip
    for peer, forwarded in tries:
        client = TestClient(app, base_url="https://testserver", client=peer)
        answer = client.post("/auth/token", data={"username": name, "password": "x" * 8},
                             headers={"X-Forwarded-For": forwarded})  # fmt: skip
        assert answer.status_code == 401
    assert audit_ips(limits_url, name) == ["203.0.113.9", "198.51.100.5", "203.0.113.77"]
    engine.dispose()


def test_two_app_instances_on_one_database_enforce_one_limit(limits_url, settings):
    # Two processes used to count apart: 233 of 280 anonymous reports got through on two workers.
    strict = settings.model_copy(update={"database_url": limits_url, "public_intake_per_minute": 4})
    engines = [create_engine(limits_url), create_engine(limits_url)]
    peer = (f"192.0.2.{uuid.uuid4().int % 250 + 1}", 1)
    report = {"lon": 114.92, "lat": 33.42, "category": "0101", "description": "匿名"}
    with (
        TestClient(create_app(strict, engine=engines[0]), client=peer) as one,
        TestClient(create_app(strict, engine=engines[1]), client=peer) as two,
    ):
        codes = [
            client.post("/cases", json=report, headers={"Idempotency-Key": str(uuid.uuid4())}).status_code
            for client in (one, two, one, two, one, two)
        ]
        refused = two.post("/cases", json=report)
    assert codes == [201, 201, 201, 201, 429, 429]
    assert int(refused.headers["retry-after"]) >= 1 and "too many requests" in refused.json()["detail"]
    for engine in engines:
        engine.dispose()


def test_the_counter_slides_over_the_previous_window_and_forgets_refused_hits(limits_url):
    engine = create_engine(limits_url, isolation_level="AUTOCOMMIT")
    key = f"test:{uuid.uuid4().hex}"
    with engine.connect() as conn:
        verdicts = [throttles.hit(conn, key, 2, 3600) for _ in range(4)]
        assert [v.allowed for v in verdicts] == [True, True, False, False]
        assert 1 <= verdicts[2].retry_after_s <= 3600
        row = text("SELECT window_no, hits FROM rate_limits WHERE key = :k")
        current = conn.execute(row, {"k": key}).one()
        assert current.hits == 2  # refused hits were taken back
        # A busy previous window still weighs on this one.
        busy = f"test:{uuid.uuid4().hex}"
        conn.execute(
            text("INSERT INTO rate_limits VALUES (:k, :n, 1000000000, now() + interval '1 hour')"),
            {"k": busy, "n": current.window_no - 1},
        )
        assert not throttles.hit(conn, busy, 100, 3600).allowed
        conn.execute(
            text("INSERT INTO rate_limits VALUES (:k, 1, 5, now() - interval '1 second')"), {"k": busy}
        )
        throttles.prune(conn, LoginPolicy())
        left = conn.execute(text("SELECT window_no FROM rate_limits WHERE key = :k"), {"k": busy}).scalars()
        assert sorted(left) == [current.window_no - 1, current.window_no]  # the expired window is gone
    engine.dispose()
