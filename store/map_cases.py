"""The live map's open cases: the few columns a marker needs, and clusters of them per zoom.

Apart from store.cases.list_cases on purpose: the list reads every column (two JSON documents a
row, the reporter and the assignment) and builds the whole summary, which made 5,000 open cases of
a province take seconds; a marker needs a dozen plain columns (benchmarks/bench_first_view.py).
Which cases a user may see is store.case_filters.filter_sql, as for every list of cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from store.case_filters import CaseFilter, counted_page, filter_sql
from store.cases import db_now

EARTH_RADIUS_M = 6378137  # of Web Mercator's (EPSG:3857) sphere
EARTH_CIRCUMFERENCE_M = 2 * math.pi * EARTH_RADIUS_M

POINT_COLUMNS = """c.id, c.number, c.status, c.category, c.description, c.address, c.urgent, c.grid_code,
    c.stage, c.stage_started_at, c.stage_yellow_at, c.stage_due_at, c.reported_at,
    ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat"""

# The light of store.case_history.clock_of(row).light(now) (cases.model.StageClock.light), in SQL
# as store.case_filters writes its `light=` filter: counted per cluster without reading each case.
LIGHT_SQL = """CASE WHEN c.stage_due_at IS NULL OR c.stage_yellow_at IS NULL THEN 'none'
                    WHEN :now < c.stage_yellow_at THEN 'green'
                    WHEN :now <= c.stage_due_at THEN 'yellow' ELSE 'red' END"""


def cell_size_m(zoom: int, cell_px: int) -> float:
    """The side of a square cell of `cell_px` screen pixels at a Leaflet zoom, in Web Mercator metres."""
    return EARTH_CIRCUMFERENCE_M / (256 * 2**zoom) * cell_px


def case_points(session: Session, f: CaseFilter) -> tuple[datetime, int, list[Any]]:
    """(the database's now, how many cases match, the rows of the `f.limit` most pressing: earliest
    due first) with POINT_COLUMNS."""
    now = db_now(session)
    total, rows = counted_page(session, f, now, POINT_COLUMNS, "c.stage_due_at NULLS LAST, c.id")
    return now, total, rows


def case_points_by_id(session: Session, ids: list[int]) -> list[Any]:
    """Rows of POINT_COLUMNS of these cases (a cluster of one is drawn as its case)."""
    if not ids:
        return []
    sql = f"SELECT {POINT_COLUMNS} FROM cases c WHERE c.id = ANY(:ids) ORDER BY c.id"
    return list(session.execute(text(sql), {"ids": ids}).all())


@dataclass(frozen=True)
class Cell:
    """The open cases of one square cell of the Web Mercator grid of a zoom."""

    ix: int
    iy: int
    count: int
    lon: float  # the mean position of its cases
    lat: float
    bbox: tuple[float, float, float, float]  # the cases' extent, lon/lat
    lights: dict[str, int]  # red, yellow, green, none
    statuses: dict[str, int]
    one_id: int | None  # the case, when the cell holds one


# Cases snapped to square cells in Web Mercator (what ST_SnapToGrid does; floor() gives the cell
# its integer address, stable while the map pans, so a poll updates the same cluster ids). The
# spherical Mercator formula, not ST_Transform: PostGIS declares ST_Transform costly, and its cost
# over 5,000 rows put the query over jit_above_cost — 0.4 s of JIT compiling for 10 ms of work.
CELLS_SQL = """
WITH v AS (
    SELECT c.id, c.status, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, {light} AS light
    FROM cases c WHERE {where}
), cells AS (
    SELECT floor({radius} * radians(lon) / :cell)::bigint AS ix,
           floor({radius} * ln(tan(pi() / 4 + radians(lat) / 2)) / :cell)::bigint AS iy,
           id, status, lon, lat, light
    FROM v
), by_status AS (
    SELECT ix, iy, jsonb_object_agg(status, n) AS statuses
    FROM (SELECT ix, iy, status, count(*) AS n FROM cells GROUP BY ix, iy, status) s GROUP BY ix, iy
), agg AS (
    SELECT ix, iy, count(*) AS n, avg(lon) AS lon, avg(lat) AS lat,
           min(lon) AS minx, min(lat) AS miny, max(lon) AS maxx, max(lat) AS maxy,
           count(*) FILTER (WHERE light = 'red') AS red, count(*) FILTER (WHERE light = 'yellow') AS yellow,
           count(*) FILTER (WHERE light = 'green') AS green, count(*) FILTER (WHERE light = 'none') AS none,
           min(id) AS one_id
    FROM cells GROUP BY ix, iy
)
SELECT agg.*, by_status.statuses FROM agg JOIN by_status USING (ix, iy) ORDER BY agg.n DESC, agg.ix, agg.iy
"""


def case_cells(session: Session, f: CaseFilter, cell_m: float) -> tuple[datetime, list[Cell]]:
    """(the database's now, the cells of side `cell_m` Web Mercator metres holding cases matching `f`)."""
    now = db_now(session)
    where, params = filter_sql(f)
    sql = CELLS_SQL.format(light=LIGHT_SQL, radius=EARTH_RADIUS_M, where=where)
    rows = session.execute(text(sql), {**params, "now": now, "cell": cell_m}).all()
    return now, [_cell(r) for r in rows]


def _cell(r: Any) -> Cell:
    lights = {"red": r.red, "yellow": r.yellow, "green": r.green, "none": r.none}
    one = r.one_id if r.n == 1 else None
    bbox = (r.minx, r.miny, r.maxx, r.maxy)
    return Cell(r.ix, r.iy, r.n, r.lon, r.lat, bbox, lights, dict(r.statuses), one)
