"""Database URLs as operators write them: libpq multi-host URLs reach SQLAlchemy and psycopg alike."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from store.engine import libpq_conninfo, normalize_url

PATRONI_URL = "postgresql://svc:s%40cret@10.0.0.1:5432,10.0.0.2:5433,10.0.0.3:5432/gridmap?target_session_attrs=read-write"


def test_a_multi_host_url_keeps_every_host_its_port_and_the_session_attribute():
    engine = create_engine(normalize_url(PATRONI_URL))
    info = conninfo_to_dict(libpq_conninfo(engine))
    assert info["host"] == "10.0.0.1,10.0.0.2,10.0.0.3" and info["port"] == "5432,5433,5432"
    assert info["target_session_attrs"] == "read-write"
    assert (info["user"], info["password"], info["dbname"]) == ("svc", "s@cret", "gridmap")


def test_a_single_host_url_is_only_given_the_psycopg_driver():
    assert normalize_url("postgresql://a:b@db:5432/gridmap") == "postgresql+psycopg://a:b@db:5432/gridmap"
    info = conninfo_to_dict(libpq_conninfo(create_engine(normalize_url("postgres://a:b@db:6432/x"))))
    assert (info["host"], info["port"], info["dbname"]) == ("db", "6432", "x")


def test_a_connection_to_a_primary_turned_standby_is_dropped_not_reused(database_url):
    from store.engine import engine_for

    engine = engine_for(normalize_url(database_url), service=True)
    with engine.connect() as conn:  # make this pooled connection behave as a demoted primary's
        conn.exec_driver_sql("SET SESSION default_transaction_read_only = on")
        conn.commit()
        demoted = conn.connection.dbapi_connection
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        assert conn.connection.dbapi_connection is demoted  # the pool hands it out again
        conn.exec_driver_sql("CREATE TEMP TABLE t (x int)")
    assert caught.value.connection_invalidated  # counted as a lost connection: dropped
    with engine.begin() as conn:  # the next checkout is a fresh connection that can write
        assert conn.connection.dbapi_connection is not demoted
        conn.exec_driver_sql("CREATE TEMP TABLE t (x int)")


def test_a_lost_database_answers_503_with_retry_after(client, monkeypatch):
    def lost(connection: object) -> str:
        error = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
        raise DBAPIError.instance("SELECT 1", {}, error, psycopg.Error, connection_invalidated=True)

    monkeypatch.setattr("api.routes.health.current_revision", lost)  # /health's second statement
    answer = client.get("/health")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json()["detail"].startswith("the database is unavailable")


def test_a_statement_sent_through_psycopg_directly_also_answers_503(client, monkeypatch):
    # The shared rate limits talk to psycopg without SQLAlchemy; a failover cuts them off too.
    def lost(*args: object, **kwargs: object) -> None:
        raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

    monkeypatch.setattr("store.throttles.hit", lost)
    monkeypatch.delitem(client.headers, "Authorization", raising=False)  # anonymous: rate-limited
    answer = client.post("/cases", json={"lon": 114.9, "lat": 33.43, "category": "0101", "description": "x"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5", answer.text
