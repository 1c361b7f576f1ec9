"""Plans over time in the store: what a published plan changed, units' changes between two dates,
and the grids a case was assigned to after each redraw."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo import geojson
from geo.codes import level_of
from store import cases as case_store
from store import units as unit_store
from store.geometry import from_wkb


def published_changes(session: Session, plan_id: int) -> list[dict[str, Any]]:
    """What a published plan created, changed and retired, with the versions, by code."""
    rows = session.execute(
        text(
            "SELECT code, change, old_version, new_version FROM plan_changes WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    ).all()
    return [dict(r._mapping) for r in rows]


def unit_diff(session: Session, code: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Units below (and including) `code` created, retired or changed between two dates, with their areas."""
    changed_area = (
        "CASE WHEN a.code IS NULL THEN b.geom WHEN b.code IS NULL THEN a.geom"
        " ELSE ST_SymDifference(a.geom, b.geom) END"
    )
    rows = session.execute(
        text(
            f"""WITH a AS (SELECT code, version, name, geom FROM unit_versions v
                           WHERE code LIKE :prefix AND {unit_store.valid_at_sql("v", "start")}),
                     b AS (SELECT code, version, name, geom FROM unit_versions v
                           WHERE code LIKE :prefix AND {unit_store.valid_at_sql("v", "end")})
                SELECT coalesce(a.code, b.code) AS code, a.version AS old_version, b.version AS new_version,
                       coalesce(b.name, a.name) AS name,
                       CASE WHEN a.code IS NULL THEN 'created' WHEN b.code IS NULL THEN 'retired'
                            ELSE 'changed' END AS change,
                       ST_AsBinary({changed_area}) AS wkb,
                       ST_Area(({changed_area})::geography) AS area_m2
                FROM a FULL JOIN b USING (code)
                WHERE a.version IS DISTINCT FROM b.version
                ORDER BY 1"""
        ),
        {"prefix": code + "%", "start": start, "end": end},
    ).all()
    features = [
        geojson.feature(
            from_wkb(r.wkb),
            {
                "code": r.code,
                "level": str(level_of(r.code)),
                "name": r.name,
                "change": r.change,
                "old_version": r.old_version,
                "new_version": r.new_version,
                "changed_area_m2": round(r.area_m2, 1),
                "plan": _plan_of_change(session, r.code, r.new_version, r.change),
            },
            id=r.code,
        )
        for r in rows
    ]
    return geojson.feature_collection(features, unit=code, **{"from": start, "to": end})


def _plan_of_change(session: Session, code: str, new_version: int | None, change: str) -> int | None:
    row = session.execute(
        text(
            """SELECT plan_id FROM plan_changes
               WHERE code = :code AND new_version IS NOT DISTINCT FROM :v AND change = :change
               ORDER BY id DESC LIMIT 1"""
        ),
        {"code": code, "v": new_version, "change": change},
    ).first()
    return row.plan_id if row else None


def case_assignments(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The grid (and version) a case was assigned to over time: at intake, then after each redraw."""
    case = session.execute(
        text("SELECT id, grid_code, grid_version, reported_at FROM cases WHERE id = :id"), {"id": case_id}
    ).first()
    if case is None:
        raise case_store.CaseNotFound(f"no case {case_id}")
    redraws = session.execute(
        text(
            """SELECT at, actor, details FROM case_history
               WHERE case_id = :id AND action = 'redraw' ORDER BY id"""
        ),
        {"id": case_id},
    ).all()
    first = redraws[0].details["from"] if redraws else {"grid": case.grid_code, "version": case.grid_version}
    out = [
        {
            "from": case.reported_at,
            "grid": first["grid"],
            "version": first["version"],
            "by": "intake",
            "plan": None,
        }
    ]
    for r in redraws:
        out.append(
            {
                "from": r.at,
                "grid": r.details["to"]["grid"],
                "version": r.details["to"]["version"],
                "by": r.actor,
                "plan": r.details.get("plan_id"),
            }
        )
    for earlier, later in itertools.pairwise(out):
        earlier["to"] = later["from"]
    out[-1]["to"] = None
    return out
