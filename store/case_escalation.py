"""An escalation pass in the store: every escalated case's new columns with one statement, and
their history entries with one more (cases.workflow.escalate decides each; services.escalation
calls both). One update and one insert per case cost 5-17 ms a case on a busy machine at 1 M cases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cases.lifecycle import OPEN_HANDLING
from cases.workflow import CaseState, Change
from store.case_history import state_of
from store.case_redraw import HISTORY, as_json, entry_row
from store.cases import CASE_COLUMNS, rows_of

OVERDUE = f"""SELECT {CASE_COLUMNS} FROM cases c
    WHERE c.stage_due_at < %(now)s AND c.status = ANY(%(handling)s) AND c.tier <> 'county'
    ORDER BY c.stage_due_at LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED"""
# Each row's reported_at names the case's partition: one index probe a case (by id alone, every
# month's index was probed for each: 17 probes a case at a year of cases, most of them cold).
UPDATE = """UPDATE cases c SET status = r.status, stage = r.stage, stage_started_at = r.started,
        stage_yellow_at = r.yellow, stage_due_at = r.due, tier = r.tier, unit_code = r.unit,
        department = r.department, escalations = r.escalations, updated_at = %(now)s
    FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r(
        id bigint, reported_at timestamptz, status text, stage text, started timestamptz,
        yellow timestamptz, due timestamptz, tier text, unit text, department text, escalations integer)
    WHERE c.id = r.id AND c.reported_at = r.reported_at
    RETURNING c.id"""


def overdue_for_update(session: Session, now: datetime, batch: int) -> list[tuple[CaseState, datetime]]:
    """Overdue cases in handling below the county, most overdue first, locked, with their
    reported_at; cases another process holds are skipped (SKIP LOCKED), so many processes may
    escalate at once."""
    params = {"now": now, "handling": [s.value for s in OPEN_HANDLING], "batch": batch}
    return [(state_of(row), row.reported_at) for row in rows_of(session, OVERDUE, params)]


def write_escalations(session: Session, changes: list[tuple[int, datetime, Change]], now: datetime) -> None:
    """Store each (case id, reported_at, change) an escalation decided: the cases' columns, then
    their history."""
    if not changes:
        return
    rows = [_row(case_id, reported_at, c) for case_id, reported_at, c in changes]
    rows_of(session, UPDATE, {"rows": as_json(rows), "now": now})
    entries = [entry_row(case_id, change, now) for case_id, _, change in changes]
    rows_of(session, HISTORY + " RETURNING case_id", {"rows": as_json(entries)})


def _row(case_id: int, reported_at: datetime, change: Change) -> dict[str, Any]:
    """One row of UPDATE: the new status, clock, holder and count of escalations."""
    if change.assignment is not None or change.then is not None or set(change.fields) != {"escalations"}:
        raise ValueError("write_escalations stores an escalation's change: status, clock, holder, count")
    clock, holder = change.clock, change.holder
    return {
        "id": case_id, "reported_at": reported_at, "status": change.status.value, "stage": clock.stage,
        "started": clock.started_at, "yellow": clock.yellow_at, "due": clock.due_at,
        "tier": holder.tier.value, "unit": holder.unit,
        "department": holder.department, "escalations": change.fields["escalations"],
    }  # fmt: skip
