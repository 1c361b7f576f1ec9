"""Rate-limit counters and login-failure delays in PostgreSQL, shared by every server process.

Why not a library: `limits` (the rate-limit package behind Flask-Limiter and slowapi) stores its
counters in memory, Redis, Memcached, MongoDB or etcd, none of which this service runs; PostgreSQL
is already there and already shared, so the counters live in two small UNLOGGED tables
(migration 0010) and every check is one atomic statement.

The limit is a sliding-window counter (the `limits` package's "sliding window counter" strategy):
hits in the current fixed window plus the previous window's hits weighted by how much of it still
lies inside the sliding window. Refused hits are not counted, so a client that waits gets in again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from access.lockout import LoginPolicy

# One statement: count this hit in its window, read the previous window, and the database's clock
# (one clock for every process). In the driver's parameter style: `hit` runs it on the DBAPI
# cursor, which costs ~55 µs of Python per check against ~145 µs through SQLAlchemy's text()
# (measured with benchmarks/bench_rate_limit.py's statement; anonymous intake runs one per report).
_HIT = """
    WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 / %(w)s AS x),
    hit AS (
        INSERT INTO rate_limits AS r (key, window_no, hits, expires_at)
        SELECT %(key)s, floor(x)::bigint, 1, to_timestamp((floor(x) + 2) * %(w)s) FROM clock
        ON CONFLICT (key, window_no) DO UPDATE SET hits = r.hits + 1
        RETURNING r.hits, r.window_no
    )
    SELECT hit.hits, hit.window_no, clock.x,
           coalesce((SELECT p.hits FROM rate_limits p
                     WHERE p.key = %(key)s AND p.window_no = hit.window_no - 1), 0) AS previous
    FROM hit, clock
    """
_UNHIT = "UPDATE rate_limits SET hits = hits - 1 WHERE key = %(key)s AND window_no = %(n)s"


@dataclass(frozen=True)
class Verdict:
    """A rate-limit check: allowed, or refused with the seconds to wait."""

    allowed: bool
    retry_after_s: int = 0


def hit(connection: Connection, key: str, limit: int, window_s: int) -> Verdict:
    """Count one request of `key` against `limit` per `window_s` (autocommit connection)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_HIT, {"key": key, "w": window_s})
        hits, window_no, x, previous = cursor.fetchone()
        inside = 1.0 - (x - window_no)  # share of the previous window still in the sliding one
        if hits + previous * inside <= limit:
            return Verdict(True)
        cursor.execute(_UNHIT, {"key": key, "n": window_no})  # a refused hit does not count
        return Verdict(False, max(1, math.ceil(inside * window_s)))
    finally:
        cursor.close()


def prune(connection: Connection, policy: LoginPolicy) -> None:
    """Drop counters nobody can need any more: expired windows, failures long forgotten."""
    connection.execute(text("DELETE FROM rate_limits WHERE expires_at < clock_timestamp()"))
    connection.execute(
        text(
            """DELETE FROM login_failures
               WHERE coalesce(last_failure_at, '-infinity') < clock_timestamp() - :f"""
        ),
        {"f": policy.forget_after},
    )


def login_gate(
    session: Session, username: str, address: str, now: datetime, policy: LoginPolicy
) -> int | None:
    """Lock this (user name, address) pair's row for the login under way: its failures in a row so
    far, or None while it must wait. Concurrent tries of one pair thus count one after another."""
    row = session.execute(
        text(
            """INSERT INTO login_failures AS f (username, address) VALUES (:u, :a)
               ON CONFLICT (username, address) DO UPDATE SET failures = f.failures
               RETURNING failures, last_failure_at, blocked_until"""
        ),
        {"u": username, "a": address},
    ).one()
    if row.blocked_until is not None and row.blocked_until > now:
        return None
    if row.last_failure_at is not None and now - row.last_failure_at > policy.forget_after:
        return 0
    return row.failures


def login_failed(
    session: Session, username: str, address: str, failures: int, now: datetime, policy: LoginPolicy
) -> None:
    """Record one more failure of the pair (locked by login_gate) and its delay."""
    session.execute(
        text(
            """UPDATE login_failures SET failures = :n, last_failure_at = :now, blocked_until = :until
               WHERE username = :u AND address = :a"""
        ),
        {"u": username, "a": address, "n": failures + 1, "now": now,
         "until": now + policy.delay_after(failures + 1)},
    )  # fmt: skip


def login_succeeded(session: Session, username: str, address: str) -> None:
    """The pair signed in: its failures are forgotten."""
    session.execute(
        text("DELETE FROM login_failures WHERE username = :u AND address = :a"), {"u": username, "a": address}
    )
