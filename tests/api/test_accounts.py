"""Accounts under attack: failed logins delay only the (user name, address) pair that failed, every
failed login answers alike and takes as long, and what a client types cannot fill the audit log."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.lockout import MAX_AUDIT_TEXT, LoginPolicy
from access.roles import Role
from api.app import create_app
from services.users import AUDIT_PAGE, AuditQuery, audit_log
from store import users
from tests import factories as f
from tests.conftest import DB_PREFIX, county_database

PASSWORD = "owner-password-1"
ATTACKER, OWNER = ("198.51.100.66", 40000), ("203.0.113.10", 40000)


@pytest.fixture(scope="module")
def world(settings) -> Iterator[dict]:
    """A committed database with the test county, a dispatcher, a disabled user and an admin."""
    url = county_database(settings, f"{DB_PREFIX}_accounts")
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        for name, role in (("owner", Role.DISPATCHER), ("gone", Role.DISPATCHER), ("boss", Role.ADMIN),
                           ("timed", Role.DISPATCHER)):  # fmt: skip
            users.add_user(session, name, PASSWORD, role, f.COUNTY)
        users.set_disabled(session, "gone")
    # A long first delay, so that "still waiting" does not depend on how fast the machine is.
    app = create_app(settings.model_copy(update={"login_delay_base_s": 600.0}), engine=engine)
    yield {"engine": engine, "app": app}
    engine.dispose()


def client_at(world: dict, peer: tuple[str, int]) -> TestClient:
    """A client of the world's app connecting from `peer` (logins need no lifespan)."""
    return TestClient(world["app"], base_url="https://testserver", client=peer)


def login(client: TestClient, name: str, password: str = PASSWORD):
    return client.post("/auth/token", data={"username": name, "password": password})


def test_an_attacker_failing_from_one_address_does_not_keep_the_owner_out(world):
    attacker, owner = client_at(world, ATTACKER), client_at(world, OWNER)
    assert [login(attacker, "owner", f"guess-{i}").status_code for i in range(20)] == [401] * 20
    assert login(owner, "owner").status_code == 200  # the right password from elsewhere works
    assert login(attacker, "owner").status_code == 401  # the attacker's address waits, right or wrong
    with world["engine"].connect() as conn:
        failures, until = conn.execute(
            text("SELECT failures, blocked_until FROM login_failures WHERE username = 'owner' AND address = :a"),  # noqa: E501
            {"a": ATTACKER[0]},
        ).one()
    # Tries made while waiting are not even checked: the count stops at the first delay.
    assert failures == 4 and until > datetime.now(UTC) + timedelta(minutes=5)


def test_the_delay_doubles_per_failure_and_lapses(session, county):
    policy = LoginPolicy(free_failures=3, base_s=1.0, max_s=900.0)
    assert [policy.delay_after(n).total_seconds() for n in range(1, 9)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert policy.delay_after(40) == policy.delay_after(10**6) == timedelta(seconds=900)
    users.add_user(session, "typist", PASSWORD, Role.DISPATCHER, f.COUNTY)
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for i in range(4):  # three free failures, the fourth starts a delay of one second
        with pytest.raises(users.LoginFailed) as failed:
            users.authenticate(session, "typist", "typo", t0 + timedelta(seconds=i * 0.1), "10.0.0.1", policy)
        assert failed.value.reason == "wrong password"
    with pytest.raises(users.LoginFailed) as waiting:
        users.authenticate(session, "typist", PASSWORD, t0 + timedelta(seconds=1), "10.0.0.1", policy)
    assert waiting.value.reason.startswith("waiting")
    assert users.authenticate(session, "typist", PASSWORD, t0 + timedelta(seconds=2), "10.0.0.2", policy)
    assert users.authenticate(session, "typist", PASSWORD, t0 + timedelta(seconds=2), "10.0.0.1", policy)
    # A success forgets the pair's failures: the next typo is free again.
    with pytest.raises(users.LoginFailed):
        users.authenticate(session, "typist", "typo", t0 + timedelta(seconds=3), "10.0.0.1", policy)
    assert users.authenticate(session, "typist", PASSWORD, t0 + timedelta(seconds=3), "10.0.0.1", policy)


def test_every_failed_login_answers_alike(world):
    client = client_at(world, ("198.51.100.20", 40000))
    for i in range(5):  # the pair (timed, this address) now waits
        login(client, "timed", f"wrong-{i}")
    answers = {
        "unknown": login(client, "nobody-here"),
        "disabled": login(client, "gone"),
        "wrong password": login(client, "boss", "not-the-password"),
        "waiting, right password": login(client, "timed"),
    }
    seen = {(a.status_code, a.text, a.headers.get("www-authenticate")) for a in answers.values()}
    assert len(seen) == 1, {k: (a.status_code, a.text) for k, a in answers.items()}
    assert next(iter(seen))[0] == 401


def test_failed_logins_take_as_long_whatever_the_cause(world):
    # Every cause verifies one Argon2 hash; a disabled account used to answer at once (no hash).
    client = client_at(world, ("198.51.100.30", 40000))

    def median_s(name: str, password: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert login(client, name, password).status_code == 401
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    wrong = median_s("boss", "not-the-password")
    for name in ("nobody-at-all", "gone"):
        ratio = median_s(name, PASSWORD) / wrong
        assert 0.5 < ratio < 2.0, f"{name}: {ratio:.2f} × the time of a wrong password"


def test_a_huge_user_name_is_refused_and_the_audit_log_stays_bounded(world, session, county):
    client = client_at(world, ("198.51.100.40", 40000))
    answer = login(client, "x" * 900_000)
    assert answer.status_code == 422 and "at most 64" in answer.json()["detail"]
    assert login(client, "owner", "p" * 5000).status_code == 422
    with world["engine"].connect() as conn:
        longest = conn.execute(
            text("SELECT max(length(actor)), max(length(coalesce(target, ''))) FROM audit_log")
        ).one()
    assert max(longest) <= MAX_AUDIT_TEXT
    # Whatever calls the audit log, it keeps a bounded actor and target.
    users.audit(session, "y" * 900_000, "probe", "z" * 900_000, ip="1" * 10_000)
    stored = session.execute(
        text("SELECT length(actor), length(target), length(ip) FROM audit_log WHERE action = 'probe'")
    ).one()
    assert stored[0] == stored[1] == MAX_AUDIT_TEXT and stored[2] <= 64


def test_a_read_of_the_audit_log_is_one_bounded_page_whatever_is_asked(session):
    """The use case, not only the route's query check, bounds a read: the log grows without end."""
    session.execute(
        text("INSERT INTO audit_log (actor, action, target) SELECT 'bulk', 'bulk_test', g::text "
             "FROM generate_series(1, :n) g"),
        {"n": AUDIT_PAGE + 5},
    )  # fmt: skip
    page = audit_log(session, AuditQuery(action="bulk_test", limit=10 * AUDIT_PAGE))
    assert len(page) == AUDIT_PAGE and page[0]["target"] == str(AUDIT_PAGE + 5)  # newest first
    rest = audit_log(session, AuditQuery(action="bulk_test", limit=AUDIT_PAGE, offset=AUDIT_PAGE))
    assert [e["target"] for e in rest] == ["5", "4", "3", "2", "1"]
    lowest = audit_log(session, AuditQuery(action="bulk_test", limit=0, offset=-3))
    assert [e["target"] for e in lowest] == [page[0]["target"]]  # at least one, from the start
