"""Coverage of a province (issue 19 §2): the province run is its counties' runs plus its regions', and
the refresh after a publish (the changed groups only, merged into the stored report) is what a full
run finds, with the same new and resolved findings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import LineString, box

from benchmarks.province import SIZES, make_province, write_province
from geo.coverage import Kind, Tolerances
from geo.coverage_groups import changed_groups, group_of
from geo.plans import Edit, Operation
from services import coverage_refresh, coverage_regions, plan_publish, plans
from services.coverage import coverage_of
from services.imports import import_units
from store import coverage as store

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
COMMUNITY = "410101001001"  # its grid 001 gets a hole (a gap), healed by the plan
OTHER = "410201002003"  # its grids 001 and 002 overlap, which no plan touches


@pytest.fixture(scope="module")
def damaged():
    """The tiny province with a gap between two counties of city 4101, two counties of 4102
    overlapping, a hole in a grid of COMMUNITY and two grids of OTHER overlapping."""
    frame = make_province(SIZES["tiny"], seed=3)
    geoms = frame.set_index("code").geometry
    minx, miny, maxx, maxy = shapely.intersection(geoms["410101"], geoms["410102"]).bounds
    a, b, c, d = shapely.intersection(geoms["410201"], geoms["410202"]).bounds
    hole = shapely.centroid(geoms[COMMUNITY + "001"]).buffer(0.001, quad_segs=2)
    changed = {
        "410101": shapely.difference(geoms["410101"], box(minx - 0.004, miny, maxx, maxy)),
        "410201": shapely.union(geoms["410201"], box(a, b + 0.01, c + 0.004, d - 0.01)),
        COMMUNITY + "001": shapely.difference(geoms[COMMUNITY + "001"], hole),
        OTHER + "001": shapely.union(
            geoms[OTHER + "001"],
            shapely.intersection(geoms[OTHER + "002"], geoms[OTHER + "001"].buffer(0.0015)),
        ),
    }
    frame["geometry"] = [changed.get(code, g) for code, g in zip(frame["code"], frame.geometry, strict=True)]
    return frame, geoms


def _import(session, settings, frame, path):
    import_units(session, write_province(frame, path), valid_from=WHEN, settings=settings)


def _key(finding):
    area = None if finding.area_m2 is None else round(finding.area_m2, 2)
    return finding.kind.value, tuple(finding.units), area, finding.detail.get("case_id"), finding.new


def test_a_province_is_its_counties_and_its_regions(session, settings, tmp_path, damaged):
    frame, _ = damaged
    _import(session, settings, frame, tmp_path / "p.gpkg")
    tol = Tolerances.from_settings(settings)
    province = coverage_of(session, "41", tol).findings
    parts = coverage_regions.between_regions(session, tol, under="41")
    for county in store.county_codes_under(session, "41"):
        parts += coverage_of(session, county, tol).findings
    assert sorted(k[:4] for k in map(_key, province)) == sorted(k[:4] for k in map(_key, parts))
    geometric = {(f.kind, f.units) for f in province if f.area_m2}
    assert (Kind.GAP, ("4101",)) in geometric and (Kind.OVERLAP, ("410201", "410202")) in geometric
    assert (Kind.GAP, (COMMUNITY,)) in geometric
    assert (Kind.OVERLAP, (OTHER + "001", OTHER + "002")) in geometric
    # The old way, the whole subtree in one analysis, finds the same problems.
    whole = store.run_coverage(session, "41", tol).findings
    assert sorted(k[:2] for k in map(_key, whole)) == sorted(k[:2] for k in map(_key, province))


def test_the_refresh_after_a_publish_is_what_a_full_run_finds(session, settings, tmp_path, damaged):
    frame, geoms = damaged
    _import(session, settings, frame, tmp_path / "p.gpkg")
    tol = Tolerances.from_settings(settings)
    before = coverage_of(session, "41", tol, save=True)
    county = coverage_of(session, "410101", tol, save=True)
    # A plan on COMMUNITY: grid 001 drawn whole again (the gap is healed), grid 004 split in two.
    plan = plans.open_plan(session, COMMUNITY, "补洞并拆分", author="planner")
    healed = Edit(Operation.REPLACE, {"code": COMMUNITY + "001"}, geoms[COMMUNITY + "001"])
    plans.add_edit(session, plan, healed, author="planner")
    x0, y0, x1, y1 = geoms[COMMUNITY + "004"].bounds
    cut = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    plans.add_edit(session, plan, Edit(Operation.SPLIT, {"code": COMMUNITY + "004"}, cut), author="planner")
    published = plan_publish.publish(session, plan, settings, actor="planner")
    assert published["created"] == [COMMUNITY + "005"]  # 004 keeps its code for one half

    full = coverage_of(session, "41", tol)  # compared with `before`, as the refresh is
    county_full = store.run_coverage(session, "410101", tol)
    refreshed = {r.unit: r for r in coverage_refresh.refresh_after_publish(session, plan, tol)}
    assert set(refreshed) == {"41", "410101"}  # the units with a stored report above the changes
    assert refreshed["41"].previous_report == before.report_id
    assert refreshed["41"].groups == sorted(changed_groups(store_codes(published)))
    stored = store.report_findings(session, refreshed["41"].report_id)
    assert sorted(map(_key, stored)) == sorted(map(_key, full.findings))
    assert sorted(map(_key, refreshed["41"].resolved)) == sorted(map(_key, full.resolved))
    # The hole's gap is resolved; the new grid's people findings are new; the overlap nobody
    # touched is kept, not new.
    assert (Kind.GAP, (COMMUNITY,)) in {(f.kind, f.units) for f in full.resolved}
    new = {(f.kind, f.units) for f in full.findings if f.new}
    assert (Kind.NO_STAFF, (COMMUNITY + "005",)) in new
    assert all(group_of(f) in refreshed["41"].groups for f in full.findings if f.new)
    [overlap] = [f for f in stored if f.units == (OTHER + "001", OTHER + "002")]
    assert overlap.new is False
    # The stored summary is the full run's, and the county's own report was refreshed alike.
    summary = {r["id"]: r["summary"] for r in store.list_reports(session, "41")}[refreshed["41"].report_id]
    for kind, entry in full.summary().items():
        assert {k: entry[k] for k in ("count", "new", "resolved")} == {
            k: summary[kind][k] for k in ("count", "new", "resolved")
        }, kind
        assert abs(entry.get("area_m2", 0) - summary[kind].get("area_m2", 0)) < 0.05
    assert refreshed["410101"].previous_report == county.report_id
    county_stored = store.report_findings(session, refreshed["410101"].report_id)
    assert sorted(map(_key, county_stored)) == sorted(map(_key, county_full.findings))
    # The background job's step finds the plan by its publication time, and finds nothing new
    # again; after its mark, nothing is pending.
    again, mark = coverage_refresh.refresh_pending(session, tol, WHEN)
    assert {r.unit for r in again} == {"41", "410101"} and mark > WHEN
    assert not any(f.new for r in again for f in r.findings) and not any(r.resolved for r in again)
    assert coverage_refresh.refresh_pending(session, tol, mark) == ([], mark)


def store_codes(published: dict) -> list[str]:
    """Every code a publish created, changed or retired."""
    return [*published["created"], *published["changed"], *published["retired"]]
