"""A field worker's tasks `/tasks` on a phone in headless chromium: moves made offline, sent once."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from access.roles import Role
from tests.browser.conftest import DemoPosition, LiveServer, PageLog, bearer, log_in, user_of
from tests.photos import jpeg_bytes

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
XSS = "<img src=x onerror=alert(1)>"


def dispatched_case(live_server: LiveServer, api: dict[str, str], where: DemoPosition, text: str) -> int:
    """A case reported at the demo position and dispatched to its grid by the dispatcher."""
    body = {"lon": where.lon, "lat": where.lat, "category": "0101", "description": text}
    case = httpx.post(f"{live_server.url}/cases", json=body, headers=api).json()
    for to in ("verified", "filed", "dispatched"):
        answer = httpx.post(f"{live_server.url}/cases/{case['id']}/transitions", json={"to": to}, headers=api)
        assert answer.status_code == 200, answer.text
    return case["id"]


def make_move(page: Page, to: str, *, note: str = "", photo: bytes | None = None) -> None:
    """Press a move's button, fill the form as a person would, submit."""
    page.click(f'[data-move="{to}"]')
    if note:
        page.fill("#move-note", note)
    if photo is not None:
        page.set_input_files(
            "#move-photos", files=[{"name": "after.jpg", "mimeType": "image/jpeg", "buffer": photo}]
        )
    page.click('[data-action="submit-move"]')


def test_a_worker_handles_a_case_offline_and_each_move_arrives_once_in_order(
    context: BrowserContext,
    page: Page,
    live_server: LiveServer,
    demo_position: DemoPosition,
    page_log: PageLog,
):
    grid = demo_position.assignment.grid
    assert grid is not None
    worker = user_of(live_server.engine, Role.FIELD_WORKER, grid.code)
    api = bearer(live_server.url, user_of(live_server.engine, Role.DISPATCHER, "411681"))
    case_id = dispatched_case(live_server, api, demo_position, f"路边垃圾 {XSS}")
    taken = dispatched_case(live_server, api, demo_position, "井盖缺失")
    log_in(context, worker, "/tasks")

    page.goto("/tasks")
    row = page.locator(f'#tasks [data-case-id="{case_id}"]')
    expect(row).to_contain_text(XSS)  # shown as text, never as markup
    expect(row.locator(".light")).to_have_attribute("data-light", "green")
    page.locator(f'#tasks [data-case-id="{taken}"]').click()
    expect(page.locator('[data-move="accepted"]')).to_be_visible()
    page.click("#back")
    row.click()
    expect(page.locator("#d-description")).to_have_text(f"路边垃圾 {XSS}")
    href = page.get_attribute("#d-navigate", "href") or ""
    assert href.startswith("geo:") and "?q=" in href
    expect(page.locator("#case-map .leaflet-interactive").first).to_be_attached()  # grid outline, case point
    expect(page.locator('[data-move="accepted"]')).to_be_visible()
    assert page.locator('[data-move="reassigned"]').count() == 0  # not a handler's move

    page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # the page and its assets are cached
    context.set_offline(True)
    page.reload()  # the page opens with no connection (field/shell-sw.js), its list from the last visit
    expect(row).to_contain_text(XSS)
    row.click()
    expect(page.locator('[data-move="accepted"]')).to_be_visible()
    # First an accept of the other case, which the dispatcher accepts meanwhile: it becomes illegal.
    page.click("#back")
    page.locator(f'#tasks [data-case-id="{taken}"]').click()
    make_move(page, "accepted")
    expect(page.locator("#queue-count")).to_have_text("1")
    page.click("#back")
    row.click()
    make_move(page, "accepted")
    expect(page.locator('[data-move="in_progress"]')).to_be_visible()
    make_move(page, "in_progress")
    expect(page.locator('[data-move="handled"]')).to_be_visible()
    make_move(page, "handled", note="已清运 cleared", photo=jpeg_bytes(size=(96, 72)))
    expect(page.locator("#queue-count")).to_have_text("4")
    answer = httpx.post(f"{live_server.url}/cases/{taken}/transitions", json={"to": "accepted"}, headers=api)
    assert answer.status_code == 200
    page.screenshot(path=str(ARTIFACTS / "tasks-offline-queue.png"))

    context.set_offline(False)
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator(f'#rejected-list [data-case-id="{taken}"]')).to_contain_text("cannot move")
    page.screenshot(path=str(ARTIFACTS / "tasks-rejected-move.png"))

    detail = httpx.get(f"{live_server.url}/cases/{case_id}", headers=api).json()
    moves = [(h["to_status"], h["actor"]) for h in detail["history"]][-3:]
    assert moves == [("accepted", worker), ("in_progress", worker), ("handled", worker)]
    assert [h["to_status"] for h in detail["history"]].count("handled") == 1
    assert detail["history"][-1]["note"] == "已清运 cleared"
    assert [(p["stage"], p["width"]) for p in detail["photos"]] == [("after", 96)]
    other = httpx.get(f"{live_server.url}/cases/{taken}", headers=api).json()
    assert [h["to_status"] for h in other["history"]].count("accepted") == 1
    expect(page.locator("#d-photos-after img")).to_have_count(1)  # the case page, refreshed
    expect(page.locator("#d-photos-before img")).to_have_count(0)
    assert page_log.errors == []


def test_a_new_task_appears_with_a_badge_while_the_page_is_open(
    context: BrowserContext,
    page: Page,
    live_server: LiveServer,
    demo_position: DemoPosition,
    page_log: PageLog,
):
    grid = demo_position.assignment.grid
    assert grid is not None
    log_in(context, user_of(live_server.engine, Role.FIELD_WORKER, grid.code), "/tasks")
    api = bearer(live_server.url, user_of(live_server.engine, Role.DISPATCHER, "411681"))
    page.goto("/tasks")
    expect(page.locator("#list-count")).not_to_have_text("")
    expect(page.locator("#badge")).to_be_hidden()
    case_id = dispatched_case(live_server, api, demo_position, "新任务 new task")
    expect(page.locator(f'#tasks [data-case-id="{case_id}"]')).to_have_attribute("data-new", "true")
    expect(page.locator("#badge")).to_have_text("1")
    page.screenshot(path=str(ARTIFACTS / "tasks-phone.png"))
    foreign = [url for url in page_log.requests if not live_server.is_local(url)]
    assert foreign == [] and page_log.console_errors() == []


def test_a_patrol_is_recorded_uploaded_with_its_figure_and_hidden_from_other_workers(
    new_context, live_server: LiveServer, demo_position: DemoPosition, page_log: PageLog
):
    grid = demo_position.assignment.grid
    assert grid is not None
    worker = user_of(live_server.engine, Role.FIELD_WORKER, grid.code)
    context = new_context()
    log_in(context, worker, "/tasks")
    page = context.new_page()
    page.goto("/tasks")
    page.click("#patrol-toggle")
    expect(page.locator("#patrol")).to_have_attribute("data-recording", "true")
    # The starting point first: moving before it is read would make the first move the start.
    expect(page.locator("#patrol-status")).to_contain_text("1 点", timeout=10_000)
    metre = 1 / 111_000
    for i in range(1, 7):  # walking north, 15 m a second or so (simulated positions)
        lat = demo_position.lat + i * 15 * metre
        context.set_geolocation({"longitude": demo_position.lon, "latitude": lat, "accuracy": 6})
        expect(page.locator("#patrol-status")).to_contain_text(f"{i + 1} 点", timeout=10_000)
        page.wait_for_timeout(1000)
    page.click("#patrol-toggle")
    expect(page.locator("#patrol-result")).to_contain_text("巡查已上传", timeout=10_000)
    expect(page.locator("#patrol-result")).to_contain_text("覆盖率")
    page.screenshot(path=str(ARTIFACTS / "tasks-patrol.png"))
    patrol_id = int(page.get_attribute("#patrol-result", "data-patrol-id") or 0)

    boss = bearer(live_server.url, user_of(live_server.engine, Role.DISPATCHER, grid.code[:12]))
    seen = httpx.get(f"{live_server.url}/patrols", params={"worker": worker}, headers=boss).json()["features"]
    assert [p["id"] for p in seen] == [patrol_id]
    assert seen[0]["properties"]["grids"] == [grid.code] and seen[0]["properties"]["length_m"] > 60
    figure = httpx.get(f"{live_server.url}/patrols/coverage/{grid.code}", headers=boss).json()
    assert figure["patrols"] >= 1 and 0 < figure["coverage_share"] <= 1
    other = bearer(live_server.url, user_of(live_server.engine, Role.FIELD_WORKER, grid.code))
    assert (
        httpx.get(f"{live_server.url}/patrols", params={"worker": worker}, headers=other).json()["features"]
        == []
    )
    assert page_log.errors == []
