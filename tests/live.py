"""Real servers for tests that need them: `server` runs `gridmap serve` in a process of its own
(several processes on one database, streams, failover); `app_server` serves an app made in the test
process from a thread (browser tests: the test reads the same engine the pages wrote through)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from access.roles import Role
from tests import accounts


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


@contextmanager
def app_server(app: FastAPI, start_within_s: float = 20) -> Iterator[str]:
    """uvicorn serving `app` on a free port of 127.0.0.1 from a background thread; yields its base URL."""
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="on")
    served = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=served.run, kwargs={"sockets": [sock]}, name="app-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_within_s
        while not served.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app server did not start (see the captured log)")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        served.should_exit = True
        thread.join(timeout=10)
        sock.close()


TEST_SECRET = "test-secret-" + "x" * 40  # the same as tests.conftest's


def sign_in(base: str, database_url: str, role: Role, unit: str, *, department: str | None = None) -> dict:
    """A new user of `role` in `unit` (made in the database), signed in: the Authorization header."""
    name = f"{role}-{unit}-{free_port()}"
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():
        accounts.add_user(session, name, "password-123", role, unit, department)
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
