"""The assignment rule inside PostGIS, on a small hand-made county."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from geo.assignment import Rule, Status
from services.imports import import_units
from store.locate import locate
from tests import factories as f

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HALF = f.SIZE / 2
M_PER_DEG_LON = 92_900  # at 33.4°N, near enough to place test points
SPECIAL = f.grid_code(5)
MICRO = f.grid_code(3) + "001"


@pytest.fixture
def county(session, settings, tmp_path):
    """Base grids 001-003 (004, SE, is a gap), a school over 001/003, a micro-grid in 003."""
    features = f.overlay_features()
    path = f.write_geojson(tmp_path / "county.geojson", features)
    import_units(session, path, valid_from=T0, settings=settings)
    return session


def at(session, lon, lat, tolerance_m=30.0, when=None):
    return locate(session, lon, lat, tolerance_m=tolerance_m, at=when)


def test_point_inside_a_grid_is_assigned_to_it_with_its_parent_chain(county):
    a = at(county, f.X0 + 0.015, f.Y0 + 0.035)
    assert (a.status, a.rule, a.grid.code, a.distance_m) == (
        Status.ASSIGNED,
        Rule.COVERS,
        f.grid_code(1),
        0.0,
    )
    assert [u.code for u in a.units] == [f.COUNTY, f.STREET, f.COMMUNITY, f.grid_code(1)]
    assert a.grid.version == 1 and "covers the point" in a.explanation


def test_point_on_a_shared_edge_goes_to_the_lowest_code(county):
    a = at(county, f.X0 + HALF, f.Y0 + 0.035)  # the edge between 001 and 002
    assert a.grid.code == f.grid_code(1) and a.covering == [f.grid_code(1), f.grid_code(2)]
    assert "lowest code wins" in a.explanation


def test_special_grid_wins_over_the_base_grid_it_overlays(county):
    a = at(county, f.X0 + 0.0065, f.Y0 + HALF + 0.001)
    assert (a.grid.code, a.rule) == (SPECIAL, Rule.SPECIAL_OVERLAY)
    assert f.grid_code(1) in a.covering and "takes precedence" in a.explanation


def test_micro_grid_inside_the_grid_is_reported(county):
    a = at(county, f.X0 + 0.001, f.Y0 + 0.001)
    assert a.grid.code == f.grid_code(3) and a.micro_grid.code == MICRO
    assert [u.level for u in a.units][-2:] == ["grid", "micro_grid"]


def test_point_in_a_gap_near_a_grid_is_snapped_with_its_distance(county):
    lon = f.X0 + HALF + 20 / M_PER_DEG_LON  # 20 m east of grid 003's east edge, inside the gap
    a = at(county, lon, f.Y0 + 0.01)
    assert (a.status, a.rule, a.grid.code) == (Status.SNAPPED, Rule.SNAPPED, f.grid_code(3))
    assert a.distance_m == pytest.approx(20, abs=0.5)


def test_point_in_a_gap_far_from_grids_is_unassigned_with_its_lowest_unit(county):
    a = at(county, f.X0 + 0.03, f.Y0 + 0.01)  # middle of the missing grid 004
    assert (a.status, a.grid, a.distance_m) == (Status.UNASSIGNED, None, None)
    assert a.units[-1].code == f.COMMUNITY
    assert a.nearest.code in (f.grid_code(2), f.grid_code(3)) and a.nearest.distance_m > 30


def test_point_outside_everything_is_unassigned_with_no_unit(county):
    a = at(county, f.X0 - 0.1, f.Y0 - 0.1)
    assert a.status == Status.UNASSIGNED and a.units == [] and a.nearest.code == f.grid_code(3)


def test_snap_tolerance_is_a_setting(county):
    lon = f.X0 + HALF + 20 / M_PER_DEG_LON
    assert at(county, lon, f.Y0 + 0.01, tolerance_m=10).status == Status.UNASSIGNED


def test_before_the_grids_existed_nothing_is_assigned(county):
    a = at(county, f.X0 + 0.015, f.Y0 + 0.035, when=datetime(2023, 6, 1, tzinfo=UTC))
    assert a.status == Status.UNASSIGNED and a.nearest is None


def test_bulk_assignment_in_postgis_agrees_with_single_points(county):
    from sqlalchemy import text

    from store.locate import assign_points_table

    xs = [f.X0 - 0.0002 + i * 0.0021 for i in range(21)]  # crosses every edge, the gap and the outside
    ys = [f.Y0 - 0.0002 + k * 0.0021 for k in range(21)]
    points = [(i * 100 + j, x, y) for i, x in enumerate(xs) for j, y in enumerate(ys)]
    county.execute(text("CREATE TEMP TABLE pts (id bigint PRIMARY KEY, geom geometry(Point, 4490))"))
    county.execute(
        text("INSERT INTO pts VALUES (:id, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"),
        [{"id": i, "x": x, "y": y} for i, x, y in points],
    )
    counts = assign_points_table(county, "pts", tolerance_m=30)
    assert sum(counts.values()) == len(points) and set(counts) == {"assigned", "snapped", "unassigned"}
    bulk = {r.id: r for r in county.execute(text("SELECT * FROM point_assignments"))}
    for i, x, y in points:
        single = at(county, x, y)
        assert bulk[i].status == single.status, (x, y)
        assert bulk[i].grid_code == (single.grid.code if single.grid else None), (x, y)


def test_a_point_where_two_counties_overlap_names_the_lowest_and_says_so(session, settings, tmp_path):
    # Two counties imported side by side, without a parent, overlapping by a 100 m strip.
    from shapely.geometry import box

    west = box(f.X0, f.Y0, f.X0 + HALF + 0.001, f.Y0 + f.SIZE)
    east = box(f.X0 + HALF, f.Y0, f.X0 + f.SIZE, f.Y0 + f.SIZE)
    # The higher code first in the file, so that file order cannot decide.
    features = [f.feature("419998", east, name="东县"), f.feature("419997", west, name="西县")]
    path = f.write_geojson(tmp_path / "two.geojson", features)
    import_units(session, path, valid_from=T0, settings=settings)
    for _ in range(3):
        a = at(session, f.X0 + HALF + 0.0005, f.Y0 + 0.01)
        assert a.status == Status.UNASSIGNED
        assert [u.code for u in a.units] == ["419997"] and a.overlapping == ["419998"]
        assert "overlaps 419998 (lowest code wins)" in a.explanation
    outside_overlap = at(session, f.X0 + 0.03, f.Y0 + 0.01)
    assert [u.code for u in outside_overlap.units] == ["419998"] and outside_overlap.overlapping == []
