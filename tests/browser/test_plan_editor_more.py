"""The planner's redraw editor `/plan` in headless chromium, continued: reshape, create and move,
and the coverage findings on the planner's map (helpers shared with test_plan_editor.py)."""

from __future__ import annotations

import pytest
import shapely
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from geo.coverage import Kind, Tolerances
from store import coverage as coverage_store
from tests.browser.conftest import LiveServer
from tests.browser.test_map import open_map
from tests.browser.test_plan_editor import (
    click_at,
    click_unit,
    community,
    geometry,
    inside_only,
    neighbours,
    new_draft,
    open_editor,
    panels_after,
    shot,
    stamp,
)


def area_findings(context: BrowserContext, community: str) -> int:
    """Gaps and overlaps /coverage finds between the grids of a community now (micro-grids, which
    need not cover their grid, aside)."""
    answer = context.request.get(f"/coverage?unit={community}")
    assert answer.status == 200, answer.text()
    found = [x["properties"] for x in answer.json()["findings"]["features"]]
    gaps = [p for p in found if p["kind"] == "gap" and p["units"] == [community]]
    overlaps = [p for p in found if p["kind"] == "overlap" and all(len(u) == 15 for u in p["units"])]
    return len(gaps) + len(overlaps)


def test_reshape_the_boundary_between_two_grids_leaves_no_gap_or_overlap(desktop_as, live_server: LiveServer):
    code, grids = community(live_server)
    a, b = neighbours(live_server, grids)
    context = desktop_as(Role.PLANNER)
    found_before = area_findings(context, code)
    plan_id = new_draft(live_server, context, code, "调整边界")
    page = context.new_page()
    open_editor(page, plan_id)
    page.locator('[data-tool="reshape"]').click()
    click_unit(page, live_server, a, grids)
    click_unit(page, live_server, b, grids)
    ga, gb = geometry(live_server, a), geometry(live_server, b)
    shared = shapely.line_merge(ga.boundary.intersection(gb.boundary))
    if shared.geom_type != "LineString":
        shared = max(shapely.get_parts(shared), key=lambda line: line.length)
    start, end = shared.interpolate(0.3, normalized=True), shared.interpolate(0.7, normalized=True)
    middle = shared.interpolate(0.5, normalized=True)
    inward = ga.point_on_surface()
    dx, dy = inward.x - middle.x, inward.y - middle.y
    scale = 0.2 * shared.length / (dx * dx + dy * dy) ** 0.5
    bend = shapely.Point(middle.x + dx * scale, middle.y + dy * scale)  # into a: b gains area
    before = stamp(page)
    for p in (start, bend, end):
        click_at(page, p.x, p.y)
    page.locator('[data-action="finish"]').click()
    panels_after(page, before)
    expect(page.locator("#edits li")).to_have_count(1)
    expect(page.locator("#edits li")).to_contain_text("调整边界 reshape")
    impact = page.locator('[data-panel="impact"]')
    expect(impact.locator(f'tr[data-code="{a}"]')).to_contain_text("调整 changed")
    expect(impact.locator(f'tr[data-code="{b}"]')).to_contain_text("调整 changed")
    expect(page.locator('[data-panel="validation"] li[data-severity="error"]')).to_have_count(0)
    shot(page, "reshape")
    page.locator('[data-action="publish"]').click()
    page.locator('[data-action="confirm-publish"]').click()
    expect(page.locator("body")).to_have_attribute("data-published", "true")
    assert geometry(live_server, b).area > gb.area  # the published boundary moved into a
    assert area_findings(context, code) == found_before


def micro_grid_to_move(live_server: LiveServer, grids: list[str]) -> tuple[str, str] | None:
    """A micro-grid of one base grid that touches a neighbouring base grid, and that neighbour."""
    rows = text(
        """SELECT m.code AS micro, g.code AS grid FROM unit_versions m
           JOIN unit_versions g ON g.code = ANY(:grids) AND g.valid_to IS NULL
                AND substr(m.code, 1, 15) <> g.code AND ST_Length(ST_Intersection(m.geom, g.geom)) > 0
           WHERE m.valid_to IS NULL AND length(m.code) = 18 AND substr(m.code, 1, 15) = ANY(:grids)
           ORDER BY m.code LIMIT 1"""
    )
    with Session(live_server.engine) as session:
        row = session.execute(rows, {"grids": grids}).first()
    return (row.micro, row.grid) if row else None


def test_create_a_special_zone_and_move_a_micro_grid(desktop_as, live_server: LiveServer):
    code, grids = community(live_server, micro=True)
    context = desktop_as(Role.PLANNER)
    plan_id = new_draft(live_server, context, code, "新建专属网格")
    page = context.new_page()
    open_editor(page, plan_id)
    page.locator('[data-tool="create"]').click()
    inner = inside_only(live_server, grids[0], grids[1:])
    g = geometry(live_server, grids[0])
    r = min(g.bounds[2] - g.bounds[0], g.bounds[3] - g.bounds[1]) / 12
    for dx, dy in ((-r, -r), (r, -r), (r, r), (-r, r)):
        click_at(page, inner.x + dx, inner.y + dy)
    page.locator('[data-action="finish"]').click()
    page.get_by_label("名称 Name", exact=True).fill("实验学校 <script>")
    page.get_by_label("专属类型 Special type").select_option("school")
    before = stamp(page)
    page.locator('[data-action="confirm"]').click()
    panels_after(page, before)
    impact = page.locator('[data-panel="impact"]')
    expect(impact.locator("tr", has_text="实验学校 <script>")).to_contain_text("新建 created")
    created = page.evaluate(
        "Object.values(PlanEditor.state.draft).filter(f => f.properties.change === 'created')"
        ".map(f => [f.properties.code, f.properties.kind])"
    )
    assert [kind for _, kind in created] == ["special"]

    move = micro_grid_to_move(live_server, grids)
    if move is None:
        pytest.fail("the demo community has no micro-grid on a grid boundary", pytrace=False)
    micro, to = move
    page.locator('[data-tool="move"]').click()
    p = geometry(live_server, micro).point_on_surface()
    click_at(page, p.x, p.y)
    expect(page.locator("#selection")).to_contain_text(micro)
    page.get_by_label("移交给网格 To grid").select_option(to)
    before = stamp(page)
    page.locator('[data-action="confirm"]').click()
    panels_after(page, before)
    expect(page.locator("#edits li")).to_have_count(2)
    expect(page.locator("#edits li").nth(1)).to_contain_text(f"移交 move {micro} → {to}")
    expect(impact.locator(f'tr[data-code="{to}"]')).to_contain_text("调整 changed")
    shot(page, "create-move")


@pytest.fixture
def staffed_since_a_saved_report(live_server: LiveServer):
    """A saved coverage report of the demo county, then a grid chief for a grid it found unstaffed.

    Yields that grid; afterwards the staff row and the report are removed (other tests see none).
    """
    with Session(live_server.engine) as session:
        run = coverage_store.run_coverage(session, "411681", Tolerances.from_settings(live_server.settings))
        report_id = coverage_store.save_report(session, run)
        grid = next(f.units[0] for f in run.findings if f.kind == Kind.NO_STAFF)
        staff_id = session.execute(
            text("INSERT INTO staff (unit_code, role, name) VALUES (:g, 'grid_chief', '张三') RETURNING id"),
            {"g": grid},
        ).scalar_one()
        session.commit()
    try:
        yield grid
    finally:
        with Session(live_server.engine) as session:
            session.execute(text("DELETE FROM staff WHERE id = :id"), {"id": staff_id})
            session.execute(text("DELETE FROM coverage_reports WHERE id = :id"), {"id": report_id})
            session.commit()


def test_the_planner_map_lists_coverage_findings_per_kind_highlights_their_grids_and_zooms(
    desktop_as, live_server: LiveServer, staffed_since_a_saved_report: str
):
    page = desktop_as(Role.PLANNER).new_page()
    open_map(page, "/map?view=planner")
    panel = page.locator(".gm-coverage")
    expect(panel).to_be_visible(timeout=15_000)
    # The grid staffed since the saved report: its `no_staff` finding is resolved, counted apart.
    expect(panel.locator('label[data-kind="resolved"] .gm-count')).to_have_text("1")
    resolved = panel.locator('li[data-kind="resolved"]')
    expect(resolved).to_have_count(1)
    expect(resolved).to_contain_text(f"已解决 resolved · 缺网格员 no staff · {staffed_since_a_saved_report}")
    assert page.evaluate("GridMap.coverage.resolved") == 1
    counts = page.evaluate("GridMap.coverage.kinds")
    assert counts, "the demo county has findings about people (no staff, no party cell, size norm)"
    for kind, n in counts.items():
        expect(panel.locator(f'label[data-kind="{kind}"] .gm-count')).to_have_text(str(n))
    items = page.evaluate(
        "Array.from(document.querySelectorAll('.gm-coverage li'))"
        ".map(li => [li.dataset.kind, li.dataset.unit])"
    )
    # A grid with findings of one kind only, among all the county's (the list may not show them all:
    # once any patrol exists, every unpatrolled grid also has a `not_patrolled` finding).
    with Session(live_server.engine) as session:
        run = coverage_store.run_coverage(session, "411681", Tolerances.from_settings(live_server.settings))
    kinds_of: dict[str, set[str]] = {}
    for finding in run.findings:
        kinds_of.setdefault(finding.units[0], set()).add(finding.kind.value)
    kind, grid = next((k, u) for k, u in items if kinds_of.get(u) == {k} and len(u) == 15)
    first = panel.locator(f'li[data-kind="{kind}"][data-unit="{grid}"]')
    assert page.evaluate("(c) => c in GridMap.coverageHighlighted", grid)  # the grid is highlighted
    first.click()
    # The predicate must be synchronous: a promise is truthy, so waiting on one would not wait.
    feature = page.evaluate("code => fetch('/grids/' + code).then(r => r.json())", grid)
    page.wait_for_function(
        "f => GridMap.map.getBounds().contains(L.geoJSON(f).getBounds()) && GridMap.map.getZoom() >= 14",
        arg=feature,
    )
    page.wait_for_timeout(1500)  # the tiles of the new view, for the picture
    shot(page, "coverage")
    panel.locator(f'label[data-kind="{kind}"] input').uncheck()  # the filter: that kind hides
    expect(panel.locator(f'li[data-kind="{kind}"]')).to_have_count(0)
    assert not page.evaluate("(c) => c in GridMap.coverageHighlighted", grid)
