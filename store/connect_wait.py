"""Connections wait for a primary, within a bound, instead of failing at once.

During a planned switchover (and the first seconds of a failover) no server accepts writes for a
moment: the old primary shuts down, the synchronous standby is promoted. A request that needs a
new connection then (the pool's ping found the old one dead) waits for the new primary, up to
GRIDMAP_DATABASE_WAIT_S, rather than answering 503: nothing had run on that connection, so
trying again is always safe. Past the bound the error stands (503 with Retry-After), and until a
connection succeeds again the next ones try once without waiting: a long outage answers at once
rather than holding every request for the bound.

Written here because neither libpq nor SQLAlchemy retries a failed connect: libpq tries each
host of a multi-host URL once, SQLAlchemy's pool raises the first failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine, event

FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.1, 1.0
# A connect refused for these reasons will not succeed by waiting: fail at once.
_FINAL = ("authentication failed", "does not exist", "pg_hba.conf", "no password supplied")


def transient(error: psycopg.OperationalError) -> bool:
    """Whether a failed connect may succeed shortly (no server, a server shutting down or read-only)."""
    message = str(error)
    return not any(reason in message for reason in _FINAL)


class ConnectWait:
    """Connects, retrying while no server accepts the connection, up to `wait_s` seconds."""

    def __init__(self, wait_s: float) -> None:
        """`wait_s`: the longest a connect waits for a server (0: no waiting)."""
        self.wait_s = wait_s
        self._outage = threading.Event()  # a wait ran out: try once until a connect succeeds

    def connect(self, attempt: Callable[[], Any]) -> Any:
        """`attempt()`'s connection, attempted again while its failure is transient and time is left."""
        deadline = time.monotonic() + (0.0 if self._outage.is_set() else self.wait_s)
        pause = FIRST_PAUSE_S
        while True:
            try:
                connection = attempt()
            except psycopg.OperationalError as error:
                if not transient(error):
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self.wait_s > 0:
                        self._outage.set()
                    raise
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, LONGEST_PAUSE_S)
            else:
                self._outage.clear()
                return connection


def wait_for_a_server(engine: Engine, wait_s: float) -> None:
    """Make `engine`'s new connections wait up to `wait_s` for a server that accepts them."""
    if wait_s <= 0:
        return
    waiting = ConnectWait(wait_s)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, connection_record, cargs, cparams):
        return waiting.connect(lambda: dialect.connect(*cargs, **cparams))
