"""A request whose database connection was lost mid-statement (a switchover shut the primary down)
runs again when that is safe: a read, a report with an Idempotency-Key; anything else gets 503."""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy.exc import DBAPIError

from api.routes import health
from store import throttles
from tests import factories as f


def _lost_once(real, calls: list[int]):
    """`real`, except that its first call finds the connection lost."""

    def call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            error = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
            raise DBAPIError.instance("SELECT 1", {}, error, psycopg.Error, connection_invalidated=True)
        return real(*args, **kwargs)

    return call


def test_a_read_that_lost_its_connection_runs_again_and_is_answered(client, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("api.routes.health.current_revision", _lost_once(health.current_revision, calls))
    answer = client.get("/health")
    assert answer.status_code == 200, answer.text
    assert len(calls) == 2 and "retry-after" not in answer.headers


def test_a_keyed_report_that_lost_its_connection_runs_again_and_is_stored_once(client, county, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("store.throttles.hit", _lost_once(throttles.hit, calls))
    monkeypatch.delitem(client.headers, "Authorization", raising=False)  # anonymous: rate-limited
    body = {"lon": f.X0 + 0.01, "lat": f.Y0 + 0.03, "category": "0101", "description": "重放"}
    answer = client.post("/cases", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 201, answer.text
    assert len(calls) == 2


def test_a_report_without_a_key_is_not_run_again(client, county, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr("store.throttles.hit", _lost_once(throttles.hit, calls))
    monkeypatch.delitem(client.headers, "Authorization", raising=False)
    body = {"lon": f.X0 + 0.01, "lat": f.Y0 + 0.03, "category": "0101", "description": "不重放"}
    answer = client.post("/cases", json=body)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert len(calls) == 1
