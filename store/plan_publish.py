"""Writing a published plan, and what its impact reads: locks, unit versions, the plan's record,
open cases near the changed areas, party cells and staff.

SQL and row mapping only: what to write comes from geo.plan_publication, in the order
services.plans gives. A publish is one transaction of the caller's: new versions, closed versions,
retired codes, reassigned cases and their history, re-linked staff and party cells and the plan's
status all commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import Row, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases.lifecycle import FINISHED_STATUSES
from geo.plan_publication import Publication
from geo.plans import PlanConflict
from store import units as unit_store
from store.geometry import geom_sql, to_wkb


def lock_unit(session: Session, code: str) -> None:
    """Lock a unit's current version: publishes below one unit wait for each other."""
    session.execute(
        text("SELECT id FROM unit_versions WHERE code = :code AND valid_to IS NULL FOR UPDATE"),
        {"code": code},
    )


def lock_versions(session: Session, codes: set[str]) -> dict[str, int]:
    """Lock the current versions of `codes` in code order (no deadlocks between publishes); their numbers."""
    rows = session.execute(
        text(
            """SELECT code, version FROM unit_versions
               WHERE code = ANY(:codes) AND valid_to IS NULL ORDER BY code FOR UPDATE"""
        ),
        {"codes": sorted(codes)},
    ).all()
    return dict(rows)


def write_units(
    session: Session, plan_id: int, publication: Publication, at: datetime
) -> tuple[list[str], list[str], list[str]]:
    """New versions from `at` for created and changed units, retired ones closed (their three lists)."""
    try:
        with session.begin_nested():
            summary = unit_store.write_units(
                session, publication.write, valid_from=at, warnings=publication.warnings
            )
            retired = unit_store.retire_units(session, set(publication.retire), at=at)
    except IntegrityError as exc:
        # A code allocated here was created by another transaction that committed meanwhile.
        raise PlanConflict(
            f"plan {plan_id} conflicts: a unit it creates was created meanwhile ({exc.orig})", []
        ) from None
    return summary.created, summary.versioned, retired


def record_changes(
    session: Session, plan_id: int, rows: list[dict[str, Any]], retired: list[str], at: datetime
) -> None:
    """The plan's record of what it changed (plan_changes), and its retired codes (never reused)."""
    if rows:
        session.execute(
            text(
                """INSERT INTO plan_changes (plan_id, code, change, old_version, new_version)
                   VALUES (:plan, :code, :change, :old, :new)"""
            ),
            [{**r, "plan": plan_id} for r in rows],
        )
    if retired:
        session.execute(
            text("INSERT INTO retired_codes (code, retired_at, plan_id) VALUES (:code, :at, :plan)"),
            [{"code": c, "at": at, "plan": plan_id} for c in retired],
        )


def mark_published(session: Session, plan_id: int, at: datetime, actor: str) -> None:
    """The plan is published at `at` by `actor`."""
    session.execute(
        text(
            "UPDATE plans SET status = 'published', published_at = :at, published_by = :actor WHERE id = :id"
        ),
        {"at": at, "actor": actor, "id": plan_id},
    )


# The open cases a publish must assign again (store.case_redraw collects them): on a unit it
# touches, or inside an area it changes.
OPEN_NEAR = f"""status <> ALL(:finished)
    AND (grid_code = ANY(:affected)
         OR (CAST(:wkb AS bytea) IS NOT NULL AND ST_Intersects(geom, {geom_sql("wkb")})))"""


def open_near_params(codes: list[str], area: shapely.Geometry | None) -> dict[str, Any]:
    """The parameters of OPEN_NEAR."""
    wkb = to_wkb(area) if area is not None else None
    return {"finished": FINISHED_STATUSES, "affected": codes, "wkb": wkb}


def people_of(session: Session, codes: list[str], prefix: str) -> tuple[list[Row], list[Row]]:
    """Party cells (id, kind, unit_code, lon, lat) and staff (id, role, unit_code) of `codes`."""
    cells = session.execute(
        text(
            """SELECT id, kind, unit_code, ST_X(location) AS lon, ST_Y(location) AS lat
               FROM party_cells WHERE unit_code = ANY(:codes) OR unit_code LIKE :prefix ORDER BY id"""
        ),
        {"codes": codes, "prefix": prefix + "%"},
    ).all()
    staff = session.execute(
        text("SELECT id, role, unit_code FROM staff WHERE unit_code = ANY(:codes) ORDER BY id"),
        {"codes": codes},
    ).all()
    return cells, staff


def relink_people(session: Session, cells: list[dict[str, Any]], staff: list[dict[str, Any]]) -> None:
    """Move party cells and staff to their new units (those left without one stay, and are reported)."""
    cell_rows = [{"id": m["id"], "to": m["to"]} for m in cells if m["to"]]
    staff_rows = [{"id": m["id"], "to": m["to"]} for m in staff if m["to"]]
    if cell_rows:
        session.execute(text("UPDATE party_cells SET unit_code = :to WHERE id = :id"), cell_rows)
    if staff_rows:
        session.execute(text("UPDATE staff SET unit_code = :to WHERE id = :id"), staff_rows)


def open_cases_by_grid(session: Session, codes: list[str]) -> dict[str, int]:
    """Open cases per grid of `codes`."""
    rows = session.execute(
        text(
            """SELECT grid_code, count(*) AS n FROM cases
               WHERE grid_code = ANY(:codes) AND status <> ALL(:finished) GROUP BY grid_code"""
        ),
        {"codes": codes, "finished": FINISHED_STATUSES},
    ).all()
    return {r.grid_code: r.n for r in rows}


def people_counts(session: Session, codes: list[str]) -> dict[tuple[str, str], int]:
    """Party cells and staff per unit of `codes`, keyed ("party_cells" | "staff", code)."""
    rows = session.execute(
        text(
            """SELECT 'party_cells' AS what, unit_code, count(*) AS n FROM party_cells
               WHERE unit_code = ANY(:codes) GROUP BY unit_code
               UNION ALL
               SELECT 'staff', unit_code, count(*) FROM staff
               WHERE unit_code = ANY(:codes) GROUP BY unit_code"""
        ),
        {"codes": codes},
    ).all()
    return {(r.what, r.unit_code): r.n for r in rows}
