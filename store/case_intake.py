"""Intake in the store: new case ids and the database's clock, many cases and their first history
entries inserted in one statement, photos, and the cases earlier made with the same keys.

What is stored is decided by services.intake; every write happens in the caller's transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cases.lifecycle import CaseStatus, Tier
from cases.model import Intake, PhotoUpload, StageClock, case_number
from geo.assignment import Assignment
from geo.crs import STORAGE_SRID
from store.case_history import HISTORY_COLUMNS, clock_params
from store.cases import rows_of
from store.field_work import BEFORE, add_photos


@dataclass(frozen=True)
class Admitted:
    """An intake the checks let in, with everything its row holds: who reports, the category's
    code, the rule's answer, the flags, who takes it and the clock of its first stage."""

    case_id: int
    intake: Intake
    actor: str
    category: str
    found: Assignment
    flags: list[str]
    tier: Tier
    unit: str | None
    clock: StageClock


def new_ids(session: Session, n: int) -> tuple[list[int], datetime, bool]:
    """`n` new case ids, the database's clock, and whether the clock's month has its partition of
    `cases` (see cases.partitions), in one round trip."""
    ((ids, now, month_ready),) = rows_of(session, NEW_IDS, {"n": n})
    return ids, now, month_ready


def insert_cases(session: Session, admitted: list[Admitted], now: datetime) -> set[int]:
    """Insert the cases and their first history entries; a case whose key exists makes nothing.
    Answers the ids inserted."""
    payload = json.dumps([_case_row(a, now) for a in admitted], ensure_ascii=False, default=str)
    return {row.case_id for row in rows_of(session, INSERT_CASES, {"rows": payload, "now": now})}


def cases_by_key(session: Session, keys: list[str | None]) -> dict[str, Any]:
    """The stored cases of these idempotency keys (id, request_hash), by key."""
    wanted = sorted({k for k in keys if k is not None})
    if not wanted:
        return {}
    return {str(r.idempotency_key): r for r in rows_of(session, CASES_BY_KEY, {"keys": wanted})}


def _case_row(a: Admitted, now: datetime) -> dict[str, Any]:
    """One row of INSERT_CASES: the case, its clock and its first history entry."""
    intake, found = a.intake, a.found
    details = {"source": intake.source, "location_source": intake.location_source}
    return {
        "id": a.case_id,
        "number": case_number(a.case_id, now),
        "key": intake.idempotency_key,
        "hash": intake.request_hash,
        "source": intake.source,
        "category": a.category,
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
        "tier": a.tier,
        "unit": a.unit,
        "status": CaseStatus.REPORTED,
        **clock_params(a.clock),
        "actor": a.actor,
        "note": f"assigned by rule {found.rule}: {found.explanation}",
        "details": details | ({"flags": a.flags} if a.flags else {}),
    }


def store_photos(session: Session, case_id: int, uploads: list[PhotoUpload]) -> None:
    """Store a new case's photos (the reporter's, stage "before"), numbered from 1."""
    add_photos(session, case_id, uploads, BEFORE)




# Intake's statements (run by rows_of, with psycopg's parameters).
NEW_IDS = """SELECT ARRAY(SELECT nextval('cases_id_seq') FROM generate_series(1, %(n)s)) AS ids, now,
    to_regclass('cases_' || to_char(now AT TIME ZONE 'Asia/Shanghai', 'YYYY_MM')) IS NOT NULL AS month_ready
    FROM (SELECT clock_timestamp() AS now) t"""
# Keys are unique across every month in case_ids (cases itself is partitioned by month).
CASES_BY_KEY = """SELECT c.id, c.request_hash, k.idempotency_key FROM case_ids k JOIN cases c ON c.id = k.id
    WHERE k.idempotency_key = ANY(CAST(%(keys)s AS uuid[]))"""
# Many cases and their first history entries in one statement, from one JSON array of rows (see
# _case_row); a row whose key exists makes nothing (ON CONFLICT on case_ids' unique key, which holds
# every month's keys). Answers the ids inserted.
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
                k AS (
                  INSERT INTO case_ids (id, idempotency_key)
                  SELECT id, key FROM r ORDER BY key NULLS LAST
                  ON CONFLICT (idempotency_key) DO NOTHING
                  RETURNING id),
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
                  FROM r JOIN k USING (id)
                  RETURNING id)
                INSERT INTO case_history ({HISTORY_COLUMNS})
                SELECT r.id, %(now)s, r.actor, 'report', NULL, r.status, r.note, r.details, NULL, NULL,
                    NULL, r.tier, r.unit, NULL
                FROM r JOIN new USING (id)
                RETURNING case_id"""

