"""Two real server processes on one database: the live feed, idempotent retries at the same moment,
and escalation run by several processes at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from access.roles import Role, User
from api import live, live_deflate, live_feed
from api.live_feed import POLL_S
from cases.lifecycle import CaseStatus, Move
from cases.model import Intake, scoped_key
from services import cases as case_service
from services import escalation
from services import intake as intake_service
from store import cases as store
from store import notifications
from tests import factories as f
from tests.conftest import DB_PREFIX, county_database
from tests.live import server, sign_in

INSIDE = (f.X0 + 0.01, f.Y0 + 0.03)


@pytest.fixture(scope="module")
def live_url(settings) -> str:
    """A committed database holding the test county (servers cannot share a test's transaction)."""
    return county_database(settings, f"{DB_PREFIX}_live")


@pytest.fixture(scope="module")
def two_servers(live_url) -> Iterator[tuple[str, str]]:
    with server(live_url) as a, server(live_url) as b:
        yield a, b


@pytest.fixture(scope="module")
def auth(two_servers, live_url) -> dict:
    """A county dispatcher's Authorization header (tokens live in the database: good on both)."""
    return sign_in(two_servers[0], live_url, Role.DISPATCHER, f.COUNTY)


def report(description: str = "井盖缺失") -> dict:
    return {"lon": INSIDE[0], "lat": INSIDE[1], "category": "0101", "description": description}


class Stream:
    """An SSE client reading events off a server in a thread of its own."""

    def __init__(
        self, base: str, auth: dict, last_event_id: str | None = None, accept_encoding: str = "deflate"
    ) -> None:
        self.events: list[dict] = []
        self.changed = threading.Condition()
        self.opened = threading.Event()
        headers = {**auth, "Accept-Encoding": accept_encoding}  # httpx inflates as a browser does
        headers |= {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=30))
        self._response = self._client.send(
            self._client.build_request("GET", f"{base}/cases/stream", headers=headers), stream=True
        )
        self.status = self._response.status_code
        self.encoding = self._response.headers.get("content-encoding")
        self.ended: str | None = None  # "cleanly", or how the response broke off
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event: dict = {}
        try:
            for line in self._response.iter_lines():
                if line.startswith(":"):
                    self.opened.set()
                elif line.startswith("id:"):
                    event["id"] = line[3:].strip()
                elif line.startswith("event:"):
                    event["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    event["data"] = json.loads(line[5:])
                elif not line and "data" in event:
                    with self.changed:
                        self.events.append(event)
                        self.changed.notify_all()
                    event = {}
            self.ended = "cleanly"
        except httpx.HTTPError as e:
            self.ended = f"{type(e).__name__}: {e}"

    def wait_for(self, predicate, timeout: float = 15) -> dict:
        with self.changed:
            ok = self.changed.wait_for(lambda: any(predicate(e) for e in self.events), timeout)
        assert ok, f"no matching event within {timeout} s; got {self.events}"
        return next(e for e in self.events if predicate(e))

    def wait_until_ended(self, timeout: float = 15) -> str | None:
        self._thread.join(timeout)
        return self.ended

    def close(self) -> None:
        # Hang up at once: closing the response waits for the reading thread's pending read.
        sock = self._response.extensions["network_stream"].get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._response.close()
        self._client.close()


def test_changes_made_through_one_process_reach_streams_on_the_other(two_servers, auth):
    a, b = two_servers
    stream = Stream(a, auth, accept_encoding="identity")  # a client that cannot inflate
    try:
        assert stream.opened.wait(10) and stream.encoding is None
        case = httpx.post(f"{b}/cases", json=report()).json()
        created = stream.wait_for(lambda e: e["data"]["id"] == case["id"])
        assert created["event"] == "created" and created["data"]["status"] == "reported"
        assert created["data"]["grid_code"] == f.grid_code(1) and created["data"]["number"] == case["number"]
        httpx.post(
            f"{b}/cases/{case['id']}/transitions", json={"to": "verified"}, headers=auth
        ).raise_for_status()
        updated = stream.wait_for(
            lambda e: e["data"]["id"] == case["id"] and e["data"]["status"] == "verified"
        )
        assert updated["event"] == "updated"
    finally:
        stream.close()


def test_a_reconnecting_client_resumes_from_its_last_event_without_missing_any(two_servers, auth):
    a, b = two_servers
    first = Stream(a, auth)
    try:
        assert first.opened.wait(10)
        case = httpx.post(f"{b}/cases", json=report("路灯不亮")).json()
        seen = first.wait_for(lambda e: e["data"]["id"] == case["id"])
    finally:
        first.close()
    # While disconnected: three changes, made by the other process.
    for to in ("verified", "filed", "dispatched"):
        httpx.post(f"{b}/cases/{case['id']}/transitions", json={"to": to}, headers=auth).raise_for_status()
    resumed = Stream(a, auth, last_event_id=seen["id"])
    try:
        resumed.wait_for(lambda e: e["data"]["status"] == "dispatched")
        mine = [e["data"]["status"] for e in resumed.events if e["data"]["id"] == case["id"]]
        assert mine == ["verified", "filed", "dispatched"]  # nothing missed, nothing repeated
        assert seen["id"] not in [e["id"] for e in resumed.events]
    finally:
        resumed.close()
    bad = httpx.get(f"{a}/cases/stream", headers={**auth, "Last-Event-ID": "yesterday"})
    assert bad.status_code == 422
    assert httpx.get(f"{a}/cases/stream").status_code == 401  # the feed is not public


def test_two_identical_reports_at_the_same_moment_make_one_case(two_servers, live_url):
    a, b = two_servers
    key = str(uuid.uuid4())
    start = threading.Barrier(2)

    def send(base: str) -> httpx.Response:
        start.wait()
        return httpx.post(f"{base}/cases", json=report("同时重试"), headers={"Idempotency-Key": key})

    for _ in range(3):  # a race is a matter of luck: try it a few times with fresh keys
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, (a, b)))
        assert sorted(r.status_code for r in answers) == [200, 201]
        assert answers[0].json()["id"] == answers[1].json()["id"]
        engine = create_engine(live_url)
        with engine.connect() as conn:
            n = conn.execute(
                text("SELECT count(*) FROM cases WHERE idempotency_key = :k"), {"k": scoped_key(key, None)}
            ).scalar()
        engine.dispose()
        assert n == 1
        key = str(uuid.uuid4())
        start.reset()


def test_escalation_in_several_processes_at_once_moves_each_case_one_tier(live_url, settings):
    rules = store.Rules.load(settings)
    engine = create_engine(live_url, pool_size=4)
    past = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; every limit has long run out
    ids = []
    with Session(engine) as session, session.begin():
        for i in range(20):
            intake = Intake(INSIDE[0], INSIDE[1], "wgs84", *INSIDE, 5.0, "report", "0101", f"overdue {i}")
            case_id, _ = intake_service.create_case(session, intake, rules, actor="test", now=past)
            for to in ("verified", "filed", "dispatched", "accepted"):
                case_service.move_case(session, case_id, Move(CaseStatus(to)), rules, actor="test", now=past)
            ids.append(case_id)
    start = threading.Barrier(3)

    def escalate() -> int:
        with Session(engine) as session:
            start.wait()
            moved = escalation.escalate_overdue(session, rules, batch=7)
            moved += escalation.escalate_overdue(session, rules, batch=100)
            session.commit()
            return moved

    with ThreadPoolExecutor(3) as pool:
        moved = sum(pool.map(lambda _: escalate(), range(3)))
    assert moved == len(ids)
    with Session(engine) as session:
        rows = session.execute(
            text("SELECT tier, unit_code, status, escalations, stage_due_at FROM cases WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).all()
        escalations = session.execute(
            text("SELECT count(*) FROM case_history WHERE case_id = ANY(:ids) AND action = 'escalate'"),
            {"ids": ids},
        ).scalar()
        audited = session.execute(
            text("SELECT actor, details FROM audit_log WHERE action = 'case_escalation'")
        ).all()
    engine.dispose()
    assert escalations == len(ids)
    # Each pass that moved cases left one audit entry by the service; together they name each case once.
    named = [i for a in audited if a.actor == "system" for i in a.details["cases"] if i in ids]
    assert sorted(named) == sorted(ids)
    assert {(r.tier, r.unit_code, r.status, r.escalations) for r in rows} == {
        ("community", f.COMMUNITY, "dispatched", 1)
    }
    assert all(r.stage_due_at > datetime.now(UTC) - timedelta(minutes=5) for r in rows)  # a new clock


# ---------------------------------------------------------------- one read per process, limits, outages


def _new_cases(url: str, settings, n: int) -> list[int]:
    """n cases made in n transactions of their own (n commits, n notifications)."""
    rules = store.Rules.load(settings)
    engine = create_engine(url)
    ids = []
    for i in range(n):
        with Session(engine) as session, session.begin():
            intake = Intake(*INSIDE, "wgs84", *INSIDE, 5.0, "report", "0101", f"fan-out {i}")
            ids.append(intake_service.create_case(session, intake, rules, actor="test")[0])
    engine.dispose()
    return ids


def _case_ids(chunks: list[bytes]) -> list[int]:
    return [
        json.loads(line[5:])["id"]
        for chunk in chunks
        for line in chunk.decode().splitlines()
        if line.startswith("data:")
    ]


def test_one_read_of_the_log_per_notification_serves_every_stream_of_a_process(
    live_url, settings, monkeypatch
):
    """50 streams of a process, 20 commits: the process reads the log about once per commit, not
    once per stream; each stream gets its user's events only (issue 13 §2)."""
    engine = create_engine(live_url, isolation_level="AUTOCOMMIT")
    feed = live.make_feed(engine)
    county = User(1, "county", Role.DISPATCHER, f.COUNTY)
    elsewhere = User(2, "elsewhere", Role.DISPATCHER, f.STREET[:-1] + "2")  # another street
    users = [county] * 40 + [elsewhere] * 10
    received: list[list[bytes]] = [[] for _ in users]
    compressions = 0

    def counted(raw: bytes) -> live_deflate.Segment:
        nonlocal compressions
        compressions += 1
        return live_deflate.segment(raw)

    monkeypatch.setattr(live_feed, "segment", counted)

    async def consume(user: User, chunks: list[bytes], deflate: bool) -> None:
        """Every other stream compressed, read as a browser does (inflated as it arrives)."""
        parts = live._events(feed, sessionmaker(engine), user, None, deflate=deflate)
        if not deflate:
            async for item in live._raw(parts):
                chunks.append(item)
            return
        inflate = zlib.decompressobj()
        async for item in live._deflated(parts):
            chunks.append(inflate.decompress(item))

    async def scenario() -> tuple[list[int], int, float]:
        tasks = [asyncio.create_task(notifications.listen(engine, live.CHANNEL, feed.notify))]
        tasks.append(asyncio.create_task(feed.run()))
        compressed = [i % 2 == 1 for i in range(len(users))]
        tasks += [asyncio.create_task(consume(*s)) for s in zip(users, received, compressed, strict=True)]
        while feed.head is None:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # every stream has taken its starting point
        reads_before, started = feed.reads, time.monotonic()
        ids = await asyncio.to_thread(_new_cases, live_url, settings, 20)
        for _ in range(500):
            if all(set(ids) <= set(_case_ids(r)) for r in received[:40]):
                break
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        reads = feed.reads - reads_before
        await asyncio.sleep(0.3)  # would anything reach the other street's streams?
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return ids, reads, took

    with ThreadPoolExecutor(1) as thread:  # a loop of its own (see tests/store/test_notifications.py)
        ids, reads, took = thread.submit(asyncio.run, scenario()).result()
    engine.dispose()
    for chunks in received[:40]:
        assert [i for i in _case_ids(chunks) if i in ids] == ids  # all, once each, in order
    assert all(not set(_case_ids(chunks)) & set(ids) for chunks in received[40:])
    assert reads <= len(ids) + 2 + took / POLL_S  # not 50 × 20
    # Each read's news is compressed once per user for all 25 compressed streams, not per stream.
    assert 0 < compressions <= 2 * reads


def test_open_streams_are_limited_per_user_and_per_process_with_a_clear_429(live_url):
    with server(live_url, max_streams_per_user="2", max_streams="3") as base:
        alice = sign_in(base, live_url, Role.DISPATCHER, f.COUNTY)
        bob = sign_in(base, live_url, Role.DISPATCHER, f.COUNTY)
        carol = sign_in(base, live_url, Role.VIEWER, f.STREET)
        streams = [Stream(base, alice), Stream(base, alice)]
        try:
            assert [s.status for s in streams] == [200, 200]
            third = httpx.get(f"{base}/cases/stream", headers=alice)
            assert third.status_code == 429
            assert "per user" in third.json()["detail"]
            streams.append(Stream(base, bob))
            assert streams[-1].status == 200
            full = httpx.get(f"{base}/cases/stream", headers=carol)
            assert full.status_code == 429 and "this server" in full.json()["detail"]
            streams.pop(0).close()  # a closed stream frees its place
            for _ in range(50):
                again = Stream(base, alice)
                if again.status == 200:
                    break
                again.close()
                time.sleep(0.1)
            streams.append(again)
            assert again.status == 200 and again.opened.wait(10)
        finally:
            for s in streams:
                s.close()


def _database_connections(url: str, allow: bool) -> None:
    """Refuse (or allow again) connections to the database of `url`, cutting the open ones."""
    name = create_engine(url).url.database
    admin = create_engine(create_engine(url).url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
        if not allow:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
    admin.dispose()


def test_a_stream_ends_cleanly_when_the_database_goes_away_and_resumes_after(live_url, settings):
    """Issue 13 §7: no broken chunked response, and nothing missed once the client is back."""
    with server(live_url) as base:
        auth = sign_in(base, live_url, Role.DISPATCHER, f.COUNTY)
        stream = Stream(base, auth)
        try:
            assert stream.opened.wait(10) and stream.encoding == "deflate"
            (first,) = _new_cases(live_url, settings, 1)
            seen = stream.wait_for(lambda e: e["data"]["id"] == first)
            _database_connections(live_url, allow=False)
            try:  # a complete deflate stream: httpx checks its Adler-32 at the end
                assert stream.wait_until_ended(15) == "cleanly"
            finally:
                _database_connections(live_url, allow=True)
        finally:
            stream.close()
        later = _new_cases(live_url, settings, 2)
        resumed = Stream(base, auth, last_event_id=seen["id"])  # as EventSource does
        try:
            assert resumed.status == 200
            resumed.wait_for(lambda e: e["data"]["id"] == later[-1])
            assert [e["data"]["id"] for e in resumed.events] == later
        finally:
            resumed.close()


def test_a_client_resuming_from_before_what_the_process_holds_is_replayed_from_the_database(
    live_url, settings
):
    engine = create_engine(live_url, isolation_level="AUTOCOMMIT")
    factory = sessionmaker(engine)
    feed = live.make_feed(engine, keep=3)  # holds the last three events only
    county = User(1, "county", Role.DISPATCHER, f.COUNTY)

    async def scenario() -> tuple[list[int], list[bytes]]:
        await feed.read_once()
        start = feed.head
        ids = await asyncio.to_thread(_new_cases, live_url, settings, 8)
        for _ in range(500):  # another test's open transaction in the cluster can hold the horizon back
            await feed.read_once()
            if ids[-1] in _case_ids([e.sse for e in feed.after(feed.base) or []]):
                break
            await asyncio.sleep(0.02)
        assert feed.after(start) is None and len(feed.after(feed.base)) == 3  # the rest is gone
        chunks: list[bytes] = []
        async for item in live._events(feed, factory, county, start):
            if isinstance(item, bytes):
                chunks.append(item)
                if set(ids) <= set(_case_ids(chunks)):
                    break
        return ids, chunks

    with ThreadPoolExecutor(1) as thread:
        ids, chunks = thread.submit(asyncio.run, scenario()).result()
    engine.dispose()
    assert [i for i in _case_ids(chunks) if i in ids] == ids
    assert len([c for c in chunks if b"data:" in c]) == 1  # all eight in one replay from the database
