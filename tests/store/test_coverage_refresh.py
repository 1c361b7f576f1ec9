"""Coverage of a province (issue 19 §2): the province run is its counties' runs plus its regions', and
the refresh after a publish (the changed groups only, merged into the stored report) is what a full
run finds, with the same new and resolved findings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import LineString, box
from sqlalchemy import text

from benchmarks.province import SIZES, make_province, write_province
from geo.coverage import Kind, Tolerances
from geo.coverage_groups import changed_groups, group_of
from geo.plans import Edit, Operation
from services import coverage_refresh, coverage_regions, plan_publish, plans
from services.coverage import coverage_of
from services.imports import import_units
from store import coverage as store
from store import coverage_groups as groups_store
from store.coverage_chain import chain_of
from tests import factories

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


def _as_stored(session, report_id):
    """Everything a reader sees of a stored report: each finding's id, key and geometry, in order."""
    rows = store.report_findings_where(session, report_id, "true", {})
    return [(i, _key(f), f.detail, None if f.geometry is None else f.geometry.wkb) for i, f in rows]


def _publish(session, settings, code, edits):
    plan = plans.open_plan(session, code, "chain", author="planner")
    for edit in edits:
        plans.add_edit(session, plan, edit, author="planner")
    plan_publish.publish(session, plan, settings, actor="planner")
    return plan


def _rows(session, column, report_id):
    return session.execute(
        text(f"SELECT count(*) FROM coverage_findings WHERE {column} = :id"), {"id": report_id}
    ).scalar_one()


def test_a_refresh_keeps_what_it_does_not_change_in_place_and_older_reports_read_as_saved(
    session, settings, tmp_path, damaged
):
    frame, geoms = damaged
    _import(session, settings, frame, tmp_path / "p.gpkg")
    tol = Tolerances.from_settings(settings)
    root = coverage_of(session, "41", tol, save=True)
    root_as_saved = _as_stored(session, root.report_id)
    assert len(root_as_saved) == len(root.findings) == _rows(session, "report_id", root.report_id)
    healed = Edit(Operation.REPLACE, {"code": COMMUNITY + "001"}, geoms[COMMUNITY + "001"])
    first_plan = _publish(session, settings, COMMUNITY, [healed])
    [first] = coverage_refresh.refresh_after_publish(session, first_plan, tol)
    # Only the fresh findings are written and only the replaced ones are marked; the rest stay put.
    assert _rows(session, "report_id", first.report_id) == len(first.findings)
    assert _rows(session, "retired_in", first.report_id) == first.replaced < len(root.findings) // 4
    assert _as_stored(session, root.report_id) == root_as_saved
    first_as_saved = _as_stored(session, first.report_id)
    assert len(first_as_saved) == len(root.findings) - first.replaced + len(first.findings)

    # A second refresh grows from the first: it heals the overlap of OTHER's grids.
    unlapped = Edit(Operation.REPLACE, {"code": OTHER + "001"}, geoms[OTHER + "001"])
    second_plan = _publish(session, settings, OTHER, [unlapped])
    full = coverage_of(session, "41", tol)  # what a full run finds now, against `first`
    [second] = coverage_refresh.refresh_after_publish(session, second_plan, tol)
    assert second.previous_report == first.report_id
    assert sorted(map(_key, store.report_findings(session, second.report_id))) == sorted(
        map(_key, full.findings)
    )
    assert (Kind.OVERLAP, (OTHER + "001", OTHER + "002")) in {(f.kind, f.units) for f in second.resolved}
    assert _as_stored(session, first.report_id) == first_as_saved
    assert _as_stored(session, root.report_id) == root_as_saved
    # The comparison of a stored report with the one before it reads both through their chain.
    compared = store.compare_report(session, second.report_id, "41")
    assert compared["previous_report"] == first.report_id
    assert [f["properties"]["units"] for f in compared["resolved"]["features"]] == [
        [OTHER + "001", OTHER + "002"]
    ]
    # A report is refreshed once: growing from `first` again is refused and writes nothing.
    before = session.execute(text("SELECT count(*) FROM coverage_reports")).scalar_one()
    assert groups_store.save_merged(session, "41", first.report_id, [], [], {}, tol) is None
    assert session.execute(text("SELECT count(*) FROM coverage_reports")).scalar_one() == before


def test_a_full_run_after_refreshes_starts_a_chain_of_its_own(session, settings, tmp_path, damaged):
    frame, geoms = damaged
    _import(session, settings, frame, tmp_path / "p.gpkg")
    tol = Tolerances.from_settings(settings)
    root = coverage_of(session, "41", tol, save=True)
    healed = Edit(Operation.REPLACE, {"code": COMMUNITY + "001"}, geoms[COMMUNITY + "001"])
    [refreshed] = coverage_refresh.refresh_after_publish(
        session, _publish(session, settings, COMMUNITY, [healed]), tol
    )
    refreshed_as_saved = _as_stored(session, refreshed.report_id)
    full = coverage_of(session, "41", tol, save=True)
    assert full.previous_report == refreshed.report_id
    chains = dict(
        session.execute(
            text("SELECT id, base_report_id FROM coverage_reports WHERE id = ANY(:ids)"),
            {"ids": [root.report_id, refreshed.report_id, full.report_id]},
        ).all()
    )
    assert chains == {root.report_id: root.report_id, refreshed.report_id: root.report_id,
                      full.report_id: full.report_id}  # fmt: skip
    # It holds all its findings itself, reads as it ran (nothing new: the refresh saw it all) ...
    assert _rows(session, "report_id", full.report_id) == len(full.findings)
    stored = store.report_findings(session, full.report_id)
    assert sorted(map(_key, stored)) == sorted(map(_key, full.findings))
    assert not any(f.new for f in stored) and not full.resolved
    # ... and the reports of the old chain still read as they were saved.
    assert _as_stored(session, refreshed.report_id) == refreshed_as_saved
    # A refresh after it grows from it, not from the old chain.
    x0, y0, x1, y1 = geoms[COMMUNITY + "004"].bounds
    cut = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    plan = _publish(session, settings, COMMUNITY, [Edit(Operation.SPLIT, {"code": COMMUNITY + "004"}, cut)])
    now = coverage_of(session, "41", tol)
    [again] = coverage_refresh.refresh_after_publish(session, plan, tol)
    assert again.previous_report == full.report_id
    assert sorted(map(_key, store.report_findings(session, again.report_id))) == sorted(
        map(_key, now.findings)
    )
    assert any(f.new for f in now.findings)  # the new grid's people findings


def test_a_report_already_refreshed_by_another_run_is_a_conflict_and_nothing_is_written(
    session, settings, tmp_path
):
    path = factories.write_geojson(tmp_path / "county.geojson", factories.hierarchy())
    import_units(session, path, valid_from=WHEN, settings=settings)
    tol = Tolerances.from_settings(settings)
    root = coverage_of(session, factories.COUNTY, tol, save=True).report_id
    [first] = coverage_refresh.refresh_after_changes(session, [factories.grid_code(1)], tol)
    # Another server's refresh of `first`, committed while this one analysed: still the older row.
    session.execute(
        text(
            """INSERT INTO coverage_reports (unit_code, created_at, base_report_id, grew_from)
               SELECT unit_code, created_at - interval '1 minute', base_report_id, id
               FROM coverage_reports WHERE id = :id"""
        ),
        {"id": first.report_id},
    )
    counts = "SELECT (SELECT count(*) FROM coverage_reports), (SELECT count(*) FROM coverage_findings)"
    before = session.execute(text(counts)).one()
    with pytest.raises(coverage_refresh.AlreadyRefreshed, match=f"report {first.report_id} "):
        coverage_refresh.refresh_after_changes(session, [factories.grid_code(1)], tol)
    assert session.execute(text(counts)).one() == before
    assert chain_of(session, first.report_id) == [root, first.report_id]
