"""Real server processes for tests that need them (several processes on one database, streams)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from access.roles import Role
from store import users


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(database_url: str, **settings: str) -> Iterator[str]:
    """`gridmap serve` in a process of its own on `database_url`; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": database_url,
        "GRIDMAP_BACKGROUND_JOBS": "false",
        "GRIDMAP_SECRET_KEY": TEST_SECRET,
    }
    env.update({f"GRIDMAP_{k.upper()}": v for k, v in settings.items()})
    # The server's log goes to a file: a pipe nobody reads fills up (64 KB) and blocks the server
    # in its next log line, as the reconnection messages of a failover did.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - open for the server's whole life
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    process.log = log  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


TEST_SECRET = "test-secret-" + "x" * 40  # the same as tests.conftest's


def sign_in(base: str, database_url: str, role: Role, unit: str, *, department: str | None = None) -> dict:
    """A new user of `role` in `unit` (made in the database), signed in: the Authorization header."""
    name = f"{role}-{unit}-{free_port()}"
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():
        users.add_user(session, name, "password-123", role, unit, department)
    engine.dispose()
    answer = httpx.post(f"{base}/auth/token", data={"username": name, "password": "password-123"})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _wait_until_up(base: str, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.log.seek(0)
            raise RuntimeError(f"server exited with {process.returncode}: {process.log.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {base} did not answer within {timeout_s} s")
