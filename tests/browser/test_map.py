"""The live map `/map` in a real headless chromium against the live service (demo county)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from geo.coverage import Tolerances
from geo.crs import wgs84_to_gcj02
from store import coverage
from tests.browser.conftest import DESKTOP, DemoPosition, LiveServer, PageLog, bearer, sign_in, user_of

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIRST_VIEW_S = 3.0  # the budget: interactive with every default layer drawn
LIVE_S = 5.0  # a change shows on the open map within this
XSS = "<img src=x onerror=alert(1)>"


def api_headers(live_server: LiveServer) -> dict[str, str]:
    """Authorization of a county dispatcher for API calls the test makes itself."""
    return bearer(live_server.url, user_of(live_server.engine, Role.DISPATCHER, "411681"))


def open_map(page: Page, path: str) -> float:
    """Open a map page and wait until every default layer has drawn; seconds from navigation."""
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=15_000)
    return page.evaluate("GridMap.readyAt") / 1000


def screenshot(page: Page, name: str) -> None:
    """A picture of the view for people to look at (test-artifacts/ is not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"map-{name}.png"))


def drawn(page: Page, level: str) -> set[str]:
    """Codes of the units of `level` the page's renderer drew."""
    return set(page.evaluate(f"Array.from(GridMap.drawn[{level!r}] || [])"))


def db_codes(live_server: LiveServer, sql: str, **params: object) -> set[str]:
    """Codes a query on the live server's database returns."""
    with live_server.engine.connect() as conn:
        return set(conn.execute(text(sql), params).scalars())


CURRENT_GRIDS = """SELECT v.code FROM unit_versions v JOIN units u USING (code)
                   WHERE u.level = 'grid' AND v.valid_to IS NULL"""


def post_case(live_server: LiveServer, position: DemoPosition, description: str) -> dict:
    """Report a case through the API, as a phone would."""
    body = {"lon": position.lon, "lat": position.lat, "category": "0101", "description": description}
    answer = httpx.post(f"{live_server.url}/cases", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 201, answer.text
    return answer.json()


def marker(page: Page, case_id: int):
    """The open map's marker of a case (Realtime keeps one layer per case id)."""
    return page.evaluate(
        """id => { const l = GridMap.realtime.getLayer(id);
                   return l ? {light: l.feature.properties.light} : null; }""",
        case_id,
    )


def wait_for(page: Page, check: Callable[[], bool], seconds: float) -> float:
    """Poll `check` until it holds; the seconds it took (fails after `seconds`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        page.wait_for_timeout(100)
    return time.monotonic() - started


def test_dispatcher_view_draws_every_grid_from_the_service_only(
    desktop: BrowserContext, page_log: PageLog, live_server: LiveServer
):
    page = desktop.new_page()
    sizes: list[int] = []
    page.on(
        "requestfinished",
        lambda r: sizes.append(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]),
    )
    seconds = open_map(page, "/map")
    assert seconds <= FIRST_VIEW_S, f"first view took {seconds:.2f} s"
    assert drawn(page, "grid") == db_codes(live_server, CURRENT_GRIDS)
    assert len(drawn(page, "street")) == 21
    page.wait_for_load_state("networkidle")
    foreign = [url for url in page_log.requests if not live_server.is_local(url)]
    assert foreign == []
    assert page_log.console_errors() == [] and page_log.errors == []
    transferred = sum(sizes)
    assert transferred <= 1_500_000, f"{transferred:,} bytes"
    print(f"\nfirst view {seconds:.2f} s, {transferred:,} bytes transferred in {len(sizes)} requests")
    screenshot(page, "dispatcher")


def a_lone_grid_point(live_server: LiveServer) -> tuple[str, float, float]:
    """A grid and a point inside it that no other grid covers and no test reports cases at."""
    sql = text(
        """SELECT v.code, ST_X(p.g) AS lon, ST_Y(p.g) AS lat
           FROM unit_versions v JOIN units u USING (code)
           CROSS JOIN LATERAL (SELECT ST_PointOnSurface(v.geom) AS g) p
           WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.kind = 'rural'
             AND NOT EXISTS (SELECT 1 FROM unit_versions o JOIN units ou USING (code)
                             WHERE ou.level IN ('grid', 'micro_grid') AND o.valid_to IS NULL
                               AND o.code <> v.code AND ST_DWithin(o.geom, p.g, 0.002))
           ORDER BY v.code DESC LIMIT 1"""
    )
    with live_server.engine.connect() as conn:
        row = conn.execute(sql).one()
    return row.code, row.lon, row.lat


def test_a_grid_popup_opens_on_click_with_counts_and_no_personal_data(
    desktop: BrowserContext, live_server: LiveServer, page_log: PageLog
):
    code, lon, lat = a_lone_grid_point(live_server)
    page = desktop.new_page()
    open_map(page, f"/map?unit={code[:12]}")  # the grid's community: the grid is large on screen
    point = page.evaluate("([lat, lon]) => GridMap.map.latLngToContainerPoint([lat, lon])", [lat, lon])
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = page.locator(f".gm-unit[data-code='{code}']")
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("网格长")
    expect(popup).to_contain_text("待办 open")
    with live_server.engine.connect() as conn:
        names = conn.execute(text("SELECT name, phone FROM staff WHERE unit_code = :c"), {"c": code}).all()
    for name, phone in names:
        expect(popup).not_to_contain_text(name)
        if phone:
            expect(popup).not_to_contain_text(phone)
    # The drawn grids of a community view are exactly the community's grids.
    assert drawn(page, "grid") == db_codes(
        live_server, CURRENT_GRIDS + " AND v.code LIKE :p", p=code[:12] + "%"
    )
    assert page_log.console_errors() == [] and page_log.errors == []
    screenshot(page, "popup")


def test_cases_appear_turn_red_and_disappear_without_reload(
    desktop: BrowserContext, live_server: LiveServer, demo_position: DemoPosition
):
    page = desktop.new_page()
    open_map(page, "/map")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    case = post_case(live_server, demo_position, f"map live test {uuid.uuid4().hex[:8]}")
    took = wait_for(page, lambda: marker(page, case["id"]) is not None, LIVE_S)
    print(f"\nnew case on the map after {took:.1f} s")
    assert marker(page, case["id"])["light"] == "green"
    with live_server.engine.begin() as conn:  # its stage runs out: the clock says red
        conn.execute(
            text(
                """UPDATE cases SET stage_yellow_at = now() - interval '2 hours',
                       stage_due_at = now() - interval '1 hour' WHERE id = :id"""
            ),
            {"id": case["id"]},
        )
    wait_for(page, lambda: marker(page, case["id"])["light"] == "red", LIVE_S)
    # The marker's icon shows it (or, clustered, the cluster takes its worst colour).
    assert page.evaluate(
        "id => GridMap.realtime.getLayer(id).options.icon.options.className", case["id"]
    ).startswith("gm-case gm-light-red")
    expect(page.locator(f".gm-caselist li[data-case-id='{case['id']}']")).to_have_class("gm-light-red")
    headers = api_headers(live_server)
    path = ("verified", "filed", "dispatched", "accepted", "in_progress", "handled", "checked", "closed")
    for status in path:
        url = f"{live_server.url}/cases/{case['id']}/transitions"
        answer = httpx.post(url, json={"to": status}, headers=headers)
        assert answer.status_code == 200, answer.text
    wait_for(page, lambda: marker(page, case["id"]) is None, LIVE_S)
    assert navigations == [], "the page reloaded"


def test_a_case_description_with_markup_shows_as_text(
    desktop: BrowserContext, live_server: LiveServer, demo_position: DemoPosition, page_log: PageLog
):
    dialogs: list[str] = []
    page = desktop.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    case = post_case(live_server, demo_position, XSS)
    open_map(page, f"/map?grid={demo_position.assignment.grid.code}")
    page.evaluate(
        """id => new Promise(done => { const l = GridMap.realtime.getLayer(id);
             GridMap.map.eachLayer(c => { if (c.zoomToShowLayer && c.hasLayer(l))
               c.zoomToShowLayer(l, () => { l.openPopup(); done(); }); }); })""",
        case["id"],
    )
    popup = page.locator(f".gm-case-popup[data-case-id='{case['id']}']")
    expect(popup.locator(".gm-description")).to_have_text(XSS)
    expect(popup.locator(".gm-explanation")).to_contain_text("Assigned")
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []
    assert page_log.errors == []
    screenshot(page, "case-popup")


def test_field_worker_view_shows_the_grid_its_neighbours_and_the_report_button(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, demo_position: DemoPosition
):
    grid = demo_position.assignment.grid.code
    phone = sign_in(new_context(), live_server, Role.FIELD_WORKER, grid)
    page = phone.new_page()
    open_map(page, "/map")  # a field worker opens on their own grid
    neighbours = db_codes(
        live_server,
        """SELECT n.code FROM unit_versions me JOIN unit_versions n ON ST_Intersects(n.geom, me.geom)
           JOIN units u ON u.code = n.code
           WHERE me.code = :g AND me.valid_to IS NULL AND n.valid_to IS NULL AND u.level = 'grid'""",
        g=grid,
    )
    assert grid in neighbours and len(neighbours) > 1
    assert drawn(page, "grid") == neighbours
    report = page.get_by_role("link", name="上报事件 Report a case")
    expect(report).to_have_attribute("href", "/report")
    screenshot(page, "field-worker")


def test_planner_view_shows_the_coverage_findings(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, page_log: PageLog
):
    context = new_context(viewport=DESKTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
    page = sign_in(context, live_server, Role.PLANNER, "411681").new_page()
    open_map(page, "/map?view=planner")
    with Session(live_server.engine) as session:
        run = coverage.run_coverage(session, "411681", Tolerances.from_settings(live_server.settings))
    # The demo county tiles cleanly (tests/store/test_coverage_db.py): its findings are about people.
    assert [f for f in run.findings if f.geometry is not None] == [] and run.findings
    expect(page.locator(".gm-info")).to_contain_text(
        f"覆盖问题 coverage findings: {len(run.findings)}", timeout=15_000
    )
    assert page.evaluate("GridMap.coverage.features") == len(run.findings)
    assert drawn(page, "grid") == db_codes(live_server, CURRENT_GRIDS)
    foreign = [url for url in page_log.requests if not live_server.is_local(url)]
    assert foreign == [] and page_log.errors == []
    screenshot(page, "planner")


def test_search_fits_the_map_to_the_unit_found(desktop: BrowserContext, live_server: LiveServer):
    code, _, _ = a_lone_grid_point(live_server)
    page = desktop.new_page()
    open_map(page, "/map")
    page.fill(".gm-search input", code)
    page.locator(f".gm-results li[data-code='{code}']").click()
    page.wait_for_function("() => GridMap.map.getZoom() >= 14")
    inside = page.evaluate(
        """code => fetch('/grids/' + code).then(r => r.json()).then(f => {
             const b = L.geoJSON(f).getBounds(); return GridMap.map.getBounds().contains(b); })""",
        code,
    )
    assert inside


def test_the_page_shifts_like_geo_crs(desktop: BrowserContext):
    page = desktop.new_page()
    page.goto("/map")
    points = [(114.9, 33.43), (116.39, 39.91), (121.47, 31.23), (87.6, 43.8)]
    for lon, lat in points:
        js = page.evaluate("([x, y]) => GridMap.wgs84ToGcj02(x, y)", [lon, lat])
        gx, gy = wgs84_to_gcj02(lon, lat)
        assert abs(js[0] - float(gx)) < 1e-12 and abs(js[1] - float(gy)) < 1e-12
        back = page.evaluate("([x, y]) => GridMap.gcj02ToWgs84(x, y)", js)
        assert abs(back[0] - lon) < 1e-9 and abs(back[1] - lat) < 1e-9


# ---------------------------------------------------------------- the map's rough edges (issue 16 §4)
