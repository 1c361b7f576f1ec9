"""`gridmap serve` with reads on standbys, on a real Patroni cluster: a client reads its own writes,
others a fresh standby; with etcd lost the primary demotes itself, writes get 503 and reads go on."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from access.roles import Role
from store.engine import normalize_url
from tests import factories as f
from tests.ha.conftest import report
from tests.live import server, sign_in


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
