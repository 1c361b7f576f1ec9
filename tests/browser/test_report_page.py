"""The field worker page `/report` in a real headless chromium against the live service."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Request, Response, Route, expect
from sqlalchemy import text

from api.access import SESSION_COOKIE
from geo.demo import DEMO_PASSWORD
from tests.browser.conftest import DemoPosition, LiveServer, PageLog

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def open_report(page: Page) -> None:
    """Open the page and wait until categories and the grid preview are in."""
    page.goto("/report")
    expect(page.locator("#cat-top option").nth(1)).to_be_attached()
    expect(page.locator("#grid-preview")).not_to_have_attribute("data-status", "")


def fill_report(page: Page, description: str) -> str:
    """Pick the first subclass of the first class and describe; returns the subclass code."""
    page.select_option("#cat-top", index=1)
    page.select_option("#cat-sub", index=1)
    page.fill("#description", description)
    return page.eval_on_selector("#cat-sub", "s => s.value")


def unique(text_: str) -> str:
    """A description no other test wrote."""
    return f"{text_} {uuid.uuid4().hex[:8]}"


def count_cases(live_server: LiveServer, description: str) -> int:
    """How many cases the service stored with this description."""
    with live_server.engine.connect() as conn:
        sql = text("SELECT count(*) FROM cases WHERE description = :d")
        return conn.execute(sql, {"d": description}).scalar_one()


def case_posts(page: Page) -> list[Response]:
    """Every answer to POST /cases the page receives from now on."""
    answers: list[Response] = []

    def seen(response: Response) -> None:
        if response.request.method == "POST" and response.url.endswith("/cases"):
            answers.append(response)

    page.on("response", seen)
    return answers


def dispatcher(live_server: LiveServer) -> dict[str, str]:
    """The demo county dispatcher's Authorization header (reading cases needs an account)."""
    answer = httpx.post(
        f"{live_server.url}/auth/token", data={"username": "dispatcher", "password": DEMO_PASSWORD}
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_page_and_assets_come_from_the_service_only(page: Page, page_log: PageLog, live_server: LiveServer):
    response = page.goto("/report")
    assert response is not None and response.status == 200
    headers = response.headers
    assert headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    expect(page.locator("#cat-top option").nth(1)).to_be_attached()
    expect(page.locator("#grid-preview")).to_have_attribute("data-status", "assigned")
    page.wait_for_load_state("networkidle")
    assert page_log.requests, "the page made no requests at all"
    foreign = [url for url in page_log.requests if not live_server.is_local(url)]
    assert foreign == []
    for asset in ("report.js", "report.css", "icon.svg"):
        assert any(url.endswith(f"/static/report/{asset}") for url in page_log.requests), asset
    # No CSP violation, failed load or script error: the page works under its own policy.
    assert page_log.console_errors() == [] and page_log.errors == []


def test_categories_fill_two_levels(page: Page, live_server: LiveServer):
    categories = httpx.get(f"{live_server.url}/categories").json()
    open_report(page)
    tops = page.locator("#cat-top option").all_text_contents()[1:]
    assert tops == [c["name"] for c in categories]
    expect(page.locator("#cat-sub")).to_be_disabled()
    second = categories[1]
    page.select_option("#cat-top", second["code"])
    expect(page.locator("#cat-sub")).to_be_enabled()
    subs = page.locator("#cat-sub option").all_text_contents()[1:]
    assert subs == [c["name"] for c in second["children"]]


def test_grid_preview_names_the_grid_the_database_answers(page: Page, demo_position: DemoPosition):
    grid = demo_position.assignment.grid
    assert grid is not None
    open_report(page)
    expect(page.locator("#grid-preview")).to_have_attribute("data-status", "assigned")
    expect(page.locator("#grid-name")).to_have_text(grid.name)
    expect(page.locator("#grid-code")).to_have_text(grid.code)
    expect(page.locator("#loc-status")).to_contain_text("±8 m")


def test_denied_location_says_so_and_the_address_can_be_used(new_context: Callable[..., BrowserContext]):
    page = new_context(permissions=[]).new_page()
    page.goto("/report")
    expect(page.locator("#loc-status")).to_have_attribute("data-state", "error")
    expect(page.locator("#loc-status")).to_contain_text("未获得定位权限")
    expect(page.locator("#loc-status")).to_contain_text("地址")
    expect(page.locator("#relocate")).to_be_enabled()
    expect(page.locator("#cat-top option").nth(1)).to_be_attached()
    posts = case_posts(page)
    fill_report(page, unique("没有定位 no fix"))
    page.fill("#address", "花园街道")
    page.click("#submit")  # no point and no photo: the server could not place it, so it is not sent
    expect(page.locator("#form-error")).to_contain_text("没有定位")
    assert posts == []


def test_report_is_sent_and_the_case_stored(page: Page, live_server: LiveServer, demo_position: DemoPosition):
    description = unique("井盖缺失 missing manhole cover")
    answers = case_posts(page)
    open_report(page)
    category = fill_report(page, description)
    page.fill("#address", "莲花大道 1 号")
    page.check("#urgent")
    page.click("#submit")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    grid = demo_position.assignment.grid
    assert grid is not None
    expect(page.locator("#outcome")).to_contain_text(grid.code)
    sent = page.locator("#results li[data-kind=sent]").first
    case_id = sent.get_attribute("data-case-id")
    expect(page.locator("#outcome")).to_contain_text(sent.get_attribute("data-case-number") or "?")
    key = answers[0].request.header_value("idempotency-key") or ""
    assert UUID_RE.match(key) and answers[0].status == 201
    stored = httpx.get(f"{live_server.url}/cases/{case_id}", headers=dispatcher(live_server)).json()
    assert stored["description"] == description and stored["category"] == category
    assert stored["urgent"] is True and stored["address"] == "莲花大道 1 号"
    assert stored["source"] == "patrol"
    assert json.dumps(stored, ensure_ascii=False).count(grid.code) >= 1
    expect(page.locator("#description")).to_have_value("")  # the form is ready for the next report
    expect(page.locator("#queue")).to_be_hidden()


def test_photos_go_as_multipart_at_most_six(page: Page, live_server: LiveServer, tmp_path):
    paths = []
    for i in range(7):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (30 * i, 120, 200)).save(buffer, "JPEG")
        path = tmp_path / f"p{i}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    description = unique("占道经营 street vending")
    answers = case_posts(page)
    open_report(page)
    fill_report(page, description)
    page.set_input_files("#photos", paths)
    expect(page.locator("#thumbs img")).to_have_count(6)
    expect(page.locator("#photo-count")).to_have_text("6/6")
    expect(page.locator("#photo-note")).to_be_visible()
    page.locator("#thumbs button").first.click()
    expect(page.locator("#thumbs img")).to_have_count(5)
    page.click("#submit")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    assert "multipart/form-data" in (answers[0].request.header_value("content-type") or "")
    case_id = page.locator("#results li[data-kind=sent]").first.get_attribute("data-case-id")
    stored = httpx.get(f"{live_server.url}/cases/{case_id}", headers=dispatcher(live_server)).json()
    assert len(stored["photos"]) == 5
    expect(page.locator("#thumbs img")).to_have_count(0)


def test_offline_report_is_queued_then_sent_once(
    page: Page, context: BrowserContext, live_server: LiveServer
):
    description = unique("垃圾堆放 rubbish")
    answers = case_posts(page)
    open_report(page)
    context.set_offline(True)
    expect(page.locator("#net")).to_have_attribute("data-online", "false")
    fill_report(page, description)
    page.click("#submit")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "queued")
    expect(page.locator("#queue-count")).to_have_text("1")
    expect(page.locator("#queue-list li")).to_contain_text(description[:20])
    assert count_cases(live_server, description) == 0
    context.set_offline(False)  # fires `online`: the queue is sent
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator("#queue-count")).to_have_text("0")
    assert [a.status for a in answers] == [201]
    assert count_cases(live_server, description) == 1


def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one_case(page: Page, live_server: LiveServer):
    description = unique("路灯不亮 street light out")
    keys: list[str] = []
    answers = case_posts(page)

    def deliver_then_drop(route: Route, request: Request) -> None:
        keys.append(request.header_value("idempotency-key") or "")
        route.fetch()  # the server gets the report and stores it ...
        route.abort("connectionreset")  # ... but the phone never hears back

    open_report(page)
    page.route("**/cases", deliver_then_drop)
    fill_report(page, description)
    page.click("#submit")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "queued")
    expect(page.locator("#queue-count")).to_have_text("1")
    assert count_cases(live_server, description) == 1
    page.unroute("**/cases")
    page.click("#retry")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    expect(page.locator("#queue")).to_be_hidden()
    assert [a.status for a in answers] == [200]  # a replay: the case made by the first attempt
    assert keys[0] == answers[0].request.header_value("idempotency-key")
    assert count_cases(live_server, description) == 1


def test_queue_survives_closing_the_page_and_is_sent_on_load(
    context: BrowserContext, live_server: LiveServer
):
    description = unique("违章搭建 illegal structure")
    page = context.new_page()
    open_report(page)
    context.set_offline(True)
    fill_report(page, description)
    page.click("#submit")
    expect(page.locator("#queue-count")).to_have_text("1")
    page.close()
    context.set_offline(False)
    again = context.new_page()
    again.goto("/report")
    expect(again.locator("#outcome")).to_have_attribute("data-kind", "sent")
    expect(again.locator("#queue")).to_be_hidden()
    assert count_cases(live_server, description) == 1


def test_rejected_report_is_shown_and_dropped_from_the_queue(
    page: Page, context: BrowserContext, live_server: LiveServer
):
    description = unique("未知类别 unknown category")
    open_report(page)
    fill_report(page, description)
    # A category the server does not know (a stale list, say), added as an option of the subclass list.
    page.evaluate(
        """() => {
            const o = document.createElement('option');
            o.value = '9999'; o.textContent = 'stale';
            document.getElementById('cat-sub').append(o);
        }"""
    )
    page.select_option("#cat-sub", "9999")
    context.set_offline(True)
    page.click("#submit")
    expect(page.locator("#queue-count")).to_have_text("1")
    context.set_offline(False)
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "rejected")
    expect(page.locator("#outcome")).to_contain_text("9999")
    expect(page.locator("#results li[data-kind=rejected]")).to_contain_text(description[:20])
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator("#queue-count")).to_have_text("0")
    assert count_cases(live_server, description) == 0


def test_server_and_user_text_is_shown_as_text(page: Page, live_server: LiveServer):
    hostile = "<img src=x onerror=alert(1)>"
    description = f"{hostile} {uuid.uuid4().hex[:8]}"
    dialogs: list[Any] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_report(page)
    fill_report(page, description)
    page.click("#submit")
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    item = page.locator("#results li[data-kind=sent]").first
    expect(item).to_contain_text(hostile)
    expect(page.locator("#results img")).to_have_count(0)
    expect(page.locator("main img")).to_have_count(0)
    assert dialogs == []
    stored = httpx.get(
        f"{live_server.url}/cases/{item.get_attribute('data-case-id')}", headers=dispatcher(live_server)
    ).json()
    assert stored["description"] == description


def test_page_opens_offline_once_visited_and_queues(
    page: Page, context: BrowserContext, live_server: LiveServer
):
    description = unique("无信号 no signal")
    open_report(page)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # the page and its assets are cached
    context.set_offline(True)
    page.reload()
    expect(page.locator("#net")).to_have_attribute("data-online", "false")
    expect(page.locator("#cat-top option").nth(1)).to_be_attached()  # the list of the last visit
    expect(page.locator("#grid-preview")).to_contain_text("离线")
    fill_report(page, description)
    page.click("#submit")
    expect(page.locator("#queue-count")).to_have_text("1")
    context.set_offline(False)
    expect(page.locator("#outcome")).to_have_attribute("data-kind", "sent")
    assert count_cases(live_server, description) == 1


def test_a_report_sent_after_the_sign_in_lapsed_stays_queued(
    page: Page, context: BrowserContext, live_server: LiveServer
):
    description = unique("登录失效 signed out")
    open_report(page)
    context.add_cookies([{"name": SESSION_COOKIE, "value": "revoked-meanwhile", "url": live_server.url}])
    fill_report(page, description)
    page.click("#submit")
    expect(page.locator("#outcome")).to_contain_text("登录已失效")
    expect(page.locator("#queue-count")).to_have_text("1")  # kept for after a new login, not dropped
    assert count_cases(live_server, description) == 0
