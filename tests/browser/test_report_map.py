"""The report page's small map on a phone: the pin dragged into the next grid, the warning, own reports."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import BrowserContext, expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from store import users
from store.locate import locate
from tests.browser.conftest import DemoPosition, LiveServer, PageLog

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "report-map-password"


def neighbour_point(live_server: LiveServer, grid: str, lon: float, lat: float) -> tuple[str, float, float]:
    """A point of a grid next to `grid`, close to (lon, lat), that the rule assigns to that grid."""
    sql = text(
        """
        WITH me AS (SELECT geom FROM unit_versions WHERE code = :grid AND valid_to IS NULL),
        here AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS p)
        SELECT v.code, ST_X(q) AS lon, ST_Y(q) AS lat
        FROM unit_versions v JOIN units u ON u.code = v.code, me, here,
             LATERAL (SELECT ST_PointOnSurface(ST_Intersection(v.geom,
                        ST_SetSRID(ST_Buffer(ST_ClosestPoint(v.geom, here.p)::geography, 25)::geometry,
                                   4490))) AS q) c
        WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.code <> :grid AND v.kind <> 'special'
          AND ST_Touches(v.geom, me.geom)
        ORDER BY ST_Distance(v.geom, here.p) LIMIT 5
        """
    )
    with Session(live_server.engine) as session:
        for row in session.execute(sql, {"grid": grid, "lon": lon, "lat": lat}):
            answer = locate(session, row.lon, row.lat, tolerance_m=live_server.settings.snap_tolerance_m)
            if answer.grid is not None and answer.grid.code == row.code:
                return row.code, row.lon, row.lat
    raise AssertionError(f"no neighbour of {grid} found")


def test_dragging_the_pin_into_the_next_grid_changes_the_preview_the_warning_and_the_stored_grid(
    new_context, live_server: LiveServer, demo_position: DemoPosition, page_log: PageLog
):
    grid = demo_position.assignment.grid
    assert grid is not None
    name = f"pin-{uuid.uuid4().hex[:8]}"
    with Session(live_server.engine) as session, session.begin():
        users.add_user(session, name, PASSWORD, Role.FIELD_WORKER, grid.code)
    context: BrowserContext = new_context()
    form = {"username": name, "password": PASSWORD, "next": "/report"}
    answer = context.request.post("/auth/login", form=form, max_redirects=0)
    assert answer.status == 303
    page = context.new_page()
    page.goto("/report")
    expect(page.locator("#grid-code")).to_have_text(grid.code)
    expect(page.locator("#report-map .report-pin")).to_be_visible()
    expect(page.locator("#report-map path.leaflet-interactive, #report-map path").first).to_be_attached()
    expect(page.locator("#outside-warning")).to_be_hidden()  # the GPS point is in the worker's grid
    expect(page.locator("#loc-method")).to_have_attribute("data-method", "gps")

    code, lon, lat = neighbour_point(live_server, grid.code, demo_position.lon, demo_position.lat)
    page.evaluate("([a, b]) => void window.gridmapReportMap.fitBounds([a, b], {padding: [30, 30]})",
                  [[demo_position.lat, demo_position.lon], [lat, lon]])  # fmt: skip
    page.wait_for_timeout(400)
    box = page.locator("#report-map").bounding_box()
    assert box is not None
    start = page.evaluate("([la, lo]) => window.gridmapReportMap.latLngToContainerPoint([la, lo])",
                          [demo_position.lat, demo_position.lon])  # fmt: skip
    end = page.evaluate("([la, lo]) => window.gridmapReportMap.latLngToContainerPoint([la, lo])", [lat, lon])
    page.mouse.move(box["x"] + start["x"], box["y"] + start["y"] - 2)
    page.mouse.down()
    page.mouse.move(box["x"] + end["x"], box["y"] + end["y"] - 2, steps=12)
    page.mouse.up()

    expect(page.locator("#loc-method")).to_have_attribute("data-method", "pin")
    expect(page.locator("#grid-code")).to_have_text(code)
    expect(page.locator("#outside-warning")).to_be_visible()
    description = f"拖动标记 {uuid.uuid4().hex[:8]}"
    page.select_option("#cat-top", index=1)
    page.select_option("#cat-sub", index=1)
    page.fill("#description", description)
    page.screenshot(path=str(ARTIFACTS / "report-map-pin.png"), full_page=True)
    page.click("#submit")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    expect(page.locator("#mine-list li[data-state='sent']").first).to_contain_text(description)
    with live_server.engine.connect() as conn:
        row = conn.execute(
            text("SELECT grid_code, location_method FROM cases WHERE description = :d"), {"d": description}
        ).one()
    assert row.grid_code == code and row.location_method == "pin"
    expect(page.locator("#report-map path.leaflet-interactive")).not_to_have_count(0)
    assert page_log.errors == [] and page_log.console_errors() == []
