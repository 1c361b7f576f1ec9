"""A local high-availability cluster: three PostgreSQL + PostGIS nodes under Patroni, one etcd.

For development, tests and benchmarks of failover on one machine (`gridmap ha up|down|status|
switchover`); a real deployment runs the same engines on three machines (docs/high-availability.md).
Nothing here decides who is primary: Patroni does, through etcd; this module writes their
configuration, starts and stops the processes, and reads Patroni's REST API.

Layout under `settings.home / "ha"`: `etcd/` (data), `nodeN/` (patroni.yml, data/, log), the
passwords, and a pid file per process. Ports from GRIDMAP_HA_BASE_PORT (b, default 25440): etcd b and b+1, the
nodes' PostgreSQL b+2..b+4 and their REST APIs b+5..b+7, all on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from geo.settings import Settings
from store.cluster import HOST, SERVER_SETTINGS, ClusterError, EmbeddedCluster

NODES = 3
SCOPE = "gridmap"
SUPERUSER = "postgres"  # Patroni's superuser; the service connects as it on this dev cluster
REPLICATION_USER = "replicator"
# Failover timing: the leader key lives TTL s unless renewed (every LOOP_WAIT s); Patroni demands
# loop_wait + 2 * retry_timeout <= ttl.
TTL_S, LOOP_WAIT_S, RETRY_TIMEOUT_S = 10, 2, 4
UP_TIMEOUT_S = 180


@dataclass(frozen=True)
class Member:
    """One node as Patroni reports it."""

    name: str
    role: str  # leader, sync_standby, replica
    state: str  # running, streaming, starting, stopped, ...
    port: int
    lag: int | None


class LocalHaCluster:
    """Three Patroni nodes and an etcd on this machine, kept under `settings.home / "ha"`."""

    def __init__(self, settings: Settings) -> None:
        """Remember where everything lives; nothing starts until up()."""
        self._settings = settings
        self._root = settings.home.expanduser().absolute() / "ha"
        base = settings.ha_base_port
        self.etcd_port, self._etcd_peer_port = base, base + 1
        self.pg_ports = [base + 2 + i for i in range(NODES)]
        self.rest_ports = [base + 2 + NODES + i for i in range(NODES)]
        self._embedded = EmbeddedCluster(settings)  # for the server owner and binaries

    # ----------------------------------------------------------------- public API

    def url(self, database: str | None = None) -> str:
        """A libpq multi-host URL of every node; writes find the primary (target_session_attrs)."""
        hosts = ",".join(f"{HOST}:{port}" for port in self.pg_ports)
        name = quote(database or self._settings.embedded_database, safe="")
        password = quote(self._password("superuser"), safe="")
        return f"postgresql://{SUPERUSER}:{password}@{hosts}/{name}?target_session_attrs=read-write"

    def up(self, *, progress: Callable[[str], None] = print) -> str:
        """Start etcd and the three nodes (creating them the first time); the URL once writable."""
        self._root.mkdir(parents=True, exist_ok=True)
        os.chmod(self._root, 0o755)  # the nodes run as postgres and must reach their folders
        if not self._alive("etcd"):
            progress(f"starting etcd on {HOST}:{self.etcd_port}")
            self._start_etcd()
        for number in range(1, NODES + 1):
            if not self._alive(f"node{number}"):
                progress(f"starting Patroni node{number} (PostgreSQL {HOST}:{self.pg_ports[number - 1]})")
                self._start_node(number)
        progress("waiting for a leader, a synchronous standby and a replica ...")
        leader = self.wait_healthy()
        deadline = time.monotonic() + UP_TIMEOUT_S
        while True:
            try:
                self._create_database(leader.port)
                return self.url()
            except psycopg.OperationalError:
                # The leader Patroni named a moment ago may be restarting (the cluster coming back
                # from a lost etcd): ask again.
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
                leader = self.wait_healthy()

    def down(self, *, progress: Callable[[str], None] = print) -> None:
        """Stop the nodes (Patroni stops PostgreSQL), then etcd."""
        for number in range(NODES, 0, -1):
            self._stop(f"node{number}", progress)
        self._stop("etcd", progress)

    def members(self) -> list[Member]:
        """The nodes as Patroni sees them (empty when no node answers)."""
        for port in self.rest_ports:
            with contextlib.suppress(OSError, ValueError):
                body = self._rest(port, "cluster")
                return sorted(
                    (
                        Member(m["name"], m["role"], m.get("state", "?"), int(m["port"]), _lag(m.get("lag")))
                        for m in body.get("members", [])
                    ),
                    key=lambda m: m.name,
                )
        return []

    def wait_healthy(self) -> Member:
        """Wait until every node runs, one leads and one is its synchronous standby; the leader."""
        return self._wait(_healthy)

    def leader(self) -> Member | None:
        """The running leader, if any."""
        return next((m for m in self.members() if m.role == "leader" and m.state == "running"), None)

    def switchover(self, *, progress: Callable[[str], None] = print) -> tuple[str, str]:
        """A clean, planned switchover to the synchronous standby; (old leader, new leader)."""
        members = self.members()
        leader = next((m for m in members if m.role == "leader"), None)
        candidate = next((m for m in members if m.role == "sync_standby"), None)
        if leader is None or candidate is None:
            raise ClusterError("no leader and synchronous standby to switch between: see `gridmap ha status`")
        progress(f"switching over from {leader.name} to {candidate.name}")
        port = self.rest_ports[int(leader.name.removeprefix("node")) - 1]
        self._rest(port, "switchover", {"leader": leader.name, "candidate": candidate.name})
        self._wait(
            lambda ms: _healthy(ms) and any(m.name == candidate.name and m.role == "leader" for m in ms)
        )
        return leader.name, candidate.name

    def configure(self, changes: dict) -> None:
        """Change the cluster's dynamic configuration (Patroni's PATCH /config): `{"pause": true}`
        (maintenance: Patroni leaves PostgreSQL alone), `{"synchronous_mode": false}`, ...; returns
        once every node has applied it."""
        leader = self.leader() or next(iter(self.members()), None)
        if leader is None:
            raise ClusterError("no node answers: `gridmap ha up` starts the cluster")
        self._rest(self.rest_ports[int(leader.name.removeprefix("node")) - 1], "config", changes, "PATCH")
        wanted = {k: v for k, v in changes.items() if k in ("pause",)}
        deadline = time.monotonic() + UP_TIMEOUT_S
        for port in self.rest_ports:
            while wanted and bool(self._rest(port, "patroni").get("pause")) != bool(wanted["pause"]):
                if time.monotonic() > deadline:
                    raise ClusterError(f"node on REST port {port} did not apply {changes}")
                time.sleep(0.3)

    def kill_leader(self) -> str:
        """Kill -9 the leader's Patroni and PostgreSQL, as a machine failing would; its name."""
        leader = self.leader()
        if leader is None:
            raise ClusterError("no running leader to kill")
        pids = [self._pid(leader.name), self._postmaster_pid(leader.name)]
        for pid in pids:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return leader.name

    def restart_node(self, name: str) -> None:
        """Start a node again after kill_leader (it rejoins as a replica, rewound if needed)."""
        self._start_node(int(name.removeprefix("node")))

    # ----------------------------------------------------------------- processes

    def _start_etcd(self) -> None:
        data = self._root / "etcd"
        peer = f"http://{HOST}:{self._etcd_peer_port}"
        client = f"http://{HOST}:{self.etcd_port}"
        args = [
            "etcd",
            "--name",
            "etcd1",
            "--data-dir",
            str(data),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"etcd1={peer}",
            "--initial-cluster-state",
            "new",
        ]
        self._spawn("etcd", args, owner=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(f"{client}/health", timeout=2) as answer,
            ):
                if json.load(answer).get("health") == "true":
                    return
            time.sleep(0.3)
        log = (self._root / "etcd.log").read_text(errors="replace")
        if "address already in use" in log[-2000:]:
            raise ClusterError(
                f"etcd cannot listen on {HOST}:{self.etcd_port} or {self._etcd_peer_port}: the port is in "
                "use. Set GRIDMAP_HA_BASE_PORT to a free range of 8 ports."
            )
        raise ClusterError(f"etcd did not become healthy in 30 s; see {self._root / 'etcd.log'}")

    def _start_node(self, number: int) -> None:
        name = f"node{number}"
        folder = self._root / name
        folder.mkdir(exist_ok=True)
        config = folder / "patroni.yml"
        config.write_text(json.dumps(self._patroni_config(number), indent=2))  # YAML is a superset of JSON
        self._give(folder)
        self._give(config)
        self._spawn(name, ["patroni", str(config)], owner=True)

    def _patroni_config(self, number: int) -> dict:
        folder = self._root / f"node{number}"
        pg_port, rest_port = self.pg_ports[number - 1], self.rest_ports[number - 1]
        parameters = {k: v for k, v in SERVER_SETTINGS.items() if k != "listen_addresses"}
        parameters |= {"shared_buffers": "128MB", "wal_log_hints": "on"}
        return {
            "scope": SCOPE,
            "name": f"node{number}",
            "restapi": {"listen": f"{HOST}:{rest_port}", "connect_address": f"{HOST}:{rest_port}"},
            "etcd3": {"hosts": [f"{HOST}:{self.etcd_port}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_S,
                    "loop_wait": LOOP_WAIT_S,
                    "retry_timeout": RETRY_TIMEOUT_S,
                    "maximum_lag_on_failover": 1 << 20,
                    # A commit waits for the synchronous standby, and only it may be promoted: an
                    # acknowledged case survives the loss of the primary.
                    "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": parameters},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{HOST}:{pg_port}",
                "connect_address": f"{HOST}:{pg_port}",
                "data_dir": str(folder / "data"),
                "bin_dir": str(self._embedded.bin_dir()),
                "pgpass": str(folder / "pgpass"),
                "authentication": {
                    "superuser": {"username": SUPERUSER, "password": self._password("superuser")},
                    "replication": {"username": REPLICATION_USER, "password": self._password("replication")},
                },
                "pg_hba": [
                    "local all all trust",
                    f"host replication {REPLICATION_USER} {HOST}/32 scram-sha-256",
                    f"host all all {HOST}/32 scram-sha-256",
                ],
                "parameters": {"unix_socket_directories": str(folder)},
            },
            "log": {"dir": str(folder), "level": "INFO"},
        }

    def _spawn(self, name: str, args: list[str], *, owner: bool) -> None:
        log = (self._root / f"{name}.log").open("ab")
        creds: dict[str, object] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        who = self._embedded.server_owner() if owner else None
        if who is not None:
            creds = {"user": who.uid, "group": who.gid, "extra_groups": list(who.groups)}
            env.update(HOME=who.home, USER=who.name, LOGNAME=who.name)
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=self._root,
            env=env,
            start_new_session=True,
            **creds,  # type: ignore[arg-type]
        )
        (self._root / f"{name}.pid").write_text(str(process.pid))

    def _stop(self, name: str, progress: Callable[[str], None]) -> None:
        pid = self._pid(name)
        if not pid or not self._alive(name):
            return
        progress(f"stopping {name}")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while self._alive(name) and time.monotonic() < deadline:
            time.sleep(0.3)
        if self._alive(name):
            os.kill(pid, signal.SIGKILL)

    def _alive(self, name: str) -> bool:
        pid = self._pid(name)
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie or a recycled pid: check it is still ours by its command line.
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            return b"etcd" in cmdline or b"patroni" in cmdline
        return False

    def _pid(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self._root / f"{name}.pid").read_text())
        return None

    def _postmaster_pid(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self._root / name / "data" / "postmaster.pid").read_text().splitlines()[0])
        return None

    # ----------------------------------------------------------------- helpers

    def _wait(self, ready: Callable[[list[Member]], bool]) -> Member:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while time.monotonic() < deadline:
            members = self.members()
            if members and ready(members):
                return next(m for m in members if m.role == "leader")
            time.sleep(0.5)
        raise ClusterError(
            f"the cluster did not come up in {UP_TIMEOUT_S} s; see the logs in {self._root} "
            "(etcd.log, nodeN.log, nodeN/patroni.log)"
        )

    def _create_database(self, port: int) -> None:
        name = self._settings.embedded_database
        with psycopg.connect(
            host=HOST,
            port=port,
            user=SUPERUSER,
            password=self._password("superuser"),
            dbname="postgres",
            autocommit=True,
        ) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _password(self, which: str) -> str:
        path = self._root / f"{which}-password"
        if not path.exists():
            self._root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _give(self, path: Path) -> None:
        who = self._embedded.server_owner()
        if who is not None:
            os.chown(path, who.uid, who.gid)

    @staticmethod
    def _rest(port: int, path: str, body: dict | None = None, method: str | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        method = method or ("POST" if data else "GET")
        request = urllib.request.Request(f"http://{HOST}:{port}/{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as answer:
            text = answer.read().decode()
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {"message": text}


def _healthy(members: list[Member]) -> bool:
    """All nodes up, a running leader, and a synchronous standby to promote if it fails."""
    up = len(members) == NODES and all(m.state in ("running", "streaming") for m in members)
    return up and any(m.role == "leader" for m in members) and any(m.role == "sync_standby" for m in members)


def _lag(value: object) -> int | None:
    return value if isinstance(value, int) else None
