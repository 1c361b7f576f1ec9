"""A handler's open tasks: the cases in their hands, overdue first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role, User
from cases.lifecycle import OPEN_HANDLING, CaseStatus
from store.case_queue import QUEUE_ORDER
from store.cases import CASE_COLUMNS, Rules, case_summary, db_now

# Statuses in which a case waits for its handler (suspended: the handler resumes it).
TASK_STATUSES = [s.value for s in (*OPEN_HANDLING, CaseStatus.SUSPENDED)]


def _in_hands_sql(user: User) -> tuple[str, dict[str, Any]]:
    """SQL: case `c` is in the user's hands — summoned to their department, or held by their unit
    or a unit below it (a grid worker's grids; not a case escalated above them)."""
    if user.role == Role.DEPARTMENT:
        return "c.department = :department", {"department": user.department}
    return "c.department IS NULL AND c.unit_code LIKE :prefix", {"prefix": user.unit_code + "%"}


def open_tasks(session: Session, user: User, rules: Rules, limit: int = 200) -> list[dict[str, Any]]:
    """The user's open tasks (case summaries), overdue first, then by due time."""
    where, params = _in_hands_sql(user)
    now = db_now(session)
    rows = session.execute(
        text(
            f"""SELECT {CASE_COLUMNS} FROM cases c
                WHERE {where} AND c.status = ANY(:statuses)
                ORDER BY {QUEUE_ORDER} LIMIT :limit"""
        ),
        {**params, "now": now, "statuses": TASK_STATUSES, "limit": limit},
    ).all()
    return [case_summary(row, now, rules) for row in rows]
