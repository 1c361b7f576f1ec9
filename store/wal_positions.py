"""Positions in the primary's write-ahead log (LSN): how far a write went, how far a standby replayed.

Read your writes across server processes needs no state shared between them: a write's answer
carries the primary's WAL position after its commit, and a read that brings it back may use a
standby only once that standby has replayed up to it (api.read_your_writes). An LSN travels as
one hexadecimal number (PostgreSQL's `16/B374D848` is `16B374D848`): no slash to quote in a
cookie or a header.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine

_TEXT = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,16}$")


def lsn_number(text: str) -> int:
    """PostgreSQL's pg_lsn text (`16/B374D848`) as a number."""
    match = _TEXT.match(text)
    if match is None:
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(match[1], 16) << 32) | int(match[2], 16)


def lsn_token(lsn: int) -> str:
    """The LSN as it travels in headers and cookies: one hexadecimal number."""
    return f"{lsn:X}"


def parse_lsn_token(token: str) -> int:
    """A token of lsn_token back to the LSN (ValueError if it is not one)."""
    if _HEX.match(token) is None:
        raise ValueError(f"not a WAL position: {token!r} (one hexadecimal number, as answered)")
    return int(token, 16)


def primary_lsn(engine: Engine) -> int:
    """The primary's WAL insert position now: every transaction committed before this call is below it."""
    # The insert position, not the write position (pg_current_wal_lsn): a commit that was not
    # flushed at once (a transaction that only took an xid, synchronous_commit off) may still be
    # in the WAL buffers, past the write position.
    with engine.connect() as connection:
        return lsn_number(connection.exec_driver_sql("SELECT pg_current_wal_insert_lsn()::text").scalar_one())
