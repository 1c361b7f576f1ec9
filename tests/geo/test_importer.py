"""Import: every kind of bad feature is refused with a clear message and nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Point, Polygon, box
from sqlalchemy import text

from geo import crs
from geo.importer import ImportRejected
from services.imports import import_units
from store import units
from tests import factories as f

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 6, 1, tzinfo=UTC)


def stored_counts(session) -> tuple[int, int]:
    return session.execute(
        text("SELECT (SELECT count(*) FROM units), (SELECT count(*) FROM unit_versions)")
    ).one()


def do_import(session, settings, path, crs_name=None, **kw):
    return import_units(session, path, crs_name, valid_from=kw.pop("valid_from", T0), settings=settings, **kw)


def test_valid_hierarchy_is_stored_and_reimport_changes_nothing(session, settings, tmp_path):
    path = f.write_geojson(tmp_path / "units.geojson", f.hierarchy())
    first = do_import(session, settings, path)
    assert sorted(first.summary.created) == sorted(
        [f.COUNTY, f.STREET, f.COMMUNITY, *map(f.grid_code, range(1, 5))]
    )
    again = do_import(session, settings, path, valid_from=T1)
    assert again.summary.created == [] and again.summary.versioned == []
    assert len(again.summary.unchanged) == 7
    assert stored_counts(session) == (7, 7)


def expect_refused(session, settings, path, *needles, crs_name=None):
    before = stored_counts(session)
    with pytest.raises(ImportRejected) as caught:
        do_import(session, settings, path, crs_name)
    message = "\n".join(caught.value.report.errors)
    for needle in needles:
        assert needle in message, message
    assert stored_counts(session) == before
    return message


@pytest.fixture
def base(session, settings, tmp_path):
    """The test county, community and four grids, already stored."""
    do_import(session, settings, f.write_geojson(tmp_path / "base.geojson", f.hierarchy()))


def test_bow_tie_is_refused_with_the_reason(session, settings, tmp_path, base):
    bow_tie = Polygon([(f.X0, f.Y0), (f.X0 + 0.01, f.Y0 + 0.01), (f.X0 + 0.01, f.Y0), (f.X0, f.Y0 + 0.01)])
    path = f.write_geojson(tmp_path / "bad.geojson", [f.feature(f.grid_code(9), bow_tie, kind="urban")])
    expect_refused(
        session, settings, path, "feature 1 (code 419999001001009)", "Self-intersection", "--repair"
    )


def test_repair_fixes_a_bow_tie_and_says_so(session, settings, tmp_path, base):
    bow_tie = Polygon([(f.X0, f.Y0), (f.X0 + 0.01, f.Y0 + 0.01), (f.X0 + 0.01, f.Y0), (f.X0, f.Y0 + 0.01)])
    path = f.write_geojson(tmp_path / "bad.geojson", [f.feature(f.grid_code(9), bow_tie, kind="urban")])
    result = do_import(session, settings, path, repair=True)
    assert result.summary.created == [f.grid_code(9)]
    assert len(result.repairs) == 1 and "Self-intersection" in result.repairs[0]
    assert "into 2 polygon(s)" in result.repairs[0]  # a bow tie becomes its two triangles
    stored = units.units_at(session, [f.grid_code(9)])[f.grid_code(9)]
    assert stored.geometry.is_valid and stored.geometry.geom_type == "MultiPolygon"


def test_empty_geometry_is_refused(session, settings, tmp_path, base):
    path = f.write_geojson(tmp_path / "empty.geojson", [f.feature(f.grid_code(9), None, kind="urban")])
    expect_refused(session, settings, path, "geometry is empty")


def test_non_polygon_is_refused(session, settings, tmp_path, base):
    path = f.write_geojson(
        tmp_path / "point.geojson", [f.feature(f.grid_code(9), Point(f.X0, f.Y0), kind="urban")]
    )
    expect_refused(session, settings, path, "Point", "Polygon or MultiPolygon")


def test_duplicate_code_is_refused(session, settings, tmp_path):
    features = f.hierarchy()
    features.append(dict(features[-1]))
    path = f.write_geojson(tmp_path / "dup.geojson", features)
    expect_refused(session, settings, path, "appears twice")


def test_one_bad_feature_refuses_the_whole_file(session, settings, tmp_path):
    features = f.hierarchy()
    features[-1]["properties"]["kind"] = "suburban"
    path = f.write_geojson(tmp_path / "one_bad.geojson", features)
    expect_refused(session, settings, path, "kind 'suburban'")
    assert stored_counts(session) == (0, 0)


def test_child_mostly_outside_its_parent_is_refused(session, settings, tmp_path, base):
    far = box(f.X0 + 1, f.Y0, f.X0 + 1.01, f.Y0 + 0.01)
    path = f.write_geojson(tmp_path / "outside.geojson", [f.feature(f.grid_code(9), far, kind="rural")])
    expect_refused(session, settings, path, "100% of it lies outside its parent 419999001001")


def test_child_a_little_outside_is_stored_with_a_warning(session, settings, tmp_path, base):
    overhang = box(f.X0 - 0.0001, f.Y0, f.X0 + 0.01, f.Y0 + 0.01)  # ~10 m over the west edge
    path = f.write_geojson(tmp_path / "overhang.geojson", [f.feature(f.grid_code(9), overhang, kind="rural")])
    result = do_import(session, settings, path)
    assert "outside its parent" in result.warnings[f.grid_code(9)][0]
    warnings = session.execute(
        text("SELECT warnings FROM unit_versions WHERE code = :c"), {"c": f.grid_code(9)}
    ).scalar_one()
    assert "outside its parent" in warnings[0]


def test_unknown_parent_is_refused(session, settings, tmp_path):
    path = f.write_geojson(
        tmp_path / "orphan.geojson",
        [f.feature("419999001001001", box(f.X0, f.Y0, f.X0 + 0.01, f.Y0 + 0.01), kind="urban")],
    )
    expect_refused(session, settings, path, "parent unit 419999001001 does not exist")


def test_bad_code_format_is_refused(session, settings, tmp_path):
    path = f.write_geojson(
        tmp_path / "code.geojson", [f.feature("41999900100", box(f.X0, f.Y0, f.X0 + 0.01, f.Y0 + 0.01))]
    )
    expect_refused(session, settings, path, "has 11 digits: a unit code has 2, 4, 6, 9, 12, 15 or 18")


def test_file_without_crs_is_refused_unless_crs_is_given(session, settings, tmp_path):
    path = f.write_geojson(tmp_path / "nocrs.geojson", f.hierarchy(), crs=None)
    expect_refused(session, settings, path, "does not say which coordinate system", "--crs")
    assert len(do_import(session, settings, path, "wgs84").summary.created) == 7


def test_swapped_lon_lat_is_refused(session, settings, tmp_path):
    swapped = [
        f.feature(
            f.COUNTY, shapely.transform(box(f.X0, f.Y0, f.X0 + 0.04, f.Y0 + 0.04), lambda xy: xy[:, ::-1])
        )
    ]
    path = f.write_geojson(tmp_path / "swapped.geojson", swapped)
    expect_refused(session, settings, path, "longitude and latitude look swapped")


def test_gcj02_input_is_converted_before_storing(session, settings, tmp_path):
    features = f.hierarchy()
    path = f.write_geojson(tmp_path / "gcj.geojson", features, crs=None)
    do_import(session, settings, path, "gcj02")
    stored = units.units_at(session, [f.COUNTY])[f.COUNTY].geometry
    gx, gy = crs.gcj02_to_wgs84([f.X0], [f.Y0])
    corner = shapely.get_coordinates(stored)
    nearest = corner[((corner - [gx[0], gy[0]]) ** 2).sum(axis=1).argmin()]
    assert abs(nearest[0] - gx[0]) < 1e-9 and abs(nearest[1] - gy[0]) < 1e-9
    shift_m = ((f.X0 - nearest[0]) * 93_000) ** 2 + ((f.Y0 - nearest[1]) * 111_000) ** 2
    assert 300 < shift_m**0.5 < 1_000  # GCJ-02 is a few hundred metres off


def test_projected_input_needs_no_crs_flag_when_declared(session, settings, tmp_path):
    frame = gpd.GeoDataFrame.from_features(f.hierarchy(), crs="EPSG:4490").to_crs("EPSG:4547")
    path = tmp_path / "units.gpkg"
    frame.to_file(path, driver="GPKG")
    result = do_import(session, settings, path)
    assert result.source_crs == "EPSG:4547" and len(result.summary.created) == 7


def test_shapefile_is_read(session, settings, tmp_path):
    frame = gpd.GeoDataFrame.from_features(f.hierarchy(), crs="EPSG:4490")
    frame.to_file(tmp_path / "units.shp")
    assert len(do_import(session, settings, tmp_path / "units.shp").summary.created) == 7


def test_redraw_keeps_the_old_version_queryable_as_of_the_earlier_date(session, settings, tmp_path, base):
    features = f.hierarchy()
    # Grid 001 takes a strip of grid 002: two new versions, two closed ones.
    half = f.SIZE / 2
    features[3]["geometry"] = shapely.geometry.mapping(
        box(f.X0, f.Y0 + half, f.X0 + half + 0.005, f.Y0 + f.SIZE)
    )
    features[4]["geometry"] = shapely.geometry.mapping(
        box(f.X0 + half + 0.005, f.Y0 + half, f.X0 + f.SIZE, f.Y0 + f.SIZE)
    )
    result = do_import(
        session, settings, f.write_geojson(tmp_path / "redraw.geojson", features), valid_from=T1
    )
    assert sorted(result.summary.versioned) == [f.grid_code(1), f.grid_code(2)]
    now = units.units_at(session, [f.grid_code(1)])[f.grid_code(1)]
    before = units.units_at(session, [f.grid_code(1)], at=datetime(2025, 1, 1, tzinfo=UTC))[f.grid_code(1)]
    assert (now.version, before.version) == (2, 1)
    assert now.geometry.area > before.geometry.area
    assert [v["version"] for v in units.versions_of(session, f.grid_code(1))] == [1, 2]


def test_stored_versions_cannot_be_rewritten_or_deleted(session, base):
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="never rewritten"), session.begin_nested():
        session.execute(text("UPDATE unit_versions SET name = 'x' WHERE code = :c"), {"c": f.COUNTY})
    with pytest.raises(DBAPIError, match="never deleted"), session.begin_nested():
        session.execute(text("DELETE FROM unit_versions WHERE code = :c"), {"c": f.COUNTY})


def test_a_new_parent_outline_is_held_against_its_stored_children(session, settings, tmp_path, base):
    # The community redrawn to its western half alone: grids 002 and 004 (east) would be outside.
    west = box(f.X0, f.Y0, f.X0 + f.SIZE / 2, f.Y0 + f.SIZE)
    shrunk = f.write_geojson(tmp_path / "shrunk.geojson", [f.feature(f.COMMUNITY, west, name="测试社区")])
    message = expect_refused(session, settings, shrunk, "new outline of its parent")
    assert f"stored unit {f.grid_code(2)}" in message and f"stored unit {f.grid_code(4)}" in message
    assert f"stored unit {f.grid_code(1)}" not in message

    # A little smaller (a 20 m strip on the east): stored with a warning naming the children cut.
    trimmed = box(f.X0, f.Y0, f.X0 + f.SIZE - 0.0002, f.Y0 + f.SIZE)
    path = f.write_geojson(tmp_path / "trimmed.geojson", [f.feature(f.COMMUNITY, trimmed, name="测试社区")])
    result = do_import(session, settings, path, valid_from=T1)
    assert result.summary.versioned == [f.COMMUNITY]
    warned = " ".join(result.warnings[f.COMMUNITY])
    assert f.grid_code(2) in warned and f.grid_code(4) in warned and f.grid_code(1) not in warned
