"""Group commit of intake (api.intake): reports arriving together share one transaction, each is
answered on its own, retries inside a batch are settled by key, and one bad report sinks nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import nullcontext
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api import intake as writer_module
from api.access import visible_duplicates
from api.intake import IntakeWriter, Submitted
from cases.model import Intake, Reporter
from services import intake as intake_service
from store import cases as store
from store.cases import IdempotencyConflict, InvalidReport
from tests import factories as f

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)


def intake(n: int, **overrides) -> Intake:
    """Report n at a point of grid 001, with a key of its own unless given."""
    values = {
        "lon": INSIDE_001[0],
        "lat": INSIDE_001[1],
        "input_crs": "wgs84",
        "input_lon": INSIDE_001[0],
        "input_lat": INSIDE_001[1],
        "accuracy_m": 5.0,
        "location_source": "report",
        "category": "0101",
        "description": f"路边垃圾 {n}",
        "idempotency_key": str(uuid.uuid4()),
        "request_hash": f"hash-{n}",
    }
    return Intake(**{**values, **overrides})


@pytest.fixture
def state(session, settings, county):
    """What the writer reads from the app's state: the test's session and the rules."""
    return SimpleNamespace(sessions=lambda: nullcontext(session), rules=store.Rules.load(settings))


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """The size of each batch written, in order."""
    sizes: list[int] = []
    write = writer_module.write_batch

    def counted(sessions, rules, batch, **kw):
        sizes.append(len(batch))
        return write(sessions, rules, batch, **kw)

    monkeypatch.setattr(writer_module, "write_batch", counted)
    return sizes


def submit_all(state, items: list[Intake], entitled: bool = True) -> list:
    """Submit every report at once to a writer of its own: the answers (or errors), in order."""

    async def run() -> list:
        writer = IntakeWriter(state)
        task = asyncio.create_task(writer.run())
        try:
            sent = [writer.submit(Submitted(intake_service.NewCase(i, "test"), entitled)) for i in items]
            return await asyncio.gather(*sent, return_exceptions=True)
        finally:
            task.cancel()

    return asyncio.run(run())


def count(session, sql: str, **params) -> int:
    return session.execute(text(sql), params).scalar_one()


def test_reports_arriving_together_share_one_transaction_and_are_all_stored(state, session, batches):
    answers = submit_all(state, [intake(n) for n in range(40)])
    assert batches == [40]
    ids = [detail["id"] for detail, created in answers]
    assert all(created for _, created in answers) and len(set(ids)) == 40
    assert count(session, "SELECT count(*) FROM cases WHERE id = ANY(:ids)", ids=ids) == 40
    # Each with its first history entry and its event for the live feed.
    assert count(session, "SELECT count(*) FROM case_history WHERE case_id = ANY(:ids)", ids=ids) == 40
    assert count(session, "SELECT count(*) FROM case_events WHERE case_id = ANY(:ids) AND kind = 'created'",
                 ids=ids) == 40  # fmt: skip
    detail, _ = answers[7]
    assert detail["description"] == "路边垃圾 7" and detail["grid_code"] == f.grid_code(1)
    assert [h["action"] for h in detail["history"]] == ["report"]
    # The answer is the case as GET /cases/{id} shows it to the reporter (plus the flags of the
    # report): an anonymous reporter is shown no other case as a suggested duplicate.
    shown = visible_duplicates(store.case_detail(session, detail["id"], state.rules, entitled=True), None)
    assert {**shown, "flags": []} == detail and detail["duplicates"] == []
    # Suggested duplicates see the other reports of the batch (same category, same place, same time).
    assert len(store.case_detail(session, detail["id"], state.rules)["duplicates"]) == 10


def test_a_retry_inside_one_batch_gets_the_same_case_and_a_reused_key_is_refused(state, session, batches):
    key = str(uuid.uuid4())
    first, retry = intake(1, idempotency_key=key), intake(1, idempotency_key=key)
    other = intake(2, idempotency_key=key)  # the same key for a different report
    answers = submit_all(state, [first, intake(3), retry, other])
    assert batches == [4]
    (made, created), _, (again, replayed), refused = answers
    assert created and not replayed and again["id"] == made["id"]
    assert isinstance(refused, IdempotencyConflict)
    assert count(session, "SELECT count(*) FROM cases WHERE idempotency_key = :k", k=key) == 1
    # A later batch retrying the same key finds the committed case.
    ((later, created_later),) = submit_all(state, [intake(1, idempotency_key=key)])
    assert later["id"] == made["id"] and not created_later


def test_a_bad_report_in_a_batch_does_not_sink_the_others(state, session, batches):
    top_class = intake(1, category="01")  # refused before any SQL
    negative = intake(2, accuracy_m=-1.0)  # refused by the table's CHECK: the batch fails in the database
    items = [intake(0), top_class, intake(3), negative, intake(4)]
    answers = submit_all(state, items)
    assert batches == [5, 1, 1, 1, 1, 1]  # the batch failed as a whole: each report on its own
    assert isinstance(answers[1], InvalidReport) and "top class" in str(answers[1])
    assert "accuracy_m" in str(answers[3])
    stored = [answers[i][0]["id"] for i in (0, 2, 4)]
    assert count(session, "SELECT count(*) FROM cases WHERE id = ANY(:ids)", ids=stored) == 3
    assert count(session, "SELECT count(*) FROM cases") == 3


def test_answers_mask_the_reporter_unless_the_caller_is_entitled(state):
    reporter = Reporter("李四", "13812345678")
    ((masked, _),) = submit_all(state, [intake(1, reporter=reporter)], entitled=False)
    ((shown, _),) = submit_all(state, [intake(2, reporter=reporter)], entitled=True)
    assert masked["reporter"]["phone"] != "13812345678" and "*" in masked["reporter"]["phone"]
    assert shown["reporter"]["phone"] == "13812345678"


class CommitLost:
    """The test's session, except that a commit goes through and its answer is lost (the connection
    broke after COMMIT was sent): the caller cannot tell whether it happened."""

    def __init__(self, session) -> None:
        self.session = session

    def __getattr__(self, name: str):
        return getattr(self.session, name)

    def commit(self) -> None:
        self.session.commit()
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))


def test_a_batch_whose_commit_failed_is_not_written_again(state, session, batches):
    state.sessions = lambda: nullcontext(CommitLost(session))
    items = [intake(n, idempotency_key=None) for n in range(3)]  # no keys: a retry would make new cases
    answers = submit_all(state, items)
    assert batches == [3]  # not tried again report by report
    assert all(isinstance(a, OperationalError) for a in answers)
    assert count(session, "SELECT count(*) FROM cases") == 3  # the commit happened: each case once


def test_after_a_lost_commit_the_keyed_reports_are_settled_by_their_keys(state, session, batches):
    # As when the primary fails over just as the batch commits: the first commit happened but its
    # answer was lost; the keyed reports are written again, find their cases, and are answered.
    lost = {"once": True}

    class FirstCommitLost(CommitLost):
        def commit(self) -> None:
            if lost.pop("once", False):
                super().commit()
            self.session.commit()

    state.sessions = lambda: nullcontext(FirstCommitLost(session))
    items = [intake(0), intake(1, idempotency_key=None), intake(2)]
    answers = submit_all(state, items)
    assert batches == [3, 2]  # the batch, then its keyed reports once more
    assert isinstance(answers[1], OperationalError)  # no key: its client cannot tell, it is told
    for answer, item in ((answers[0], items[0]), (answers[2], items[2])):
        detail, created = answer
        assert not created and detail["description"] == item.description  # found by its key
    assert count(session, "SELECT count(*) FROM cases") == 3  # each stored once


class FirstStatementLost(CommitLost):
    """The test's session, except that its first statement finds the connection lost (a
    switchover: the old primary shut down): nothing ran, the transaction is gone."""

    lost = True

    def connection(self, *args, **kwargs):
        if FirstStatementLost.lost:
            FirstStatementLost.lost = False
            raise OperationalError("INSERT", {}, Exception("terminating connection: administrator command"))
        return self.session.connection(*args, **kwargs)

    def commit(self) -> None:
        self.session.commit()


def test_a_batch_that_lost_its_connection_before_commit_is_held_and_written_once_it_is_back(
    state, session, batches
):
    # Nothing was stored: the report is written again (even without a key) instead of answered
    # with the error, as long as GRIDMAP_DATABASE_WAIT_S allows.
    FirstStatementLost.lost = True
    state.sessions = lambda: nullcontext(FirstStatementLost(session))
    state.settings = SimpleNamespace(database_wait_s=5.0)
    (answer,) = submit_all(state, [intake(0, idempotency_key=None)])
    assert not isinstance(answer, Exception), answer
    detail, created = answer
    assert created and detail["description"] == "路边垃圾 0"
    assert batches == [1, 1]
    assert count(session, "SELECT count(*) FROM cases") == 1


def test_without_a_wait_a_batch_that_lost_its_connection_is_answered_with_the_error(state, session, batches):
    FirstStatementLost.lost = True
    state.sessions = lambda: nullcontext(FirstStatementLost(session))
    state.settings = SimpleNamespace(database_wait_s=0.0)
    (answer,) = submit_all(state, [intake(0, idempotency_key=None)])
    assert isinstance(answer, OperationalError)
    assert count(session, "SELECT count(*) FROM cases") == 0


def test_a_report_is_held_no_longer_than_the_wait_from_its_arrival(state, session, batches):
    # Reports queued behind a held batch do not wait a second bound of their own.
    FirstStatementLost.lost = True
    state.sessions = lambda: nullcontext(FirstStatementLost(session))
    state.settings = SimpleNamespace(database_wait_s=5.0)

    async def run():
        writer = IntakeWriter(state)
        task = asyncio.create_task(writer.run())
        long_ago = time.monotonic() - 6  # arrived more than the wait ago
        try:
            case = intake_service.NewCase(intake(0, idempotency_key=None), "test")
            held = writer.submit(Submitted(case, True, arrived=long_ago))
            return await asyncio.gather(held, return_exceptions=True)
        finally:
            task.cancel()

    (answer,) = asyncio.run(run())
    assert isinstance(answer, OperationalError)
    assert batches == [1]
