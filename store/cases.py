"""Cases in the store: rows and queries (summaries, details, lists, photos), and the rows the
workflow's decisions read (store.case_history writes what they decide).

Intake's statements are store.case_intake; GET /cases' filter as SQL is store.case_filters. Every
write happens in the caller's transaction; the caller commits. A trigger on `cases` appends each
change to `case_events` (the live feed, store/case_events.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cases.intake_checks import InvalidReport as InvalidReport
from cases.lifecycle import FINISHED_STATUSES, CaseStatus, allowed_moves
from cases.model import reporter_view
from cases.rules import Rules as Rules
from cases.workflow import CaseState
from cases.workflow import InvalidTarget as InvalidTarget
from errors import Invalid, NotFound
from geo import geojson
from geo.crs import METRES_PER_DEGREE_MIN
from store.case_filters import CaseFilter as CaseFilter
from store.case_filters import counted_page
from store.case_filters import in_unit_sql as in_unit_sql
from store.case_history import clock_of, state_of
from store.units import units_at


class CaseNotFound(NotFound):
    """No case with that id."""


class IdempotencyConflict(Invalid):
    """An Idempotency-Key already used for a different request."""


# The cases near it first, through the GiST index `cases_near_idx` alone: it holds both the place
# and the time, as `tstzrange(reported_at, reported_at, '[]')` (migration 0024 says why a range; the
# expression must be written as the index has it). The generic plan ANDed a point-only index with
# the time btree's whole day, 3.9 ms a case at 10 M cases a year. MATERIALIZED keeps the planner
# from also scanning the category/time index (0.7 ms per case at 4,000 cases of a category in the
# window). The bare `reported_at` bounds prune the other months' partitions as the query runs.
DUPLICATES_SQL = """
    WITH near AS MATERIALIZED (
        SELECT o.id, o.number, o.status, o.category, o.reported_at, o.geom, o.unit_code, o.grid_code,
            o.department FROM cases o WHERE ST_DWithin(o.geom, c.geom, %(radius_deg)s)  -- a box surely wider
          AND o.reported_at >= c.reported_at - make_interval(secs => %(window)s)
          AND o.reported_at <= c.reported_at + make_interval(secs => %(window)s)
          AND tstzrange(o.reported_at, o.reported_at, '[]') && tstzrange(c.reported_at
              - make_interval(secs => %(window)s), c.reported_at + make_interval(secs => %(window)s), '[]'))
    SELECT o.id, o.number, o.status, o.unit_code, o.grid_code, o.department,  -- whose (api.access)
           round(ST_Distance(o.geom::geography, c.geom::geography)::numeric, 1)::float8 AS distance_m
    FROM near o
    WHERE o.category = c.category AND o.id <> c.id
      AND ST_DWithin(o.geom::geography, c.geom::geography, %(radius)s)
      AND o.status <> ALL(%(finished)s)
    ORDER BY distance_m, o.id LIMIT 10"""


def _duplicate_params(rules: Rules) -> dict[str, Any]:
    return {
        "radius": rules.duplicate_radius_m,
        "radius_deg": rules.duplicate_radius_m / METRES_PER_DEGREE_MIN,
        "window": rules.duplicate_window_h * 3600,
        "finished": FINISHED_STATUSES,
    }


# ---------------------------------------------------------------- reading


CASE_COLUMNS = """c.id, c.number, c.source, c.category, c.description, c.address, c.urgent, c.reporter,
    ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.input_crs, c.input_lon, c.input_lat, c.accuracy_m,
    c.location_source, c.location_method, c.assign_status, c.assign_rule, c.grid_code, c.grid_version,
    c.distance_m, c.assignment, c.tier, c.unit_code, c.department, c.status, c.stage, c.stage_started_at,
    c.stage_yellow_at, c.stage_due_at, c.escalations, c.merged_into, c.rating, c.reported_at,
    c.updated_at, c.closed_at"""


def case_summary(row: Any, now: datetime, rules: Rules) -> dict[str, Any]:
    """A case as lists show it (reporter masked), from a row of CASE_COLUMNS."""
    light = clock_of(row).light(now)
    category = rules.categories.get(row.category)
    return {
        "id": row.id,
        "number": row.number,
        "status": row.status,
        "source": row.source,
        "category": row.category,
        "category_name": category.name,
        "description": row.description,
        "address": row.address,
        "urgent": row.urgent,
        # Rounded as every GeoJSON answer rounds them: /cases, its GeoJSON, the map and the feed agree.
        "lon": geojson.coordinate(row.lon),
        "lat": geojson.coordinate(row.lat),
        "accuracy_m": row.accuracy_m,
        "grid_code": row.grid_code,
        "assign_status": row.assign_status,
        "tier": row.tier,
        "unit_code": row.unit_code,
        "department": row.department,
        "department_name": rules.departments.get(row.department) if row.department else None,
        "stage": row.stage,
        "stage_due_at": row.stage_due_at,
        "light": light.value if light else None,
        "overdue": bool(row.stage_due_at and now > row.stage_due_at),
        "reported_at": row.reported_at,
        "updated_at": row.updated_at,
    }


# The cases, their history, photos and suggested duplicates (as JSON arrays), and the clock: one
# round trip for one case's detail or for many (intake answers a whole batch with one).
CASE_DETAILS = f"""SELECT {CASE_COLUMNS}, clock_timestamp() AS db_now,
              (SELECT coalesce(json_agg(h ORDER BY h.id), '[]') FROM (
                  SELECT id, at, actor, action, from_status, to_status, note, details, stage,
                         stage_due_at, on_time, tier, unit_code, department
                  FROM case_history WHERE case_id = c.id) h) AS history,
              (SELECT coalesce(json_agg(p ORDER BY p.seq), '[]') FROM (
                  SELECT seq, stage, content_type, width, height, gps IS NOT NULL AS has_gps
                  FROM case_photos WHERE case_id = c.id) p) AS photos,
              (SELECT coalesce(json_agg(d), '[]') FROM ({DUPLICATES_SQL}) d) AS duplicates
            FROM cases c WHERE c.id = ANY(%(ids)s)"""


def case_detail(
    session: Session, case_id: int, rules: Rules, *, now: datetime | None = None, entitled: bool = False
) -> dict[str, Any]:
    """Everything about one case: assignment and why, clock, allowed moves, photos, history, and
    suggested duplicates (open cases of the same category near it, reported around the same time)."""
    row = detail_rows(session, [case_id], rules).get(case_id)
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    return detail_of(row, rules, now=now, entitled=entitled)


def detail_rows(session: Session, ids: list[int], rules: Rules) -> dict[int, Any]:
    """The rows of many cases' details in one statement, by id (made into answers by detail_of)."""
    rows = rows_of(session, CASE_DETAILS, {"ids": sorted(set(ids)), **_duplicate_params(rules)})
    return {row.id: row for row in rows}


def rows_of(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    """The rows of one statement (psycopg's %(name)s parameters), run by psycopg itself in the
    session's transaction; a row is a named tuple, read by attribute as a Row is.

    For intake's statements, run for every batch of reports (hundreds a second): through
    SQLAlchemy's statement and result layers (which build a 40-column result's metadata on each
    execution, say) a batch took 0.3-0.5 ms more of the service's CPU (1.75 ms instead of 1.43 for
    a batch of one report).
    """
    # The statement goes with the request: a read session sends a SELECT to a standby.
    connection = session.connection(bind_arguments={"clause": text(sql)}).connection.driver_connection
    try:
        with connection.cursor(row_factory=namedtuple_row) as cursor:
            return cursor.execute(sql, params).fetchall()
    except psycopg.Error as e:  # raised as SQLAlchemy raises it: callers and the API's error map expect that
        raise DBAPIError.instance(sql, params, e, psycopg.Error) from e


def detail_of(
    row: Any, rules: Rules, *, now: datetime | None = None, entitled: bool = False
) -> dict[str, Any]:
    """A case's detail (see case_detail) from its row; the reporter masked unless `entitled`."""
    now = now or row.db_now
    history = [{k: v for k, v in h.items() if k != "id"} for h in row.history]
    return {
        **case_summary(row, now, rules),
        "reporter": reporter_view(row.reporter, entitled=entitled),
        "input": {"crs": row.input_crs, "lon": row.input_lon, "lat": row.input_lat},
        "location_source": row.location_source, "location_method": row.location_method,
        "assignment": row.assignment,
        "grid_version": row.grid_version,
        "distance_m": row.distance_m,
        "stage_started_at": row.stage_started_at,
        "stage_yellow_at": row.stage_yellow_at,
        "escalations": row.escalations,
        "merged_into": row.merged_into,
        "rating": row.rating,
        "closed_at": row.closed_at,
        "allowed_moves": allowed_moves(CaseStatus(row.status)),
        "photos": row.photos,  # the API adds each photo's URL (api.links)
        "history": history,
        "duplicates": row.duplicates,
    }


def photo(session: Session, case_id: int, seq: int) -> tuple[str, bytes]:
    """One stored photo: (content type, bytes)."""
    row = session.execute(
        text("SELECT content_type, bytes FROM case_photos WHERE case_id = :id AND seq = :seq"),
        {"id": case_id, "seq": seq},
    ).first()
    if row is None:
        raise CaseNotFound(f"case {case_id} has no photo {seq}")
    return row.content_type, bytes(row.bytes)

def list_cases(session: Session, f: CaseFilter, rules: Rules) -> tuple[int, list[dict[str, Any]]]:
    """Cases matching the filter, newest first: (total count, one page of summaries)."""
    now = db_now(session)
    total, rows = counted_page(session, f, now, CASE_COLUMNS, "c.reported_at DESC, c.id DESC", f.offset)
    return total, [case_summary(r, now, rules) for r in rows]


# ---------------------------------------------------------------- what the workflow reads


def case_for_update(session: Session, case_id: int) -> CaseState:
    """The case, locked until the transaction ends (moves of one case wait for each other)."""
    row = session.execute(
        text(f"SELECT {CASE_COLUMNS} FROM cases c WHERE c.id = :id FOR UPDATE"), {"id": case_id}
    ).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    return state_of(row)


def case_status(session: Session, case_id: int) -> CaseStatus:
    """The status of a case (CaseNotFound when there is none)."""
    status = session.execute(text("SELECT status FROM cases WHERE id = :id"), {"id": case_id}).scalar()
    if status is None:
        raise CaseNotFound(f"no case {case_id}")
    return CaseStatus(status)


def unit_level(session: Session, code: str) -> str | None:
    """The level of the current unit with this code (None: no current unit has it)."""
    found = units_at(session, [code])
    return found[code].level if code in found else None


def db_now(session: Session) -> datetime:
    """The database's clock: every process agrees on it."""
    return session.execute(text("SELECT clock_timestamp()")).scalar_one()
