"""The embedded PostGIS cluster, for real: initdb, start, PostGIS, restart, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from geo.settings import PROJECT_DIR, Settings
from store.cluster import ClusterError, EmbeddedCluster
from tests.conftest import DB_PREFIX

# Not tmp_path: when the tests run as root the server runs as `postgres`, which cannot traverse
# /tmp/pytest-of-root (mode 700). The project directory is traversable.
TEST_CLUSTERS = PROJECT_DIR / ".gridmap" / "test-clusters"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(home: Path, port: int, **extra: object) -> Settings:
    return Settings(home=home, embedded_port=port, embedded_database="gridmap", **extra)


def _dsn(url: str) -> str:
    """psycopg wants a plain libpq URL, not SQLAlchemy's dialect+driver form."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A world-traversable directory for this module's clusters, removed afterwards."""
    TEST_CLUSTERS.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="cluster-", dir=TEST_CLUSTERS))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        TEST_CLUSTERS.rmdir()  # only if no other test run is using it


@pytest.fixture(scope="module")
def cluster(scratch: Path) -> Iterator[EmbeddedCluster]:
    """One real cluster for the module, stopped at the end whatever happened."""
    embedded = EmbeddedCluster(_settings(scratch / "home", _free_port()))
    try:
        yield embedded
    finally:
        embedded.stop()


def test_url_before_first_start_says_what_to_do(scratch: Path) -> None:
    fresh = EmbeddedCluster(_settings(scratch / "never-started", _free_port()))
    with pytest.raises(ClusterError, match="gridmap db start"):
        fresh.url()
    status = fresh.status()
    assert not status.running
    assert status.url is None


def test_start_status_postgis_and_restart_keep_data(cluster: EmbeddedCluster) -> None:
    messages: list[str] = []
    url = cluster.start(progress=messages.append)
    assert messages, "the first start reports progress"
    assert url.startswith("postgresql+psycopg://gridmap:")
    assert url.endswith(f"@127.0.0.1:{cluster.status().port}/gridmap")

    status = cluster.status()
    assert status.running
    assert status.pid is not None and status.pid > 0
    assert status.url == url
    home = status.data_dir.parent
    assert (home / "pg-password").stat().st_mode & 0o777 == 0o600

    with psycopg.connect(_dsn(url)) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        version = conn.execute("SELECT postgis_full_version()").fetchone()[0]
        assert "POSTGIS=" in version
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, geom geometry(Point, 4490))")
        conn.execute("INSERT INTO kept VALUES (1, ST_SetSRID(ST_MakePoint(116.4, 39.9), 4490))")

    cluster.stop()
    stopped = cluster.status()
    assert not stopped.running
    assert stopped.pid is None
    assert stopped.url == url  # the URL is known while stopped
    cluster.stop()  # idempotent

    assert cluster.start(progress=messages.append) == url
    with psycopg.connect(_dsn(url)) as conn:
        row = conn.execute("SELECT id, ST_AsText(geom) FROM kept").fetchone()
    assert row == (1, "POINT(116.4 39.9)")


def test_second_start_while_running_is_a_no_op(cluster: EmbeddedCluster) -> None:
    url = cluster.start(progress=lambda _: None)
    pid = cluster.status().pid
    messages: list[str] = []
    assert cluster.start(progress=messages.append) == url
    assert messages == []
    assert cluster.status().pid == pid


def test_create_and_drop_database(cluster: EmbeddedCluster) -> None:
    cluster.start(progress=lambda _: None)
    name = f"{DB_PREFIX}-db"  # a hyphen: the name must be quoted as an identifier
    cluster.create_database(name)
    cluster.create_database(name)  # idempotent
    test_url = cluster.url().rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(_dsn(test_url)) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
    cluster.drop_database(name)
    cluster.drop_database(name)  # idempotent
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_dsn(test_url)).close()


def test_failed_start_shows_the_log_tail(cluster: EmbeddedCluster) -> None:
    cluster.start(progress=lambda _: None)
    conf = cluster.status().data_dir / "postgresql.conf"
    original = conf.read_bytes()
    cluster.stop()
    try:
        with conf.open("a") as handle:
            handle.write("\nno_such_setting_for_the_test = 1\n")
        with pytest.raises(ClusterError) as failure:
            cluster.start(progress=lambda _: None)
        message = str(failure.value)
        assert "did not start" in message
        assert "no_such_setting_for_the_test" in message  # from the log tail
        assert not cluster.status().running
    finally:
        conf.write_bytes(original)
    cluster.start(progress=lambda _: None)
    assert cluster.status().running


def test_bin_dir_without_initdb_is_a_clear_error(scratch: Path) -> None:
    empty = scratch / "no-binaries"
    empty.mkdir()
    bad = EmbeddedCluster(_settings(scratch / "bad-bin", _free_port(), pg_bin_dir=empty))
    with pytest.raises(ClusterError, match="GRIDMAP_PG_BIN_DIR") as failure:
        bad.start(progress=lambda _: None)
    assert "initdb" in str(failure.value)
    assert str(empty) in str(failure.value)


def test_port_in_use_is_a_clear_error(scratch: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        home = scratch / "port-taken"
        with pytest.raises(ClusterError, match="GRIDMAP_EMBEDDED_PORT") as failure:
            EmbeddedCluster(_settings(home, port)).start(progress=lambda _: None)
    assert str(port) in str(failure.value)
    assert not (home / "pg").exists(), "nothing is initialised when the port is taken"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to the postgres user")
def test_root_needs_a_home_the_postgres_user_can_reach(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    unreachable = EmbeddedCluster(_settings(private / "home", _free_port()))
    with pytest.raises(ClusterError, match="GRIDMAP_HOME") as failure:
        unreachable.start(progress=lambda _: None)
    assert str(private) in str(failure.value)
    assert "chmod" in str(failure.value)
