"""The live map's case layer by view (issue 19 §2): far out, the server's clusters with the right
total; a click on one zooms in to the cases themselves. And the layer control lists only the levels
stored (the demo county has no province and no city). Headless chromium on the demo county."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from sqlalchemy import text

from access.roles import Role
from api.app import create_app
from geo.codes import LEVEL_NAMES, LEVELS
from tests.browser.conftest import DESKTOP, LiveServer, PageLog, log_in, user_of
from tests.browser.test_map import open_map, screenshot
from tests.live import app_server

CLUSTERS_ABOVE = 3  # this server clusters more than 3 cases in view (the setting's default is 500)
PAIRS = 4  # grids of the street with two cases each, 20 m apart


@pytest.fixture(scope="module")
def cluster_server(live_server: LiveServer) -> Iterator[LiveServer]:
    """A second server on the browser tests' database that clusters from a few cases on."""
    settings = live_server.settings.model_copy(update={"map_case_clusters_above": CLUSTERS_ABOVE})
    with app_server(create_app(settings, engine=live_server.engine)) as url:
        yield LiveServer(url=url, engine=live_server.engine, settings=settings)


@pytest.fixture(scope="module")
def street_cases(cluster_server: LiveServer) -> tuple[str, set[int]]:
    """The county's last street (no other test reports there) and the open cases reported in it."""
    with cluster_server.engine.connect() as conn:
        street = conn.execute(text("SELECT max(code) FROM units WHERE level = 'street'")).scalar_one()
        points = conn.execute(
            text(
                """SELECT ST_X(p), ST_Y(p) FROM (SELECT v.code, ST_PointOnSurface(v.geom) AS p
                   FROM unit_versions v JOIN units u USING (code)
                   WHERE u.level = 'grid' AND v.kind <> 'special' AND v.valid_to IS NULL AND v.code LIKE :s
                   ORDER BY v.code LIMIT :n) g"""
            ),
            {"s": street + "%", "n": PAIRS},
        ).all()
    shift = random.uniform(0, 0.0004)  # a run's own spots: the database keeps earlier runs' cases
    for lon, lat in points:
        for dx in (0.0, 0.0002):  # ~20 m apart: one cell far out, two markers close in
            body = {"lon": lon + shift + dx, "lat": lat + shift, "category": "0101"}
            body["description"] = f"聚合测试 {street}"
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            answer = httpx.post(f"{cluster_server.url}/cases", json=body, headers=headers)
            assert answer.status_code == 201, answer.text
    with cluster_server.engine.connect() as conn:
        ids = conn.execute(
            text(
                """SELECT id FROM cases WHERE status <> ALL('{closed,revisited,voided,merged}')
                   AND (unit_code LIKE :s OR grid_code LIKE :s)"""
            ),
            {"s": street + "%"},
        ).scalars()
        return street, set(ids)


VISIBLE = """() => {
  const pane = document.querySelector('.leaflet-marker-pane');
  const clusters = Array.from(pane.querySelectorAll('.gm-cluster')).map(e => parseInt(e.textContent, 10));
  const cases = Array.from(pane.querySelectorAll('.gm-case')).map(e => Number(e.dataset.caseId));
  return {clusters, cases, server: pane.querySelectorAll('.gm-server-cluster').length};
}"""


# The middle of a cluster circle that nothing covers there (the first such).
ON_TOP = """() => {
  for (const e of document.querySelectorAll('.leaflet-marker-pane .gm-cluster')) {
    const r = e.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (e.contains(document.elementFromPoint(x, y))) return [x, y];
  }
  return null;
}"""


def test_far_out_clusters_count_the_cases_and_a_click_zooms_to_them(
    browser, cluster_server: LiveServer, street_cases: tuple[str, set[int]], page_log: PageLog
):
    street, ids = street_cases
    assert len(ids) > CLUSTERS_ABOVE
    context = browser.new_context(base_url=cluster_server.url, viewport=DESKTOP, locale="zh-CN")
    page_log.watch(context)
    log_in(context, user_of(cluster_server.engine, Role.DISPATCHER, "411681"))
    page = context.new_page()
    open_map(page, f"/map?unit={street}")
    page.evaluate("void GridMap.map.setZoom(Math.min(GridMap.map.getZoom(), 13), {animate: false})")
    page.wait_for_function(
        "n => GridMap.caseView && GridMap.caseView.clustered && GridMap.caseView.total === n"
        " && document.querySelector('.leaflet-marker-pane .gm-cluster')",
        arg=len(ids),
    )
    page.wait_for_timeout(300)  # the markers of the answer are drawn in the same frame; let it paint
    seen = page.evaluate(VISIBLE)
    assert sum(seen["clusters"]) + len(seen["cases"]) == len(ids), seen
    assert set(seen["cases"]) <= ids
    asked = [u for u in page_log.requests if "/map/cases?" in u]
    assert asked and all("bbox=" in u and "zoom=" in u for u in asked), asked
    expect(page.get_by_text("数字圆圈：该处事件数，点击放大 numbered circle: cases there")).to_be_visible()
    expect(page.locator(".gm-caselist")).to_contain_text(f"待办事件 Open cases {len(ids)}")
    screenshot(page, "clusters-far")

    # Click a cluster (the server's, or the marker cluster holding some) until the cases show.
    for _ in range(8):
        page.wait_for_timeout(500)  # the marker clusters' zoom animation ends (a busy machine is slow)
        seen = page.evaluate(VISIBLE)
        if seen["cases"] and not seen["clusters"]:
            break
        zoom = page.evaluate("GridMap.map.getZoom()")
        page.mouse.move(1100, 650)  # a unit's tooltip where the mouse was would cover the markers
        place = page.evaluate(ON_TOP)  # a case marker may lie over part of a cluster: click where it shows
        if place is None:
            break
        page.mouse.click(*place)
        try:
            page.wait_for_function("z => GridMap.map.getZoom() > z", arg=zoom, timeout=5000)
        except PlaywrightTimeout:
            continue  # a circle on its way out of an animation: look again
        # The answer for the view it zoomed to (asked for after the move, debounced).
        page.wait_for_function("() => GridMap.casesUpdatedAt > GridMap.movedAt")
    seen = page.evaluate(VISIBLE)
    assert seen["cases"] and set(seen["cases"]) <= ids, seen
    marker = page.locator(f".leaflet-marker-pane .gm-case[data-case-id='{seen['cases'][0]}']")
    expect(marker).to_be_visible()
    page.mouse.move(1100, 650)  # off the units: no tooltip over the markers in the picture
    screenshot(page, "clusters-zoomed-in")
    assert page_log.console_errors() == []
    context.close()


def test_the_layer_control_lists_only_the_levels_stored(
    browser, cluster_server: LiveServer, page_log: PageLog
):
    with cluster_server.engine.connect() as conn:
        stored = set(conn.execute(text("SELECT DISTINCT level FROM units")).scalars())
    assert "province" not in stored and "city" not in stored  # a county deployment
    context = browser.new_context(base_url=cluster_server.url, viewport=DESKTOP, locale="zh-CN")
    log_in(context, user_of(cluster_server.engine, Role.DISPATCHER, "411681"))
    page = context.new_page()
    open_map(page, "/map")
    listed = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    names = [n.strip() for n in listed]
    for level in LEVELS:
        assert (LEVEL_NAMES[level] in names) == (level in stored), (level, names)
    screenshot(page, "layer-control-county")
    context.close()
