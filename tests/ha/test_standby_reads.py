"""Reads on standbys with a staleness bound, on a real Patroni cluster (store.standby_reads)."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from geo.settings import Settings
from store import standby_reads, users
from store.engine import normalize_url


def _sessions(ha, max_lag_s: float):
    settings = Settings(database_url=ha.url, read_from_standby=True, read_max_lag_s=max_lag_s)
    primary = create_engine(normalize_url(ha.url))
    return standby_reads.standby_sessions(settings, primary), primary


def _served_by(sessions) -> tuple[int, bool]:
    """(port, in recovery) of the server a read session's SELECT runs on."""
    with sessions() as session:
        port, standby = session.execute(text("SELECT inet_server_port(), pg_is_in_recovery()")).one()
    return port, standby


def _write_on_primary(ha, times: int = 3) -> None:
    with ha.connect(ha.leader_port()) as conn:
        for _ in range(times):
            conn.execute("SELECT pg_notify('nobody', 'x'), txid_current()")


def test_selects_run_on_a_standby_and_writes_of_a_read_session_on_the_primary(healthy):
    ha = healthy
    sessions, primary = _sessions(ha, max_lag_s=5)
    port, standby = _served_by(sessions)
    assert standby and port in ha.standby_ports()
    # A read that records something (an export's audit entry) writes it on the primary.
    with sessions() as session:
        users.audit(session, "h20-test", "export", "cases", {"rows": 0}, "127.0.0.1")
        session.commit()
    with primary.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM audit_log WHERE actor = 'h20-test'")).scalar_one()
    assert found >= 1
    primary.dispose()


def test_a_standby_lagging_beyond_the_bound_is_not_read_from(healthy):
    ha = healthy
    sessions, primary = _sessions(ha, max_lag_s=1.0)
    ha.wait_replayed()
    first, standby = _served_by(sessions)  # the pooled connection, on a standby
    assert standby
    other = next(p for p in ha.standby_ports() if p != first)

    # The standby in use stops replaying while writes go on: its data ages past the bound.
    ha.set_replay(first, paused=True)
    _write_on_primary(ha)
    time.sleep(1.5)
    _write_on_primary(ha)
    seen = {_served_by(sessions) for _ in range(20)}
    assert seen == {(other, True)}, f"reads went to {seen}; {first} lags, {other} does not"

    # Both lag: reads go to the primary.
    ha.set_replay(other, paused=True)
    _write_on_primary(ha)
    time.sleep(1.5)
    _write_on_primary(ha)
    seen = {_served_by(sessions) for _ in range(20)}
    assert seen == {(ha.leader_port(), False)}

    # Caught up again: read from a standby once more (new connections prefer standbys).
    ha.resume_all()
    ha.wait_replayed()
    sessions.kw["standby"].engine.dispose()
    port, standby = _served_by(sessions)
    assert standby and port in ha.standby_ports()
    primary.dispose()


def test_an_idle_cluster_s_standbys_are_not_taken_for_stale(healthy):
    # With nothing written, the last replayed transaction grows old while nothing is missing.
    ha = healthy
    ha.wait_replayed()
    sessions, primary = _sessions(ha, max_lag_s=0.5)
    time.sleep(1.0)
    port, standby = _served_by(sessions)
    assert standby and port in ha.standby_ports()
    primary.dispose()
