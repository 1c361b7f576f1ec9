"""New connections wait for a server within a bound (store.connect_wait): a switchover's gap is
waited out, a longer outage fails, and then fails at once until a server answers again."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from store.connect_wait import wait_for_a_server
from tests.live import free_port


def _pipe(source: socket.socket, target: socket.socket) -> None:
    # The two directions share the sockets: whichever ends first closes both, and the other's
    # read then fails. Either way the connection is over.
    with contextlib.suppress(OSError), source, target:
        while chunk := source.recv(65536):
            target.sendall(chunk)


def _serve_later(port: int, target_port: int, delay_s: float, stop: threading.Event) -> None:
    """After `delay_s`, listen on `port` and pass every connection on to the database's port: a
    server that comes up while the service waits for it (as a promoted standby does)."""
    time.sleep(delay_s)
    with socket.create_server(("127.0.0.1", port)) as listener:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=_pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=_pipe, args=(server, client), daemon=True).start()


def _engine(url: str, wait_s: float, **changes):
    engine = create_engine(make_url(url).set(**changes), pool_pre_ping=True)
    wait_for_a_server(engine, wait_s)
    return engine


def test_a_connect_waits_for_a_server_that_comes_up_within_the_bound(database_url):
    port, stop = free_port(), threading.Event()
    later = threading.Thread(target=_serve_later, args=(port, make_url(database_url).port, 0.8, stop))
    later.start()
    engine = _engine(database_url, wait_s=10, port=port)
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert time.monotonic() - started >= 0.7  # it waited rather than failed
    finally:
        engine.dispose()
        stop.set()
        later.join()


def test_past_the_bound_the_error_stands_and_the_next_connect_does_not_wait(database_url):
    engine = _engine(database_url, wait_s=0.8, port=free_port())  # nothing listens there
    started = time.monotonic()
    with pytest.raises(OperationalError):
        engine.connect()
    assert 0.7 <= time.monotonic() - started < 5
    started = time.monotonic()
    with pytest.raises(OperationalError):  # an outage: answered at once until a server answers
        engine.connect()
    assert time.monotonic() - started < 0.5
    engine.dispose()


def test_a_refused_password_is_not_waited_for(database_url):
    engine = _engine(database_url, wait_s=10, password="not-the-password")
    started = time.monotonic()
    with pytest.raises(OperationalError, match="password authentication failed"):
        engine.connect()
    assert time.monotonic() - started < 2
    engine.dispose()
