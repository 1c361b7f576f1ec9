"""The set-based assignment of a redraw (store.locate_many) gives store.locate's answer for every
point: special grids over base grids, micro-grids, shared edges, gaps within and beyond the snap
tolerance, points outside every unit; on the hand-made county, the demo county and after a redraw."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import shapely
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from shapely.geometry import box
from sqlalchemy import text

from geo.assignment import Status
from geo.codes import Level
from geo.validation import UnitFeature
from store.locate import locate
from store.locate_many import locate_table, responsible_grids
from store.units import write_units
from tests import factories as f
from tests.geo.test_locate import HALF, MICRO, SPECIAL, county  # noqa: F401  (fixture)
from tests.places import points_table, unit_bounds

TOLERANCE_M = 30.0
T1 = datetime(2025, 1, 1, tzinfo=UTC)


def check_against_locate(session, xy: list[tuple[float, float]]) -> dict[str, int]:
    """Both set-based answers equal store.locate's for every point: the responsible grid of
    every point, and the full answer (units, micro-grid, covering, nearest, explanation)."""
    points_table(session, xy)
    grids = responsible_grids(session, "pts", tolerance_m=TOLERANCE_M)
    answers = locate_table(session, "pts", tolerance_m=TOLERANCE_M)
    assert sorted(grids) == sorted(answers) == list(range(len(xy)))
    seen: dict[str, int] = {}
    for i, (x, y) in enumerate(xy):
        single = locate(session, x, y, tolerance_m=TOLERANCE_M)
        assert answers[i] == single, (x, y)
        assert grids[i] == (single.grid.code if single.grid else None), (x, y)
        kind = single.rule if single.micro_grid is None else "micro_grid"
        seen[kind] = seen.get(kind, 0) + 1
    return seen


def test_every_case_of_the_rule_on_the_hand_made_county(county):  # noqa: F811
    xs = np.arange(f.X0 - 0.0012, f.X0 + f.SIZE + 0.0012, 0.0011)
    ys = np.arange(f.Y0 - 0.0012, f.Y0 + f.SIZE + 0.0012, 0.0011)
    xy = [(float(x), float(y)) for x in xs for y in ys]
    xy += [
        (f.X0 + HALF, f.Y0 + 0.035),  # the edge between 001 and 002
        (f.X0 + HALF, f.Y0 + HALF),  # the corner of four grids
        (f.X0 + 0.0065, f.Y0 + HALF + 0.001),  # the special grid over 001
        (f.X0 + 0.001, f.Y0 + 0.001),  # the micro-grid of 003
        (f.X0 + 0.005, f.Y0 + 0.005),  # the micro-grid's corner
        (f.X0 + HALF + 20 / 92_900, f.Y0 + 0.01),  # 20 m into the gap: snapped
        (f.X0 + 0.03, f.Y0 + 0.01),  # the middle of the gap: unassigned, inside the community
        (f.X0 - 0.1, f.Y0 - 0.1),  # outside every unit
    ]
    seen = check_against_locate(county, xy)
    assert {"covers", "special_overlay", "micro_grid", "snapped", "unassigned"} <= set(seen), seen
    # An answer on a shared edge names both grids, as /locate does.
    answers = locate_table(county, "pts", tolerance_m=TOLERANCE_M)
    edge, special, micro = answers[len(xy) - 8], answers[len(xy) - 6], answers[len(xy) - 5]
    assert edge.covering == [f.grid_code(1), f.grid_code(2)] and edge.grid.code == f.grid_code(1)
    assert special.grid.code == SPECIAL and micro.micro_grid.code == MICRO


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.floats(f.X0 - 0.002, f.X0 + f.SIZE + 0.002), st.floats(f.Y0 - 0.002, f.Y0 + f.SIZE + 0.002)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_random_points_get_the_single_answer(county, xy):  # noqa: F811
    check_against_locate(county, xy)


def test_after_a_redraw_the_new_boundary_decides(county):  # noqa: F811
    # Grid 003 grows east into the gap (the missing 004's place); the special grid is retired.
    grown = shapely.MultiPolygon([box(f.X0, f.Y0, f.X0 + f.SIZE, f.Y0 + HALF)])
    redrawn = UnitFeature(code=f.grid_code(3), name="单元3", level=Level.GRID, geometry=grown, kind="urban")
    write_units(county, [redrawn], valid_from=T1)
    in_gap = (f.X0 + 0.03, f.Y0 + 0.01)
    points_table(county, [in_gap])
    assert responsible_grids(county, "pts", tolerance_m=TOLERANCE_M) == {0: f.grid_code(3)}
    assert locate_table(county, "pts", tolerance_m=TOLERANCE_M)[0].grid.version == 2
    check_against_locate(
        county, [(f.X0 + x * 0.0023, f.Y0 + y * 0.0023) for x in range(-1, 23) for y in (1, 9)]
    )


def test_the_demo_county_special_grids_micro_grids_edges_and_outside(demo_session):
    bounds = unit_bounds(demo_session, "411681")
    rng = np.random.default_rng(19)
    # Random over the county's box and a little beyond it (outside every grid, near some).
    xy = list(zip(rng.uniform(bounds[0] - 0.01, bounds[2] + 0.01, 300),
                  rng.uniform(bounds[1] - 0.01, bounds[3] + 0.01, 300), strict=True))  # fmt: skip
    # Inside special grids and micro-grids; on grid outlines (shared edges and corners); just
    # outside the county's outline, within and beyond the snap tolerance.
    for sql in (
        """SELECT ST_PointOnSurface(v.geom) FROM unit_versions v JOIN units u USING (code)
           WHERE u.level = 'micro_grid' AND v.valid_to IS NULL ORDER BY v.code LIMIT 60""",
        """SELECT ST_PointOnSurface(v.geom) FROM unit_versions v
           WHERE v.kind = 'special' AND v.valid_to IS NULL ORDER BY v.code LIMIT 60""",
        """SELECT ST_PointN(ST_ExteriorRing(ST_GeometryN(v.geom, 1)), 2) FROM unit_versions v
           JOIN units u USING (code) WHERE u.level = 'grid' AND v.valid_to IS NULL
           ORDER BY v.code LIMIT 80""",
        """SELECT ST_Translate(ST_PointN(ST_ExteriorRing(ST_GeometryN(v.geom, 1)), n), d, 0)
           FROM unit_versions v, generate_series(1, 400, 10) n, unnest(ARRAY[-0.0002, 0.0002, 0.001]) d
           WHERE v.code = '411681' AND v.valid_to IS NULL""",
    ):
        rows = demo_session.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM ({sql}) q(p) WHERE p IS NOT NULL"))
        xy += [(float(x), float(y)) for x, y in rows]
    seen = check_against_locate(demo_session, xy)
    assert {"covers", "special_overlay", "micro_grid", "unassigned"} <= set(seen), seen
    assert sum(seen.values()) == len(xy) > 500


def test_a_point_in_no_unit_with_no_grid_at_all_is_unassigned(session):
    points_table(session, [(114.0, 33.0)])
    answer = locate_table(session, "pts", tolerance_m=TOLERANCE_M)[0]
    assert answer == locate(session, 114.0, 33.0, tolerance_m=TOLERANCE_M)
    assert (answer.status, answer.units, answer.nearest) == (Status.UNASSIGNED, [], None)
    assert responsible_grids(session, "pts", tolerance_m=TOLERANCE_M) == {0: None}
