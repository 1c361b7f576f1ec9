"""Listening to PostgreSQL notifications (geo.db.notifications): every NOTIFY is heard, and a lost
connection is noticed, said, and listened on again."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, text

from geo.db import notifications

CHANNEL = "test_notifications"


def notify(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"NOTIFY {CHANNEL}"))


def terminate_listeners(engine: Engine) -> int:
    """Cut the connections listening on CHANNEL, as a database restart would."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query = :listen AND pid <> pg_backend_pid()"
            ),
            {"listen": f"LISTEN {CHANNEL}"},
        ).scalar_one()


async def until(condition, what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"waited {timeout} s for {what}")


def test_every_notification_is_heard_and_a_lost_connection_is_listened_on_again(engine, monkeypatch):
    monkeypatch.setattr(notifications, "RETRY_S", 0.1)
    heard, lost = [], []

    async def scenario() -> None:
        listener = asyncio.create_task(
            notifications.listen(engine, CHANNEL, lambda: heard.append(1), lambda: lost.append(1))
        )
        await until(lambda: len(heard) == 1, "the first call, once listening")
        for n in range(3):
            await asyncio.to_thread(notify, engine)
            await until(lambda n=n: len(heard) == 2 + n, f"notification {n + 1}")
        assert await asyncio.to_thread(terminate_listeners, engine) == 1
        await until(lambda: len(lost) == 1 and len(heard) == 5, "listening again after the loss")
        await asyncio.to_thread(notify, engine)
        await until(lambda: len(heard) == 6, "a notification after the reconnection")
        listener.cancel()

    # In a thread of its own: the browser tests' playwright may keep a loop running in this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, scenario()).result()
    assert len(lost) == 1
