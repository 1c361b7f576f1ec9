"""Read your writes by WAL position (api.read_your_writes, store.wal_positions), without a cluster:
what a request asks its reads to have seen, and the primary's position read once for many writes.
The routing on real standbys is tests/ha/test_ha_cluster.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from api.errors import InvalidParameter
from api.read_your_writes import HEADER, PRIMARY, PrimaryPosition, RecentWriters, read_after
from store.wal_positions import lsn_number, lsn_token, parse_lsn_token, primary_lsn


def _request(headers: dict[str, str], user: str | None = None, writers: RecentWriters | None = None):
    app = SimpleNamespace(state=SimpleNamespace(recent_writers=writers))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/cases",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": app,
        "state": {"user": SimpleNamespace(username=user)} if user else {},
    }
    return Request(scope)


def test_positions_travel_as_one_hexadecimal_number():
    assert lsn_number("16/B374D848") == 0x16B374D848
    assert lsn_token(0x16B374D848) == "16B374D848" and parse_lsn_token("16b374d848") == 0x16B374D848
    for bad in ("16/B374D848", "", "x1", "1" * 17):
        with pytest.raises(ValueError):
            parse_lsn_token(bad)


def test_a_read_must_see_the_latest_of_its_header_its_cookie_and_its_user_s_write_in_this_process():
    assert read_after(_request({})) is None
    assert read_after(_request({HEADER: "4EEDC00"})) == 0x4EEDC00
    assert read_after(_request({HEADER: "4EEDC00", "cookie": "gridmap_wrote=5000000"})) == 0x5000000
    writers = RecentWriters(10)
    writers.mark("dispatcher", 0x6000000)
    assert read_after(_request({HEADER: "4EEDC00"}, "dispatcher", writers)) == 0x6000000
    assert read_after(_request({}, "someone-else", writers)) is None
    # A cookie without a position (an older release's, or a write whose position was unknown).
    assert read_after(_request({"cookie": "gridmap_wrote=1"})) == PRIMARY
    with pytest.raises(InvalidParameter, match=HEADER):
        read_after(_request({HEADER: "0/4EEDC00"}))


def test_the_primary_s_position_is_read_after_every_waiting_write_once_for_all(engine):
    with engine.begin() as conn:  # a commit that must be below every position answered after it
        conn.exec_driver_sql("SELECT txid_current()")
    with engine.connect() as conn:
        committed = lsn_number(conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()::text").scalar_one())
    asked: list[int] = []

    def ask() -> int:
        asked.append(1)
        return primary_lsn(engine)

    async def writes() -> list[int]:
        position = PrimaryPosition(ask)
        return await asyncio.gather(*(position.after_commit() for _ in range(50)))

    answers = asyncio.run(writes())
    assert all(lsn >= committed for lsn in answers)
    assert len(asked) == 1  # fifty writes answered together: one query
