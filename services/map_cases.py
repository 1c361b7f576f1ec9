"""The live map's open cases as GeoJSON: every case of a view, or by box and zoom, clustered where many.

A province holds thousands of open cases: drawn one by one at the province's zoom they are 2 MB
of JSON and a blur of markers. With a box and a zoom, the server counts the cases of the box in
square cells of 64 screen pixels at that zoom (store.map_cases: a grid in Web Mercator, done by
PostGIS) and answers a cluster per cell holding two or more — its count, lights and statuses, its
cases' mean position and extent, to zoom into — and the case itself where a cell holds one.
Few cases in the box (`Settings.map_case_clusters_above`) or a street's zoom (INDIVIDUAL_ZOOM) get
every case. Who may see which case is the one filter of every case list (CaseFilter.scope).

Why a fixed grid, not ST_ClusterDBSCAN or ST_ClusterKMeans: a cell is found from a case's own
position alone (one pass, no neighbour search, no number of clusters to choose), and a cell keeps
its address while the map pans, so the 3 s poll updates the same clusters instead of drawing
others; supercluster (JS) clusters the same way, but in the browser, after every case was sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.filters import CaseFilter
from cases.lifecycle import OPEN_STATUSES
from cases.rules import Rules
from errors import Invalid, NotFound
from geo import geojson
from store import map_cases, mapdata
from store.case_history import clock_of

MAX_CASES = 5000  # open cases drawn at once (the most pressing first); a county has hundreds
INDIVIDUAL_ZOOM = 15  # from this zoom of the page on, cases are sent one by one (a street's view)
CELL_PX = 64  # a cluster cell's side in screen pixels (the marker clusters' 40 px radius, and room)
MAX_ZOOM = 22
LIGHT_ORDER = {"red": 0, "yellow": 1, "green": 2}
Bounds = tuple[float, float, float, float]


def open_cases(
    session: Session, rules: Rules, user: User | None, *, unit: str | None = None, near: str | None = None
) -> dict[str, Any]:
    """Every open case of the view in the user's jurisdiction as a FeatureCollection, overdue first."""
    grids: list[str] | None = None
    if near is not None:
        grids = mapdata.grid_neighbourhood(session, near)
        if not grids:
            raise NotFound(f"no current grid with code {near}")
    f = CaseFilter(scope=user, status=OPEN_STATUSES, unit=unit, grids=grids, limit=MAX_CASES)
    now, total, rows = map_cases.case_points(session, f)
    features = sorted((case_feature(r, now, rules) for r in rows), key=_urgency)
    overdue = sum(1 for c in features if c["properties"]["overdue"])
    return geojson.feature_collection(features, total=total, overdue=overdue, clustered=False)


def cases_in_view(
    session: Session,
    rules: Rules,
    user: User | None,
    *,
    bbox: Bounds,
    zoom: int,
    unit: str | None,
    clusters_above: int,
) -> dict[str, Any]:
    """The open cases in `bbox` (lon/lat) that the user may see, at the page's `zoom`: each case, or
    clusters where a cell holds several when more than `clusters_above` are in the box below
    INDIVIDUAL_ZOOM. `total` and `overdue` count every case in the box."""
    check_zoom(zoom)
    f = CaseFilter(scope=user, status=OPEN_STATUSES, unit=unit, bbox=bbox, limit=MAX_CASES)
    now, cells = map_cases.case_cells(session, f, map_cases.cell_size_m(zoom, CELL_PX))
    total = sum(c.count for c in cells)
    overdue = sum(c.lights["red"] for c in cells)
    if zoom >= INDIVIDUAL_ZOOM or total <= clusters_above:
        now, _, rows = map_cases.case_points(session, f)
        features = sorted((case_feature(r, now, rules) for r in rows), key=_urgency)
        return geojson.feature_collection(features, total=total, overdue=overdue, clustered=False)
    ones = map_cases.case_points_by_id(session, [c.one_id for c in cells if c.one_id is not None])
    features = [cluster_feature(c, zoom) for c in cells if c.one_id is None]
    features += sorted((case_feature(r, now, rules) for r in ones), key=_urgency)
    return geojson.feature_collection(features, total=total, overdue=overdue, clustered=True)


def check_zoom(zoom: int) -> None:
    """Invalid for a zoom no map has."""
    if not 0 <= zoom <= MAX_ZOOM:
        raise Invalid(f"zoom={zoom}: a map's zoom is 0 to {MAX_ZOOM}")


def cluster_feature(cell: map_cases.Cell, zoom: int) -> dict[str, Any]:
    """A cluster as a GeoJSON point: count, lights, statuses, the worst light, the extent to zoom to."""
    worst = next((light for light in LIGHT_ORDER if cell.lights[light]), None)
    properties = {
        "cluster": True, "count": cell.count, "light": worst, "lights": cell.lights,
        "overdue": cell.lights["red"], "statuses": cell.statuses,
        "bbox": [geojson.coordinate(v) for v in cell.bbox],
    }  # fmt: skip
    return geojson.feature(geojson.point(cell.lon, cell.lat), properties, id=f"z{zoom}:{cell.ix}:{cell.iy}")


def case_feature(row: Any, now: datetime, rules: Rules) -> dict[str, Any]:
    """A case as the map draws it (a row of store.map_cases.POINT_COLUMNS)."""
    light = clock_of(row).light(now)  # the one rule of the light (cases.model.StageClock)
    properties = {
        "number": row.number, "status": row.status, "category": row.category,
        "category_name": rules.categories.get(row.category).name, "description": row.description,
        "address": row.address, "urgent": row.urgent, "grid_code": row.grid_code,
        "light": light.value if light else None, "overdue": bool(row.stage_due_at and now > row.stage_due_at),
        "stage": row.stage, "stage_due_at": row.stage_due_at, "reported_at": row.reported_at,
        "top_name": rules.categories.get(row.category[:2]).name,
    }  # fmt: skip
    return geojson.feature(geojson.point(row.lon, row.lat), properties, id=row.id)


def _urgency(feature: dict[str, Any]) -> tuple:
    case = feature["properties"]
    due = case["stage_due_at"]
    light = LIGHT_ORDER.get(case["light"], 3)
    return (not case["overdue"], light, due is None, due.isoformat() if due else "")
