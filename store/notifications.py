"""Listening to PostgreSQL notifications (LISTEN/NOTIFY) for the life of a server process.

Triggers NOTIFY at commit (`case_events` for case changes, `unit_changes` for grid edits), so
every process behind one database hears every change, whichever process made it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from store.engine import libpq_conninfo

log = logging.getLogger("gridmap.notifications")

RETRY_S = 2.0  # wait this long before listening again after the connection was lost


def conninfo(engine: Engine) -> str:
    """A libpq connection string for the engine's database (every host of a multi-host URL, so the
    LISTEN follows the primary after a failover: NOTIFY is not sent on standbys)."""
    return libpq_conninfo(engine)


async def listen(
    engine: Engine, channel: str, heard: Callable[[], None], lost: Callable[[], None] = lambda: None
) -> None:
    """Call `heard` for every notification on `channel`, until cancelled.

    Also once each time listening begins: what was sent while not listening was missed. When the
    connection is lost (the database restarted, say) `lost` is called and listening begins again
    after RETRY_S.
    """
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo(engine), autocommit=True) as conn:
                await conn.execute(f"LISTEN {channel}")
                heard()
                async for _ in conn.notifies():
                    heard()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # keep trying: the callers have a fallback meanwhile
            log.warning("listening on %s: lost the connection (%s); retrying", channel, e)
            lost()
            await asyncio.sleep(RETRY_S)
