"""Cases moved by a published redraw, in the store: read many locked at once, and write many
decided changes (new assignment and holder, one history entry each) with two statements.

What each case becomes is decided by cases.workflow.redraw (services.case_redraw calls both).
A redraw of a whole county moves tens of thousands of open cases: one statement per case (a locked
read, an update, a history insert: three round trips) took most of the 30 s a publish may take.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cases.workflow import CaseState, Change
from store.case_history import HISTORY_COLUMNS, _assignment_columns, _entry_params, state_of
from store.cases import CASE_COLUMNS, rows_of

# Locked in id order, as every writer of many cases locks them (no deadlock between two publishes).
LOCKED = f"""SELECT {CASE_COLUMNS} FROM cases c WHERE c.id = ANY(%(ids)s) ORDER BY c.id FOR UPDATE"""
# The reported_at of each row names its partition: the join reads one partition per case.
UPDATE = """UPDATE cases c SET status = r.status, stage = r.stage, stage_started_at = r.started,
        stage_yellow_at = r.yellow, stage_due_at = r.due, tier = r.tier, unit_code = r.unit,
        department = r.department, updated_at = %(now)s, assign_status = r.assign_status,
        assign_rule = r.assign_rule, grid_code = r.grid_code, grid_version = r.grid_version,
        distance_m = r.distance_m, assignment = r.assignment
    FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r(
        id bigint, reported_at timestamptz, status text, stage text, started timestamptz,
        yellow timestamptz, due timestamptz, tier text, unit text, department text, assign_status text,
        assign_rule text, grid_code text, grid_version integer, distance_m float8, assignment jsonb)
    WHERE c.id = r.id AND c.reported_at = r.reported_at"""
HISTORY = f"""INSERT INTO case_history ({HISTORY_COLUMNS})
    SELECT case_id, h_at, h_actor, h_action, h_from_status, h_to_status, h_note, h_details, h_stage, h_due,
        h_on_time, h_tier, h_unit, h_department
    FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r(
        case_id bigint, h_at timestamptz, h_actor text, h_action text, h_from_status text,
        h_to_status text, h_note text, h_details jsonb, h_stage text, h_due timestamptz, h_on_time boolean,
        h_tier text, h_unit text, h_department text)
    ORDER BY case_id"""


def cases_for_update(session: Session, ids: list[int]) -> dict[int, tuple[CaseState, datetime]]:
    """The cases of `ids`, locked until the transaction ends: (state, reported_at) by id."""
    rows = rows_of(session, LOCKED, {"ids": sorted(set(ids))})
    return {row.id: (state_of(row), row.reported_at) for row in rows}


def write_redraws(session: Session, changes: list[tuple[int, datetime, Change]], now: datetime) -> None:
    """Store each (case id, reported_at, change) a redraw decided: the case's columns, then its
    history entry."""
    if not changes:
        return
    updates = [_update_row(case_id, reported_at, change) for case_id, reported_at, change in changes]
    entries = [entry_row(case_id, change, now) for case_id, _, change in changes]
    rows_of(session, UPDATE + " RETURNING c.id", {"rows": as_json(updates), "now": now})
    rows_of(session, HISTORY + " RETURNING case_id", {"rows": as_json(entries)})


def _update_row(case_id: int, reported_at: datetime, change: Change) -> dict[str, Any]:
    """One row of UPDATE: the change's status, clock, holder and assignment."""
    if change.assignment is None or change.then is not None or change.fields:
        raise ValueError("write_redraws stores a redraw's change: an assignment, nothing after it")
    clock, holder = change.clock, change.holder
    assignment = _assignment_columns(change.assignment)
    return {
        "id": case_id, "reported_at": reported_at, "status": change.status.value, "stage": clock.stage,
        "started": clock.started_at, "yellow": clock.yellow_at, "due": clock.due_at,
        "tier": holder.tier.value, "unit": holder.unit, "department": holder.department,
        **assignment, "assignment": json.loads(assignment["assignment"]),
    }  # fmt: skip


def entry_row(case_id: int, change: Change, now: datetime) -> dict[str, Any]:
    """One row of HISTORY (store.case_escalation writes them too): the entry's parameters, its
    details as JSON (not a JSON string)."""
    params = _entry_params(change, now)
    return {"case_id": case_id, **params, "h_details": json.loads(params["h_details"])}


def as_json(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array, for jsonb_to_recordset."""
    return json.dumps(rows, ensure_ascii=False, default=str)
