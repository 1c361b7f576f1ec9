"""The live map `/map` in a real headless chromium against the live service (demo county)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from geo.coverage import Tolerances
from geo.crs import wgs84_to_gcj02
from store import coverage, users
from tests.browser.conftest import DemoPosition, LiveServer, PageLog

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
FIRST_VIEW_S = 3.0  # the budget: interactive with every default layer drawn
LIVE_S = 5.0  # a change shows on the open map within this
XSS = "<img src=x onerror=alert(1)>"


PASSWORD = "map-test-password"


def user_of(live_server: LiveServer, role: Role, unit: str) -> str:
    """A new user of `role` in `unit`, made in the live server's database; their name."""
    name = f"map-{role}-{uuid.uuid4().hex[:8]}"
    with Session(live_server.engine) as session, session.begin():
        users.add_user(session, name, PASSWORD, role, unit)
    return name


def sign_in(context: BrowserContext, live_server: LiveServer, role: Role, unit: str) -> BrowserContext:
    """Sign `context` in through the login form's endpoint (the session cookie stays in the context)."""
    answer = context.request.post(
        "/auth/login", form={"username": user_of(live_server, role, unit), "password": PASSWORD, "next": "/"},
        max_redirects=0,
    )  # fmt: skip
    assert answer.status == 303 and "failed" not in answer.headers["location"], answer.headers
    return context


@pytest.fixture
def desktop(new_context: Callable[..., BrowserContext], live_server: LiveServer) -> BrowserContext:
    """A county dispatcher's desktop browser, signed in (the fixture's defaults are a phone)."""
    context = new_context(viewport=DESKTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
    return sign_in(context, live_server, Role.DISPATCHER, "411681")


def api_headers(live_server: LiveServer) -> dict[str, str]:
    """Authorization of a county dispatcher for API calls the test makes itself."""
    name = user_of(live_server, Role.DISPATCHER, "411681")
    answer = httpx.post(f"{live_server.url}/auth/token", data={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


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
    page.wait_for_function("GridMap.map.getZoom() >= 14")
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

PHONE = {"width": 390, "height": 844}


def box_of(page: Page, selector: str) -> dict:
    """The bounding box of the first element matching `selector` (it must be on screen)."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def overlap(a: dict, b: dict) -> bool:
    """Whether two bounding boxes overlap."""
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and (a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])
    )


def click_at(page: Page, lat: float, lon: float) -> None:
    """Click the map where (lat, lon) is drawn, as a person would."""
    point = page.evaluate("([lat, lon]) => GridMap.map.latLngToContainerPoint([lat, lon])", [lat, lon])
    box = box_of(page, ".folium-map")
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def test_on_a_phone_panels_keep_clear_the_popup_fits_names_show_at_z13_and_my_location_works(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, page_log: PageLog
):
    code, lon, lat = a_lone_grid_point(live_server)
    context = sign_in(new_context(viewport=PHONE), live_server, Role.DISPATCHER, "411681")
    page = context.new_page()
    open_map(page, f"/map?unit={code[:12]}")
    # The legend (closed, with the party-cell entry) and the layer list (collapsed) leave the case list free.
    legend = page.locator(".gm-info")
    expect(legend.locator(".gm-legend-party")).to_contain_text("党组织 party cell")
    assert legend.get_attribute("open") is None
    cases = box_of(page, ".gm-caselist")
    for panel in (".gm-info", ".leaflet-control-layers", ".gm-search", ".gm-locate"):
        assert not overlap(box_of(page, panel), cases), panel
    page.locator(".gm-info summary").click()  # opened, it still stops above the case list
    assert not overlap(box_of(page, ".gm-info"), cases)
    page.locator(".gm-info summary").click()
    # The unit popup: inside the screen, a fixed width, name and code on top, values not one character a line.
    click_at(page, lat, lon)
    popup = page.locator(f".gm-unit[data-code='{code}']")
    expect(popup.locator(".gm-popup-head")).to_contain_text(code)
    # Leaflet pans the grown popup into view (animated): then no control covers its name.
    page.wait_for_function(
        """() => { const h = document.querySelector('.gm-unit .gm-popup-head h3'); if (!h) return false;
                   const r = h.getBoundingClientRect();
                   const top = document.elementFromPoint(r.left + 10, r.top + r.height / 2);
                   return !!top && !!top.closest('.gm-popup-head'); }""",
        timeout=5_000,
    )
    page.wait_for_timeout(300)
    shell = box_of(page, ".leaflet-popup")
    assert shell["x"] >= 0 and shell["x"] + shell["width"] <= PHONE["width"], shell
    assert shell["y"] >= 0 and shell["y"] + shell["height"] <= PHONE["height"], shell
    widths = page.eval_on_selector_all(
        ".gm-unit .gm-value", "vs => vs.map(v => v.getBoundingClientRect().width)"
    )
    assert widths and min(widths) >= 40, widths
    screenshot(page, "phone-popup")
    page.keyboard.press("Escape")
    # Names where they fit at z13 (communities, large grids).
    page.evaluate("([lat, lon]) => GridMap.map.setView([lat, lon], 13, {animate: false})", [lat, lon])
    page.wait_for_function("() => GridMap.labels.zoom === 13 && GridMap.labels.shown > 0", timeout=10_000)
    assert page.locator(".gm-name").count() == page.evaluate("GridMap.labels.shown")
    community = page.evaluate("GridMap.styles.community({}, 13)")
    grid = page.evaluate("GridMap.styles.grid({kind: 'rural'})")
    assert community["weight"] >= 3 * grid["weight"] and community["dashArray"] and not grid["dashArray"]
    screenshot(page, "phone-z13-names")
    # My location: the phone's position (the context's geolocation) with its accuracy circle.
    page.get_by_role("button", name="我的位置 My location").click()
    page.wait_for_function("() => GridMap.myLocation && GridMap.myLocation.accuracy > 0", timeout=10_000)
    assert page_log.errors == []


def token_of(live_server: LiveServer, role: Role, unit: str) -> dict[str, str]:
    """Authorization of a new user of `role` in `unit`."""
    name = user_of(live_server, role, unit)
    answer = httpx.post(f"{live_server.url}/auth/token", data={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def post_patrol(live_server: LiveServer, grid: str, lon: float, lat: float) -> dict:
    """A field worker of `grid` walks 300 m north from (lon, lat), a point per 5 s, and uploads it."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    points = [
        {"t": (start + timedelta(seconds=5 * i)).isoformat(), "lon": lon,
         "lat": lat + i * 6 / 111_000, "accuracy_m": 5}
        for i in range(50)
    ]  # fmt: skip
    headers = {**token_of(live_server, Role.FIELD_WORKER, grid), "Idempotency-Key": str(uuid.uuid4())}
    answer = httpx.post(f"{live_server.url}/patrols", json={"points": points}, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


FRAME_TIMES = """() => new Promise(done => {
  const deltas = []; let last = performance.now(); let running = true;
  function tick(now) { deltas.push(now - last); last = now; if (running) requestAnimationFrame(tick); }
  requestAnimationFrame(tick);
  window.__stopFrames = () => { running = false; return deltas; };
  done();
})"""


def pan_p95_ms(page: Page) -> float:
    """p95 of requestAnimationFrame deltas while a person drags the map around (ms)."""
    box = box_of(page, ".folium-map")
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(FRAME_TIMES)
    for dx, dy in ((300, 0), (0, 200), (-300, 0), (0, -200)):
        page.mouse.move(cx, cy)
        page.mouse.down()
        for i in range(1, 31):
            page.mouse.move(cx + dx * i / 30, cy + dy * i / 30)
        page.mouse.up()
        page.wait_for_timeout(200)
    deltas = sorted(page.evaluate("window.__stopFrames()")[1:])
    return deltas[int(0.95 * (len(deltas) - 1))]


def test_dispatcher_map_clusters_party_cells_fans_out_cases_clears_search_and_shows_patrols(
    desktop: BrowserContext,
    new_context: Callable[..., BrowserContext],
    live_server: LiveServer,
    page_log: PageLog,
):
    code, lon, lat = a_lone_grid_point(live_server)
    spot = DemoPosition(lon=lon + 0.0003, lat=lat + 0.0003, assignment=None)  # type: ignore[arg-type]
    twins = [post_case(live_server, spot, f"same spot {i} {uuid.uuid4().hex[:6]}")["id"] for i in range(2)]
    patrol = post_patrol(live_server, code, lon, lat)
    page = desktop.new_page()
    open_map(page, "/map")
    # Party cells: clustered purple diamonds, with their own legend entry; panning stays smooth.
    expect(page.locator(".gm-info .gm-legend-party")).to_be_visible()
    without = pan_p95_ms(page)
    page.locator(".leaflet-control-layers label", has_text="党组织 Party cells").click()
    page.wait_for_function("() => GridMap.party.markers > 0", timeout=10_000)
    expect(page.locator(".gm-party-cluster").first).to_be_visible()
    markers, clusters = page.evaluate(
        "[GridMap.party.markers, document.querySelectorAll('.gm-party-cluster, .gm-party').length]"
    )
    assert clusters < markers, (clusters, markers)
    assert page.locator(".gm-party.gm-case, .gm-party-cluster.gm-cluster").count() == 0
    screenshot(page, "party-cells")
    p95 = pan_p95_ms(page)
    print(f"\npanning, p95 frame: {without:.1f} ms without party cells, {p95:.1f} ms with {markers} on")
    assert p95 <= 200, f"p95 frame {p95:.1f} ms while panning"
    page.locator(".leaflet-control-layers label", has_text="党组织 Party cells").click()  # off again
    # Search outline: drawn, then cleared.
    page.fill(".gm-search input", code)
    page.locator(f".gm-results li[data-code='{code}']").click()
    page.wait_for_function(f"() => GridMap.outlined === {code!r}")
    page.get_by_role("button", name="清除搜索 Clear search").click()
    page.wait_for_function("() => GridMap.outlined === null")
    assert page.locator("path[stroke-dasharray='6 4']").count() == 0
    # Two cases at one spot: one cluster; a click fans them out; the popup names the status in Chinese.
    page.evaluate(
        "([lat, lon]) => GridMap.map.setView([lat, lon], 16, {animate: false})", [spot.lat, spot.lon]
    )
    page.wait_for_function(
        "ids => ids.every(id => GridMap.realtime.getLayer(id))", arg=twins, timeout=int(LIVE_S * 1000)
    )
    where = page.evaluate(
        """ids => { const parents = ids.map(id =>
                      GridMap.caseCluster.getVisibleParent(GridMap.realtime.getLayer(id)));
                    if (parents[0] !== parents[1] || !parents[0].getChildCount) return null;
                    return GridMap.map.latLngToContainerPoint(parents[0].getLatLng()); }""",
        twins,
    )
    assert where is not None, "the two cases at one spot are not one cluster"
    map_box = box_of(page, ".folium-map")
    page.mouse.click(map_box["x"] + where["x"], map_box["y"] + where["y"])
    page.wait_for_function(
        "ids => ids.every(id => GridMap.realtime.getLayer(id)._preSpiderfyLatlng)", arg=twins, timeout=5_000
    )
    page.wait_for_timeout(3_500)  # the fan-out animation, and a poll of the cases (it must not fold the fan)
    spots = [box_of(page, f".gm-case[title='{n}']") for n in page.evaluate(
        "ids => ids.map(id => GridMap.realtime.getLayer(id).feature.properties.number)", twins
    )]  # fmt: skip
    assert abs(spots[0]["x"] - spots[1]["x"]) + abs(spots[0]["y"] - spots[1]["y"]) > 20, spots
    screenshot(page, "spiderfy")
    page.locator(".gm-case[title]").first.click()
    expect(page.locator(".gm-case-popup").first).to_contain_text("已上报 reported")
    page.keyboard.press("Escape")
    # A tooltip opened by hovering does not stay behind when the map is dragged.
    box = box_of(page, ".folium-map")
    x, y = box["x"] + 200, box["y"] + box["height"] - 150
    page.mouse.move(x, y)
    page.mouse.move(x + 5, y + 5)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(x + 5 + 10 * i, y + 5 - 8 * i)
    page.mouse.up()
    page.wait_for_timeout(200)
    tips = page.eval_on_selector_all(
        ".gm-tooltip",
        "ts => ts.map(t => { const r = t.getBoundingClientRect(); return [r.x + r.width / 2, r.y]; })",
    )
    for tx, ty in tips:  # a tooltip may open where the pointer now is, never where it was before the drag
        assert abs(tx - (x + 205)) < 120 and abs(ty - (y - 155)) < 120, (tx, ty)
    # Patrol tracks: off by default, switched on they show the worker's posted track; the grid's figure.
    assert page.evaluate("GridMap.patrols.loaded") is False
    page.locator(".leaflet-control-layers label", has_text="巡查轨迹 Patrol tracks").click()
    page.wait_for_function(f"() => GridMap.patrols.loaded && GridMap.patrols.ids.includes({patrol['id']})")
    page.evaluate("([lat, lon]) => GridMap.map.setView([lat, lon], 15, {animate: false})", [lat, lon])
    expect(page.locator(".gm-patrol-filter input[name='day']")).to_be_visible()
    screenshot(page, "patrols")
    click_at(page, lat - 0.0004, lon - 0.0004)
    expect(page.locator(f".gm-unit[data-code='{code}'] .gm-patrol-figure")).to_contain_text("覆盖率 coverage")
    assert page_log.errors == []
    # A planner may not see tracks: the API refuses, the layer leaves the list.
    context = new_context(viewport=DESKTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
    planner = sign_in(context, live_server, Role.PLANNER, "411681").new_page()
    open_map(planner, "/map")
    planner.locator(".leaflet-control-layers label", has_text="巡查轨迹 Patrol tracks").click()
    planner.wait_for_function("() => GridMap.patrols.denied === true")
    expect(planner.locator(".leaflet-control-layers label", has_text="巡查轨迹")).to_have_count(0)
