"""Cases in the store: intake with idempotency, workflow moves with history, queries, escalation.

Every write happens in the caller's transaction; the caller commits. A trigger on `cases`
appends each change to `case_events` (the live feed, store/case_events.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from access.roles import AccessDenied, Role, User
from cases.categories import CategoryTable, UnknownCategory
from cases.intake_checks import OutsideUnits, outside_flags, refuse_outside_units, responsibility
from cases.lifecycle import (
    FINISHED_STATUSES,
    NEXT_TIER,
    OPEN_HANDLING,
    TIER_OF_LEVEL,
    CaseStatus,
    Move,
    Rating,
    Tier,
    allowed_moves,
    check_move,
)
from cases.model import (
    Intake,
    PhotoUpload,
    StageClock,
    case_number,
    extended_clock,
    load_departments,
    reporter_view,
    stage_clock,
)
from cases.worktime import TimeLimit, WorkCalendar
from geo.assignment import Assignment
from geo.codes import CODE_LENGTH, Level, parent_code
from geo.crs import METRES_PER_DEGREE_MIN, STORAGE_SRID
from geo.settings import Settings
from store.locate import locate
from store.units import units_at

SYSTEM = "system"


class CaseNotFound(LookupError):
    """No case with that id."""


class IdempotencyConflict(ValueError):
    """An Idempotency-Key already used for a different request."""


class InvalidReport(ValueError):
    """A report that cannot become a case; the message says what to send instead."""


class InvalidTarget(ValueError):
    """A move names a unit, department or case that cannot take it."""


@dataclass(frozen=True)
class Rules:
    """What case operations consult: categories, the calendar, departments and tolerances."""

    categories: CategoryTable
    calendar: WorkCalendar
    departments: dict[str, str]
    snap_tolerance_m: float = 30.0
    duplicate_radius_m: float = 50.0
    duplicate_window_h: float = 24.0
    refuse_outside_units: bool = False  # refuse reports outside every unit (else flag them)

    @classmethod
    def load(cls, settings: Settings) -> Rules:
        """Loaded from the data files the settings name."""
        return cls(
            categories=CategoryTable.load(settings.categories_file),
            calendar=WorkCalendar.load(settings.calendar_file),
            departments=load_departments(settings.departments_file),
            snap_tolerance_m=settings.snap_tolerance_m,
            duplicate_radius_m=settings.duplicate_radius_m,
            duplicate_window_h=settings.duplicate_window_h,
            refuse_outside_units=settings.refuse_outside_units,
        )


# ---------------------------------------------------------------- intake


@dataclass(frozen=True)
class NewCase:
    """One intake to store: who reports, and the rule's answer for its point when already known."""

    intake: Intake
    actor: str
    assignment: Assignment | None = None  # None: asked of PostGIS
    reported_by: User | None = None  # a field worker's report outside their unit is flagged


# What create_cases answers per intake: (case id, created, flags), or the error that refused it.
Stored = tuple[int, bool, list[str]]


def create_case(
    session: Session,
    intake: Intake,
    rules: Rules,
    *,
    actor: str,
    now: datetime | None = None,
    assignment: Assignment | None = None,
) -> tuple[int, bool]:
    """Store a new case (or find the one made earlier with the same key): (id, created).

    `assignment` is the rule's answer for the intake's point when the caller already has it (the
    server's in-memory copy of the grids, store.locate_cache); else it is asked of PostGIS.
    """
    (result,) = create_cases(session, [NewCase(intake, actor, assignment)], rules, now=now)
    if isinstance(result, Exception):
        raise result
    case_id, created, _ = result
    return case_id, created


def create_cases(
    session: Session, cases: list[NewCase], rules: Rules, *, now: datetime | None = None
) -> list[Stored | Exception]:
    """Store many intakes in the caller's transaction with a few statements for all of them.

    Each answer is (id, created, flags) or the error that refused that intake alone (a bad
    category, a key reused for another report); the others are stored all the same. A retry is
    detected by the insert itself (ON CONFLICT on the key's unique index), which also settles
    identical requests arriving at once: the later one waits for the first to commit. Rows are
    inserted in key order, so two batches sharing keys wait for each other instead of deadlocking.
    """
    results: list[Stored | Exception | None] = [None] * len(cases)
    ready: list[tuple[int, NewCase, Any, Assignment]] = []
    for i, case in enumerate(cases):
        try:
            category = _assignable(rules, case.intake.category)
            found = case.assignment or locate(
                session, case.intake.lon, case.intake.lat, tolerance_m=rules.snap_tolerance_m
            )
            if rules.refuse_outside_units:
                refuse_outside_units(found)
        except (InvalidReport, UnknownCategory, OutsideUnits) as e:
            results[i] = e
            continue
        ready.append((i, case, category, found))
    if ready:
        _insert_cases(session, ready, rules, results, now)
    return results  # type: ignore[return-value]  # every slot is filled by now


def _assignable(rules: Rules, code: str) -> Any:
    """The intake's category; a top class is refused with its subclasses named."""
    category = rules.categories.get(code)
    if not rules.categories.is_assignable(category.code):
        children = ", ".join(c.code for c in rules.categories.children(category.code)[:8])
        raise InvalidReport(
            f"category {category.code} {category.name} is a top class; use a subclass ({children}, …)"
        )
    return category


def _insert_cases(
    session: Session,
    ready: list[tuple[int, NewCase, Any, Assignment]],
    rules: Rules,
    results: list[Stored | Exception | None],
    now: datetime | None,
) -> None:
    """Insert the checked intakes (the first of each key only), then settle retries by key."""
    # One round trip for the ids (numbers need them) and the database's clock.
    ((ids, db_now),) = rows_of(session, NEW_IDS, {"n": len(ready)})
    now = now or db_now
    rows, leaders, flags = [], set(), {}
    for (i, case, category, found), case_id in zip(ready, ids, strict=True):
        flags[i] = [*case.intake.flags, *outside_flags(case.reported_by, found)]
        key = case.intake.idempotency_key
        if key is not None and key in leaders:
            continue  # a retry inside the batch: settled below like any other
        leaders.add(key)
        rows.append(_case_row(case_id, case, category, found, flags[i], rules, now))
    payload = json.dumps(rows, ensure_ascii=False, default=str)
    inserted = {row.case_id for row in rows_of(session, INSERT_CASES, {"rows": payload, "now": now})}
    retried = [
        c.intake.idempotency_key
        for (_, c, *_), case_id in zip(ready, ids, strict=True)
        if case_id not in inserted
    ]
    by_key = _cases_by_key(session, retried)
    for (i, case, _, _), case_id in zip(ready, ids, strict=True):
        if case_id in inserted:
            _store_photos(session, case_id, case.intake.photos)
            results[i] = (case_id, True, flags[i])
        else:  # the key's case exists (made earlier, by a concurrent request, or earlier in this batch)
            results[i] = _replayed(by_key.get(case.intake.idempotency_key), case.intake, flags[i])


def _cases_by_key(session: Session, keys: list[str | None]) -> dict[str, Any]:
    wanted = sorted({k for k in keys if k is not None})
    if not wanted:
        return {}
    return {str(r.idempotency_key): r for r in rows_of(session, CASES_BY_KEY, {"keys": wanted})}


def _replayed(existing: Any, intake: Intake, flags: list[str]) -> Stored | Exception:
    if existing is None:  # not inserted, yet no case has the key: only a concurrent delete does that
        return IdempotencyConflict("this Idempotency-Key's case could not be found; send the report again")
    if existing.request_hash and intake.request_hash and existing.request_hash != intake.request_hash:
        return IdempotencyConflict(
            "this Idempotency-Key was already used for a different report; make a new key for a new report"
        )
    return existing.id, False, flags


def _case_row(
    case_id: int,
    case: NewCase,
    category: Any,
    found: Assignment,
    flags: list[str],
    rules: Rules,
    now: datetime,
) -> dict[str, Any]:
    """One row of INSERT_CASES: the case, its clock and its first history entry."""
    intake = case.intake
    tier, unit = responsibility(found)
    clock = stage_clock(
        CaseStatus.REPORTED, category, urgent=intake.urgent, start=now, calendar=rules.calendar
    )
    details = {"source": intake.source, "location_source": intake.location_source}
    return {
        "id": case_id,
        "number": case_number(case_id, now),
        "key": intake.idempotency_key,
        "hash": intake.request_hash,
        "source": intake.source,
        "category": category.code,
        "description": intake.description,
        "address": intake.address,
        "urgent": intake.urgent,
        "reporter": intake.reporter.__dict__ if intake.reporter else None,
        "lon": intake.lon,
        "lat": intake.lat,
        "input_crs": intake.input_crs,
        "input_lon": intake.input_lon,
        "input_lat": intake.input_lat,
        "accuracy_m": intake.accuracy_m,
        "location_source": intake.location_source, "location_method": intake.location_method,
        "assign_status": found.status,
        "assign_rule": found.rule,
        "grid_code": found.grid.code if found.grid else None,
        "grid_version": found.grid.version if found.grid else None,
        "distance_m": found.distance_m,
        "assignment": found.as_dict(),
        "tier": tier,
        "unit": unit,
        "status": CaseStatus.REPORTED,
        **_clock_params(clock),
        "actor": case.actor,
        "note": f"assigned by rule {found.rule}: {found.explanation}",
        "details": details | ({"flags": flags} if flags else {}),
    }


def _store_photos(session: Session, case_id: int, uploads: list[PhotoUpload]) -> None:
    for seq, upload in enumerate(uploads, start=1):
        photo, gps = upload.photo, upload.photo.gps
        session.execute(
            text(
                f"""INSERT INTO case_photos (case_id, seq, content_type, width, height, bytes, sha256, gps,
                        taken_at)
                    VALUES (:case_id, :seq, :content_type, :width, :height, :bytes, :sha256,
                        CASE WHEN :has_gps THEN ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID}) END,
                        :taken_at)"""
            ),
            {
                "case_id": case_id,
                "seq": seq,
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
                "bytes": upload.data,
                "sha256": upload.sha256,
                "has_gps": gps is not None,
                "lon": gps[0] if gps else None,
                "lat": gps[1] if gps else None,
                "taken_at": photo.taken_at,
            },
        )


# Suggested duplicates of case `c`: open cases of the same category close by and recent.
# The cases near it come first, through the GiST index alone (MATERIALIZED keeps the planner from
# also scanning the category/time index, as it does when it expects few rows there: that scan
# reads every case of the category in the 48-hour window, 0.7 ms per case at 4,000 of them).
DUPLICATES_SQL = """
    WITH near AS MATERIALIZED (
        SELECT o.id, o.number, o.status, o.category, o.reported_at, o.geom, o.unit_code, o.grid_code,
            o.department FROM cases o WHERE ST_DWithin(o.geom, c.geom, %(radius_deg)s))  -- a box surely wider
    SELECT o.id, o.number, o.status, o.unit_code, o.grid_code, o.department,  -- whose (api.access)
           round(ST_Distance(o.geom::geography, c.geom::geography)::numeric, 1)::float8 AS distance_m
    FROM near o
    WHERE o.category = c.category AND o.id <> c.id
      AND ST_DWithin(o.geom::geography, c.geom::geography, %(radius)s)
      AND o.reported_at >= c.reported_at - make_interval(secs => %(window)s)
      AND o.reported_at <= c.reported_at + make_interval(secs => %(window)s)
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
    clock = _clock_of(row)
    light = clock.light(now)
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
        "lon": row.lon,
        "lat": row.lat,
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
        "photos": [{"url": f"/cases/{row.id}/photos/{p['seq']}", **p} for p in row.photos],
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


@dataclass(frozen=True)
class CaseFilter:
    """What GET /cases can ask for; None means no condition."""

    status: list[str] | None = None
    unit: str | None = None
    grid: str | None = None
    grids: list[str] | None = None  # any of these grids (a map's neighbourhood of grids)
    category: str | None = None
    overdue: bool | None = None
    light: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    source: str | None = None
    scope: User | None = None  # only cases this user may see
    limit: int = 200
    offset: int = 0


def in_unit_sql(unit_code: str | None, param: str = "unit_prefix") -> tuple[str, dict[str, Any]]:
    """SQL: case `c` belongs to the unit (none: all) — its responsible unit or grid lies under it;
    a case held by no unit and no grid (outside every unit) belongs to the county."""
    county_level = unit_code is None or len(unit_code) <= CODE_LENGTH[Level.COUNTY]
    return (
        f"(c.unit_code LIKE :{param} OR c.grid_code LIKE :{param}"
        f"{' OR (c.unit_code IS NULL AND c.grid_code IS NULL)' if county_level else ''})",
        {param: (unit_code or "") + "%"},
    )


def _scope_sql(user: User) -> tuple[str, dict[str, Any]]:
    """SQL for access.roles.User.may_see_case: a department's cases, or the unit and everything below."""
    if user.role == Role.DEPARTMENT:
        return "c.department = :scope_department", {"scope_department": user.department}
    return in_unit_sql(user.unit_code, "scope_prefix")


def _filter_sql(f: CaseFilter) -> tuple[str, dict[str, Any]]:
    where, params = ["true"], {}
    if f.scope is not None:
        condition, scope_params = _scope_sql(f.scope)
        where.append(condition)
        params.update(scope_params)
    if f.status:
        where.append("c.status = ANY(:status)")
        params["status"] = list(f.status)
    if f.unit:  # a unit and everything under it: codes nest by prefix
        sql, more = in_unit_sql(f.unit)
        where.append(sql)
        params |= more
    if f.grid:
        where.append("c.grid_code = :grid")
        params["grid"] = f.grid
    if f.grids is not None:
        where.append("c.grid_code = ANY(:grids)")
        params["grids"] = f.grids
    if f.category:
        where.append("c.category LIKE :category_prefix")
        params["category_prefix"] = f.category + "%"
    if f.source:
        where.append("c.source = :source")
        params["source"] = f.source
    if f.overdue is not None:
        where.append("(c.stage_due_at IS NOT NULL AND c.stage_due_at < :now) = :overdue")
        params["overdue"] = f.overdue
    if f.light == "green":
        where.append("c.stage_yellow_at > :now")
    elif f.light == "yellow":
        where.append("c.stage_yellow_at <= :now AND c.stage_due_at >= :now")
    elif f.light == "red":
        where.append("c.stage_due_at < :now")
    if f.bbox:
        where.append(f"c.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {STORAGE_SRID})")
        params.update(dict(zip(("minx", "miny", "maxx", "maxy"), f.bbox, strict=True)))
    if f.reported_from:
        where.append("c.reported_at >= :reported_from")
        params["reported_from"] = f.reported_from
    if f.reported_to:
        where.append("c.reported_at < :reported_to")
        params["reported_to"] = f.reported_to
    return " AND ".join(where), params


def list_cases(session: Session, f: CaseFilter, rules: Rules) -> tuple[int, list[dict[str, Any]]]:
    """Cases matching the filter, newest first: (total count, one page of summaries)."""
    now = _now(session)
    where, params = _filter_sql(f)
    params["now"] = now
    total = session.execute(text(f"SELECT count(*) FROM cases c WHERE {where}"), params).scalar_one()
    rows = session.execute(
        text(
            f"""SELECT {CASE_COLUMNS} FROM cases c WHERE {where}
                ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit OFFSET :offset"""
        ),
        {**params, "limit": f.limit, "offset": f.offset},
    ).all()
    return total, [case_summary(r, now, rules) for r in rows]


# ---------------------------------------------------------------- workflow


def transition(
    session: Session,
    case_id: int,
    move: Move,
    rules: Rules,
    *,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
    mover: User | None = None,
) -> None:
    """Make one lifecycle move (checked against cases.lifecycle, and against what `mover`'s role may
    do from the case's status) and append it to the history."""
    row = session.execute(
        text(f"SELECT {CASE_COLUMNS} FROM cases c WHERE c.id = :id FOR UPDATE"), {"id": case_id}
    ).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    now = now or _now(session)
    current = CaseStatus(row.status)
    check_move(current, move)
    if mover is not None and not mover.may_move(move.to, current):
        raise AccessDenied(f"a {mover.role} may not move a case from {current} to {move.to}")
    category = rules.categories.get(row.category)
    tier, unit, department = Tier(row.tier), row.unit_code, row.department
    changes: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if move.unit and move.to in (CaseStatus.DISPATCHED, CaseStatus.REASSIGNED):
        tier, unit, department = _target(session, move.unit, Tier(row.tier), row.unit_code, rules)
        details["target"] = move.unit
    elif move.to == CaseStatus.DISPATCHED and row.grid_code and tier == Tier.GRID:
        unit = row.grid_code
    if move.to == CaseStatus.MERGED:
        _check_merge_target(session, case_id, move.into)
        changes["merged_into"] = move.into
        details["into"] = move.into
    if move.to == CaseStatus.REVISITED:
        changes["rating"] = Rating(move.rating).value
        details["rating"] = changes["rating"]
    if move.to == CaseStatus.CLOSED:
        changes["closed_at"] = now
    if move.reason:
        details["reason"] = move.reason
    if move.to == CaseStatus.EXTENDED:
        try:
            limit = TimeLimit.parse(move.extend_by)
        except ValueError as e:
            raise InvalidTarget(str(e)) from None
        clock = extended_clock(_clock_of(row), limit, urgent=row.urgent, calendar=rules.calendar)
        details["extend_by"] = str(limit)
    else:
        clock = stage_clock(move.to, category, urgent=row.urgent, start=now, calendar=rules.calendar)
    _apply(session, row, move.to, clock, tier, unit, department, changes, now)
    _append_history(
        session,
        case_id,
        actor=actor,
        action=move.to.value,
        from_status=current,
        to_status=move.to,
        note=note or move.reason,
        details=details,
        left=_clock_of(row),
        now=now,
        tier=tier,
        unit=unit,
        department=department,
    )
    if move.to == CaseStatus.REVISITED and move.rating == Rating.UNSATISFIED:
        _reopen(session, case_id, category, rules, row, tier, unit, department, now)


def _reopen(session, case_id, category, rules, row, tier, unit, department, now) -> None:
    """An unsatisfied revisit sends the case back to work (rework), with a new handling clock."""
    clock = stage_clock(
        CaseStatus.IN_PROGRESS, category, urgent=row.urgent, start=now, calendar=rules.calendar
    )
    _apply(session, row, CaseStatus.IN_PROGRESS, clock, tier, unit, department, {"closed_at": None}, now)
    _append_history(
        session,
        case_id,
        actor=SYSTEM,
        action="reopen",
        from_status=CaseStatus.REVISITED,
        to_status=CaseStatus.IN_PROGRESS,
        note="the reporter was unsatisfied: back to work",
        details={},
        left=None,
        now=now,
        tier=tier,
        unit=unit,
        department=department,
    )


def _target(
    session: Session, target: str, tier: Tier, unit: str | None, rules: Rules
) -> tuple[Tier, str | None, str | None]:
    """(tier, unit, department) for a move to `target`: a unit code or a department's code."""
    if target in rules.departments:
        if tier not in (Tier.STREET, Tier.COUNTY, Tier.DEPARTMENT):
            raise InvalidTarget(
                f"only a street/town or the county may summon a department (the case is at the {tier} tier); "
                "escalate it first"
            )
        return Tier.DEPARTMENT, unit, target
    found = units_at(session, [target])
    if target not in found:
        raise InvalidTarget(
            f"{target!r} is neither a current unit code nor a department "
            f"({', '.join(sorted(rules.departments))}; see GET /departments)"
        )
    return TIER_OF_LEVEL[found[target].level], target, None


def _check_merge_target(session: Session, case_id: int, into: int | None) -> None:
    if into == case_id:
        raise InvalidTarget("a case cannot be merged into itself")
    target = session.execute(text("SELECT status FROM cases WHERE id = :id"), {"id": into}).first()
    if target is None:
        raise CaseNotFound(f"no case {into}")  # as for a case outside the mover's rights (api.access)
    if target.status in (CaseStatus.MERGED, CaseStatus.VOIDED):
        raise InvalidTarget(f"case {into} is {target.status}; merge into the case it became")


def _apply(session, row, status, clock, tier, unit, department, changes, now) -> None:
    sets = {
        "status": status.value,
        **_clock_params(clock),
        "tier": tier.value,
        "unit_code": unit,
        "department": department,
        "updated_at": now,
        **changes,
    }
    names = {"started": "stage_started_at", "yellow": "stage_yellow_at", "due": "stage_due_at"}
    assignments = ", ".join(f"{names.get(k, k)} = :{k}" for k in sets)
    session.execute(text(f"UPDATE cases SET {assignments} WHERE id = :id"), {**sets, "id": row.id})


# One history entry: its columns and the parameters _history_params fills (case_id comes apart).
HISTORY_COLUMNS = """case_id, at, actor, action, from_status, to_status, note, details, stage, stage_due_at,
    on_time, tier, unit_code, department"""
HISTORY_VALUES = """:h_at, :h_actor, :h_action, :h_from_status, :h_to_status, :h_note, :h_details, :h_stage,
    :h_due, :h_on_time, :h_tier, :h_unit, :h_department"""


# Intake's statements (run by rows_of, with psycopg's parameters).
NEW_IDS = """SELECT ARRAY(SELECT nextval('cases_id_seq') FROM generate_series(1, %(n)s)) AS ids,
    clock_timestamp() AS now"""
CASES_BY_KEY = """SELECT id, request_hash, idempotency_key FROM cases
    WHERE idempotency_key = ANY(CAST(%(keys)s AS uuid[]))"""
# Many cases and their first history entries in one statement, from one JSON array of rows (see
# _case_row); a row whose key exists makes nothing. Answers the ids inserted.
INSERT_CASES = f"""WITH r AS (
                  SELECT * FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r(
                      id bigint, number text, key uuid, hash text, source text, category text,
                      description text, address text, urgent boolean, reporter jsonb, lon float8,
                      lat float8, input_crs text, input_lon float8, input_lat float8, accuracy_m float8,
                      location_source text, location_method text, assign_status text, assign_rule text,
                      grid_code text,
                      grid_version integer, distance_m float8, assignment jsonb, tier text, unit text,
                      status text, stage text, started timestamptz, yellow timestamptz, due timestamptz,
                      actor text, note text, details jsonb)),
                new AS (
                  INSERT INTO cases (id, number, idempotency_key, request_hash, source, category, description,
                      address, urgent, reporter, geom, input_crs, input_lon, input_lat, accuracy_m,
                      location_source, location_method, assign_status, assign_rule, grid_code, grid_version,
                      distance_m, assignment, tier, unit_code, status, stage, stage_started_at,
                      stage_yellow_at, stage_due_at, reported_at, updated_at)
                  SELECT id, number, key, hash, source, category, description, address, urgent, reporter,
                      ST_SetSRID(ST_MakePoint(lon, lat), {STORAGE_SRID}), input_crs, input_lon, input_lat,
                      accuracy_m, location_source, location_method, assign_status, assign_rule, grid_code,
                      grid_version, distance_m, assignment, tier, unit, status, stage, started, yellow, due,
                      %(now)s, %(now)s
                  FROM r ORDER BY key NULLS LAST
                  ON CONFLICT (idempotency_key) DO NOTHING
                  RETURNING id)
                INSERT INTO case_history ({HISTORY_COLUMNS})
                SELECT r.id, %(now)s, r.actor, 'report', NULL, r.status, r.note, r.details, NULL, NULL,
                    NULL, r.tier, r.unit, NULL
                FROM r JOIN new USING (id)
                RETURNING case_id"""


def _history_params(
    *,
    actor: str,
    action: str,
    from_status: CaseStatus | None,
    to_status: CaseStatus,
    note: str | None,
    details: dict[str, Any],
    left: StageClock | None,
    now: datetime,
    tier: Tier,
    unit: str | None,
    department: str | None,
) -> dict[str, Any]:
    """Parameters of one history entry; `left` is the clock of the stage being left (for on-time figures)."""
    on_time = None if left is None or left.due_at is None else now <= left.due_at
    return {
        "h_at": now,
        "h_actor": actor,
        "h_action": action,
        "h_from_status": from_status,
        "h_to_status": to_status,
        "h_note": note,
        "h_details": json.dumps(details, ensure_ascii=False, default=str),
        "h_stage": left.stage if left else None,
        "h_due": left.due_at if left else None,
        "h_on_time": on_time,
        "h_tier": tier,
        "h_unit": unit,
        "h_department": department,
    }


def _append_history(session: Session, case_id: int, **entry: Any) -> None:
    """Append one history entry (see _history_params for what it holds)."""
    session.execute(
        text(f"INSERT INTO case_history ({HISTORY_COLUMNS}) VALUES (:case_id, {HISTORY_VALUES})"),
        {"case_id": case_id, **_history_params(**entry)},
    )


def reassign_after_redraw(
    session: Session,
    case_id: int,
    assignment: Assignment,
    *,
    actor: str,
    plan_id: int,
    now: datetime,
) -> dict[str, Any]:
    """A published redraw changed the case's grid: store the new assignment and say so in the history.

    Responsibility moves with the grid only while the case is where the rule put it (its grid, or
    the unassigned queue of the lowest unit); a case escalated or dispatched elsewhere stays there.
    Returns the move as recorded in the history's details.
    """
    row = session.execute(
        text(f"SELECT {CASE_COLUMNS} FROM cases c WHERE c.id = :id FOR UPDATE"), {"id": case_id}
    ).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    tier, unit = Tier(row.tier), row.unit_code
    if (tier, unit) == _rule_responsibility(row):
        tier, unit = responsibility(assignment)
    grid = assignment.grid
    session.execute(
        text(
            """UPDATE cases SET assign_status = :status, assign_rule = :rule, grid_code = :grid,
                   grid_version = :version, distance_m = :distance, assignment = :assignment,
                   tier = :tier, unit_code = :unit, updated_at = :now
               WHERE id = :id"""
        ),
        {
            "id": case_id,
            "status": assignment.status,
            "rule": assignment.rule,
            "grid": grid.code if grid else None,
            "version": grid.version if grid else None,
            "distance": assignment.distance_m,
            "assignment": json.dumps(assignment.as_dict(), ensure_ascii=False),
            "tier": tier,
            "unit": unit,
            "now": now,
        },
    )
    details = {
        "plan_id": plan_id,
        "from": {"grid": row.grid_code, "version": row.grid_version, "tier": row.tier, "unit": row.unit_code},
        "to": {
            "grid": grid.code if grid else None,
            "version": grid.version if grid else None,
            "tier": tier.value,
            "unit": unit,
        },
    }
    old = f"{row.grid_code} v{row.grid_version}" if row.grid_code else "no grid"
    new = f"{grid.code} v{grid.version}" if grid else "no grid"
    _append_history(
        session,
        case_id,
        actor=actor,
        action="redraw",
        from_status=CaseStatus(row.status),
        to_status=CaseStatus(row.status),
        note=f"plan {plan_id} redrew the grids: {old} → {new} ({assignment.explanation})",
        details=details,
        left=None,
        now=now,
        tier=tier,
        unit=unit,
        department=row.department,
    )
    return {"id": case_id, "number": row.number, "status": row.status, **details}


def _rule_responsibility(row: Row) -> tuple[Tier, str | None]:
    """Where the assignment rule put a case (its grid, else the lowest unit containing it)."""
    if row.grid_code:
        return Tier.GRID, row.grid_code
    units = (row.assignment or {}).get("units") or []
    if units:
        return TIER_OF_LEVEL[units[-1]["level"]], units[-1]["code"]
    return Tier.COUNTY, None


def escalate_overdue(session: Session, rules: Rules, *, now: datetime | None = None, batch: int = 500) -> int:
    """Move overdue cases in handling one tier up; safe in many processes at once (SKIP LOCKED)."""
    now = now or _now(session)
    rows = session.execute(
        text(
            f"""SELECT {CASE_COLUMNS} FROM cases c
                WHERE c.stage_due_at < :now AND c.status = ANY(:handling) AND c.tier <> 'county'
                ORDER BY c.stage_due_at LIMIT :batch
                FOR UPDATE SKIP LOCKED"""
        ),
        {"now": now, "handling": [s.value for s in OPEN_HANDLING], "batch": batch},
    ).all()
    for row in rows:
        _escalate(session, row, rules, now)
    return len(rows)


def _escalate(session: Session, row: Row, rules: Rules, now: datetime) -> None:
    tier = NEXT_TIER[Tier(row.tier)]
    unit = _unit_of_tier(row, tier)
    category = rules.categories.get(row.category)
    clock = stage_clock(
        CaseStatus.DISPATCHED, category, urgent=row.urgent, start=now, calendar=rules.calendar
    )
    _apply(
        session,
        row,
        CaseStatus.DISPATCHED,
        clock,
        tier,
        unit,
        None,
        {"escalations": row.escalations + 1},
        now,
    )
    _append_history(
        session,
        row.id,
        actor=SYSTEM,
        action="escalate",
        from_status=CaseStatus(row.status),
        to_status=CaseStatus.DISPATCHED,
        note=f"overdue at the {row.stage} stage: escalated to the {tier} tier",
        details={"from_tier": row.tier, "from_unit": row.unit_code, "from_department": row.department},
        left=_clock_of(row),
        now=now,
        tier=tier,
        unit=unit,
        department=None,
    )


def _unit_of_tier(row: Row, tier: Tier) -> str | None:
    """The unit one tier up: the code's parent (codes nest), or the county for departments."""
    code = row.unit_code or row.grid_code
    if code is None:
        return None
    if tier == Tier.COUNTY:
        return code[:6]
    return parent_code(code) if len(code) > 6 else code


# ---------------------------------------------------------------- helpers


def _now(session: Session) -> datetime:
    """The database's clock: every process agrees on it."""
    return session.execute(text("SELECT clock_timestamp()")).scalar_one()


def _clock_params(clock: StageClock) -> dict[str, Any]:
    return {"stage": clock.stage, "started": clock.started_at, "yellow": clock.yellow_at, "due": clock.due_at}


def _clock_of(row: Any) -> StageClock:
    return StageClock(row.stage, row.stage_started_at, row.stage_yellow_at, row.stage_due_at)
