"""A real three-node Patroni + etcd cluster (store.ha_cluster) for the high-availability tests.

Started once per run under `.gridmap/test-ha/` on ports from GRIDMAP_TEST_HA_BASE_PORT (default
25450: etcd 25450-25451, PostgreSQL 25452-25454, Patroni 25455-25457; the development cluster
of `gridmap ha` keeps 25440-25447), stopped at the end. A fresh database holds the test county.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from geo.settings import Settings
from services.imports import import_units
from store.cluster import HOST
from store.engine import normalize_url
from store.ha_cluster import LocalHaCluster
from store.migrate import upgrade
from tests import factories as f
from tests.conftest import DB_PREFIX

HA_BASE_PORT = int(os.environ.get("GRIDMAP_TEST_HA_BASE_PORT", "25450"))
INSIDE = (f.X0 + 0.01, f.Y0 + 0.03)  # in grid 001 of the test county


@dataclass
class Ha:
    """The running test cluster, its database and what tests do to its nodes."""

    cluster: LocalHaCluster
    database: str
    url: str  # multi-host, target_session_attrs=read-write
    maintenance: bool = False  # Patroni paused (set_replay)

    def connect(self, port: int, dbname: str | None = None) -> psycopg.Connection:
        """A superuser connection to one node, in autocommit."""
        return psycopg.connect(
            host=HOST,
            port=port,
            user="postgres",
            password=self.cluster._password("superuser"),
            dbname=dbname or self.database,
            autocommit=True,
        )

    def leader_port(self) -> int:
        """The PostgreSQL port of the current leader."""
        leader = self.cluster.leader()
        assert leader is not None, "no leader"
        return leader.port

    def standby_ports(self) -> list[int]:
        """The ports of the nodes that are not the leader."""
        leader = self.leader_port()
        return [p for p in self.cluster.pg_ports if p != leader]

    def wait_replayed(self, timeout_s: float = 20) -> None:
        """Until every standby has replayed everything the primary has written so far."""
        with self.connect(self.leader_port()) as primary:
            lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout_s
        for port in self.standby_ports():
            with self.connect(port) as standby:
                while standby.execute("SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", (lsn,)).fetchone()[0]:
                    assert time.monotonic() < deadline, f"standby {port} did not replay {lsn}"
                    time.sleep(0.1)

    def set_replay(self, port: int, *, paused: bool) -> None:
        """Pause or resume WAL replay on a standby (it keeps receiving). Patroni resumes a paused
        replay on its next loop unless the cluster is in maintenance: pausing puts it there."""
        if paused:
            self.cluster.configure({"pause": True})
            self.maintenance = True
        with self.connect(port) as conn:
            conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")

    def resume_all(self) -> None:
        """Resume replay wherever it was paused."""
        for port in self.cluster.pg_ports:
            try:
                with self.connect(port) as conn:
                    if conn.execute("SELECT pg_is_in_recovery() AND pg_is_wal_replay_paused()").fetchone()[0]:
                        conn.execute("SELECT pg_wal_replay_resume()")
            except psycopg.OperationalError:
                pass
        if self.maintenance:
            self.cluster.configure({"pause": False})
            self.maintenance = False


@pytest.fixture(scope="session")
def ha(settings: Settings, tmp_path_factory) -> Iterator[Ha]:
    """The cluster, up and healthy, with a fresh migrated database holding the test county."""
    ha_settings = settings.model_copy(
        update={"home": settings.home / "test-ha", "ha_base_port": HA_BASE_PORT}
    )
    cluster = LocalHaCluster(ha_settings)
    # A run stopped half-way (a killed pytest, a setup that timed out) leaves nodes running and data
    # folders behind, and a standby of an old run may never reach consistency with a new leader:
    # every run starts from nothing, as CI's fresh clone does.
    cluster.down(progress=lambda m: None)
    shutil.rmtree(ha_settings.home, ignore_errors=True)
    try:
        cluster.up(progress=lambda m: None)
    except BaseException:
        cluster.down(progress=lambda m: None)  # nothing left running for the next run to trip on
        raise
    name = f"{DB_PREFIX}_ha"
    ha = Ha(cluster, name, cluster.url(name))
    with ha.connect(ha.leader_port(), "postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(normalize_url(ha.url))
    path = f.write_geojson(tmp_path_factory.mktemp("ha") / "county.geojson", f.hierarchy())
    engine = create_engine(normalize_url(ha.url))
    with Session(engine) as session, session.begin():
        import_units(session, path, valid_from=datetime(2024, 1, 1, tzinfo=UTC), settings=settings)
    engine.dispose()
    try:
        yield ha
    finally:
        ha.resume_all()
        cluster.down(progress=lambda m: None)


@pytest.fixture
def healthy(ha: Ha) -> Iterator[Ha]:
    """The cluster healthy before the test (and replay resumed after it)."""
    ha.cluster.wait_healthy()
    try:
        yield ha
    finally:
        ha.resume_all()


def report(description: str = "井盖缺失") -> dict:
    """A report inside the test county."""
    return {"lon": INSIDE[0], "lat": INSIDE[1], "category": "0101", "description": description}
