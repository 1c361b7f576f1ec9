"""The plan requests' use cases: each change to a draft answered with the plan as it now stands, a
validation with its counts, and a unit's history between two moments (what `/plans` answers and the
CLI prints). The plan's rules are in services.plans and geo/; these only say what a request gets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from errors import Invalid
from geo.plan_validation import Problem, problems_geojson
from geo.plans import Edit
from geo.settings import Settings
from services import plans


def open_plan(session: Session, unit_code: str, title: str, *, author: str) -> dict[str, Any]:
    """Open a draft on a unit; the new plan's detail."""
    return plans.plan_detail(session, plans.open_plan(session, unit_code, title, author=author))


def add_edit(session: Session, plan_id: int, edit: Edit, *, author: str) -> dict[str, Any]:
    """Add an edit to a draft; its id and the plan's detail after it."""
    edit_id = plans.add_edit(session, plan_id, edit, author=author)
    return {"edit_id": edit_id, **plans.plan_detail(session, plan_id)}


def delete_edit(session: Session, plan_id: int, edit_id: int) -> dict[str, Any]:
    """Remove an edit from a draft; the plan's detail without it."""
    plans.delete_edit(session, plan_id, edit_id)
    return plans.plan_detail(session, plan_id)


def abandon(session: Session, plan_id: int, *, actor: str) -> dict[str, Any]:
    """Give up a draft; its detail, now abandoned."""
    plans.abandon(session, plan_id, actor=actor)
    return plans.plan_detail(session, plan_id)


def severity_counts(problems: list[Problem]) -> tuple[int, int]:
    """(errors, warnings): errors refuse a publish, warnings do not."""
    errors = sum(1 for p in problems if p.severity == "error")
    return errors, len(problems) - errors


def validation(session: Session, plan_id: int, settings: Settings) -> dict[str, Any]:
    """The draft's problems with their locations, and whether they allow a publish."""
    problems = plans.validate_plan(session, plan_id, settings)
    errors, warnings = severity_counts(problems)
    return {"ok": errors == 0, "errors": errors, "warnings": warnings, "problems": problems_geojson(problems)}


def unit_diff(session: Session, code: str, start: datetime, end: datetime | None) -> dict[str, Any]:
    """Units below `code` created, retired or changed from `start` to `end` (default: the database's now)."""
    end = end or plans.database_now(session)
    if start >= end:
        raise Invalid("`from` must be before `to`")
    return plans.unit_diff(session, code, start, end)
