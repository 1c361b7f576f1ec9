"""The service on a real Patroni + etcd cluster (one module: one cluster on one test worker).

- Reads on standbys with a staleness bound, on a real Patroni cluster (store.standby_reads).

- `gridmap serve` with reads on standbys, on a real Patroni cluster: a client reads its own writes,
  others a fresh standby; with etcd lost the primary demotes itself, writes get 503 and reads go on.

- The primary dies under intake (kill -9 of its postmaster): nothing acknowledged is lost or doubled,
  the service answers again without a restart, never with a 500, and the case stream resumes.

  The issue's full run (100 reports/s for 40 s) is benchmarks/bench_failover.py; this is the same
  path at a rate and length the suite can afford, with the same load loop (benchmarks/failover_load.py).
"""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text

from access.roles import Role
from api.read_your_writes import HEADER
from benchmarks.failover_load import Readers, Reporters, Stream, stored_once
from geo.settings import Settings
from store import standby_reads, users
from store.engine import normalize_url
from store.wal_positions import primary_lsn
from tests import factories as f
from tests.ha.conftest import report
from tests.live import server, sign_in


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


# ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(ha):
    """One server reading from standbys (a lag bound long enough for a test to run within it)."""
    ha.cluster.wait_healthy()
    with server(
        ha.url, read_from_standby="true", read_max_lag_s="60", public_intake_per_minute="100000"
    ) as base:
        url = normalize_url(ha.url)
        yield (
            base,
            sign_in(base, url, Role.DISPATCHER, f.COUNTY),
            sign_in(base, url, Role.DISPATCHER, f.COUNTY),
        )


def test_a_client_reads_its_own_write_at_once_others_when_the_standbys_have_it(healthy, served):
    ha, (base, writer_auth, other_auth) = healthy, served
    ha.wait_replayed()
    for port in ha.standby_ports():  # the standbys stop replaying (within the bound: still read)
        ha.set_replay(port, paused=True)

    with httpx.Client(timeout=10) as writer:
        made = writer.post(f"{base}/cases", json=report("读己之写"), headers=writer_auth)
        assert made.status_code == 201, made.text
        assert "gridmap_wrote" in writer.cookies
        case = made.json()["id"]
        # The writer's page (with the cookie) and its API client (its user, no cookie) see it.
        assert writer.get(f"{base}/cases/{case}", headers=writer_auth).status_code == 200
    assert httpx.get(f"{base}/cases/{case}", headers=writer_auth).status_code == 200

    # Another dispatcher reads a standby that has not replayed the case yet.
    assert httpx.get(f"{base}/cases/{case}", headers=other_auth).status_code == 404
    listed = httpx.get(f"{base}/cases", params={"limit": 500}, headers=other_auth)
    assert listed.status_code == 200 and case not in {c["id"] for c in listed.json()["items"]}

    ha.resume_all()
    ha.wait_replayed()
    assert httpx.get(f"{base}/cases/{case}", headers=other_auth).status_code == 200


def test_a_read_after_a_write_position_uses_a_standby_only_once_it_has_replayed_it(healthy):
    ha = healthy
    sessions, primary = _sessions(ha, max_lag_s=60)
    ha.wait_replayed()
    for port in ha.standby_ports():  # within the bound, but behind what is written next
        ha.set_replay(port, paused=True)
    _write_on_primary(ha)
    wrote = primary_lsn(primary)
    assert _served_by(sessions)[1]  # without a position: a standby
    with sessions(read_after=wrote) as session:  # with it: only a server that has the write
        assert session.execute(text("SELECT pg_is_in_recovery()")).scalar_one() is False
    ha.resume_all()
    # Once replayed (the test's commits were not flushed at once: wait for the WAL, not the write
    # position wait_replayed compares with), the same position reads a standby again.
    deadline = time.monotonic() + 20
    while True:
        with sessions(read_after=wrote) as session:
            port, standby = session.execute(text("SELECT inet_server_port(), pg_is_in_recovery()")).one()
        if standby:
            break
        assert time.monotonic() < deadline, "no standby was read from once it had replayed the write"
        time.sleep(0.2)
    assert port in ha.standby_ports()
    with ha.connect(port) as conn:
        assert conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (_pg_lsn(wrote),)).fetchone()[0]
    primary.dispose()


def _pg_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def test_a_token_client_reads_its_write_on_another_server_process(healthy, served):
    # Two `gridmap serve` processes share nothing but the database, as the workers of
    # `serve --workers 2` do: the write goes to one, the read to the other.
    ha, (first, writer_auth, other_auth) = healthy, served
    ha.wait_replayed()
    for port in ha.standby_ports():
        ha.set_replay(port, paused=True)
    with server(ha.url, read_from_standby="true", read_max_lag_s="60") as second:
        made = httpx.post(f"{first}/cases", json=report("另一进程读己之写"), headers=writer_auth)
        assert made.status_code == 201, made.text
        wrote, case = made.headers[HEADER], made.json()["id"]
        # The second process never saw the write: a client without its position reads a standby.
        assert httpx.get(f"{second}/cases/{case}", headers=other_auth).status_code == 404
        echoed = {**writer_auth, HEADER: wrote}
        assert httpx.get(f"{second}/cases/{case}", headers=echoed).status_code == 200
        listed = httpx.get(f"{second}/cases", params={"limit": 500}, headers=echoed)
        assert listed.status_code == 200 and case in {c["id"] for c in listed.json()["items"]}
        # A browser brings it back in the cookie.
        cookie = {"Cookie": f"gridmap_wrote={wrote}", **other_auth}
        assert httpx.get(f"{second}/cases/{case}", headers=cookie).status_code == 200
        bad = httpx.get(f"{second}/cases/{case}", headers={**writer_auth, HEADER: "0/16B3"})
        assert bad.status_code == 422 and HEADER in bad.text
    ha.resume_all()
    ha.wait_replayed()


def test_without_etcd_the_primary_demotes_itself_writes_get_503_and_reads_go_on(healthy, served):
    ha, (base, auth, reader) = healthy, served
    made = httpx.post(f"{base}/cases", json=report("etcd 之前"), headers=auth)
    assert made.status_code == 201
    ha.wait_replayed()
    ha.cluster._stop("etcd", lambda m: None)
    try:
        _wait_until_no_primary(ha, timeout_s=60)
        refused = httpx.post(f"{base}/cases", json=report("etcd 丢失"), headers=auth, timeout=30)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        # (Not the writer's: for GRIDMAP_READ_YOUR_WRITES_S after its write, its reads need the primary.)
        listed = httpx.get(f"{base}/cases", params={"limit": 500}, headers=reader, timeout=30)
        assert listed.status_code == 200, listed.text
        assert made.json()["id"] in {c["id"] for c in listed.json()["items"]}
        tile = httpx.get(f"{base}/map/tiles/12/3355/1644.pbf", headers=reader, timeout=30)
        assert tile.status_code in (200, 204), tile.text
    finally:
        ha.cluster.up(progress=lambda m: None)  # etcd again; Patroni elects a leader
    deadline = time.monotonic() + 60
    while httpx.post(f"{base}/cases", json=report("etcd 回来"), headers=auth, timeout=30).status_code != 201:
        assert time.monotonic() < deadline, "writes did not come back within 60 s of etcd"
        time.sleep(1)


def _wait_until_no_primary(ha, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        primaries = 0
        for port in ha.cluster.pg_ports:
            try:
                with ha.connect(port) as conn:
                    primaries += not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            except psycopg.OperationalError:
                pass
        if primaries == 0:
            return
        assert time.monotonic() < deadline, "the primary did not demote itself without etcd"
        time.sleep(0.5)


# ----------------------------------------------------------------


RATE, SECONDS, KILL_AT = 20, 14, 4  # reports a second, for how long, when the primary goes
BACK_WITHIN_S = 30


SWITCH_RATE, SWITCH_SECONDS, SWITCH_AT = 20, 10, 3


def test_a_planned_switchover_under_keyed_intake_and_reads_shows_no_client_an_error(healthy):
    ha = healthy
    with server(ha.url, public_intake_per_minute="100000") as base:
        auth = sign_in(base, normalize_url(ha.url), Role.DISPATCHER, f.COUNTY)
        reporters = Reporters(base, SWITCH_RATE, SWITCH_SECONDS, lambda n: report(f"切换 {n}"), workers=32)
        readers = Readers(base, auth["Authorization"].removeprefix("Bearer "))
        load = threading.Thread(target=reporters.run)
        reader = threading.Thread(target=readers.run)
        load.start()
        reader.start()
        time.sleep(SWITCH_AT)
        old, new = ha.cluster.switchover(progress=lambda m: None)  # returns once the old one follows
        load.join()
        readers.stop.set()
        reader.join()
    assert old != new
    # Not a 503 even: the requests waited for the new primary (GRIDMAP_DATABASE_WAIT_S). A request
    # whose commit reached the old primary as it stepped down is answered, when the service tries
    # again, with the stored case: 200 and its id, as any replay of an Idempotency-Key is (seen once
    # in 200 requests); stored_once below checks that each is stored once.
    assert set(reporters.answers) <= {"201", "200"}, reporters.answers
    assert sum(reporters.answers.values()) == reporters.sent, reporters.answers
    assert set(readers.seen) == {"200"}, readers.seen
    assert stored_once(ha.url, reporters.acked) == (reporters.sent, 0)


def test_kill_9_of_the_primary_under_keyed_intake_loses_nothing_and_the_service_comes_back(healthy):
    ha = healthy
    with server(ha.url, public_intake_per_minute="100000") as base:
        stream = Stream(base, sign_in(base, normalize_url(ha.url), Role.DISPATCHER, f.COUNTY)).start()
        reporters = Reporters(
            base, RATE, SECONDS, lambda n: report(f"故障切换 {n}"), give_up_s=BACK_WITHIN_S + 15, workers=32
        )
        load = threading.Thread(target=reporters.run)
        load.start()
        time.sleep(KILL_AT)
        killed = ha.cluster.kill_leader()  # kill -9 of its postmaster and its Patroni: the machine fails
        killed_at = time.monotonic()
        try:
            load.join()
        finally:
            ha.cluster.restart_node(killed)  # it rejoins as a replica (pg_rewind) for the next tests
        acked = set(reporters.acked.values())
        stream.wait_for(acked, timeout_s=20)
        stream.stop.set()

    assert "500" not in reporters.answers, reporters.answers
    assert len(reporters.acked) == reporters.sent, f"unacknowledged: {reporters.answers}"
    back = reporters.longest_gap_after(killed_at)
    assert back is not None and back < BACK_WITHIN_S, f"writes stopped for {back} s"
    stored, twice = stored_once(ha.url, reporters.acked)
    assert (stored, twice) == (len(reporters.acked), 0)  # each acknowledged case once
    assert acked <= stream.created, f"{len(acked - stream.created)} created events missed"
    assert 500 not in stream.statuses
