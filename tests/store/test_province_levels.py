"""Province and city units in the store (issue 19 §1): import, parents, the CHECK that shares
geo.codes' pattern, counties imported before or without their regions, and coverage between the
counties of a city."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from benchmarks.province import SIZES, make_province, write_province
from geo.codes import CODE_PATTERN
from geo.coverage import Kind, Tolerances, analyse_groups
from geo.importer import ImportRejected
from services.imports import import_units
from store import coverage as store_coverage
from tests import factories as f

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tiny_province():
    """The tiny synthetic province: 2 cities × 2 counties, 273 grids (province code 41)."""
    return make_province(SIZES["tiny"], seed=3)


def _import(session, settings, frame, path):
    return import_units(session, write_province(frame, path), valid_from=WHEN, settings=settings)


def _parents(session) -> dict[str, str | None]:
    return dict(session.execute(text("SELECT code, parent_code FROM units")).all())


def test_a_province_imports_with_each_unit_under_its_parent(session, settings, tmp_path, tiny_province):
    result = _import(session, settings, tiny_province, tmp_path / "p.gpkg")
    assert len(result.summary.created) == len(tiny_province)
    parents = _parents(session)
    assert parents["41"] is None
    assert parents["4101"] == "41" and parents["4102"] == "41"
    assert parents["410101"] == "4101" and parents["410202"] == "4102"
    assert parents["410101001"] == "410101"
    levels = dict(session.execute(text("SELECT level, count(*) FROM units GROUP BY level")).all())
    assert levels["province"] == 1 and levels["city"] == 2 and levels["county"] == 4
    # Re-importing the same file changes nothing.
    again = _import(session, settings, tiny_province, tmp_path / "p2.gpkg")
    assert again.summary.created == [] and again.summary.versioned == []


def test_a_county_imported_alone_then_its_city_and_province_is_adopted(session, settings, tmp_path):
    f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    import_units(session, tmp_path / "county.geojson", valid_from=WHEN, settings=settings)
    assert _parents(session)[f.COUNTY] is None  # a county deployment: no region above it
    around = box(f.X0 - 0.01, f.Y0 - 0.01, f.X0 + f.SIZE + 0.01, f.Y0 + f.SIZE + 0.01)
    regions = [f.feature("41", around.buffer(0.01), name="河南省"), f.feature("4199", around, name="测试市")]
    import_units(
        session, f.write_geojson(tmp_path / "regions.geojson", regions), valid_from=WHEN, settings=settings
    )
    parents = _parents(session)
    assert parents["4199"] == "41" and parents[f.COUNTY] == "4199"


def test_a_city_drawn_away_from_its_stored_county_is_refused(session, settings, tmp_path):
    import_units(
        session, f.write_geojson(tmp_path / "c.geojson", f.hierarchy()), valid_from=WHEN, settings=settings
    )
    elsewhere = box(f.X0 + 1, f.Y0, f.X0 + 1 + f.SIZE, f.Y0 + f.SIZE)
    path = f.write_geojson(tmp_path / "city.geojson", [f.feature("4199", elsewhere, name="测试市")])
    with pytest.raises(ImportRejected) as refused:
        import_units(session, path, valid_from=WHEN, settings=settings)
    assert any("outside the new outline of its parent 4199" in e for e in refused.value.report.errors)
    assert _parents(session)[f.COUNTY] is None  # nothing stored


def test_a_county_outside_its_stored_city_is_refused(session, settings, tmp_path):
    city = [f.feature("4199", box(f.X0 + 1, f.Y0, f.X0 + 1 + f.SIZE, f.Y0 + f.SIZE), name="测试市")]
    import_units(
        session, f.write_geojson(tmp_path / "city.geojson", city), valid_from=WHEN, settings=settings
    )
    with pytest.raises(ImportRejected) as refused:
        import_units(
            session,
            f.write_geojson(tmp_path / "c.geojson", f.hierarchy()),
            valid_from=WHEN,
            settings=settings,
        )
    assert any("lies outside its parent 4199" in e for e in refused.value.report.errors)


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("4116810", "county", None),  # 7 digits
        ("411681000", "street", None),  # a street 000 (with no parent either)
        ("4100", "city", None),  # a city 00
        ("41", "province", "4"),  # a province under something
        ("411681001", "street", None),  # a street without its county
    ],
)
def test_the_units_table_refuses_what_geo_codes_refuses(session, code, level, parent):
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text("INSERT INTO units (code, level, parent_code) VALUES (:c, :l, :p)"),
            {"c": code, "l": level, "p": parent},
        )


def test_the_units_check_is_geo_codes_pattern(session):
    check = session.execute(
        text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'units_code_format'")
    ).scalar_one()
    assert f"'{CODE_PATTERN}'" in check


def test_coverage_finds_a_gap_and_an_overlap_between_counties_of_a_city(
    session, settings, tmp_path, tiny_province
):
    top = tiny_province[tiny_province["code"].str.len() <= 6].copy()
    geoms = top.set_index("code").geometry
    minx, miny, maxx, maxy = shapely.intersection(geoms["410101"], geoms["410102"]).bounds
    a, b, c, d = shapely.intersection(geoms["410201"], geoms["410202"]).bounds
    changed = {
        "410101": shapely.difference(geoms["410101"], box(minx - 0.004, miny, maxx, maxy)),  # a gap
        "410201": shapely.union(geoms["410201"], box(a, b + 0.01, c + 0.004, d - 0.01)),  # an overlap
    }
    top["geometry"] = [changed.get(code, g) for code, g in zip(top["code"], top.geometry, strict=True)]
    _import(session, settings, top, tmp_path / "top.gpkg")
    tol = Tolerances.from_settings(settings)

    def between_counties(code: str) -> set:
        run = store_coverage.run_coverage(session, code, tol)
        return {(x.kind, x.units) for x in run.findings if len(x.units[0]) < 6 or len(x.units) > 1}

    assert between_counties("4101") == {(Kind.GAP, ("4101",))}
    assert between_counties("4102") == {(Kind.OVERLAP, ("410201", "410202"))}
    assert between_counties("41") == {(Kind.GAP, ("4101",)), (Kind.OVERLAP, ("410201", "410202"))}
    # What `gridmap coverage` runs between regions and their children when no unit is named.
    regions = analyse_groups(store_coverage.region_groups(session), tol)
    assert {(x.kind, x.units) for x in regions} == {
        (Kind.GAP, ("4101",)),
        (Kind.OVERLAP, ("410201", "410202")),
    }
