"""Group commit for case intake: the reports arriving together are stored in one transaction.

A commit costs a WAL flush (an fsync) and a round trip whatever it holds, and each request's own
transaction, session and thread hand-off cost more than its rows. So each server process has one
writer: requests queue their intake and wait; the writer takes everything queued, stores it with
a few statements for all (services.intake.create_cases), reads the answers back in one query,
commits, and only then answers each request. Under load, reports gather while the previous batch
is being written, so one fsync serves many; a lone report is written at once, without waiting.
A report that fails alone (a bad category, a key reused) is answered with its error and the
others are stored; if the batch's statements fail as a whole, the transaction is rolled back and
each report is tried on its own. A failed commit may have happened: only the reports with an
idempotency key are written again (their key tells whether it did).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from api.access import visible_duplicates
from api.photo_links import with_photo_urls
from cases.rules import Rules
from services import case_reads
from services import intake as intake_service

log = logging.getLogger("gridmap.intake")

MAX_BATCH = 200  # reports per transaction; a larger backlog is written in several
# Batches in flight at once per process, each in its own transaction (keys are inserted in order,
# so batches sharing a key wait instead of deadlocking). One: the reports arriving while a batch
# is written gather for the next. With two, a report arriving then went at once, but batches
# halved (1.9 -> 1.2 reports at 300/s): +10 % service and +25 % PostgreSQL CPU a report.
WRITERS = 1
HOLD_PAUSE_S = 0.2  # between writes of a held batch (each connect also waits: store.connect_wait)

Answer = tuple[dict[str, Any], bool]  # the case's detail (with its flags), created
# An answer as the API serializes it (FastAPI's adapter for the route's return type): receipts
# keep these bytes, so that a retry is answered with exactly what the first request was.
ANSWER_JSON = TypeAdapter(dict[str, Any])
Sessions = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Submitted:
    """One report waiting for the writer, and whether its answer may show the reporter unmasked."""

    case: intake_service.NewCase
    entitled: bool
    # When it was submitted: a batch is held for the database until its oldest report has waited
    # GRIDMAP_DATABASE_WAIT_S, so that reports queued behind a held batch do not wait twice.
    arrived: float = field(default_factory=time.monotonic)


def write_batch(
    sessions: Sessions,
    rules: Rules,
    batch: list[Submitted],
    *,
    recheck: bool = True,
    hold_until: float | None = None,
) -> list[Answer | Exception]:
    """Store a batch in one transaction; the answers are read before and released after the commit.

    `recheck`: after a commit of unknown outcome, write the keyed reports once more (see below).
    `hold_until` (time.monotonic()): while the connection is lost (a switchover), the batch is
    held and written again until then, rather than answered with the error.
    """
    with sessions() as session:
        try:
            answers = _store(session, rules, batch)
        except DBAPIError as e:
            session.rollback()
            failure = e
        else:
            try:
                session.commit()
            except DBAPIError as e:
                if not recheck:
                    return [e] * len(batch)
                return _after_unknown_commit(sessions, rules, batch, e, hold_until)
            return answers
    if _lost(failure) and _time_left(hold_until):
        # Rolled back with the lost connection: nothing was stored, so the whole batch may be
        # written again, keyed or not. The next connect waits for the new primary.
        time.sleep(HOLD_PAUSE_S)
        return write_batch(sessions, rules, batch, recheck=recheck, hold_until=hold_until)
    if len(batch) == 1:
        return [failure]
    log.warning("a batch of %d reports failed (%s); writing each on its own", len(batch), failure.orig)
    return [_alone(sessions, rules, one) for one in batch]


def _lost(failure: DBAPIError) -> bool:
    """Whether the statement failed because the server went (not because of what it said)."""
    return isinstance(failure, OperationalError) or bool(failure.connection_invalidated)


def _time_left(hold_until: float | None) -> bool:
    return hold_until is not None and time.monotonic() < hold_until


def _after_unknown_commit(
    sessions: Sessions, rules: Rules, batch: list[Submitted], failure: DBAPIError, hold_until: float | None
) -> list[Answer | Exception]:
    """Answers to a batch whose commit failed and so may or may not have happened (a connection
    lost as the primary failed over, say). A report with an idempotency key is written again: its
    key finds it if the commit happened (answered as a replay) and stores it if not, so it is never
    stored twice nor silently lost. A report without a key gets the error: writing it again could
    store it twice, and its client cannot tell."""
    log.warning("the commit of %d reports failed (%s); checking the keyed ones", len(batch), failure.orig)
    keyed = [s for s in batch if s.case.intake.idempotency_key is not None]
    again: list[Answer | Exception] = []
    if keyed:
        try:
            # All keyed: a commit of unknown outcome again can be checked again, while held.
            again = write_batch(sessions, rules, keyed, recheck=_time_left(hold_until), hold_until=hold_until)
        except DBAPIError as e:  # still no primary: the client retries with its key
            again = [e] * len(keyed)
    found = iter(again)
    return [next(found) if s.case.intake.idempotency_key is not None else failure for s in batch]


def _alone(sessions: Sessions, rules: Rules, submitted: Submitted) -> Answer | Exception:
    """One report in a transaction of its own; whatever refuses it is its answer only."""
    try:
        (answer,) = write_batch(sessions, rules, [submitted])
    except DBAPIError as e:  # its commit failed (or no connection): the others' answers stand
        return e
    return answer


def _store(session: Session, rules: Rules, batch: list[Submitted]) -> list[Answer | Exception]:
    results = intake_service.create_cases(session, [s.case for s in batch], rules)
    wanted = {
        r[0]: s.entitled for s, r in zip(batch, results, strict=True) if not isinstance(r, Exception) and r[1]
    }
    details = case_reads.case_details(session, wanted, rules)  # one statement for the batch
    answers: list[Answer | Exception | None] = []
    first: dict[int, str] = {}  # the answers to new keyed cases, as JSON: what their retries get
    retries: dict[int, int] = {}  # a retry's place in the batch: its case
    for submitted, result in zip(batch, results, strict=True):
        if isinstance(result, Exception):
            answers.append(result)
            continue
        case_id, created, flags = result
        if not created:
            retries[len(answers)] = case_id
            answers.append(None)  # answered below, once this batch's first answers are known
            continue
        detail = with_photo_urls(details[case_id])
        detail = {**visible_duplicates(detail, submitted.case.reported_by), "flags": flags}
        answers.append((detail, True))
        if submitted.case.intake.idempotency_key is not None:
            first[case_id] = ANSWER_JSON.dump_json(detail).decode()
    intake_service.keep_answers(session, first)
    first |= intake_service.first_answers(session, [i for i in retries.values() if i not in first])
    for place, case_id in retries.items():
        answers[place] = _replay(case_id, first)
    return answers  # type: ignore[return-value]  # every place is filled by now


def _replay(case_id: int, first: dict[int, str]) -> Answer:
    """A retry's answer: the first answer to its key as it was (the case now is not the caller's to see)."""
    if case_id not in first:  # keyed before receipts were kept, or outside the API (the CLI): the id
        return {"id": case_id}, False
    return json.loads(first[case_id]), False


def _hold_until(state: Any, batch: list[Submitted]) -> float | None:
    """Until when a batch is held while the database is away: GRIDMAP_DATABASE_WAIT_S after its
    oldest report arrived."""
    settings = getattr(state, "settings", None)
    wait_s = getattr(settings, "database_wait_s", 0.0)
    return min(s.arrived for s in batch) + wait_s if wait_s > 0 and batch else None


class IntakeWriter:
    """The writer of one server process: `submit` queues a report, `run` writes the queue in batches."""

    def __init__(self, state: Any, max_batch: int = MAX_BATCH, writers: int = WRITERS) -> None:
        """`state`: the app's state (sessions, rules, settings.database_wait_s: how long a batch is held)."""
        self._state = state  # the app's state: its session factory and rules, as they are when writing
        self._max_batch, self._writers = max_batch, writers
        self._waiting: list[tuple[Submitted, asyncio.Future[Answer | Exception]]] = []
        self._wakeup = asyncio.Event()

    async def submit(self, submitted: Submitted) -> Answer:
        """Queue a report; returns once it is committed (or raises what refused it)."""
        future: asyncio.Future[Answer | Exception] = asyncio.get_running_loop().create_future()
        self._waiting.append((submitted, future))
        self._wakeup.set()
        # Shielded: a client that hangs up does not cancel the write the others share.
        answer = await asyncio.shield(future)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run(self) -> None:
        """Write whatever is queued, batch after batch, for the life of the app."""
        await asyncio.gather(*(self._drain() for _ in range(self._writers)))

    async def _drain(self) -> None:
        while True:
            while not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            await self._write(batch)

    async def _write(self, batch: list[tuple[Submitted, asyncio.Future[Answer | Exception]]]) -> None:
        state = self._state
        try:
            submitted = [s for s, _ in batch]
            answers = await asyncio.to_thread(
                write_batch, state.sessions, state.rules, submitted, hold_until=_hold_until(state, submitted)
            )
        except Exception as e:  # e.g. the database is down: every report of the batch hears it
            answers = [e] * len(batch)
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


async def submit(app_state: Any, submitted: Submitted) -> Answer:
    """Store a report through the process's writer, or on its own when the app runs without one."""
    writer: IntakeWriter | None = getattr(app_state, "intake_writer", None)
    if writer is not None:
        return await writer.submit(submitted)
    hold_until = _hold_until(app_state, [submitted])
    (answer,) = await asyncio.to_thread(
        write_batch, app_state.sessions, app_state.rules, [submitted], hold_until=hold_until
    )
    if isinstance(answer, Exception):
        raise answer
    return answer
