"""Property: PostGIS (/locate's SQL) and the in-process index both apply exactly the rule.

Hypothesis generates partitions of the test community (Voronoi cells, one removed to leave a hole,
special rectangles over base grids), stores them in PostGIS inside the test's transaction, and
checks every sampled point against a brute-force reference written straight from the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box
from sqlalchemy import text

from geo import crs
from geo.assignment import Status, grid_precedence
from geo.codes import Level
from geo.lookup import STATUSES, GridIndex
from geo.validation import UnitFeature
from store.locate import locate
from store.units import write_units
from tests import factories as f

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TOLERANCE_M = 30.0
METRIC = "EPSG:4547"
AREA = box(f.X0, f.Y0, f.X0 + f.SIZE, f.Y0 + f.SIZE)


def partition(seed: int, n: int, n_special: int) -> list[tuple[str, str, shapely.Geometry]]:
    """(code, kind, polygon) of n Voronoi grids minus one, plus special rectangles."""
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(rng.uniform([f.X0, f.Y0], [f.X0 + f.SIZE, f.Y0 + f.SIZE], (n, 2)))
    cells = [c.intersection(AREA) for c in shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=AREA))]
    cells = [shapely.set_precision(c, 1e-7) for c in cells if not c.is_empty]
    grids = [(f.grid_code(i), "urban" if i % 2 else "rural", c) for i, c in enumerate(cells, 1)]
    del grids[int(rng.integers(len(grids)))]  # a hole nobody covers
    for k in range(n_special):
        x, y = rng.uniform([f.X0, f.Y0], [f.X0 + f.SIZE - 0.006, f.Y0 + f.SIZE - 0.006])
        grids.append((f.grid_code(900 + k), "special", box(x, y, x + rng.uniform(0.001, 0.006), y + 0.004)))
    return grids


def reference(grids, lon: float, lat: float) -> tuple[str, str | None]:
    """The rule, point by point, with plain shapely: (status, grid code)."""
    point = Point(lon, lat)
    covering = [(kind, code) for code, kind, geom in grids if geom.intersects(point)]
    if covering:
        return Status.ASSIGNED, min(covering, key=lambda kc: grid_precedence(*kc))[1]
    to_metric = crs.transformer(crs.STORAGE_CRS, METRIC)
    pm = Point(to_metric.transform(lon, lat))
    distances = sorted((crs.to_metric(geom, METRIC).distance(pm), code) for code, _, geom in grids)
    distance, code = distances[0]
    if abs(distance - TOLERANCE_M) < 0.5:
        return "ambiguous", None  # metric-plane vs spheroid distance may differ by centimetres here
    return (Status.SNAPPED, code) if distance <= TOLERANCE_M else (Status.UNASSIGNED, None)


def sample_points(grids, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Random points in and around the area, plus vertices and edge midpoints (shared boundaries)."""
    pts = rng.uniform([f.X0 - 0.002, f.Y0 - 0.002], [f.X0 + f.SIZE + 0.002, f.Y0 + f.SIZE + 0.002], (40, 2))
    edge = []
    for _, _, geom in grids[:6]:
        xy = shapely.get_coordinates(geom)
        edge += [tuple(xy[1]), tuple((xy[1] + xy[2]) / 2)]
    return [tuple(p) for p in pts] + edge


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(4, 14), n_special=st.integers(0, 3))
def test_postgis_and_index_follow_the_rule(session, seed, n, n_special):
    grids = partition(seed, n, n_special)
    with session.begin_nested() as savepoint:
        session.execute(
            text(
                "INSERT INTO units (code, level, parent_code) VALUES ('419999', 'county', NULL),"
                " ('419999001', 'street', '419999'), ('419999001001', 'community', '419999001')"
            )
        )
        write_units(
            session,
            [
                UnitFeature(
                    code=c,
                    name=c,
                    level=Level.GRID,
                    geometry=shapely.MultiPolygon([g]),
                    kind=k,
                    special_type="school" if k == "special" else None,
                )
                for c, k, g in grids
            ],
            valid_from=T0,
        )
        index = GridIndex(
            [c for c, _, _ in grids],
            [k for _, k, _ in grids],
            np.array([g for _, _, g in grids]),
            snap_tolerance_m=TOLERANCE_M,
            metric_crs=METRIC,
        )
        points = sample_points(grids, np.random.default_rng(seed))
        batch = index.assign(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
        # Batch work skips finding the nearest grid of unassigned points; nothing else may change.
        lean = index.assign(np.array([p[0] for p in points]), np.array([p[1] for p in points]), nearest=False)
        assert np.array_equal(lean.status, batch.status) and np.array_equal(lean.grid, batch.grid)
        assert np.array_equal(lean.distance_m, batch.distance_m, equal_nan=True)
        for i, (lon, lat) in enumerate(points):
            expected = reference(grids, lon, lat)
            if expected[0] == "ambiguous":
                continue
            db = locate(session, lon, lat, tolerance_m=TOLERANCE_M)
            assert (db.status, db.grid.code if db.grid else None) == expected, (lon, lat)
            got = index.codes[batch.grid[i]] if batch.grid[i] >= 0 else None
            assert (STATUSES[batch.status[i]], got) == expected, (lon, lat)
        savepoint.rollback()
