"""The planner's redraw editor (`/plan`, `/plan/{id}`) in headless chromium, with mouse events on the map.

Each test works on a community of the demo county that no other test of this file touches (the
live server's database is shared by the whole run and never rolled back).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import shapely
from playwright.sync_api import BrowserContext, Page, expect
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from tests.browser.conftest import LiveServer, PageLog
from tests.browser.test_map import open_map

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PUBLISHED_SHOWS_S = 10.0  # the issue: every open map shows a published boundary within this


def shot(page: Page, name: str) -> None:
    """A picture for people to look at (test-artifacts/ is not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"plan-editor-{name}.png"))


_taken: set[str] = set()


def community(live_server: LiveServer, *, min_grids: int = 3, micro: bool = False) -> tuple[str, list[str]]:
    """A demo community no other test here used, with its current grids (by code; base grids first).

    With micro-grids when `micro`, else without: an edit published here then leaves no micro-grid
    outside its grid, and the demo county keeps tiling cleanly for the other tests of the run.
    """
    has_micro = text("SELECT EXISTS (SELECT 1 FROM units WHERE level = 'micro_grid' AND code LIKE :p)")
    rows = text(
        """SELECT substr(v.code, 1, 12) AS community,
                  array_agg(v.code ORDER BY v.kind = 'special', v.code) AS grids
           FROM unit_versions v JOIN units u USING (code)
           WHERE u.level = 'grid' AND v.valid_to IS NULL
           GROUP BY 1 HAVING count(*) FILTER (WHERE v.kind <> 'special') >= :n ORDER BY 1"""
    )
    with Session(live_server.engine) as session:
        for row in session.execute(rows, {"n": min_grids}).all():
            if row.community in _taken:
                continue
            if session.execute(has_micro, {"p": row.community + "%"}).scalar_one() == micro:
                _taken.add(row.community)
                return row.community, list(row.grids)
    pytest.fail("no demo community left with enough grids", pytrace=False)


def geometry(live_server: LiveServer, code: str) -> shapely.Geometry:
    """The current geometry of a unit (storage lon/lat, as the map draws it)."""
    with Session(live_server.engine) as session:
        raw = session.execute(
            text("SELECT ST_AsBinary(geom) FROM unit_versions WHERE code = :c AND valid_to IS NULL"),
            {"c": code},
        ).scalar_one()
    return wkb.loads(bytes(raw))


def pixel(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """Page coordinates of a point on the editor's map (window.gridmapMap)."""
    point = page.evaluate("([lat, lon]) => window.gridmapMap.latLngToContainerPoint([lat, lon])", [lat, lon])
    box = page.locator("#map").bounding_box()
    return box["x"] + point["x"], box["y"] + point["y"]


def click_at(page: Page, lon: float, lat: float) -> None:
    """A person's click at a place on the map."""
    x, y = pixel(page, lon, lat)
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def inside_only(live_server: LiveServer, code: str, others: list[str]) -> shapely.Point:
    """A point of a unit that no other unit of `others` covers (special grids overlay base grids)."""
    rest = geometry(live_server, code).difference(
        shapely.union_all([geometry(live_server, o) for o in others])
    )
    return (
        rest.buffer(-1e-5).point_on_surface() if not rest.buffer(-1e-5).is_empty else rest.point_on_surface()
    )


def click_unit(page: Page, live_server: LiveServer, code: str, siblings: list[str]) -> None:
    """Click inside a unit, where no sibling overlays it."""
    p = inside_only(live_server, code, [s for s in siblings if s != code])
    click_at(page, p.x, p.y)
    expect(page.locator("#selection")).to_contain_text(code)


def panels_after(page: Page, before: str | None) -> str:
    """Wait until the panels were refreshed after `before` (the page stamps body[data-panels-at])."""
    page.wait_for_function(
        "(b) => document.body.dataset.panelsAt && document.body.dataset.panelsAt !== b", arg=before or ""
    )
    return page.evaluate("document.body.dataset.panelsAt")


def stamp(page: Page) -> str | None:
    """The panels' last refresh stamp."""
    return page.evaluate("document.body.dataset.panelsAt || null")


def open_draft_by_search(page: Page, code: str, title: str) -> int:
    """On /plan: search the unit by code, pick it, open a new draft; the new plan's id."""
    page.goto("/plan")
    page.get_by_label("搜索编码或名称 Search code or name").fill(code)
    page.locator(f'#results li[data-code="{code}"]').click()
    page.get_by_label("新草案标题 Title of a new draft").fill(title)
    page.locator('[data-action="new-draft"]').click()
    page.wait_for_url("**/plan/*")
    panels_after(page, None)
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_split_a_grid_name_the_pieces_see_the_impact_publish_and_an_open_map_redraws(
    desktop_as, live_server: LiveServer, page_log: PageLog
):
    code, grids = community(live_server)
    target = grids[0]
    watcher = desktop_as(Role.DISPATCHER).new_page()
    open_map(watcher, f"/map?unit={code}")
    page = desktop_as(Role.PLANNER).new_page()
    plan_id = open_draft_by_search(page, code, "拆分第1网格 <b>东西两片</b>")
    expect(page.locator("#plan-title")).to_contain_text("<b>东西两片</b>")  # a title is text, never markup

    page.locator('[data-tool="split"]').click()
    click_unit(page, live_server, target, grids)
    g = geometry(live_server, target)
    minx, _, maxx, _ = g.bounds
    middle = inside_only(live_server, target, grids[1:])
    before = stamp(page)
    click_at(page, minx - (maxx - minx) * 0.05, middle.y)
    click_at(page, maxx + (maxx - minx) * 0.05, middle.y)
    page.locator('[data-action="finish"]').click()
    names = page.locator("input[data-piece]")
    expect(names.first).to_be_visible()
    count = names.count()
    assert count >= 2
    for i in range(count):
        names.nth(i).fill(f"第1网格{'北南东西'[i % 4]}片")
    shot(page, "split-preview")
    page.locator('[data-action="confirm"]').click()
    panels_after(page, before)
    impact = page.locator('[data-panel="impact"]')
    expect(impact.locator(f'tr[data-code="{target}"]')).to_contain_text("→")
    created = page.evaluate(
        "Object.values(PlanEditor.state.draft).filter(f => f.properties.change === 'created')"
        ".map(f => f.properties.code)"
    )
    assert len(created) == count - 1
    expect(impact.locator(f'tr[data-code="{created[0]}"]')).to_contain_text("第1网格南片")
    expect(page.locator('[data-panel="validation"]')).to_be_visible()
    expect(page.locator('[data-panel="balance"] .pe-bar-row').first).to_be_visible()
    shot(page, "split-impact")

    page.locator('[data-action="publish"]').click()
    expect(page.locator("#dialog-body")).to_contain_text(created[0])
    page.locator('[data-action="confirm-publish"]').click()
    expect(page.locator("body")).to_have_attribute("data-published", "true")
    published_at = time.monotonic()
    with Session(live_server.engine) as session:
        status = session.execute(text("SELECT status FROM plans WHERE id = :i"), {"i": plan_id}).scalar_one()
    assert status == "published"
    # The open map, never reloaded, draws the new grid within 10 s.
    watcher.wait_for_function(
        "(c) => (GridMap.drawn.grid || new Set()).has(c)", arg=created[0], timeout=PUBLISHED_SHOWS_S * 1000
    )
    assert time.monotonic() - published_at <= PUBLISHED_SHOWS_S
    shot(watcher, "map-after-publish")
    assert not page_log.errors, page_log.errors


def new_draft(live_server: LiveServer, context: BrowserContext, unit: str, title: str) -> int:
    """A draft opened through the API with the context's session (as the start page does)."""
    answer = context.request.post("/plans", data={"unit": unit, "title": title})
    assert answer.status == 201, answer.text()
    return answer.json()["id"]


def open_editor(page: Page, plan_id: int) -> None:
    """Open the editor on a draft and wait for its panels."""
    page.goto(f"/plan/{plan_id}")
    panels_after(page, None)


def neighbours(live_server: LiveServer, grids: list[str]) -> tuple[str, str]:
    """Two base grids of the list that share a boundary line."""
    base = [g for g in grids if _kind(live_server, g) != "special"]
    for i, a in enumerate(base):
        for b in base[i + 1 :]:
            shared = geometry(live_server, a).intersection(geometry(live_server, b))
            if shared.length > 0:
                return a, b
    pytest.fail("no two neighbouring base grids", pytrace=False)


def _kind(live_server: LiveServer, code: str) -> str | None:
    with Session(live_server.engine) as session:
        return session.execute(
            text("SELECT kind FROM unit_versions WHERE code = :c AND valid_to IS NULL"), {"c": code}
        ).scalar_one()


def test_merge_two_neighbouring_grids(desktop_as, live_server: LiveServer):
    code, grids = community(live_server)
    a, b = neighbours(live_server, grids)
    context = desktop_as(Role.PLANNER)
    plan_id = new_draft(live_server, context, code, "合并网格")
    page = context.new_page()
    open_editor(page, plan_id)
    page.locator('[data-tool="merge"]').click()
    click_unit(page, live_server, a, grids)
    click_unit(page, live_server, b, grids)
    page.get_by_label("保留编码 Keeps its code").select_option(a)
    before = stamp(page)
    page.locator('[data-action="confirm"]').click()
    panels_after(page, before)
    impact = page.locator('[data-panel="impact"]')
    expect(impact.locator(f'tr[data-code="{b}"]')).to_contain_text("撤销 retired")
    expect(impact.locator(f'tr[data-code="{a}"]')).to_contain_text("调整 changed")
    assert page.evaluate("(c) => !(c in PlanEditor.state.draft)", b)
    expect(page.locator("#edits li")).to_have_count(1)
    shot(page, "merge")
    # Swipe compare: the draft left of the slider (its pane clipped there), the current grids right.
    page.get_by_label("卷帘对比 Swipe").check()
    expect(page.locator(".leaflet-pe-current-pane path")).to_have_count(len(grids))
    point = inside_only(live_server, a, [g for g in grids if g != a])
    xy = pixel(page, point.x, point.y)
    on_draft = "([x, y]) => !!document.elementFromPoint(x, y)?.closest('.leaflet-pe-draft-pane')"
    swipe = page.get_by_label("卷帘位置 Swipe position (%)")
    swipe.fill("100")
    assert page.evaluate(on_draft, xy)  # the merged grid, drawn and clickable
    swipe.fill("0")
    expect(page.locator("body")).to_have_attribute("data-swipe-at", "0")
    assert not page.evaluate(on_draft, xy)  # clipped away: the current grids show there
    swipe.fill("50")
    shot(page, "swipe")
    page.get_by_label("卷帘对比 Swipe").uncheck()
    expect(page.locator(".leaflet-pe-current-pane path")).to_have_count(0)
    # Undo removes the last edit: the draft is back to the current grids.
    before = stamp(page)
    page.locator('[data-tool="undo"]').click()
    panels_after(page, before)
    expect(page.locator("#edits li.pe-muted")).to_have_count(1)
    assert page.evaluate("(c) => c in PlanEditor.state.draft", b)


def test_a_retire_that_leaves_a_gap_shows_the_gap_error_and_blocks_publish(
    desktop_as, live_server: LiveServer
):
    code, grids = community(live_server)
    target = grids[0]
    context = desktop_as(Role.PLANNER)
    plan_id = new_draft(live_server, context, code, "撤销网格")
    page = context.new_page()
    open_editor(page, plan_id)
    page.locator('[data-tool="retire"]').click()
    # By keyboard this time: the grid from the list instead of a click on the map.
    page.get_by_label("或从列表选择 Or pick from the list").select_option(target)
    expect(page.locator("#selection")).to_contain_text(target)
    page.get_by_label("并入 Into (或留空 or leave a gap)").select_option("")
    before = stamp(page)
    page.locator('[data-action="confirm"]').click()
    panels_after(page, before)
    validation = page.locator('[data-panel="validation"]')
    expect(validation.locator('li[data-kind="gap"][data-severity="error"]')).to_have_count(1)
    expect(validation.locator(".pe-summary")).to_contain_text("不能发布 cannot publish")
    expect(page.locator('[data-action="publish"]')).to_be_disabled()
    # The gap is drawn where it is: a red area on the map over the retired grid.
    drawn = page.evaluate(
        """() => { let n = 0; window.gridmapMap.eachLayer(l => {
             if (l.options && l.options.color === '#b00020' && l.getBounds) n++; }); return n; }"""
    )
    assert drawn >= 1
    shot(page, "retire-gap")
    with Session(live_server.engine) as session:
        status = session.execute(text("SELECT status FROM plans WHERE id = :i"), {"i": plan_id}).scalar_one()
    assert status == "draft"


def test_two_planners_two_drafts_on_one_grid_the_second_publish_shows_the_conflict(
    desktop_as, live_server: LiveServer
):
    code, grids = community(live_server)
    target = grids[0]
    pages = []
    for who in ("甲", "乙"):
        context = desktop_as(Role.PLANNER)
        plan_id = new_draft(live_server, context, code, f"{who}的草案")
        page = context.new_page()
        open_editor(page, plan_id)
        page.locator('[data-tool="attributes"]').click()
        click_unit(page, live_server, target, grids)
        page.get_by_label("名称 Name", exact=True).fill(f"{who}改的名字")
        before = stamp(page)
        page.locator('[data-action="confirm"]').click()
        panels_after(page, before)
        pages.append((page, plan_id))
    (first, first_id), (second, second_id) = pages
    second.locator('[data-action="publish"]').click()  # the second planner is about to confirm ...
    expect(second.locator("#dialog-body")).to_contain_text(target)
    first.locator('[data-action="publish"]').click()  # ... when the first publishes
    first.locator('[data-action="confirm-publish"]').click()
    expect(first.locator("body")).to_have_attribute("data-published", "true")
    second.locator('[data-action="confirm-publish"]').click()
    conflict = second.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text(target)
    expect(conflict).to_contain_text("1 → 2")
    expect(conflict).to_contain_text(f"#{first_id}")
    expect(second.locator("#status")).to_contain_text("冲突 Publish refused: conflict")
    # The conflict is a validation error now: publish stays refused until the draft is redone.
    expect(second.locator('[data-panel="validation"] li[data-kind="conflict"]')).to_have_count(1)
    expect(second.locator('[data-action="publish"]')).to_be_disabled()
    shot(second, "conflict")
    with Session(live_server.engine) as session:
        status = session.execute(
            text("SELECT status FROM plans WHERE id = :i"), {"i": second_id}
        ).scalar_one()
    assert status == "draft"  # the draft is kept


def test_a_viewer_gets_no_tools(desktop_as, live_server: LiveServer):
    code, _ = community(live_server, min_grids=1)
    planner = desktop_as(Role.PLANNER)
    plan_id = new_draft(live_server, planner, code, "只读")
    page = desktop_as(Role.VIEWER).new_page()
    page.goto(f"/plan/{plan_id}")
    expect(page.locator("#status")).to_contain_text("只读")
    expect(page.locator("[data-tool]")).to_have_count(0)
    expect(page.locator('[data-action="publish"]')).to_be_hidden()
    page.goto("/plan")
    page.get_by_label("搜索编码或名称 Search code or name").fill(code)
    page.locator(f'#results li[data-code="{code}"]').click()
    expect(page.locator("#drafts")).to_contain_text("需规划权限")
    expect(page.locator("#new-draft")).to_be_hidden()
