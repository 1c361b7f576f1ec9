"""Coverage analysis on the store (store.coverage): the demo county, reports and the `new` flag."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from shapely.geometry import box
from sqlalchemy import text

from geo.coverage import Kind, Tolerances
from services.imports import import_units
from store import coverage as store
from tests import factories as f

CHINA = ZoneInfo("Asia/Shanghai")
T1, T2 = datetime(2025, 1, 1, tzinfo=CHINA), datetime(2025, 6, 1, tzinfo=CHINA)
GEOMETRIC = ("gap", "overlap", "sliver", "outside_parent", "special_outside_community")


def tolerances(settings) -> Tolerances:
    return Tolerances.from_settings(settings)


def test_the_demo_county_tiles_cleanly_and_its_people_findings_match_the_data(demo_session, settings):
    # The demo's rural grids hold 150-240 households, within the norm: ask for at most 200.
    tol = dataclasses.replace(tolerances(settings), rural_households=(0, 200))
    run = store.run_coverage(demo_session, "411681", tol)
    summary = run.as_dict()["summary"]
    assert all(summary[k]["count"] == 0 for k in GEOMETRIC), summary  # every level is a clean coverage
    unstaffed = demo_session.execute(
        text(
            """SELECT count(*) FROM units u WHERE u.level = 'grid' AND NOT EXISTS (
                   SELECT 1 FROM staff s
                   WHERE s.unit_code = u.code AND s.role IN ('grid_chief', 'full_time'))"""
        )
    ).scalar()
    unorganised = demo_session.execute(
        text(
            """SELECT count(*) FROM units u WHERE u.level = 'grid' AND NOT EXISTS (
                   SELECT 1 FROM party_cells p
                   WHERE p.unit_code = u.code AND p.kind IN ('branch', 'group'))"""
        )
    ).scalar()
    oversized = demo_session.execute(
        text(
            """SELECT count(*) FROM unit_versions v JOIN units u USING (code)
               WHERE u.level = 'grid' AND v.valid_to IS NULL
                 AND ((v.kind = 'urban' AND v.households NOT BETWEEN 300 AND 500)
                   OR (v.kind = 'rural' AND v.households > 200))"""
        )
    ).scalar()
    assert summary["no_staff"]["count"] == unstaffed > 0
    assert summary["no_party_cell"]["count"] == unorganised > 200  # PROVENANCE.md: about 235
    assert summary["size_norm"]["count"] == oversized > 0


def _import(session, tmp_path, features, valid_from):
    path = f.write_geojson(tmp_path / f"units_{valid_from:%Y%m%d}.geojson", features)
    import_units(session, path, valid_from=valid_from, settings=_settings())


def _settings():
    from geo.settings import Settings

    return Settings(database_url=None)


def _with_hole(features, grid_no, hole):
    out = []
    for feature in features:
        if feature["properties"]["code"] == f.grid_code(grid_no):
            cell = box(*_bounds(feature)).difference(hole)
            feature = f.feature(feature["properties"]["code"], cell, kind="urban", households=400)
        out.append(feature)
    return out


def _bounds(feature):
    xs = [p[0] for p in feature["geometry"]["coordinates"][0]]
    ys = [p[1] for p in feature["geometry"]["coordinates"][0]]
    return min(xs), min(ys), max(xs), max(ys)


HOLE_1 = box(f.X0 + 0.005, f.Y0 + 0.025, f.X0 + 0.006, f.Y0 + 0.026)  # in grid 001 (NW)
HOLE_4 = box(f.X0 + 0.030, f.Y0 + 0.005, f.X0 + 0.031, f.Y0 + 0.006)  # in grid 004 (SE)


def places(run):
    """The findings with a place (areas and cases), without the staff/party ones of factory grids."""
    return [x for x in run.findings if x.kind.value in GEOMETRIC or x.kind == Kind.CASE_IN_GAP]


def _add_case(session, lon, lat, *, status="reported", assign_status="unassigned") -> int:
    return session.execute(
        text(
            """INSERT INTO cases (number, source, category, description, geom, input_crs, location_source,
                   assign_status, assign_rule, assignment, tier, unit_code, status)
               VALUES ('T' || nextval('cases_id_seq'), 'patrol', '0101', 'test',
                   ST_SetSRID(ST_MakePoint(:lon, :lat), 4490),
                   'wgs84', 'gps', :assign_status, :assign_status, '{}', 'community', :unit, :status)
               RETURNING id"""
        ),
        {"lon": lon, "lat": lat, "status": status, "assign_status": assign_status, "unit": f.COMMUNITY},
    ).scalar_one()


def test_reports_are_stored_and_findings_marked_new_since_the_last(session, settings, tmp_path):
    _import(session, tmp_path, _with_hole(f.hierarchy(), 1, HOLE_1), T1)
    case_id = _add_case(session, *HOLE_1.centroid.coords[0])
    _add_case(session, *HOLE_1.centroid.coords[0], status="closed")  # finished: not a finding
    _add_case(session, f.X0 + 0.01, f.Y0 + 0.01, assign_status="assigned")  # held by a grid

    first = store.run_coverage(session, f.COUNTY, tolerances(settings))
    assert sorted(x.kind for x in places(first)) == [Kind.CASE_IN_GAP, Kind.GAP]
    assert all(x.new for x in first.findings) and first.previous_report is None
    [case] = [x for x in first.findings if x.kind == Kind.CASE_IN_GAP]
    assert case.detail["case_id"] == case_id and case.units == (f.COMMUNITY,)
    [gap] = [x for x in first.findings if x.kind == Kind.GAP]
    assert 9000 < gap.area_m2 < 11000  # 0.001° × 0.001° at 33.4° N ≈ 93 m × 111 m
    report_id = store.save_report(session, first)

    # The hole in grid 001 stays; grid 004 gets one too, in a new version.
    _import(session, tmp_path, _with_hole(_with_hole(f.hierarchy(), 1, HOLE_1), 4, HOLE_4), T2)
    second = store.run_coverage(session, f.COUNTY, tolerances(settings))
    assert second.previous_report == report_id
    gaps = sorted((x.geometry.intersects(HOLE_4), x.new) for x in second.findings if x.kind == Kind.GAP)
    assert gaps == [(False, False), (True, True)]
    assert not next(x for x in second.findings if x.kind == Kind.CASE_IN_GAP).new
    store.save_report(session, second)

    reports = store.list_reports(session, f.COUNTY)
    assert [r["id"] for r in reports][1] == report_id
    assert reports[0]["summary"]["gap"] == {
        "count": 2,
        "new": 1,
        "resolved": 0,
        "area_m2": reports[0]["summary"]["gap"]["area_m2"],
    }
    stored = session.execute(
        text(
            """SELECT kind, units, new, ST_GeometryType(geom) AS type
               FROM coverage_findings WHERE report_id = :id"""
        ),
        {"id": reports[0]["id"]},
    ).all()
    assert sorted((r.kind, r.new, r.type) for r in stored if r.type) == [
        ("case_in_gap", False, "ST_Point"),
        ("gap", False, "ST_Polygon"),
        ("gap", True, "ST_Polygon"),
    ]
    assert (
        json.loads(json.dumps(reports[0]["tolerances"]))["sliver_width_m"] == settings.coverage_sliver_width_m
    )

    # As of a date before the second version, only the first hole is there.
    before = store.run_coverage(
        session, f.COUNTY, tolerances(settings), at=datetime(2025, 3, 1, tzinfo=CHINA)
    )
    assert [x.kind for x in before.findings if x.kind == Kind.GAP] == [Kind.GAP]


def test_people_facts_come_from_the_store(session, settings, tmp_path):
    _import(session, tmp_path, f.hierarchy(), T1)
    g1, g2 = f.grid_code(1), f.grid_code(2)
    session.execute(
        text(
            """INSERT INTO staff (unit_code, role, name)
               VALUES (:g1, 'grid_chief', '甲'), (:g2, 'volunteer', '乙')"""
        ),
        {"g1": g1, "g2": g2},
    )
    session.execute(
        text("INSERT INTO party_cells (unit_code, kind, name) VALUES (:g1, 'branch', '支部')"), {"g1": g1}
    )
    run = store.run_coverage(session, f.COMMUNITY, tolerances(settings))
    found = sorted((x.kind.value, x.units[0][-3:]) for x in run.findings)
    assert found == [
        ("no_party_cell", "002"),
        ("no_party_cell", "003"),
        ("no_party_cell", "004"),
        ("no_staff", "002"),
        ("no_staff", "003"),
        ("no_staff", "004"),
    ]
