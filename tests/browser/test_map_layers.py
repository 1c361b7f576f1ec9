"""The live map `/map` in headless chromium, continued: on a phone, and the party-cell, case and
patrol layers of a dispatcher's map (helpers shared with test_map.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from access.roles import Role
from tests.browser.conftest import DESKTOP, DemoPosition, LiveServer, PageLog, bearer, sign_in, user_of
from tests.browser.test_map import LIVE_S, a_lone_grid_point, open_map, post_case, screenshot

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
    # `void`: setView returns the map, and Playwright would serialise its whole object graph (a minute).
    page.evaluate("([lat, lon]) => void GridMap.map.setView([lat, lon], 13, {animate: false})", [lat, lon])
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
    return bearer(live_server.url, user_of(live_server.engine, role, unit))


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
        "([lat, lon]) => void GridMap.map.setView([lat, lon], 16, {animate: false})", [spot.lat, spot.lon]
    )
    # The answer for this view, not only the twins (the search's view already held them): the view's
    # poll adds and removes the cases around, and markercluster folds an open fan on every such change.
    page.wait_for_function(
        "ids => GridMap.casesUpdatedAt > GridMap.movedAt && ids.every(id => GridMap.realtime.getLayer(id))",
        arg=twins,
        timeout=int(LIVE_S * 1000),
    )
    map_box = box_of(page, ".folium-map")
    for attempt in range(4):  # a click while the clusters still animate the new zoom misses: look again
        where = page.evaluate(
            """ids => { const parents = ids.map(id =>
                          GridMap.caseCluster.getVisibleParent(GridMap.realtime.getLayer(id)));
                        if (parents[0] !== parents[1] || !parents[0].getChildCount) return null;
                        return GridMap.map.latLngToContainerPoint(parents[0].getLatLng()); }""",
            twins,
        )
        assert where is not None, "the two cases at one spot are not one cluster"
        page.mouse.click(map_box["x"] + where["x"], map_box["y"] + where["y"])
        try:
            page.wait_for_function(
                "ids => ids.every(id => GridMap.realtime.getLayer(id)._preSpiderfyLatlng)",
                arg=twins,
                timeout=3_000,
            )
            break
        except PlaywrightTimeout:
            assert attempt < 3, "a click on the cluster never fanned its two cases out"
    page.wait_for_timeout(3_500)  # the fan-out animation, and a poll of the cases (it must not fold the fan)
    spots = [box_of(page, f".gm-case[title='{n}']") for n in page.evaluate(
        "ids => ids.map(id => GridMap.realtime.getLayer(id).feature.properties.number)", twins
    )]  # fmt: skip
    assert abs(spots[0]["x"] - spots[1]["x"]) + abs(spots[0]["y"] - spots[1]["y"]) > 20, spots
    screenshot(page, "spiderfy")
    page.locator(".gm-case[title]").first.click()
    expect(page.locator(".gm-case-popup").first).to_contain_text("已上报 reported")
    page.keyboard.press("Escape")
    expect(page.locator(".gm-case-popup")).to_have_count(0)  # Escape closes it, wherever the focus is
    # A tooltip opened by hovering does not stay behind when the map is dragged.
    # From a spot of the map itself, away from the panels (a press on the case list drags nothing)
    # and from the cases fanned out at the centre.
    box = box_of(page, ".folium-map")
    x, y = box["x"] + box["width"] / 2 - 200, box["y"] + box["height"] / 2 + 150
    on_map = "([x, y]) => !document.elementFromPoint(x, y).closest('.leaflet-control, .leaflet-marker-icon')"
    assert page.evaluate(on_map, [x + 5, y + 5])
    before = page.evaluate("() => GridMap.map.getCenter()")
    page.mouse.move(x, y)
    page.mouse.move(x + 5, y + 5)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(x + 5 + 10 * i, y + 5 - 8 * i)
    page.mouse.up()
    page.wait_for_timeout(200)
    assert page.evaluate("() => GridMap.map.getCenter()") != before, "the map was not dragged"
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
    page.evaluate("([lat, lon]) => void GridMap.map.setView([lat, lon], 15, {animate: false})", [lat, lon])
    page.wait_for_function(
        "() => !Object.values(GridMap.map._layers).some(l => l instanceof L.GridLayer && l.isLoading())"
    )  # the grids drawn for the picture
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
