"""Escalation: overdue cases in handling go one tier up (what `serve` does every minute and
`gridmap escalate` does once), each pass recorded in the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from cases.rules import Rules
from cases.workflow import SYSTEM, escalate
from store import cases as store
from store import users
from store.case_escalation import overdue_for_update, write_escalations
from store.custom_plans import custom_plans

ESCALATION_AUDIT = "case_escalation"  # the audit log's action for a pass that moved cases
AUDITED_IDS = 1000  # case ids listed in one audit entry (each case's history has them all)


def escalate_overdue(
    session: Session, rules: Rules, *, actor: str = SYSTEM, now: datetime | None = None, batch: int = 500
) -> int:
    """Move overdue cases in handling one tier up, in the caller's transaction: how many moved.
    Safe in many processes at once (SKIP LOCKED). A pass that moved cases leaves one audit entry
    by `actor` (the service itself, or who ran the command)."""
    now = now or store.db_now(session)
    # Planned for `now` and the batch: a generic plan sorted every overdue case of every month
    # (278,000 at 10 M cases, ~12 s) where a plan for them reads the due-time indexes in order.
    with custom_plans(session):
        overdue = overdue_for_update(session, now, batch)
        changes = [(case.id, reported_at, escalate(case, rules, now)) for case, reported_at in overdue]
        write_escalations(session, changes, now)
    if overdue:
        ids = [case.id for case, _ in overdue]
        details = {"count": len(ids), "cases": ids[:AUDITED_IDS]}
        users.audit(session, actor, ESCALATION_AUDIT, f"{len(ids)} overdue case(s)", details)
    return len(overdue)
