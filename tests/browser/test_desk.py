"""The workbench (/desk) in headless chromium, used only by clicking and typing: a case from report to
revisit, a street's whistle to a department that accepts it in its own session, a move someone
else made first (409), live updates, read-only roles, a field worker sent to their own page, and
user text that stays text."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from access.roles import Role
from cases.lifecycle import TRANSITIONS, CaseStatus
from cases.model import mask_phone
from tests.browser.conftest import PASSWORD, DemoPosition, LiveServer, PageLog, bearer, user_of

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1440, "height": 900}
LIVE_MS = 5_000  # a change shows on an open page within this
XSS = "<img src=x onerror=alert(1)>"


def sign_in(page: Page, name: str) -> None:
    """Through the login page, as a person does (the page then goes where it was asked to)."""
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")


def desk_page(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, role: Role, unit: str, **kw
) -> Page:
    """A desktop browser of a new user, signed in through /login on the way to /desk."""
    context = new_context(viewport=DESKTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
    page = context.new_page()
    page.goto("/desk")
    expect(page).to_have_url(f"{live_server.url}/login?next=/desk")
    sign_in(page, user_of(live_server.engine, role, unit, **kw))
    expect(page).to_have_url(f"{live_server.url}/desk")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=15_000)  # the map drew
    return page


def api(live_server: LiveServer) -> httpx.Client:
    """An API client of a county dispatcher (for what other people and systems do meanwhile)."""
    headers = bearer(live_server.url, user_of(live_server.engine, Role.DISPATCHER, "411681"))
    return httpx.Client(base_url=live_server.url, headers=headers)


def report(client: httpx.Client, position: DemoPosition, description: str = "路边有一堆垃圾") -> dict:
    reporter = {"name": "李四", "phone": "13812345678"}
    body = {"lon": position.lon, "lat": position.lat, "category": "0101", "description": description,
            "address": XSS, "source": "citizen", "reporter": reporter}  # fmt: skip
    answer = client.post("/cases", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"desk-{name}.png"))


def offered(panel) -> set[str]:
    """The moves the case's panel offers (once it is there)."""
    expect(panel).to_be_visible()
    return set(panel.locator("[data-move]").evaluate_all("bs => bs.map(b => b.dataset.move)"))


def make_move(panel, to: str, *, note: str = "", **fields: str) -> None:
    """Click the move's button, fill what its form asks, confirm, and wait for the case to show it."""
    panel.locator(f'[data-move="{to}"]').click()
    form = panel.locator("form.move-form")
    for name, value in fields.items():
        field = form.locator(f'[name="{name}"]')
        if field.evaluate("f => f.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    if note:
        form.locator('textarea[name="note"]').fill(note)
    form.locator('[data-action="submit-move"]').click()


def test_a_dispatcher_works_a_new_case_from_report_to_a_satisfied_revisit(
    new_context, live_server: LiveServer, demo_position: DemoPosition, page_log: PageLog
):
    page = desk_page(new_context, live_server, Role.DISPATCHER, "411681")
    page_log.console.clear()  # the login page's own (its missing favicon) are not the workbench's
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # The live feed comes compressed (a tenth of the bytes: docs/live-feed.md), as Chromium asks.
    with page.expect_response(lambda r: r.url.endswith("/cases/stream")) as streamed:
        page.reload()
    assert streamed.value.headers.get("content-encoding") == "deflate"
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=15_000)
    # A case reported through the API meanwhile appears in the open queue without a reload.
    with api(live_server) as client:
        case = report(client, demo_position, description=XSS)
    row = page.locator(f'#queue tr[data-case-id="{case["id"]}"]')
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row).to_contain_text(XSS)  # shown as text, not run
    count = int(page.locator('[data-count="open"]').inner_text())
    assert count >= 1

    # Its point on the map opens it; its row centres the map on it and opens it too.
    point = page.evaluate(
        "([lat, lon]) => { const p = GridDesk.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [case["lat"], case["lon"]],
    )
    page.locator("#desk-map").click(position={"x": point[0], "y": point[1]})
    # Other tests' cases may lie at the same spot: the point opens one of them, the row this one.
    expect(page.locator("#side [data-case-panel]")).to_be_visible()
    panel = page.locator(f'#side [data-case-panel][data-case-id="{case["id"]}"]')
    row.click()
    expect(panel).to_be_visible()
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    page.wait_for_function("() => GridDesk.outline !== null")  # its grid outlined on the map
    expect(panel.locator(".reporter")).to_contain_text("13812345678")  # a dispatcher may see it
    screenshot(page, "queue")

    path = ["verified", "filed", "dispatched", "accepted", "in_progress", "handled", "checked", "closed"]
    status = "reported"
    for to in path:
        # Exactly the moves the lifecycle allows from here: an illegal move is never offered.
        assert offered(panel) == {s.value for s in TRANSITIONS[CaseStatus(status)]}, status
        make_move(panel, to, note=f"{to} 完成" if to in ("dispatched", "handled") else "")
        expect(panel).to_have_attribute("data-status", to)
        status = to
    panel.locator('[data-move="revisited"]').click()
    form = panel.locator("form.move-form")
    expect(form.locator('[name="rating"]')).to_be_visible()
    assert form.locator('[name="reason"], [name="unit"], [name="extend_by"], [name="into"]').count() == 0
    form.locator("select.template-pick").select_option(label="经回访，当事人对处置结果满意。")
    expect(form.locator('textarea[name="note"]')).to_have_value("经回访，当事人对处置结果满意。")
    form.locator('[name="rating"]').select_option("satisfied")
    form.locator('[data-action="submit-move"]').click()
    expect(panel).to_have_attribute("data-status", "revisited")
    assert offered(panel) == set()

    with api(live_server) as client:
        stored = client.get(f"/cases/{case['id']}").json()
    assert stored["status"] == "revisited" and stored["rating"] == "satisfied"
    assert [h["to_status"] for h in stored["history"][1:]] == [*path, "revisited"]
    assert stored["history"][-1]["note"] == "经回访，当事人对处置结果满意。"

    page.goto(f"/desk/cases/{case['id']}")
    expect(page.locator(".timeline li")).to_have_count(len(path) + 2)
    expect(page.locator(".description")).to_have_text(XSS)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    screenshot(page, "case")
    assert dialogs == [] and page_log.errors == [], (dialogs, page_log.errors)
    assert page_log.console_errors() == []  # a CSP violation (an inline style or script) would be one
    assert all(live_server.is_local(url) for url in page_log.requests)


def test_a_street_summons_a_department_which_accepts_and_a_stale_move_keeps_its_text(
    new_context, live_server: LiveServer, demo_position: DemoPosition
):
    street = demo_position.assignment.grid.code[:9]
    with api(live_server) as client:
        case = report(client, demo_position)
        stale = report(client, demo_position, description="两人同时处理 both at once")
    page = desk_page(new_context, live_server, Role.DISPATCHER, street)
    page.locator(f'#queue tr[data-case-id="{case["id"]}"]').click()
    panel = page.locator(f'[data-case-panel][data-case-id="{case["id"]}"]')
    for to in ("verified", "filed", "dispatched"):
        make_move(panel, to)
        expect(panel).to_have_attribute("data-status", to)
    make_move(panel, "reassigned", reason="需街道协调", unit=street)
    expect(panel.locator(".facts")).to_contain_text("街道/乡镇")
    panel.locator('[data-move="reassigned"]').click()
    unit = panel.locator('form.move-form input[name="unit"]')
    unit.type("城市")  # the picker searches by name; a department is offered too
    expect(panel.locator('datalist option[value="cgj"]')).to_have_count(1)
    unit.fill("cgj")
    panel.locator('form.move-form [name="reason"]').fill("占道经营需城管执法")
    panel.locator('[data-action="submit-move"]').click()
    expect(panel).to_have_attribute("data-status", "reassigned")
    expect(panel.locator(".facts")).to_contain_text("城市管理局")

    handler = desk_page(new_context, live_server, Role.DEPARTMENT, "411681", department="cgj")
    handler.locator(f'#queue tr[data-case-id="{case["id"]}"]').click()
    theirs = handler.locator(f'[data-case-panel][data-case-id="{case["id"]}"]')
    assert offered(theirs) == {"accepted", "returned"}
    make_move(theirs, "accepted", note="城管已受理")
    expect(theirs).to_have_attribute("data-status", "accepted")
    # The street's open queue shows the department's move in place, without a reload.
    row = page.locator(f'#queue tr[data-case-id="{case["id"]}"]')
    expect(row).to_have_attribute("data-status", "accepted", timeout=LIVE_MS)
    screenshot(handler, "department")

    # Two dispatchers on one case: the second sees the first's move and loses nothing typed.
    page.goto(f"/desk/cases/{stale['id']}")
    other = desk_page(new_context, live_server, Role.DISPATCHER, street)
    other.goto(f"/desk/cases/{stale['id']}")
    page.locator('[data-move="verified"]').click()
    page.locator('textarea[name="note"]').fill("我正在核实现场")
    make_move(other.locator("[data-case-panel]"), "verified")
    expect(other.locator("[data-case-panel]")).to_have_attribute("data-status", "verified")
    expect(page.locator("#live-banner")).to_contain_text("verified", timeout=LIVE_MS)
    page.locator('[data-action="submit-move"]').click()
    alert = page.locator('.move-form [role="alert"]')
    expect(alert).to_contain_text("409")
    expect(alert).to_contain_text("已核实")
    expect(page.locator('textarea[name="note"]')).to_have_value("我正在核实现场")
    screenshot(page, "conflict")


def test_viewers_read_masked_data_and_field_workers_have_their_own_page(
    new_context, live_server: LiveServer, demo_position: DemoPosition
):
    with api(live_server) as client:
        case = report(client, demo_position)
    viewer = desk_page(new_context, live_server, Role.VIEWER, "411681")
    viewer.locator(f'#queue tr[data-case-id="{case["id"]}"]').click()
    panel = viewer.locator(f'[data-case-panel][data-case-id="{case["id"]}"]')
    expect(panel.locator(".reporter")).to_contain_text(mask_phone("13812345678"))
    expect(panel.locator(".readonly")).to_be_visible()
    assert panel.locator("[data-move]").count() == 0 and "13812345678" not in viewer.content()

    worker = new_context(viewport=DESKTOP, is_mobile=False, has_touch=False).new_page()
    worker.goto("/desk")
    sign_in(worker, user_of(live_server.engine, Role.FIELD_WORKER, demo_position.assignment.grid.code))
    expect(worker).to_have_url(f"{live_server.url}/tasks")

