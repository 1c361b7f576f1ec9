"""The assignment rule of geo.assignment, applied inside PostGIS.

Lookups go through `unit_parts` (every version's polygon cut into pieces of at most 32 vertices
by a trigger), so a point is tested against a few small polygons found by the GiST index rather
than against whole community outlines. Bulk assignment against the current grids goes through the
stored grid raster instead (store.grid_raster): a GiST probe per point is what makes a plain
join slow.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
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
    unit_chain,
)
from geo.codes import CODE_LENGTH, Level, ancestor_codes
from geo.crs import METRES_PER_DEGREE_MIN, STORAGE_SRID, degrees_spanning
from store.geometry import from_wkb_array
from store.grid_raster import FAR, code_sql, current_raster
from store.units import units_at, valid_at_sql

if TYPE_CHECKING:
    from geo.lookup import GridIndex

# How many nearest pieces to rank by true distance: index order is in degrees, not metres.
_NEAREST_CANDIDATES = 16
_NEAREST = "nearest"  # marks the nearest-grid row in the answer of _locate_sql
# The units above the grid a point lies in, as the answer names them (top down).
ADMIN_LEVELS = (Level.PROVINCE, Level.CITY, Level.COUNTY, Level.STREET, Level.COMMUNITY)


# The point of a single lookup; a set-based one (store.locate_many) names a column instead.
_POINT = f"ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID})"


def _covering_sql(at: datetime | None) -> str:
    return f"""
        SELECT DISTINCT p.code, p.level, v.name, p.kind, v.version
        FROM unit_parts p JOIN unit_versions v ON v.id = p.version_id
        WHERE p.geom && {_POINT}
          AND ST_Intersects(p.geom, {_POINT})
          AND {valid_at_sql("p", "at" if at else None)}"""


def _nearest_sql(at: datetime | None, point: str = _POINT) -> str:
    # KNN on the pieces' index (degrees: a constant point on the right of <-> lets the index
    # order the scan), then rank those small pieces by distance on the spheroid.
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
    return answer_of(session, rows, tolerance_m=tolerance_m, at=at)


def answer_of(
    session: Session,
    rows: list,
    *,
    tolerance_m: float,
    at: datetime | None,
    parents: dict[str, UnitRef] | None = None,
) -> Assignment:
    """The answer for one point from its rows of _locate_sql (code, level, name, kind, version,
    distance_m); `parents` keeps the units looked up by name across many points."""
    hits = [r for r in rows if r.level != _NEAREST]
    near = next((r for r in rows if r.level == _NEAREST), None)
    by_level: dict[str, list] = {}
    for h in hits:
        by_level.setdefault(h.level, []).append(h)
    grids = [GridRef(h.code, h.name, h.kind, h.version) for h in by_level.get(Level.GRID, [])]
    admin = sorted(
        (h for lvl in ADMIN_LEVELS for h in by_level.get(lvl, [])),
        key=lambda h: len(h.code),
    )
    if grids:
        micro = [GridRef(h.code, h.name, h.kind, h.version) for h in by_level.get(Level.MICRO_GRID, [])]
        return assigned(grids, micro, lambda code: _chain(session, code, admin, at, parents), tolerance_m)

    units, overlapping = unit_chain([UnitRef(h.code, h.name, h.level) for h in admin])
    if near is not None and near.distance_m <= tolerance_m:
        grid = GridRef(near.code, near.name, near.kind, near.version)
        chain = _chain(session, grid.code, admin, at, parents)
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
    answer = Assignment(
        Status.UNASSIGNED, Rule.UNASSIGNED, None, None, units, nearest, overlapping=overlapping
    )
    return _explained(answer, tolerance_m)


def assigned(
    grids: list[GridRef],
    micro_grids: list[GridRef],
    chain: Callable[[str], list[UnitRef]],
    tolerance_m: float,
) -> Assignment:
    """The answer for a point that `grids` cover (and `micro_grids`); `chain` names a grid's parents.

    Shared by the SQL lookup and the in-memory one (store.locate_cache), so both answer alike.
    """
    grid, rule = choose(grids)
    micro = min((m for m in micro_grids if m.code.startswith(grid.code)), key=lambda m: m.code, default=None)
    units = [*chain(grid.code), UnitRef(grid.code, grid.name, "grid")]
    if micro is not None:
        units.append(UnitRef(micro.code, micro.name, "micro_grid"))
    answer = Assignment(Status.ASSIGNED, rule, grid, 0.0, units, None, micro, sorted(g.code for g in grids))
    return _explained(answer, tolerance_m)


def _chain(
    session: Session,
    grid_code: str,
    admin_hits: list,
    at: datetime | None,
    parents: dict[str, UnitRef] | None = None,
) -> list[UnitRef]:
    """The grid's parents from the province down (by code: responsibility follows the code)."""
    wanted = ancestor_codes(grid_code)
    known = {h.code: UnitRef(h.code, h.name, h.level) for h in admin_hits}
    # Regions above the county are optional: named when a covering one was hit, never looked up
    # (a county deployment has none, and one more query per point would be for nothing).
    missing = [c for c in wanted if c not in known and len(c) >= CODE_LENGTH[Level.COUNTY]]
    if parents is not None:
        known.update({c: parents[c] for c in missing if c in parents})
        missing = [c for c in missing if c not in known]
    if missing:  # the point lies a little outside a parent; name it anyway
        for code, unit in units_at(session, missing, at).items():
            known[code] = UnitRef(code, unit.name, unit.level)
            if parents is not None:
                parents[code] = known[code]
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


# The temporary tables of a bulk assignment: its result, then its working tables.
_BULK_TABLES = ("point_assignments", "pending_points", "uncovered_points")


def assign_points_table(
    session: Session,
    points_table: str,
    *,
    tolerance_m: float,
    at: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    pieces: bool = False,
) -> dict[str, int]:
    """Apply the rule to every row of a table (id bigint, geom Point 4490) inside PostGIS.

    Results go to the temporary table `point_assignments (id, status, grid_code, distance_m)`.
    Current grids are found through the stored grid raster (store.grid_raster, rebuilt first if
    the grids changed); grids as of a date, or current ones with `pieces` (a publish's few
    thousand cases: no rebuild of a province's raster for them), through a join of the
    subdivided pieces. Unassigned points get no nearest grid here (ask /locate for one point).
    """
    if not points_table.isidentifier():
        raise ValueError(f"not a table name: {points_table!r}")
    session.execute(text(f"DROP TABLE IF EXISTS {', '.join(_BULK_TABLES)}"))
    # Plans for million-row temporary tables: JIT compilation only adds a fifth of a second
    # to each statement, and the hash tables must fit in memory.
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    if at is None and not pieces:
        counts = _assign_by_raster(session, points_table, tolerance_m, progress)
    else:
        _assign_by_pieces(session, points_table, tolerance_m, at)
        rows = session.execute(text("SELECT status, count(*) FROM point_assignments GROUP BY status"))
        counts = {status: n for status, n in rows}
    return {status: n for status, n in counts.items() if n}


def _assign_by_raster(
    session: Session, points_table: str, tolerance_m: float, progress: Callable[[str], None] | None
) -> Counter[str]:
    """Current grids: each point's cell by arithmetic, exact tests only in edge and near cells.

    Returns the count of each status, counted as the answers are written (a count over the
    million written rows would cost a pass of its own).
    """
    raster = current_raster(session, tolerance_m=tolerance_m, progress=progress)
    layout = asdict(raster.cells)
    counts: Counter[str] = Counter()
    # Interior cells: the answer is the cell's grid. Two passes over the points (this one and
    # the next) cost less than one that keeps every point for both.
    grid_code = code_sql(f"({_ARRAY_SQL % 'grids'})[v + 1]")
    written = session.execute(
        text(
            f"""CREATE TEMP TABLE point_assignments AS
                SELECT id, 'assigned'::text AS status, {grid_code} AS grid_code, 0.0::float8 AS distance_m
                FROM ({_CELL_VALUES_SQL % points_table}) looked_up
                WHERE v >= 0"""
        ),
        layout,
    )
    counts["assigned"] += written.rowcount
    # The other points, with their cell's block (edge and near cells): the candidates to test.
    # Far cells and points off the raster have no block and no grid within the tolerance.
    session.execute(
        text(
            f"""CREATE TEMP TABLE pending_points AS
                SELECT id, h > 0 AS edge, ({_ARRAY_SQL % "blocks"})[1 - v : abs(h) - v] AS candidates,
                       CASE WHEN h IS NOT NULL THEN geom END AS geom
                FROM (
                    SELECT id, geom, v, CASE WHEN v < {FAR} THEN ({_ARRAY_SQL % "blocks"})[-v] END AS h
                    FROM ({_CELL_VALUES_SQL % points_table}) looked_up
                    WHERE v IS NULL OR v < 0
                    OFFSET 0
                ) pending"""
        ),
        layout,
    )
    session.execute(text("ANALYZE pending_points (edge)"))
    far = session.execute(
        text(
            """INSERT INTO point_assignments (id, status, grid_code, distance_m)
               SELECT id, 'unassigned', NULL, NULL FROM pending_points WHERE edge IS NULL"""
        )
    )
    counts["unassigned"] += far.rowcount
    # Edge cells: the first candidate (best first) whose pieces cover the point, written; hash
    # joins only (the planner likes a GiST probe per point here, ~50 µs each), and the lists
    # unnested in the select list (half the cost of a lateral function scan). The edge points
    # that no candidate covers (in a gap between grids) are set apart for a search by distance;
    # a hash anti-join finds them (sorting both sides costs more).
    session.execute(text("CREATE TEMP TABLE uncovered_points (id bigint, geom geometry)"))
    with _planner_without(session, "indexscan", "bitmapscan", "mergejoin"):
        hits, gaps = session.execute(
            text(
                """WITH hits AS (
                       INSERT INTO point_assignments (id, status, grid_code, distance_m)
                       SELECT DISTINCT ON (r.id) r.id, 'assigned', p.code::text, 0.0
                       FROM (SELECT id, geom, unnest(candidates) AS idx,
                                    generate_subscripts(candidates, 1) AS best
                             FROM pending_points WHERE edge) r
                       JOIN grid_raster_parts p ON p.idx = r.idx
                       WHERE ST_Intersects(p.geom, r.geom)
                       ORDER BY r.id, r.best
                       RETURNING id
                   ), gaps AS (
                       INSERT INTO uncovered_points
                       SELECT r.id, r.geom FROM pending_points r
                       WHERE r.edge AND NOT EXISTS (SELECT 1 FROM hits h WHERE h.id = r.id)
                       RETURNING id
                   )
                   SELECT (SELECT count(*) FROM hits), (SELECT count(*) FROM gaps)"""
            )
        ).one()
    counts["assigned"] += hits
    # Points in near cells: the nearest of the cell's grids within the tolerance, else none.
    # Hash joins again, then a distance in degrees that surely spans the tolerance (cheap), then
    # the distance on the spheroid for the pairs left.
    span = math.hypot(*degrees_spanning(tolerance_m, raster.max_abs_lat))
    distances = {
        "tolerance": tolerance_m,
        "span_deg": span,
        "tolerance_deg": tolerance_m / METRES_PER_DEGREE_MIN,
    }
    near_pairs = """
        SELECT r.id, r.geom AS point, p.idx, p.code, p.geog
        FROM (SELECT id, geom, unnest(candidates) AS idx FROM pending_points WHERE NOT edge) r
        JOIN grid_raster_parts p ON p.idx = r.idx
        WHERE ST_DWithin(p.geom, r.geom, :span_deg)"""
    with _planner_without(session, "indexscan", "bitmapscan"):
        near = session.execute(
            text(_snapped_sql("SELECT id FROM pending_points WHERE NOT edge", near_pairs)), distances
        )
    counts.update({status: n for status, n in near})
    # The points in gaps: the pieces within the tolerance, through their index.
    if gaps:
        session.execute(text("ANALYZE uncovered_points"))
        gap_pairs = """
            SELECT r.id, r.geom AS point, p.idx, p.code, p.geog
            FROM uncovered_points r
            JOIN grid_raster_parts p ON ST_DWithin(p.geom, r.geom, :tolerance_deg)"""
        missed = session.execute(text(_snapped_sql("SELECT id FROM uncovered_points", gap_pairs)), distances)
        counts.update({status: n for status, n in missed})
    return counts


def _snapped_sql(points: str, pairs: str) -> str:
    """Write the answers of points no grid covers: the nearest of their (point, grid piece) pairs
    within the tolerance, ties to the lowest code, else unassigned; returns the counted statuses.

    Spheroid distances are measured in grid order: consecutive calls then share a polygon, which
    measured a third faster than point order.
    """
    return f"""
        WITH written AS (
            INSERT INTO point_assignments (id, status, grid_code, distance_m)
            SELECT r.id, CASE WHEN s.code IS NULL THEN 'unassigned' ELSE 'snapped' END, s.code, s.distance_m
            FROM ({points}) r
            LEFT JOIN (
                SELECT DISTINCT ON (id) id, code, distance_m
                FROM (
                    SELECT id, code::text AS code, ST_Distance(geog, point::geography) AS distance_m
                    FROM ({pairs} ORDER BY p.idx OFFSET 0) pair
                    OFFSET 0  -- one distance per pair (inlined, the filter and the sort each measure)
                ) measured
                WHERE distance_m <= :tolerance
                ORDER BY id, distance_m, code
            ) s USING (id)
            RETURNING status
        )
        SELECT status, count(*) FROM written GROUP BY status"""


# A whole array of the stored raster (store.grid_raster), as a scalar subquery: PostgreSQL
# evaluates it once per statement. Concatenating nothing detoasts it once, so that each use is
# an offset into memory rather than another detoasting.
_ARRAY_SQL = "SELECT %s || '{}' FROM grid_raster_cells"

# Each point of a table (id, geom) with its cell's value v (NULL off the raster). OFFSET 0 keeps
# each level's arithmetic from being inlined, and repeated, in the next.
_CELL_VALUES_SQL = f"""
    SELECT id, geom,
           CASE WHEN u >= 0 AND u < :ncols AND w >= 0 AND w < :nrows  -- and not NaN
                THEN ({_ARRAY_SQL % "cells"})[1 + floor(w)::int * :ncols + floor(u)::int] END AS v
    FROM (SELECT id, geom, (ST_X(geom) - :x0) / :dx AS u, (:y0 - ST_Y(geom)) / :dy AS w
          FROM %s OFFSET 0) xy
    OFFSET 0"""


# The extent of a table's points, once per statement: only the pieces in it are worth a probe.
_EXTENT_SQL = f"SELECT ST_SetSRID(ST_Extent(geom)::geometry, {STORAGE_SRID}) FROM %s"


@contextmanager
def _planner_without(session: Session, *methods: str) -> Iterator[None]:
    """Keep the planner from the given plan methods (enable_*) for the statements inside."""
    for method in methods:
        session.execute(text(f"SET LOCAL enable_{method} = off"))
    yield
    for method in methods:
        session.execute(text(f"RESET enable_{method}"))


def _assign_by_pieces(session: Session, points_table: str, tolerance_m: float, at: datetime | None) -> None:
    """Grids as of a date (or current ones): the pieces drive a join probing a GiST index on the points."""
    valid = valid_at_sql("p", "at" if at else None)
    params = {"at": at, "tolerance": tolerance_m}
    # Drive the join from the grid pieces, probing an index on the points: there are far fewer
    # pieces than points, and each probe (not each match) is what costs in a GiST join.
    session.execute(
        text(f"CREATE INDEX IF NOT EXISTS {points_table}_geom_idx ON {points_table} USING gist (geom)")
    )
    session.execute(text(f"ANALYZE {points_table}"))
    session.execute(
        text(
            f"""CREATE TEMP TABLE point_assignments AS
                SELECT DISTINCT ON (pt.id) pt.id, 'assigned'::text AS status, p.code::text AS grid_code,
                       0.0::float8 AS distance_m
                FROM unit_parts p
                JOIN LATERAL (
                    SELECT pt.id FROM {points_table} pt
                    WHERE pt.geom && p.geom AND ST_Intersects(p.geom, pt.geom)
                    OFFSET 0  -- keep the probe per piece (no flattening into a points-driven join)
                ) pt ON true
                WHERE p.level = 'grid' AND {valid} AND p.geom && ({_EXTENT_SQL % points_table})
                ORDER BY pt.id, {_precedence_sql("p.kind")}, p.code"""
        ),
        params,
    )
    # The few points no grid covers, set apart so that the planner sees how few they are.
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
    params["tolerance_deg"] = tolerance_m / METRES_PER_DEGREE_MIN
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
