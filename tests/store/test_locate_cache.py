"""The in-memory snapshot of /locate gives exactly the SQL answer wherever it answers."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import shapely
from shapely.geometry import box
from sqlalchemy import text

from geo.assignment import Status
from geo.codes import Level
from geo.validation import UnitFeature
from store.locate import locate
from store.locate_cache import Snapshot
from store.units import write_units
from tests import factories as f
from tests.geo.test_locate import HALF, MICRO, SPECIAL, county  # noqa: F401  (fixture)
from tests.places import unit_bounds

T1 = datetime(2025, 1, 1, tzinfo=UTC)
TOLERANCE_M = 30.0


def lattice(step: float = 0.0007) -> list[tuple[float, float]]:
    """Points across the test county and around it: every edge, the overlay, the gap, outside."""
    xs = np.arange(f.X0 - 0.001, f.X0 + f.SIZE + 0.001, step)
    ys = np.arange(f.Y0 - 0.001, f.Y0 + f.SIZE + 0.001, step)
    return [(float(x), float(y)) for x in xs for y in ys]


def check_against_sql(session, snapshot: Snapshot, points) -> dict[str, int]:
    """Every answer of the snapshot equals the SQL one; it answers exactly the assigned points."""
    seen = {"memory": 0, "sql": 0}
    for x, y in points:
        sql = locate(session, x, y, tolerance_m=TOLERANCE_M)
        memory = snapshot.locate(x, y)
        if memory is None:
            assert sql.status != Status.ASSIGNED, (x, y)
            seen["sql"] += 1
        else:
            assert memory == sql, (x, y)
            seen["memory"] += 1
    return seen


def test_snapshot_answers_like_sql_across_edges_overlays_micro_grids_and_gaps(county):  # noqa: F811
    snapshot = Snapshot.load(county, tolerance_m=TOLERANCE_M)
    points = [
        *lattice(),
        (f.X0 + HALF, f.Y0 + 0.035),  # on the edge between 001 and 002
        (f.X0 + 0.0065, f.Y0 + HALF + 0.001),  # the special grid over 001
        (f.X0 + 0.001, f.Y0 + 0.001),  # the micro-grid of 003
        (f.X0 + 0.005, f.Y0 + 0.005),  # the micro-grid's corner
    ]
    seen = check_against_sql(county, snapshot, points)
    assert seen["memory"] > 1000 and seen["sql"] > 100  # both paths really exercised
    assert snapshot.locate(f.X0 + 0.0065, f.Y0 + HALF + 0.001).grid.code == SPECIAL
    assert snapshot.locate(f.X0 + 0.001, f.Y0 + 0.001).micro_grid.code == MICRO
    assert snapshot.locate(f.X0 + 0.03, f.Y0 + 0.01) is None  # the gap: PostGIS measures


def test_a_snapshot_taken_after_a_redraw_shows_the_new_boundary(county):  # noqa: F811
    before = Snapshot.load(county, tolerance_m=TOLERANCE_M)
    # Grid 003 grows east into the gap (the missing 004's place).
    grown = shapely.MultiPolygon([box(f.X0, f.Y0, f.X0 + f.SIZE, f.Y0 + HALF)])
    redrawn = UnitFeature(code=f.grid_code(3), name="单元3", level=Level.GRID, geometry=grown, kind="urban")
    write_units(county, [redrawn], valid_from=T1)
    after = Snapshot.load(county, tolerance_m=TOLERANCE_M)
    in_gap = (f.X0 + 0.03, f.Y0 + 0.01)
    assert before.locate(*in_gap) is None
    assert (after.locate(*in_gap).grid.code, after.locate(*in_gap).grid.version) == (f.grid_code(3), 2)
    check_against_sql(county, after, lattice(0.002))


def test_snapshot_answers_like_sql_on_the_demo_county(demo_session):
    snapshot = Snapshot.load(demo_session, tolerance_m=TOLERANCE_M)
    bounds = unit_bounds(demo_session, "411681")
    rng = np.random.default_rng(3)
    points = list(
        zip(rng.uniform(bounds[0], bounds[2], 1500), rng.uniform(bounds[1], bounds[3], 1500), strict=True)
    )
    # Inside special grids and micro-grids too, where the rule's overlays decide.
    for level in (Level.MICRO_GRID, "special"):
        where = "u.level = 'micro_grid'" if level == Level.MICRO_GRID else "v.kind = 'special'"
        points += demo_session.execute(
            text(f"""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(v.geom) p
                     FROM unit_versions v JOIN units u USING (code)
                     WHERE {where} AND v.valid_to IS NULL ORDER BY v.code LIMIT 200) q""")
        ).all()
    seen = check_against_sql(demo_session, snapshot, [(float(x), float(y)) for x, y in points])
    assert seen["memory"] > 1000
