"""The project-local embedded PostGIS cluster: initdb on first use, then start/stop on demand.

The cluster lives in ``settings.home / "pg"``; its log is ``settings.home / "pg.log"`` and the
generated superuser password ``settings.home / "pg-password"``. It listens only on 127.0.0.1 at
``settings.embedded_port`` and keeps its unix socket inside the data directory, so it never
clashes with a system PostgreSQL in /var/run/postgresql.

PostgreSQL refuses to run as root. When this process is root the server binaries run as the
unprivileged ``postgres`` system user (created by the Debian postgresql package), which then owns
the data directory, log and password file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shlex
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from geo.settings import Settings
from store.pg_server import Binaries, ClusterError, Owner, find_binaries, run_as, server_owner

__all__ = ["HOST", "SERVER_SETTINGS", "ClusterError", "ClusterStatus", "EmbeddedCluster"]

SUPERUSER = "gridmap"
HOST = "127.0.0.1"

# A development cluster on a small (2-core) machine: enough memory for GiST index builds over a
# few hundred thousand polygons without crowding out the API and the test run beside it.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,  # never reachable from the network
    "max_connections": "100",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",  # index builds on geometries are the slow part of imports
    "effective_cache_size": "1GB",
    "max_parallel_workers_per_gather": "1",  # two cores: one helper, one left for the app
    "fsync": "on",  # keep durability: imported grids are real work, not a throwaway
}

START_TIMEOUT_S = 60
LOG_TAIL_LINES = 20
UNIX_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL


@dataclass(frozen=True)
class ClusterStatus:
    """What `gridmap db status` shows."""

    running: bool
    data_dir: Path
    port: int
    pid: int | None
    url: str | None
    message: str


class EmbeddedCluster:
    """A PostGIS cluster owned by this project, kept under ``settings.home``."""

    def __init__(self, settings: Settings) -> None:
        """Remember the settings; nothing touches the disk until start()."""
        self._settings = settings
        # Absolute paths: the binaries run with cwd "/" (the postgres user may not reach ours).
        self._home = settings.home.expanduser().absolute()
        self._data_dir = self._home / "pg"
        self._log_file = self._home / "pg.log"
        self._password_file = self._home / "pg-password"
        self._lock_file = self._home / "cluster.lock"
        self._port = settings.embedded_port
        self._bins: Binaries | None = None

    # ----------------------------------------------------------------- public API

    def server_owner(self) -> Owner | None:
        """The system user PostgreSQL runs as (None: this process's own user, when not root)."""
        return self._owner()

    def bin_dir(self) -> Path:
        """The PostgreSQL server binaries in use (GRIDMAP_PG_BIN_DIR, else the newest installed)."""
        return self._binaries().bin_dir

    def url(self) -> str:
        """The SQLAlchemy URL of the embedded database (valid once the cluster was created)."""
        return self._url_for(self._settings.embedded_database)

    def status(self) -> ClusterStatus:
        """Whether the cluster is running, where its data is and how to reach it."""
        if not self._initialised():
            return ClusterStatus(
                running=False,
                data_dir=self._data_dir,
                port=self._port,
                pid=None,
                url=None,
                message=f"no cluster in {self._data_dir} yet; `gridmap db start` creates it",
            )
        running, pid, port = self._probe()
        url = self.url() if self._password_file.is_file() else None
        if running:
            message = f"running (pid {pid}) on {HOST}:{port}, data in {self._data_dir}"
        else:
            message = f"stopped (data in {self._data_dir}); `gridmap db start` starts it"
        return ClusterStatus(
            running=running, data_dir=self._data_dir, port=port, pid=pid, url=url, message=message
        )

    def start(self, *, progress: Callable[[str], None] = print) -> str:
        """Create the cluster if needed, start it unless running, and return its URL."""
        bins = self._binaries()
        self._prepare_home()
        with self._locked():
            if self._initialised():
                self._check_data_version(bins)
                running, _pid, port = self._probe()
                if running:
                    if port != self._port:
                        raise ClusterError(
                            f"The embedded cluster is already running on port {port}, not on "
                            f"{self._port} (GRIDMAP_EMBEDDED_PORT). Stop it with `gridmap db "
                            f"stop` first, or set GRIDMAP_EMBEDDED_PORT={port}."
                        )
                    return self.url()
            self._check_port_free()
            self._check_socket_path()
            if not self._initialised():
                progress(
                    f"Creating the embedded PostGIS cluster (PostgreSQL {bins.major}) in {self._data_dir} ..."
                )
                self._initdb(bins)
            elif not self._password_file.is_file():
                raise ClusterError(
                    f"The cluster in {self._data_dir} exists but its password file "
                    f"{self._password_file} is missing, so nothing can log in. Restore the file, "
                    f"or delete {self._data_dir} (losing its data) and run `gridmap db start`."
                )
            progress(f"Starting PostgreSQL {bins.major} on {HOST}:{self._port} ...")
            self._pg_ctl_start(bins)
            self.create_database(self._settings.embedded_database)
        return self.url()

    def stop(self) -> None:
        """Stop the cluster if it is running; open sessions are disconnected."""
        if not self._initialised():
            return
        bins = self._binaries()
        with self._locked():
            if not self._probe()[0]:
                return
            result = self._run(
                [
                    bins.tool("pg_ctl"),
                    "stop",
                    "-D",
                    str(self._data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                ],
                timeout=START_TIMEOUT_S + 30,
            )
            # A server that exited on its own between the probe and the stop is fine too.
            if result.returncode != 0 and self._probe()[0]:
                raise ClusterError(
                    f"Could not stop the embedded cluster: {result.stderr.strip()}\n"
                    f"{self._log_tail()}\nCheck the log above; `gridmap db status` shows its pid."
                )

    def create_database(self, name: str) -> None:
        """Create database ``name`` in the running cluster unless it already exists."""
        with self._connect("postgres") as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is not None:
                return
            # A concurrent creator may win the race; the database exists either way.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions."""
        if name in ("postgres", "template0", "template1"):
            raise ClusterError(f"Refusing to drop the system database {name!r}.")
        with self._connect("postgres") as conn:
            # WITH (FORCE) (PostgreSQL 13+) ends leftover sessions, e.g. of a crashed test run.
            force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force))

    # ----------------------------------------------------------------- binaries and users

    def _binaries(self) -> Binaries:
        if self._bins is None:
            self._bins = find_binaries(self._settings.pg_bin_dir)
        return self._bins

    def _owner(self) -> Owner | None:
        """None when not root (run as ourselves); otherwise the postgres system user."""
        return server_owner()

    def _run(self, args: list[str], *, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster's owner; output is captured, never printed."""
        try:
            return run_as(self._owner(), args, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"`{Path(args[0]).name}` did not finish within {timeout:.0f} s.\n{self._log_tail()}"
            ) from None
        except OSError as exc:
            raise ClusterError(f"Could not run {args[0]}: {exc}") from None

    # ----------------------------------------------------------------- files and checks

    def _initialised(self) -> bool:
        return (self._data_dir / "PG_VERSION").is_file()

    def _prepare_home(self) -> None:
        owner = self._owner()
        missing = [p for p in (self._home, *self._home.parents) if not p.exists()]
        self._home.mkdir(parents=True, exist_ok=True)
        if owner is None:
            return
        # Directories we created must be traversable by postgres whatever root's umask is.
        for path in missing:
            path.chmod(0o755)
        if self._run(["test", "-x", str(self._home)]).returncode == 0:
            return
        blocker = next(
            (
                p
                for p in reversed((self._home, *self._home.parents))
                if self._run(["test", "-x", str(p)]).returncode != 0
            ),
            self._home,
        )
        raise ClusterError(
            f"The server runs as the `{owner.name}` user (PostgreSQL refuses root), but that user "
            f"cannot reach {self._home}: {blocker} is not traversable by it. Put the cluster "
            f"elsewhere with GRIDMAP_HOME=/var/lib/gridmap (any directory outside {blocker}), "
            f"or allow traversal with `chmod o+x {blocker}`."
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop across processes (e.g. the API and the CLI starting together)."""
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _check_data_version(self, bins: Binaries) -> None:
        found = (self._data_dir / "PG_VERSION").read_text().strip()
        if found != str(bins.major):
            raise ClusterError(
                f"{self._data_dir} was created by PostgreSQL {found}, but the binaries in "
                f"{bins.bin_dir} are version {bins.major}. Set GRIDMAP_PG_BIN_DIR to the "
                f"PostgreSQL {found} bin directory, or move {self._data_dir} away to start fresh."
            )

    def _check_port_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # Same option as the postmaster, so lingering TIME_WAIT connections don't count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, self._port))
            except OSError as exc:
                raise ClusterError(
                    f"Port {self._port} on {HOST} is already in use by another program "
                    f"({exc.strerror}). Stop that program, or pick a free port with "
                    f"GRIDMAP_EMBEDDED_PORT=<port>."
                ) from None

    def _check_socket_path(self) -> None:
        socket_path = self._data_dir / f".s.PGSQL.{self._port}"
        if len(os.fsencode(socket_path)) > UNIX_SOCKET_PATH_MAX:
            raise ClusterError(
                f"The unix socket path {socket_path} is longer than {UNIX_SOCKET_PATH_MAX} bytes, "
                "which the operating system does not allow. Set GRIDMAP_HOME to a shorter path."
            )

    def _write_password(self) -> None:
        # O_EXCL + 0600: the file is never readable by anyone else, not even for a moment.
        fd = os.open(self._password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")

    def _read_password(self) -> str:
        try:
            password = self._password_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterError(
                f"The embedded cluster has not been created yet (no {self._password_file}); "
                "run `gridmap db start`."
            ) from None
        if not password:
            raise ClusterError(f"{self._password_file} is empty; restore it or recreate the cluster.")
        return password

    def _give_to_owner(self, path: Path) -> None:
        owner = self._owner()
        if owner is not None:
            os.chown(path, owner.uid, owner.gid)

    def _log_tail(self) -> str:
        try:
            with self._log_file.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 16384))
                lines = handle.read().decode("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return f"(no log at {self._log_file})"
        return f"Last lines of {self._log_file}:\n" + "\n".join(f"  {line}" for line in lines)

    def _probe(self) -> tuple[bool, int | None, int]:
        """(running, pid, port) from `pg_ctl status` and postmaster.pid."""
        result = self._run([self._binaries().tool("pg_ctl"), "status", "-D", str(self._data_dir)])
        if result.returncode != 0:  # 3 = not running, 4 = no accessible data directory
            return False, None, self._port
        pid, port = None, self._port
        with contextlib.suppress(OSError, ValueError, IndexError):
            # postmaster.pid: line 1 is the pid, line 4 the port.
            lines = (self._data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        if pid is None:
            match = re.search(r"PID:\s*(\d+)", result.stdout)
            pid = int(match.group(1)) if match else None
        return True, pid, port

    # ----------------------------------------------------------------- server lifecycle

    def _initdb(self, bins: Binaries) -> None:
        if self._data_dir.exists() and any(self._data_dir.iterdir()):
            raise ClusterError(
                f"{self._data_dir} exists but holds no PostgreSQL cluster (an interrupted "
                "initdb?). Move it away or delete it, then run `gridmap db start` again."
            )
        if not self._password_file.exists():
            self._write_password()
        self._give_to_owner(self._password_file)  # initdb reads it via --pwfile
        self._data_dir.mkdir(mode=0o700, exist_ok=True)
        self._give_to_owner(self._data_dir)
        result = self._run(
            [
                bins.tool("initdb"),
                "-D",
                str(self._data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={self._password_file}",
                "--encoding=UTF8",
                # C collation works on every machine (no locale packages) and sorts by code point.
                "--locale=C",
                # Socket connections need access to the 0700 data dir, i.e. to be its owner.
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            timeout=300,
        )
        if result.returncode != 0:
            lines = (result.stdout + result.stderr).strip().splitlines()
            output = "\n".join(lines[-LOG_TAIL_LINES:])
            raise ClusterError(
                f"initdb failed (exit {result.returncode}) for {self._data_dir}:\n{output}\n"
                "Fix the cause above and run `gridmap db start` again."
            )

    def _pg_ctl_start(self, bins: Binaries) -> None:
        self._log_file.touch(mode=0o640, exist_ok=True)
        self._give_to_owner(self._log_file)  # pg_ctl appends to it as the server's user
        settings = {
            **SERVER_SETTINGS,
            "port": str(self._port),
            # Inside the data dir: no clash with a system cluster in /var/run/postgresql.
            "unix_socket_directories": str(self._data_dir),
        }
        # pg_ctl hands -o to a shell, hence the quoting.
        options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
        result = self._run(
            [
                bins.tool("pg_ctl"),
                "start",
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-D",
                str(self._data_dir),
                "-l",
                str(self._log_file),
                "-o",
                options,
            ],
            timeout=START_TIMEOUT_S + 30,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()}).\n{self._log_tail()}\n"
                "Fix the cause above and run `gridmap db start` again."
            )

    # ----------------------------------------------------------------- connections

    def _url_for(self, database: str) -> str:
        password = quote(self._read_password(), safe="")
        return f"postgresql+psycopg://{SUPERUSER}:{password}@{HOST}:{self._port}/{quote(database, safe='')}"

    def _connect(self, database: str) -> psycopg.Connection:
        # Autocommit: CREATE/DROP DATABASE cannot run inside a transaction block.
        try:
            return psycopg.connect(
                host=HOST,
                port=self._port,
                user=SUPERUSER,
                password=self._read_password(),
                dbname=database,
                autocommit=True,
                connect_timeout=10,
            )
        except psycopg.OperationalError as exc:
            raise ClusterError(
                f"Cannot connect to the embedded cluster at {HOST}:{self._port}: "
                f"{str(exc).strip()}. Is it running? `gridmap db start` starts it."
            ) from None
