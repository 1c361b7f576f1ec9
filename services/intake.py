"""Report intake: checks each report (category, place), asks PostGIS where it lies when the caller
does not know, decides who takes it and its first clock, and stores the batch with a few statements.

The new case's first history entry ('report', written with it) is its record; no audit entry is
added per report (intake runs at hundreds of reports a second, and the history already says who).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.categories import Category, UnknownCategory
from cases.intake_checks import (
    InvalidReport,
    OutsideUnits,
    assignable,
    outside_flags,
    refuse_outside_units,
    responsibility,
)
from cases.lifecycle import CaseStatus
from cases.model import Intake, stage_clock
from cases.rules import Rules
from geo.assignment import Assignment
from services.case_partitions import ensure_month
from store import receipts
from store.case_intake import Admitted, cases_by_key, insert_cases, new_ids, store_photos
from store.cases import IdempotencyConflict
from store.locate import locate


@dataclass(frozen=True)
class NewCase:
    """One intake to store: who reports, and the rule's answer for its point when already known."""

    intake: Intake
    actor: str
    assignment: Assignment | None = None  # None: asked of PostGIS
    reported_by: User | None = None  # a field worker's report outside their unit is flagged


# What create_cases answers per intake: (case id, created, flags), or the error that refused it.
Stored = tuple[int, bool, list[str]]


def create_case(
    session: Session,
    intake: Intake,
    rules: Rules,
    *,
    actor: str,
    now: datetime | None = None,
    assignment: Assignment | None = None,
) -> tuple[int, bool]:
    """Store a new case (or find the one made earlier with the same key): (id, created).

    `assignment` is the rule's answer for the intake's point when the caller already has it (the
    server's in-memory copy of the grids, store.locate_cache); else it is asked of PostGIS.
    """
    (result,) = create_cases(session, [NewCase(intake, actor, assignment)], rules, now=now)
    if isinstance(result, Exception):
        raise result
    case_id, created, _ = result
    return case_id, created


def create_cases(
    session: Session, cases: list[NewCase], rules: Rules, *, now: datetime | None = None
) -> list[Stored | Exception]:
    """Store many intakes in the caller's transaction with a few statements for all of them.

    Each answer is (id, created, flags) or the error that refused that intake alone (a bad
    category, a key reused for another report); the others are stored all the same. A retry is
    detected by the insert itself (ON CONFLICT on the key's unique index), which also settles
    identical requests arriving at once: the later one waits for the first to commit. Rows are
    inserted in key order, so two batches sharing keys wait for each other instead of deadlocking.
    """
    results: list[Stored | Exception | None] = [None] * len(cases)
    ready: list[tuple[int, NewCase, Category, Assignment]] = []
    for i, case in enumerate(cases):
        try:
            category = assignable(rules.categories, case.intake.category)
            found = case.assignment or locate(
                session, case.intake.lon, case.intake.lat, tolerance_m=rules.snap_tolerance_m
            )
            if rules.refuse_outside_units:
                refuse_outside_units(found)
        except (InvalidReport, UnknownCategory, OutsideUnits) as e:
            results[i] = e
            continue
        ready.append((i, case, category, found))
    if ready:
        _store(session, ready, rules, results, now)
    return results  # type: ignore[return-value]  # every slot is filled by now


def _store(
    session: Session,
    ready: list[tuple[int, NewCase, Category, Assignment]],
    rules: Rules,
    results: list[Stored | Exception | None],
    now: datetime | None,
) -> None:
    """Insert the checked intakes (the first of each key only), then settle retries by key."""
    # One round trip for the ids (numbers need them) and the database's clock.
    ids, db_now, month_ready = new_ids(session, len(ready))
    if now is not None or not month_ready:  # the daily step keeps months ahead; this is the backstop
        ensure_month(session, now or db_now)
    now = now or db_now
    admitted, leaders, flags = [], set(), {}
    for (i, case, category, found), case_id in zip(ready, ids, strict=True):
        flags[i] = [*case.intake.flags, *outside_flags(case.reported_by, found)]
        key = case.intake.idempotency_key
        if key is not None and key in leaders:
            continue  # a retry inside the batch: settled below like any other
        leaders.add(key)
        admitted.append(_admitted(case_id, case, category, found, flags[i], rules, now))
    inserted = insert_cases(session, admitted, now)
    pairs = list(zip(ready, ids, strict=True))
    retried = [c.intake.idempotency_key for (_, c, *_), case_id in pairs if case_id not in inserted]
    by_key = cases_by_key(session, retried)
    for (i, case, _, _), case_id in pairs:
        if case_id in inserted:
            store_photos(session, case_id, case.intake.photos)
            results[i] = (case_id, True, flags[i])
        else:  # the key's case exists (made earlier, by a concurrent request, or earlier in this batch)
            results[i] = _replayed(by_key.get(case.intake.idempotency_key), case.intake, flags[i])


def _admitted(
    case_id: int,
    case: NewCase,
    category: Category,
    found: Assignment,
    flags: list[str],
    rules: Rules,
    now: datetime,
) -> Admitted:
    """The row of an admitted intake: who takes it (the assignment rule) and its first clock."""
    tier, unit = responsibility(found)
    clock = stage_clock(
        CaseStatus.REPORTED,
        category,
        urgent=case.intake.urgent,
        start=now,
        calendar=rules.calendar,
    )
    return Admitted(case_id, case.intake, case.actor, category.code, found, flags, tier, unit, clock)


def _replayed(existing: Any, intake: Intake, flags: list[str]) -> Stored | Exception:
    """A retry's answer: the case its key made, unless the key was used for another report."""
    if existing is None:  # not inserted, yet no case has the key: only a concurrent delete does that
        return IdempotencyConflict("this Idempotency-Key's case could not be found; send the report again")
    if existing.request_hash and intake.request_hash and existing.request_hash != intake.request_hash:
        return IdempotencyConflict(
            "this Idempotency-Key was already used for a different report; make a new key for a new report"
        )
    return existing.id, False, flags


def keep_answers(session: Session, answers: dict[int, str]) -> None:
    """Keep the first answers to new keyed cases (their JSON): what a retry with the key is answered."""
    receipts.keep(session, answers)


def first_answers(session: Session, case_ids: list[int]) -> dict[int, str]:
    """The first answers kept for these cases, by id (cases keyed before answers were kept left out)."""
    return receipts.first_answers(session, case_ids)
