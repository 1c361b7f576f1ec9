"""Cases moved by a published redraw, in the store: the open cases to assign again, collected
into a temporary table (store.locate_many assigns them all at once), the moved ones read locked
at once, and their decided changes (new assignment and holder, one history entry each) written
with two statements.

What each case becomes is decided by cases.workflow.redraw (services.case_redraw calls both).
A redraw of a whole county moves tens of thousands of open cases: one statement per case (a locked
read, an update, a history insert: three round trips) took most of the 30 s a publish may take.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from cases.workflow import CaseState, Change
from store.case_history import HISTORY_COLUMNS, _entry_params, state_of
from store.cases import rows_of
from store.plan_publish import OPEN_NEAR, open_near_params

# What store.case_history.state_of reads of a case, and its partition: of the stored assignment
# (a kilobyte of JSON a case) only the last unit of its chain (70 MB less to read for a county).
STATE_COLUMNS = """c.id, c.number, c.status, c.category, c.urgent, c.tier, c.unit_code, c.grid_code,
    c.grid_version, c.department, c.stage, c.stage_started_at, c.stage_yellow_at, c.stage_due_at,
    c.escalations, c.reported_at,
    CASE WHEN c.assignment -> 'units' -> -1 IS NOT NULL
         THEN jsonb_build_object('units', jsonb_build_array(c.assignment -> 'units' -> -1))
    END AS assignment"""
# Locked in id order, as every writer of many cases locks them (no deadlock between two publishes).
# Each (id, reported_at) names its partition: one index probe a case (by id alone, every month's
# index was probed for every case).
LOCKED = f"""SELECT {STATE_COLUMNS}
    FROM unnest(CAST(%(ids)s AS bigint[]), CAST(%(reported)s AS timestamptz[])) AS k(id, reported_at)
    JOIN cases c ON c.id = k.id AND c.reported_at = k.reported_at
    ORDER BY c.id FOR UPDATE OF c"""
# The columns of UPDATE's rows, sent as one array each (psycopg writes arrays in C: the same rows
# as JSON took seconds of Python for a county's cases).
ROW_TYPES = {
    "id": "bigint", "reported_at": "timestamptz", "status": "text", "stage": "text", "started": "timestamptz",
    "yellow": "timestamptz", "due": "timestamptz", "tier": "text", "unit": "text", "department": "text",
    "assign_status": "text", "assign_rule": "text", "grid_code": "text", "grid_version": "integer",
    "distance_m": "float8", "a": "integer",
}  # fmt: skip
# The reported_at of each row names its partition: the join reads one partition per case. Cases
# moved into one place share their assignment: each distinct one is sent once (`assignments`, a
# JSON array; `a` is its index), not once a case (1 KB each: 70 MB for a county's open cases).
UPDATE = f"""UPDATE cases c SET status = r.status, stage = r.stage, stage_started_at = r.started,
        stage_yellow_at = r.yellow, stage_due_at = r.due, tier = r.tier, unit_code = r.unit,
        department = r.department, updated_at = %(now)s, assign_status = r.assign_status,
        assign_rule = r.assign_rule, grid_code = r.grid_code, grid_version = r.grid_version,
        distance_m = r.distance_m, assignment = CAST(%(assignments)s AS jsonb) -> r.a
    FROM unnest({", ".join(f"CAST(%({k})s AS {t}[])" for k, t in ROW_TYPES.items())})
        AS r({", ".join(ROW_TYPES)})
    WHERE c.id = r.id AND c.reported_at = r.reported_at"""
HISTORY = f"""INSERT INTO case_history ({HISTORY_COLUMNS})
    SELECT case_id, h_at, h_actor, h_action, h_from_status, h_to_status, h_note, h_details, h_stage, h_due,
        h_on_time, h_tier, h_unit, h_department
    FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r(
        case_id bigint, h_at timestamptz, h_actor text, h_action text, h_from_status text,
        h_to_status text, h_note text, h_details jsonb, h_stage text, h_due timestamptz, h_on_time boolean,
        h_tier text, h_unit text, h_department text)
    ORDER BY case_id"""


# The open cases a publish assigns again, and those of them that move: temporary tables (the
# set-based assignment, store.locate_many, reads points from a table), gone with the transaction.
CANDIDATES = "redraw_candidates"
MOVING = "redraw_moving"


def collect_candidates(session: Session, codes: list[str], area: shapely.Geometry | None) -> int:
    """Put the open cases on one of `codes` or inside `area` into CANDIDATES: how many."""
    session.execute(text(f"DROP TABLE IF EXISTS {CANDIDATES}, {MOVING}"))
    written = session.execute(
        text(
            f"""CREATE TEMP TABLE {CANDIDATES} ON COMMIT DROP AS
                SELECT id, reported_at, number, status, grid_code, grid_version, geom
                FROM cases WHERE {OPEN_NEAR}"""
        ),
        open_near_params(codes, area),
    )
    session.execute(text(f"ANALYZE {CANDIDATES}"))
    return written.rowcount


def candidates(session: Session) -> list[Row]:
    """The rows of CANDIDATES (id, reported_at, number, status, grid_code, grid_version, lon, lat),
    by id."""
    return session.execute(
        text(
            f"""SELECT id, reported_at, number, status, grid_code, grid_version,
                       ST_X(geom) AS lon, ST_Y(geom) AS lat
                FROM {CANDIDATES} ORDER BY id"""
        )
    ).all()


def collect_moving(session: Session, ids: list[int]) -> None:
    """Put the candidates of `ids` into MOVING (id, geom)."""
    session.execute(
        text(
            f"""CREATE TEMP TABLE {MOVING} ON COMMIT DROP AS
                SELECT c.id, c.geom
                FROM {CANDIDATES} c JOIN unnest(CAST(:ids AS bigint[])) AS m(id) USING (id)"""
        ),
        {"ids": ids},
    )
    session.execute(text(f"ANALYZE {MOVING}"))


def cases_for_update(
    session: Session, keys: list[tuple[int, datetime]]
) -> dict[int, tuple[CaseState, datetime]]:
    """The cases of `keys` (id, reported_at), locked until the transaction ends: (state,
    reported_at) by id."""
    ids, reported = zip(*sorted(set(keys)), strict=True) if keys else ((), ())
    with _nested_loops(session):
        rows = rows_of(session, LOCKED, {"ids": list(ids), "reported": list(reported)})
    return {row.id: (state_of(row), row.reported_at) for row in rows}


@contextmanager
def _nested_loops(session: Session) -> Iterator[None]:
    """A probe of the case's one partition per key: the planner, counting tens of thousands of
    keys, would rather scan every partition whole for a hash join."""
    session.execute(text("SET LOCAL enable_hashjoin = off"))
    session.execute(text("SET LOCAL enable_mergejoin = off"))
    yield
    session.execute(text("RESET enable_hashjoin"))
    session.execute(text("RESET enable_mergejoin"))


def write_redraws(session: Session, changes: list[tuple[int, datetime, Change]], now: datetime) -> None:
    """Store each (case id, reported_at, change) a redraw decided: the case's columns, then its
    history entry."""
    if not changes:
        return
    assignments: dict[int, int] = {}  # id() of each distinct assignment -> its index in `documents`
    documents: list[dict[str, Any]] = []
    updates = []
    for case_id, reported_at, change in changes:
        assignment = change.assignment
        if assignment is not None and id(assignment) not in assignments:
            assignments[id(assignment)] = len(documents)
            documents.append(assignment.as_dict())
        updates.append(_update_row(case_id, reported_at, change, assignments.get(id(assignment))))
    entries = [entry_row(case_id, change, now) for case_id, _, change in changes]
    params = {key: [row[key] for row in updates] for key in ROW_TYPES}
    params.update(assignments=as_json(documents), now=now)
    with _nested_loops(session):
        rows_of(session, UPDATE + " RETURNING c.id", params)
    rows_of(session, HISTORY + " RETURNING case_id", {"rows": as_json(entries)})


def _update_row(case_id: int, reported_at: datetime, change: Change, index: int | None) -> dict[str, Any]:
    """One row of UPDATE: the change's status, clock, holder and assignment (`index` in the
    statement's array of assignments)."""
    if change.assignment is None or change.then is not None or change.fields:
        raise ValueError("write_redraws stores a redraw's change: an assignment, nothing after it")
    clock, holder, assignment = change.clock, change.holder, change.assignment
    grid = assignment.grid
    return {
        "id": case_id, "reported_at": reported_at, "status": change.status.value, "stage": clock.stage,
        "started": clock.started_at, "yellow": clock.yellow_at, "due": clock.due_at,
        "tier": holder.tier.value, "unit": holder.unit, "department": holder.department,
        "assign_status": assignment.status.value, "assign_rule": assignment.rule.value,
        "grid_code": grid.code if grid else None, "grid_version": grid.version if grid else None,
        "distance_m": assignment.distance_m, "a": index,
    }  # fmt: skip


def entry_row(case_id: int, change: Change, now: datetime) -> dict[str, Any]:
    """One row of HISTORY (store.case_escalation writes them too): the entry's parameters, its
    details as JSON (not a JSON string)."""
    params = _entry_params(change, now)
    return {"case_id": case_id, **params, "h_details": json.loads(params["h_details"])}


def as_json(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array, for jsonb_to_recordset."""
    return json.dumps(rows, ensure_ascii=False, default=str)
