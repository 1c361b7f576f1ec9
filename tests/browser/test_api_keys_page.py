"""The API keys section of the workbench (/desk/keys) in headless chromium, by clicking and typing:
a planner makes a key for QGIS (its name, hostile on purpose, shows as text), the key fetches the
TileJSON and a tile outside the browser, then the planner revokes it and the key stops working."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import mapbox_vector_tile
from playwright.sync_api import BrowserContext, expect
from sqlalchemy.orm import Session

from access.roles import Role
from geo.demo import COUNTY_CODE
from store import tiles, users
from tests.browser.conftest import DemoPosition, LiveServer, PageLog

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "keys-test-password"
XSS = "<img src=x onerror=alert(1)>"


def test_a_planner_makes_a_key_uses_it_in_a_gis_and_revokes_it(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, demo_position: DemoPosition,
    page_log: PageLog,
):  # fmt: skip
    name = f"keys-{uuid.uuid4().hex[:8]}"
    with Session(live_server.engine) as session, session.begin():
        users.add_user(session, name, PASSWORD, Role.PLANNER, COUNTY_CODE)
    context = new_context(viewport={"width": 1280, "height": 800}, is_mobile=False, has_touch=False)
    page = context.new_page()
    page.goto("/desk")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.get_by_role("link", name="API 密钥 API keys").click()
    expect(page).to_have_url(f"{live_server.url}/desk/keys")
    expect(page.get_by_text("还没有密钥")).to_be_visible()
    expect(page.locator("header .brand")).to_have_text("规划工作台 Planner's workbench")  # not a dispatcher's
    page_log.console.clear()  # the login page's own are not this page's
    page.get_by_label("用途").fill(f"QGIS {XSS}")
    page.get_by_label("有效天数").fill("7")
    page.get_by_role("button", name="创建密钥 Create key").click()
    key = page.locator("#new-key-value").input_value()
    assert key.startswith("gmk_")
    row = page.locator("tr[data-key-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".key-name")).to_have_text(f"QGIS {XSS}")  # text, not an element
    assert page.locator(".keys-table img").count() == 0
    expect(row.locator(".key-state")).to_have_text("有效 live")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "desk-api-keys.png"))

    # What a desktop GIS does with it: read the TileJSON, then a tile from its URL template.
    doc = httpx.get(f"{live_server.url}/map/tiles.json", params={"key": key}).json()
    x, y = tiles.tile_of(demo_position.lon, demo_position.lat, 15)
    url = doc["tiles"][0].replace("{z}", "15").replace("{x}", str(x)).replace("{y}", str(y))
    tile = httpx.get(url)
    assert tile.status_code == 200
    grids = mapbox_vector_tile.decode(tile.content)["grid"]["features"]
    assert demo_position.assignment.grid.code in {g["properties"]["code"] for g in grids}

    assert page_log.errors == [] and page_log.console_errors() == []
    assert all(live_server.is_local(u) for u in page_log.requests)  # the page asks nothing elsewhere
    # And a MapLibre page on another site: another origin (localhost, not 127.0.0.1), no session.
    elsewhere = new_context().new_page()
    elsewhere.goto(live_server.url.replace("127.0.0.1", "localhost") + "/health")
    fetched = "u => fetch(u).then(r => r.arrayBuffer()).then(b => b.byteLength)"
    assert elsewhere.evaluate(fetched, url) == len(tile.content)
    assert elsewhere.evaluate(fetched, f"{live_server.url}/map/tiles.json?key={key}") > 0
    page_log.console.clear()  # /health has no favicon: that 404 is not the keys page's

    row.get_by_role("button", name=f"吊销 QGIS {XSS} Revoke").focus()
    page.keyboard.press("Enter")  # by keyboard, as well as by mouse
    expect(page).to_have_url(f"{live_server.url}/desk/keys")
    expect(row.locator(".key-state")).to_have_text("已吊销 revoked")
    expect(page.locator("#new-key-value")).to_have_count(0)  # shown once only
    assert httpx.get(url).status_code == 401
    assert page_log.errors == [] and page_log.console_errors() == []


MAP, DASHBOARD, KEYS = "地图 Map", "指挥大屏 Command dashboard", "API 密钥 API keys"
QUEUE, PLANS = "案件队列 Queue", "网格规划 Plan editor"


def test_the_header_offers_each_role_the_pages_made_for_it(desktop_as: Callable[..., BrowserContext]):
    """A planner's header has no case queue and its home is the plan editor; a dispatcher's has the
    queue as home and no plan editor; both reach their keys by the link, with the keyboard."""
    ARTIFACTS.mkdir(exist_ok=True)
    for role, shown, absent in (
        (Role.PLANNER, [PLANS, MAP, DASHBOARD, KEYS], QUEUE),
        (Role.DISPATCHER, [QUEUE, MAP, DASHBOARD, KEYS], PLANS),
    ):
        page = desktop_as(role, COUNTY_CODE).new_page()
        page.goto("/desk/keys")
        nav = page.get_by_role("navigation", name="页面 Pages")
        expect(nav.get_by_role("link")).to_have_text(shown)
        expect(nav.get_by_role("link", name=absent)).to_have_count(0)
        home = "/plan" if role == Role.PLANNER else "/desk"
        expect(page.locator("header .brand")).to_have_attribute("href", home)
        page.screenshot(path=str(ARTIFACTS / f"desk-nav-{role}.png"))
        nav.get_by_role("link", name=KEYS).focus()
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/desk/keys$"))
        page.context.close()
