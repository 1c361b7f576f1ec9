"""The command dashboard `/dashboard` and the offline API docs `/docs`, `/redoc` in headless chromium.

The dashboard's numbers are read from the page (elements carrying `data-figure`) and compared with
the JSON the page was given and with `/stats` and `/cases` for the same unit and period. Hostile
names (a unit, a category) are shown by a second small server of this module's own, on the test
county with those names. The docs pages run with every request outside the service refused.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Response, Route, expect
from sqlalchemy import create_engine, text

from access.roles import Role
from api.app import create_app
from cases.lifecycle import OPEN_STATUSES
from geo.settings import Settings
from tests import factories as f
from tests.browser.conftest import PASSWORD, LiveServer, PageLog, bearer, user_of
from tests.conftest import DB_PREFIX, county_database
from tests.live import app_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BIG_SCREEN = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
XSS = "<img src=x onerror=window.__xss=1>"
COUNTY = "411681"
LIVE_S = 8.0  # a new case shows within this: the stream, a settle of 1 s, the request and the drawing
WALK = ["verified", "filed", "dispatched", "accepted", "in_progress", "handled", "checked", "closed"]


def sign_in_by_typing(page: Page, name: str, path: str = "/dashboard") -> None:
    """Open `path` signed out, land on the login form, type as a person and come back."""
    page.goto(path)
    page.wait_for_url("**/login?next=**")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"**{path}")


def wait_ready(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=15_000)


def figure(page: Page, name: str) -> tuple[str, str]:
    """(shown text, data-value) of a figure element."""
    node = page.locator(f'[data-figure="{name}"]').first
    return node.inner_text(), node.get_attribute("data-value") or ""


def number(node) -> float | None:
    """The data-value of an element as a number (None when empty: a rate without a base)."""
    value = node.get_attribute("data-value")
    return None if value in (None, "") else float(value)


def shown_count(page: Page, name: str) -> int:
    return int(figure(page, name)[0].replace(",", ""))


def assert_rate_shown(page: Page, name: str, rate: float | None) -> None:
    shown, value = figure(page, name)
    if rate is None:
        assert (shown, value) == ("—", ""), name
    else:
        assert float(value) == rate, (name, value, rate)
        assert abs(float(shown.rstrip("%")) - rate * 100) <= 0.051, (name, shown, rate)


def screenshot(page: Page, name: str) -> None:
    """A picture for people to look at (test-artifacts/ is not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"))


def demo_points(engine, n: int) -> list[tuple[float, float]]:
    """Points inside `n` random current demo grids."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (
                      SELECT ST_PointOnSurface(v.geom) AS p FROM unit_versions v JOIN units u USING (code)
                      WHERE u.level = 'grid' AND v.valid_to IS NULL ORDER BY md5(v.code) LIMIT :n) s"""),
            {"n": n},
        ).all()  # fmt: skip
    return [(r.lon, r.lat) for r in rows]


def post_case(base_url: str, headers: dict, lon: float, lat: float, category: str, description: str) -> dict:
    body = {"lon": lon, "lat": lat, "category": category, "description": description, "address": description}
    answer = httpx.post(f"{base_url}/cases", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def busy_demo(live_server: LiveServer) -> dict[str, str]:
    """Cases in the demo county through the API: 40 reported across it, 12 of them closed and
    revisited, 4 dispatched and overdue; the XSS description among them. A county dispatcher's headers."""
    headers = bearer(live_server.url, user_of(live_server.engine, Role.DISPATCHER, COUNTY))
    rng = random.Random(14)
    cases = []
    for n, (lon, lat) in enumerate(demo_points(live_server.engine, 40)):
        category = rng.choice(["0101", "0101", "0102", "0103", "0201", "0301", "0401"])
        description = XSS if n == 0 else f"大屏测试 dashboard test {n}"
        cases.append(post_case(live_server.url, headers, lon, lat, category, description))
    for case in cases[:16]:
        for to in WALK if case in cases[:12] else WALK[:3]:
            url = f"{live_server.url}/cases/{case['id']}/transitions"
            answer = httpx.post(url, json={"to": to}, headers=headers)
            assert answer.status_code == 200, answer.text
        if case in cases[:12]:
            rating = rng.choice(["satisfied", "satisfied", "basically_satisfied"])
            body = {"to": "revisited", "rating": rating}
            httpx.post(f"{live_server.url}/cases/{case['id']}/transitions", json=body, headers=headers)
    with live_server.engine.begin() as conn:  # four dispatched cases ran out of time an hour ago
        conn.execute(
            text("""UPDATE cases SET stage_yellow_at = now() - interval '2 hours',
                    stage_due_at = now() - interval '1 hour' WHERE id = ANY(:ids)"""),
            {"ids": [c["id"] for c in cases[12:16]]},
        )  # fmt: skip
    return headers


def open_dashboard(context: BrowserContext, path: str = "/dashboard") -> tuple[Page, list[dict]]:
    """A page on the dashboard, ready; and every dashboard JSON it is given, in order."""
    page = context.new_page()
    answers: list[dict] = []

    def keep(response: Response) -> None:
        if "/stats/dashboard?" in response.url or response.url.endswith("/stats/dashboard"):
            answers.append(response.json())

    page.on("response", keep)
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(path)
    wait_ready(page)
    settle(page, lambda: len(answers) >= 1)
    return page, answers


def settle(page: Page, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let Playwright's event handlers (which read response bodies) catch up until `done()`."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the page's answers did not arrive"
        page.wait_for_timeout(50)


def check_figures(page: Page, d: dict) -> None:
    """Every headline figure on the page is the JSON's."""
    for name, value in {
        "received_today": d["today"]["received"], "closed_today": d["today"]["closed"],
        "received_month": d["month"]["received"], "closed_month": d["month"]["closed"],
        "late_stages_month": d["month"]["late_stages"],
        "open_now": d["open_now"], "overdue_now": d["overdue_now"],
    }.items():  # fmt: skip
        assert (shown_count(page, name), figure(page, name)[1]) == (value, str(value)), name
    assert_rate_shown(page, "on_time_rate_month", d["month"]["on_time"]["rate"])
    assert_rate_shown(page, "satisfaction_rate_month", d["month_stats"]["satisfaction"]["rate"])
    assert_rate_shown(page, "local_share_month", d["month_stats"]["resolved_by_tier"]["local_share"])
    for stage, figures in d["month_stats"]["on_time"].items():
        row = page.locator(f'#table-stage tr[data-stage="{stage}"]')
        assert row.locator('[data-col="done"]').get_attribute("data-value") == str(figures["done"])
        assert number(row.locator('[data-col="rate"]')) == figures["rate"]
    for r in d["ranking"]:
        row = page.locator(f'#table-rank tr[data-unit="{r["code"]}"]')
        assert row.locator('[data-col="rank"]').inner_text() == str(r["rank"])
        assert row.locator('[data-col="name"]').inner_text() == r["name"]
        assert row.locator('[data-col="overdue_now"]').get_attribute("data-value") == str(r["overdue_now"])
        assert number(row.locator('[data-col="on_time_rate"]')) == r["on_time_rate"]
        assert row.locator('[data-col="received"]').get_attribute("data-value") == str(r["received"])
    shown_days = page.locator("#table-trend tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.day, +r.querySelector('[data-col=received]').dataset.value,"
        " +r.querySelector('[data-col=closed]').dataset.value])"
    )
    assert shown_days == [[x["date"], x["received"], x["closed"]] for x in d["trend"]]


def test_the_dashboards_numbers_are_the_apis_and_follow_new_cases(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, busy_demo: dict, page_log: PageLog
):
    context = new_context(viewport=BIG_SCREEN, device_scale_factor=1, is_mobile=False, has_touch=False)
    page = context.new_page()
    sign_in_by_typing(page, user_of(live_server.engine, Role.DISPATCHER, COUNTY))
    page.close()
    page_log.console.clear()  # the login page's own (its missing favicon) is not this test's
    page, answers = open_dashboard(context)
    d = answers[-1]
    assert d["unit"]["code"] == COUNTY
    assert page.locator("#unit-name").inner_text() == f"{d['unit']['name']} {COUNTY}"
    check_figures(page, d)
    # The JSON is /stats' and GET /cases' for the same unit and period.
    for period in ("today", "month"):
        params = {"unit": COUNTY, "from": d[period]["from"], "to": d[period]["to"]}
        stats = httpx.get(f"{live_server.url}/stats", params=params, headers=busy_demo).json()
        assert (stats["received"], stats["closed"]) == (d[period]["received"], d[period]["closed"])
        if period == "month":
            assert stats == d["month_stats"]
    params = {"unit": COUNTY, "status": OPEN_STATUSES, "overdue": True, "limit": 1}
    overdue = httpx.get(f"{live_server.url}/cases", headers=busy_demo, params=params)
    assert overdue.json()["total"] == d["overdue_now"] >= 4
    assert d["today"]["received"] >= 40 and len(d["ranking"]) == 21 and d["density"]["cells"]
    assert d["month_stats"]["satisfaction"]["counts"]["satisfied"] >= 1
    screenshot(page, "1920x1080")

    # Live: a case reported now shows without reloading, from the case stream.
    before = shown_count(page, "received_today")
    lon, lat = demo_points(live_server.engine, 1)[0]
    started = time.monotonic()
    post_case(live_server.url, busy_demo, lon, lat, "0101", XSS)
    received = page.locator('[data-figure="received_today"]')
    expect(received).not_to_have_text(str(before), timeout=LIVE_S * 1000)
    print(f"\nnew case on the dashboard after {time.monotonic() - started:.1f} s")
    settle(page, lambda: answers[-1]["today"]["received"] == shown_count(page, "received_today"))
    assert shown_count(page, "received_today") == answers[-1]["today"]["received"] >= before + 1
    check_figures(page, answers[-1])
    expect(page.locator("#live")).to_have_attribute("data-state", "live")

    # The XSS descriptions (never shown here) ran nothing; no script error, nothing blocked.
    assert page.evaluate("window.__xss") is None and page.locator("img[src=x]").count() == 0
    assert page_log.errors == [] and page_log.console_errors() == []
    assert all(live_server.is_local(url) for url in page_log.requests)

    # At 1366×768 the whole screen still fits, figures readable.
    page.set_viewport_size(LAPTOP)
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    expect(page.locator('[data-figure="received_today"]')).to_be_visible()
    screenshot(page, "1366x768")

    # A street from the ranking: its own figures, the same as /stats for the street.
    street = d["ranking"][0]["code"]
    figures_url = f"/stats/dashboard?unit={street}"
    with page.expect_response(lambda response: response.url.endswith(figures_url)) as given:
        page.locator(f'#table-rank tr[data-unit="{street}"] a').click()
    page.wait_for_url(f"**/dashboard?unit={street}")
    wait_ready(page)
    s = given.value.json()
    assert s["unit"]["code"] == street and page.locator("#unit-picker").input_value() == street
    check_figures(page, s)


def test_a_street_dispatcher_sees_only_their_street(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, busy_demo: dict
):
    context = new_context(viewport=LAPTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
    street = "411681001"
    page = context.new_page()
    sign_in_by_typing(page, user_of(live_server.engine, Role.DISPATCHER, street))
    page.close()
    page, answers = open_dashboard(context)
    assert answers[-1]["unit"]["code"] == street
    assert all(r["code"].startswith(street) and len(r["code"]) == 12 for r in answers[-1]["ranking"])
    page.goto(f"/dashboard?unit={COUNTY}")  # the county is outside: the page says so, and shows nothing
    expect(page.locator("#message")).to_contain_text("outside your unit")
    expect(page.locator('[data-figure="received_today"]')).to_have_text("—")


# ---------------------------------------------------------------- hostile names


@pytest.fixture(scope="module")
def hostile_server(settings: Settings, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A server of this module's own on the test county whose units and a category are named XSS."""
    features = f.hierarchy()
    for feature in features:
        feature["properties"]["name"] = f"{XSS}{feature['properties']['code'][-3:]}"
    url = county_database(settings, f"{DB_PREFIX}_dashboard_xss", features)
    engine = create_engine(url)
    folder = tmp_path_factory.mktemp("hostile")
    table = Path(settings.categories_file).read_text(encoding="utf-8")
    (folder / "categories.csv").write_text(table.replace("0101,暴露垃圾,", f"0101,{XSS},"), encoding="utf-8")
    update = {"database_url": url, "categories_file": folder / "categories.csv"}
    server_settings = settings.model_copy(update=update)
    with app_server(create_app(server_settings, engine=engine)) as base:
        user = user_of(engine, Role.DISPATCHER, f.COUNTY)
        headers = bearer(base, user)
        for n, (dx, dy) in enumerate([(0.01, 0.03), (0.03, 0.01), (0.01, 0.01)]):
            post_case(base, headers, f.X0 + dx, f.Y0 + dy, "0101", XSS if n else "ok")
        yield base, user
    engine.dispose()


def test_hostile_unit_and_category_names_show_as_text(browser, hostile_server: tuple[str, str]):
    base, user = hostile_server
    context = browser.new_context(
        base_url=base, viewport=BIG_SCREEN, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    try:
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        sign_in_by_typing(page, user, f"/dashboard?unit={f.COMMUNITY}")
        wait_ready(page)
        expect(page.locator("#unit-name")).to_have_text(f"{XSS}001 {f.COMMUNITY}")
        names = page.locator('#table-rank [data-col="name"]').all_inner_texts()
        assert sorted(names) == [f"{XSS}{n:03d}" for n in (1, 2, 3, 4)]
        expect(page.locator('#table-cats tr[data-category="0101"] th')).to_contain_text(XSS)
        page.locator("#chart-cats canvas").hover()  # a canvas tooltip with the name: drawn, not parsed
        page.locator("#chart-map canvas").hover()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__xss") is None and page.locator("img[src=x]").count() == 0
        assert dialogs == []
        screenshot(page, "hostile-names")
    finally:
        context.close()


# ---------------------------------------------------------------- the API docs, offline


def offline(context: BrowserContext, live_server: LiveServer) -> list[str]:
    """Refuse every request that is not for the service, as an isolated network would; the list of
    those refused."""
    refused: list[str] = []

    def handle(route: Route) -> None:
        if live_server.is_local(route.request.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", handle)
    return refused


def test_docs_render_offline_and_sign_in_with_the_password_flow(
    new_context: Callable[..., BrowserContext], live_server: LiveServer, page_log: PageLog
):
    context = new_context(viewport=LAPTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
    refused = offline(context, live_server)
    page = context.new_page()
    answer = page.goto("/docs")
    assert answer is not None and "script-src 'self'" in answer.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("gridmap")
    page.get_by_role("button", name="Authorize").first.click()
    # The dialog lists both schemes (the bearer token's password flow, the pages' cookie).
    dialog = page.locator(".modal-ux .auth-container", has_text="OAuth2PasswordBearer")
    dialog.locator("#oauth_username").fill(user_of(live_server.engine, Role.VIEWER, "411681001"))
    dialog.locator("#oauth_password").fill(PASSWORD)
    dialog.locator("button.modal-btn", has_text="Authorize").click()
    expect(dialog.locator("button.modal-btn", has_text="Logout")).to_be_visible()
    dialog.locator("button.modal-btn", has_text="Close").click()
    me = page.locator(".opblock-get", has=page.locator('[data-path="/auth/me"]'))
    me.locator(".opblock-summary-control").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    expect(me.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(me.locator(".live-responses-table tbody .microlight").first).to_contain_text('"role": "viewer"')
    screenshot(page, "docs")
    assert refused == [] and [u for u in page_log.requests if not live_server.is_local(u)] == []
    assert page_log.errors == [] and page_log.console_errors() == []

    page.goto("/redoc")
    expect(page.locator(".api-info h1")).to_contain_text("gridmap", timeout=15_000)
    expect(page.locator("[data-section-id]").first).to_be_attached()
    screenshot(page, "redoc")
    # ReDoc's sidebar draws Redocly's logo from their CDN (no option turns it off): the page asks for
    # it nowhere, not even a request the CSP would refuse (redoc-init.js).
    outside = {u for u in page_log.requests if not live_server.is_local(u)}
    assert refused == [] and outside == set(), outside
    assert page_log.errors == [] and page_log.console_errors() == []
    expect(page.get_by_text("API docs by Redocly")).to_be_attached()  # the credit stays, as text
