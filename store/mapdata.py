"""What the live map asks besides tiles: unit summaries for popups, search, view extents, party cells.

No personal data leaves here: staff and party cells are counted, never named; central households
are points with their unit, without the household's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.lifecycle import OPEN_STATUSES
from store.units import unit_detail, valid_at_sql

CURRENT = valid_at_sql("v", None)
SEARCH_LIMIT = 10
Bounds = tuple[float, float, float, float]


def _bounds(row: Any) -> Bounds | None:
    if row is None or row.minx is None:
        return None
    return (row.minx, row.miny, row.maxx, row.maxy)


EXTENT_SQL = """SELECT ST_XMin(e) AS minx, ST_YMin(e) AS miny, ST_XMax(e) AS maxx, ST_YMax(e) AS maxy
                FROM (SELECT ST_Extent(v.geom) AS e FROM unit_versions v JOIN units u USING (code)
                      WHERE {where}) s"""


def unit_bounds(session: Session, code: str) -> Bounds | None:
    """Extent of a current unit (storage lon/lat), or None if there is no such unit."""
    sql = EXTENT_SQL.format(where=f"v.code = :code AND {CURRENT}")
    return _bounds(session.execute(text(sql), {"code": code}).one_or_none())


def codes_bounds(session: Session, codes: list[str]) -> Bounds | None:
    """Extent of several current units."""
    sql = EXTENT_SQL.format(where=f"v.code = ANY(:codes) AND {CURRENT}")
    return _bounds(session.execute(text(sql), {"codes": codes}).one_or_none())


def all_bounds(session: Session) -> Bounds | None:
    """Extent of every current top-level unit (the whole map)."""
    sql = EXTENT_SQL.format(where=f"u.parent_code IS NULL AND {CURRENT}")
    return _bounds(session.execute(text(sql)).one_or_none())


def top_units(session: Session) -> list[str]:
    """Codes of the current units without a parent (normally the one county)."""
    sql = f"""SELECT v.code FROM unit_versions v JOIN units u USING (code)
              WHERE u.parent_code IS NULL AND {CURRENT}"""
    return list(session.execute(text(sql)).scalars())


def stored_levels(session: Session, levels: list[str]) -> set[str]:
    """Those of `levels` of which some unit is stored (a county deployment has no province, no city).
    One EXISTS a level, not DISTINCT over every unit: a level stored is found at its first row."""
    sql = "SELECT l FROM unnest(CAST(:levels AS text[])) l WHERE EXISTS (SELECT 1 FROM units WHERE level = l)"
    return set(session.execute(text(sql), {"levels": levels}).scalars())


def grid_neighbourhood(session: Session, grid: str) -> list[str]:
    """A grid and every current grid touching or overlapping it, by code (the grid first)."""
    sql = """SELECT n.code FROM unit_versions me
              JOIN unit_versions n ON n.geom && me.geom AND ST_Intersects(n.geom, me.geom)
              JOIN units u ON u.code = n.code
              WHERE me.code = :grid AND me.valid_to IS NULL AND n.valid_to IS NULL AND u.level = 'grid'
              ORDER BY n.code <> :grid, n.code"""
    return list(session.execute(text(sql), {"grid": grid}).scalars())


def case_counts(session: Session, code: str) -> tuple[int, int]:
    """(open, overdue) cases of a unit and everything below it."""
    row = session.execute(
        text(
            """SELECT count(*) AS open, count(*) FILTER (WHERE stage_due_at < now()) AS overdue
               FROM cases WHERE status = ANY(:open) AND (grid_code LIKE :prefix OR unit_code LIKE :prefix)"""
        ),
        {"open": OPEN_STATUSES, "prefix": code + "%"},
    ).one()
    return row.open, row.overdue


def unit_summary(session: Session, code: str) -> dict[str, Any] | None:
    """What a unit's popup shows: names, parent chain, counts of staff, party cells and open cases."""
    detail = unit_detail(session, code)
    if detail is None:
        return None
    u = detail.unit
    open_cases, overdue = case_counts(session, code)
    return {
        "code": u.code, "level": u.level, "name": u.name, "kind": u.kind, "special_type": u.special_type,
        "households": u.households, "population": u.population, "version": u.version,
        "parents": [q for q in detail.parents if q["code"] != code],
        "children_count": detail.children_count,
        "staff_counts": detail.staff_counts,
        "party_cell_counts": detail.party_cell_counts,
        "open_cases": open_cases,
        "overdue_cases": overdue,
    }


def search_units(session: Session, q: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Current units whose code starts with `q` (digits) or whose name contains it; with extents."""
    q = q.strip()
    if q.isdigit():
        where, params = "v.code LIKE :q", {"q": q + "%"}
    else:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, params = "v.name ILIKE :q", {"q": f"%{escaped}%"}
    rows = session.execute(
        text(
            f"""SELECT v.code, v.name, u.level, ST_XMin(b) AS minx, ST_YMin(b) AS miny,
                       ST_XMax(b) AS maxx, ST_YMax(b) AS maxy
                FROM unit_versions v JOIN units u USING (code)
                CROSS JOIN LATERAL (SELECT ST_Envelope(v.geom) AS b) e
                WHERE {where} AND {CURRENT}
                ORDER BY length(v.code), v.code LIMIT :limit"""
        ),
        {**params, "limit": limit},
    )
    return [
        {"code": r.code, "name": r.name, "level": r.level, "bbox": [r.minx, r.miny, r.maxx, r.maxy]}
        for r in rows
    ]


@dataclass(frozen=True)
class PartyPoint:
    """A central household where it is, or the other party cells of a unit counted at a point of it."""

    kind: str  # "central_household" or "organisation"
    unit_code: str
    lon: float
    lat: float
    counts: dict[str, int] | None = None


def party_points(
    session: Session, *, unit: str | None = None, codes: list[str] | None = None
) -> list[PartyPoint]:
    """Party cells as points: central households where they are, the others counted at their unit."""
    if codes is not None:
        cond, params = "p.unit_code = ANY(:codes)", {"codes": codes}
    elif unit is not None:
        cond, params = "p.unit_code LIKE :prefix", {"prefix": unit + "%"}
    else:
        cond, params = "true", {}
    households = session.execute(
        text(
            f"""SELECT p.unit_code, ST_X(p.location) AS lon, ST_Y(p.location) AS lat FROM party_cells p
                WHERE p.kind = 'central_household' AND {cond}"""
        ),
        params,
    )
    organisations = session.execute(
        text(
            f"""SELECT p.unit_code, jsonb_object_agg(p.kind, p.n) AS counts,
                       ST_X(s.pt) AS lon, ST_Y(s.pt) AS lat
                FROM (SELECT unit_code, kind, count(*) AS n FROM party_cells p
                      WHERE p.kind <> 'central_household' AND {cond} GROUP BY unit_code, kind) p
                JOIN unit_versions v ON v.code = p.unit_code AND {CURRENT}
                CROSS JOIN LATERAL (SELECT ST_PointOnSurface(v.geom) AS pt) s
                GROUP BY p.unit_code, s.pt"""
        ),
        params,
    )
    points = [PartyPoint("central_household", r.unit_code, r.lon, r.lat) for r in households]
    return points + [PartyPoint("organisation", r.unit_code, r.lon, r.lat, r.counts) for r in organisations]
