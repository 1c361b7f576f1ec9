"""Listening to PostgreSQL notifications (store.notifications): every NOTIFY is heard, and a lost
connection is noticed, said, and listened on again; the event log they announce delivers every
committed event once and in order (store.case_events)."""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from cases.model import Intake
from services import intake as intake_service
from store import case_events as events
from store import cases as store
from store import notifications
from tests import factories as f
from tests.conftest import DB_PREFIX, county_database

CHANNEL = "test_notifications"
INSIDE = (f.X0 + 0.01, f.Y0 + 0.03)


def notify(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"NOTIFY {CHANNEL}"))


def terminate_listeners(engine: Engine) -> int:
    """Cut the connections listening on CHANNEL, as a database restart would."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query = :listen AND pid <> pg_backend_pid() AND datname = current_database()"
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


# ---------------------------------------------------------------- the event log's delivery horizon


@pytest.fixture(scope="module")
def events_url(settings) -> str:
    """A committed database holding the test county: writers in several connections need one."""
    return county_database(settings, f"{DB_PREFIX}_events")


def _write(engine: Engine, rules: store.Rules, writer: int, transactions: int, seed: int) -> None:
    """Transactions of one to three new cases, pausing inside each so that they interleave with
    the other writers' and commit out of the order they began; every fifth is rolled back."""
    rng = random.Random(seed)
    for t in range(transactions):
        with Session(engine) as session:
            for n in range(rng.randint(1, 3)):
                intake = Intake(*INSIDE, "wgs84", *INSIDE, 5.0, "report", "0101", f"w{writer} t{t} n{n}")
                intake_service.create_case(session, intake, rules, actor="test")
                time.sleep(rng.random() * 0.02)
            if t % 5 == 4:
                session.rollback()
            else:
                session.commit()


def test_a_reader_sees_every_committed_event_once_and_in_order_while_writers_interleave(
    events_url, settings
):
    """Several writers in connections of their own, a reader polling all the while (issue 13 §1)."""
    rules = store.Rules.load(settings)
    engine = create_engine(events_url, pool_size=6)
    reader = create_engine(events_url, isolation_level="AUTOCOMMIT")
    with Session(reader) as session:
        start = events.event_head(session)
    delivered: list[events.EventCursor] = []
    last: list[events.EventCursor] = []  # the last committed event, once the writers are done

    def read() -> None:
        # Until the last committed event arrived: an empty read does not mean "all delivered" (a
        # transaction elsewhere in the cluster, another test's, can hold the horizon back a while).
        cursor, deadline = start, time.monotonic() + 60
        with Session(reader) as session:
            while not (last and cursor >= last[0]) and time.monotonic() < deadline:
                batch = events.read_events(session, cursor, limit=7)
                delivered.extend(e["cursor"] for e in batch)
                if batch:
                    cursor = batch[-1]["cursor"]
                else:
                    time.sleep(0.01)

    with ThreadPoolExecutor(6) as pool:
        polling = pool.submit(read)
        writing = [pool.submit(_write, engine, rules, w, 25, seed=w) for w in range(5)]
        for w in writing:
            w.result()
        with engine.connect() as conn:
            committed = [
                events.EventCursor(r.txid, r.id)
                for r in conn.execute(
                    text(
                        "SELECT txid::text::bigint AS txid, id FROM case_events"
                        " WHERE (txid, id) > (CAST(:txid AS text)::xid8, :id) ORDER BY txid, id"
                    ),
                    {"txid": start.txid, "id": start.id},
                )
            ]
        last.append(committed[-1])
        polling.result(timeout=90)
    engine.dispose()
    reader.dispose()
    assert len(committed) > 100
    missed = sorted(set(committed) - set(delivered))
    assert not missed, f"{len(missed)} of {len(committed)} committed events never delivered"
    assert delivered == committed  # each once, in the log's order
