"""A handler's tasks on the phone: their open cases, and one case with its photos kept apart."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.rules import Rules
from store import tasks


def open_tasks(session: Session, user: User, rules: Rules) -> list[dict[str, Any]]:
    """The user's open tasks (cases in their hands), overdue first, then by due time; with their moves."""
    return tasks.open_tasks(session, user, rules)
