"""The assignment rule of geo.assignment, applied inside PostGIS.

Lookups go through `unit_parts` (every version's polygon cut into pieces of at most 32 vertices
by a trigger), so a point is tested against a few small polygons found by the GiST index rather
than against whole community outlines.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.assignment import (
    KIND_PRECEDENCE,
    Assignment,
    GridRef,
    Nearest,
    Rule,
    Status,
    UnitRef,
    choose,
    explain,
)
from geo.codes import Level, ancestor_codes
from geo.crs import STORAGE_SRID
from geo.db.geometry import from_wkb_array
from geo.db.units import units_at, valid_at_sql

if TYPE_CHECKING:
    from geo.lookup import GridIndex

# How many nearest pieces to rank by true distance: index order is in degrees, not metres.
_NEAREST_CANDIDATES = 16
_NEAREST = "nearest"  # marks the nearest-grid row in the answer of _locate_sql


def _covering_sql(at: datetime | None) -> str:
    return f"""
        SELECT DISTINCT p.code, p.level, v.name, p.kind, v.version
        FROM unit_parts p JOIN unit_versions v ON v.id = p.version_id
        WHERE p.geom && ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID})
          AND ST_Intersects(p.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID}))
          AND {valid_at_sql("p", "at" if at else None)}"""


def _nearest_sql(at: datetime | None) -> str:
    # KNN on the pieces' index (degrees: a constant point on the right of <-> lets the index
    # order the scan), then rank those small pieces by distance on the spheroid.
    point = f"ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID})"
    return f"""
        SELECT p.code, v.name, p.kind, v.version,
               min(ST_Distance(p.geom::geography, {point}::geography)) AS distance_m
        FROM (SELECT p.version_id, p.code, p.kind, p.geom FROM unit_parts p
              WHERE p.level = 'grid' AND {valid_at_sql("p", "at" if at else None)}
              ORDER BY p.geom <-> {point}
              LIMIT {_NEAREST_CANDIDATES}) p
        JOIN unit_versions v ON v.id = p.version_id
        GROUP BY p.code, v.name, p.kind, v.version
        ORDER BY distance_m, p.code
        LIMIT 1"""


def _locate_sql(at: datetime | None) -> str:
    # One round trip: the covering units, and the nearest grid only when no grid covers the
    # point (the NOT EXISTS is a one-time filter: the nearest search does not run otherwise).
    return f"""
        WITH hits AS ({_covering_sql(at)})
        SELECT code, level, name, kind, version, NULL::float8 AS distance_m FROM hits
        UNION ALL
        SELECT code, '{_NEAREST}', name, kind, version, distance_m FROM ({_nearest_sql(at)}) n
        WHERE NOT EXISTS (SELECT 1 FROM hits WHERE level = 'grid')"""


def locate(
    session: Session, lon: float, lat: float, *, tolerance_m: float, at: datetime | None = None
) -> Assignment:
    """Assign one storage lon/lat to its responsible grid, as of `at` (default: now)."""
    params = {"lon": lon, "lat": lat, "at": at}
    rows = session.execute(text(_locate_sql(at)), params).all()
    hits = [r for r in rows if r.level != _NEAREST]
    near = next((r for r in rows if r.level == _NEAREST), None)
    by_level: dict[str, list] = {}
    for h in hits:
        by_level.setdefault(h.level, []).append(h)
    grids = [GridRef(h.code, h.name, h.kind, h.version) for h in by_level.get(Level.GRID, [])]
    admin = sorted(
        (h for lvl in (Level.COUNTY, Level.STREET, Level.COMMUNITY) for h in by_level.get(lvl, [])),
        key=lambda h: len(h.code),
    )
    if grids:
        micro = [GridRef(h.code, h.name, h.kind, h.version) for h in by_level.get(Level.MICRO_GRID, [])]
        return assigned(grids, micro, lambda code: _chain(session, code, admin, at), tolerance_m)

    units = [UnitRef(h.code, h.name, h.level) for h in admin]
    if near is not None and near.distance_m <= tolerance_m:
        grid = GridRef(near.code, near.name, near.kind, near.version)
        chain = _chain(session, grid.code, admin, at)
        answer = Assignment(
            Status.SNAPPED,
            Rule.SNAPPED,
            grid,
            float(near.distance_m),
            [*chain, UnitRef(grid.code, grid.name, "grid")],
            Nearest(near.code, float(near.distance_m)),
        )
        return _explained(answer, tolerance_m)
    nearest = Nearest(near.code, float(near.distance_m)) if near is not None else None
    return _explained(Assignment(Status.UNASSIGNED, Rule.UNASSIGNED, None, None, units, nearest), tolerance_m)


def assigned(
    grids: list[GridRef],
    micro_grids: list[GridRef],
    chain: Callable[[str], list[UnitRef]],
    tolerance_m: float,
) -> Assignment:
    """The answer for a point that `grids` cover (and `micro_grids`); `chain` names a grid's parents.

    Shared by the SQL lookup and the in-memory one (geo.db.locate_cache), so both answer alike.
    """
    grid, rule = choose(grids)
    micro = min((m for m in micro_grids if m.code.startswith(grid.code)), key=lambda m: m.code, default=None)
    units = [*chain(grid.code), UnitRef(grid.code, grid.name, "grid")]
    if micro is not None:
        units.append(UnitRef(micro.code, micro.name, "micro_grid"))
    answer = Assignment(Status.ASSIGNED, rule, grid, 0.0, units, None, micro, sorted(g.code for g in grids))
    return _explained(answer, tolerance_m)


def _chain(session: Session, grid_code: str, admin_hits: list, at: datetime | None) -> list[UnitRef]:
    """The grid's parents from the county down (by code: responsibility follows the code)."""
    wanted = ancestor_codes(grid_code)
    known = {h.code: UnitRef(h.code, h.name, h.level) for h in admin_hits}
    missing = [c for c in wanted if c not in known]
    if missing:  # the point lies a little outside a parent; name it anyway
        for code, unit in units_at(session, missing, at).items():
            known[code] = UnitRef(code, unit.name, unit.level)
    return [known[c] for c in wanted if c in known]


def _explained(answer: Assignment, tolerance_m: float) -> Assignment:
    return Assignment(**{**answer.__dict__, "explanation": explain(answer, tolerance_m)})


def load_grid_index(session: Session, *, tolerance_m: float, at: datetime | None = None) -> GridIndex:
    """An in-process index of the current (or dated) grids and micro-grids, for batch assignment."""
    from geo.lookup import GridIndex  # numpy/rasterio machinery only batch work needs

    rows = session.execute(
        text(
            f"""SELECT v.code, u.level, v.kind, ST_AsBinary(v.geom) AS wkb
                FROM unit_versions v JOIN units u USING (code)
                WHERE u.level IN ('grid', 'micro_grid') AND {valid_at_sql("v", "at" if at else None)}
                ORDER BY v.code"""
        ),
        {"at": at},
    ).all()
    grids = [r for r in rows if r.level == Level.GRID]
    micro = [r for r in rows if r.level == Level.MICRO_GRID]
    return GridIndex(
        [r.code for r in grids],
        [r.kind for r in grids],
        from_wkb_array([r.wkb for r in grids]),
        micro_codes=[r.code for r in micro],
        micro_geometries=from_wkb_array([r.wkb for r in micro]) if micro else (),
        snap_tolerance_m=tolerance_m,
    )


def _precedence_sql(kind_column: str) -> str:
    """SQL for grid_precedence's first key, generated from the one table in geo.assignment."""
    whens = " ".join(f"WHEN '{kind}' THEN {rank}" for kind, rank in KIND_PRECEDENCE.items())
    return f"CASE {kind_column} {whens} ELSE 1 END"


def assign_points_table(
    session: Session, points_table: str, *, tolerance_m: float, at: datetime | None = None
) -> dict[str, int]:
    """Apply the rule to every row of a table (id bigint, geom Point 4490) inside PostGIS.

    Results go to the temporary table `point_assignments (id, status, grid_code, distance_m)`.
    Covered points are matched through the subdivided pieces in one set-based join, snapped ones
    in a second; unassigned points get no nearest grid here (ask /locate for one point).
    """
    if not points_table.isidentifier():
        raise ValueError(f"not a table name: {points_table!r}")
    valid = valid_at_sql("p", "at" if at else None)
    params = {"at": at, "tolerance": tolerance_m}
    session.execute(text("DROP TABLE IF EXISTS point_assignments"))
    # Drive the join from the grid pieces, probing an index on the points: there are far fewer
    # pieces than points, and each probe (not each match) is what costs in a GiST join.
    session.execute(
        text(f"CREATE INDEX IF NOT EXISTS {points_table}_geom_idx ON {points_table} USING gist (geom)")
    )
    session.execute(text(f"ANALYZE {points_table}"))
    session.execute(
        text(
            f"""CREATE TEMP TABLE point_assignments AS
                SELECT DISTINCT ON (pt.id) pt.id, 'assigned'::text AS status, p.code AS grid_code,
                       0.0::float8 AS distance_m
                FROM unit_parts p
                JOIN LATERAL (
                    SELECT pt.id FROM {points_table} pt
                    WHERE pt.geom && p.geom AND ST_Intersects(p.geom, pt.geom)
                    OFFSET 0  -- keep the probe per piece (no flattening into a points-driven join)
                ) pt ON true
                WHERE p.level = 'grid' AND {valid}
                ORDER BY pt.id, {_precedence_sql("p.kind")}, p.code"""
        ),
        params,
    )
    # The few points no grid covers, set apart so that the planner sees how few they are.
    session.execute(text("DROP TABLE IF EXISTS uncovered_points"))
    session.execute(
        text(
            f"""CREATE TEMP TABLE uncovered_points AS
                SELECT pt.id, pt.geom FROM {points_table} pt
                WHERE NOT EXISTS (SELECT 1 FROM point_assignments a WHERE a.id = pt.id);
                CREATE INDEX ON uncovered_points USING gist (geom);
                ANALYZE uncovered_points"""
        )
    )
    # Snapping: a join within a box that surely contains the tolerance (degrees of longitude
    # shrink with latitude; 1° ≥ 60 km up to 57°N), then the exact spheroid distance.
    params["tolerance_deg"] = tolerance_m / 60_000
    session.execute(
        text(
            f"""INSERT INTO point_assignments (id, status, grid_code, distance_m)
                SELECT DISTINCT ON (u.id) u.id, 'snapped', p.code,
                       ST_Distance(p.geom::geography, u.geom::geography) AS distance_m
                FROM uncovered_points u
                JOIN unit_parts p ON ST_DWithin(p.geom, u.geom, :tolerance_deg)
                WHERE p.level = 'grid' AND {valid}
                  AND ST_DWithin(p.geom::geography, u.geom::geography, :tolerance)
                ORDER BY u.id, distance_m, p.code"""
        ),
        params,
    )
    session.execute(
        text(
            """INSERT INTO point_assignments (id, status, grid_code, distance_m)
               SELECT u.id, 'unassigned', NULL, NULL FROM uncovered_points u
               WHERE NOT EXISTS (SELECT 1 FROM point_assignments a WHERE a.id = u.id)"""
        )
    )
    counts = session.execute(text("SELECT status, count(*) FROM point_assignments GROUP BY status")).all()
    return {status: n for status, n in counts}
