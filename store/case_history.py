"""A case's changes in the store: a row read as the workflow's CaseState, and a decided Change
written as the case's new columns followed by its history entry (the one place both happen).

Every write happens in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.lifecycle import CaseStatus, Tier
from cases.model import StageClock
from cases.workflow import CaseState, Change, Entry
from geo.assignment import Assignment

# One history entry: its columns and the parameters _entry_params fills (case_id comes apart).
HISTORY_COLUMNS = """case_id, at, actor, action, from_status, to_status, note, details, stage, stage_due_at,
    on_time, tier, unit_code, department"""
HISTORY_VALUES = """:h_at, :h_actor, :h_action, :h_from_status, :h_to_status, :h_note, :h_details, :h_stage,
    :h_due, :h_on_time, :h_tier, :h_unit, :h_department"""
# The columns of clock_params' names.
CLOCK_COLUMNS = {"started": "stage_started_at", "yellow": "stage_yellow_at", "due": "stage_due_at"}


def clock_params(clock: StageClock) -> dict[str, Any]:
    """A stage clock as the parameters `stage`, `started`, `yellow` and `due`."""
    return {"stage": clock.stage, "started": clock.started_at, "yellow": clock.yellow_at, "due": clock.due_at}


def clock_of(row: Any) -> StageClock:
    """The stage clock of a row of store.cases.CASE_COLUMNS."""
    return StageClock(row.stage, row.stage_started_at, row.stage_yellow_at, row.stage_due_at)


def state_of(row: Any) -> CaseState:
    """A row of store.cases.CASE_COLUMNS as the workflow reads it."""
    units = (row.assignment or {}).get("units") or []
    return CaseState(
        id=row.id,
        status=CaseStatus(row.status),
        category=row.category,
        urgent=row.urgent,
        tier=Tier(row.tier),
        unit_code=row.unit_code,
        grid_code=row.grid_code,
        department=row.department,
        clock=clock_of(row),
        escalations=row.escalations,
        lowest_unit=(units[-1]["level"], units[-1]["code"]) if units else None,
        number=row.number,
        grid_version=row.grid_version,
    )


def write_change(session: Session, case_id: int, change: Change, now: datetime) -> None:
    """Update the case as `change` says, then append its history entry; so again for what follows."""
    holder = change.holder
    sets = {
        "status": change.status.value,
        **clock_params(change.clock),
        "tier": holder.tier.value,
        "unit_code": holder.unit,
        "department": holder.department,
        "updated_at": now,
        **change.fields,
        **(_assignment_columns(change.assignment) if change.assignment is not None else {}),
    }
    assignments = ", ".join(f"{CLOCK_COLUMNS.get(k, k)} = :{k}" for k in sets)
    session.execute(text(f"UPDATE cases SET {assignments} WHERE id = :id"), {**sets, "id": case_id})
    session.execute(
        text(f"INSERT INTO case_history ({HISTORY_COLUMNS}) VALUES (:case_id, {HISTORY_VALUES})"),
        {"case_id": case_id, **_entry_params(change, now)},
    )
    if change.then is not None:
        write_change(session, case_id, change.then, now)


def _assignment_columns(assignment: Assignment) -> dict[str, Any]:
    grid = assignment.grid
    return {
        "assign_status": assignment.status,
        "assign_rule": assignment.rule,
        "grid_code": grid.code if grid else None,
        "grid_version": grid.version if grid else None,
        "distance_m": assignment.distance_m,
        "assignment": json.dumps(assignment.as_dict(), ensure_ascii=False),
    }


def _entry_params(change: Change, now: datetime) -> dict[str, Any]:
    """Parameters of the change's history entry; `left` is the clock of the stage left (on time?)."""
    entry: Entry = change.entry
    left = entry.left
    return {
        "h_at": now,
        "h_actor": entry.actor,
        "h_action": entry.action,
        "h_from_status": entry.from_status,
        "h_to_status": change.status,
        "h_note": entry.note,
        "h_details": json.dumps(entry.details, ensure_ascii=False, default=str),
        "h_stage": left.stage if left else None,
        "h_due": left.due_at if left else None,
        "h_on_time": entry.on_time(now),
        "h_tier": change.holder.tier,
        "h_unit": change.holder.unit,
        "h_department": change.holder.department,
    }
