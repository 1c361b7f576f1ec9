"""A handler's tasks on the phone: their open cases with the moves they may make."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from access.roles import User, moves_for
from cases.lifecycle import CaseStatus
from cases.rules import Rules
from store import tasks


def task_list(session: Session, user: User, rules: Rules) -> dict[str, Any]:
    """The user, their open tasks (cases in their hands) overdue first, then by due time, each with
    the moves the user's role may make, and those moves for every status (for cases moved offline)."""
    items = [
        {**case, "moves": moves_for(user, CaseStatus(case["status"]))}
        for case in tasks.open_tasks(session, user, rules)
    ]
    return {
        "username": user.username,
        "role": user.role,
        "unit_code": user.unit_code,
        "department": user.department,
        "total": len(items),
        "items": items,
        "moves_by_status": {s.value: moves_for(user, s) for s in CaseStatus},
    }
