"""Fixtures for tests in a real headless browser: a live server, Debian's chromium, a phone page.

Reusable by any page of the service (the field worker page, the map):

- `live_server`: uvicorn serving `api.app:create_app` in a background thread on a free port of
  127.0.0.1, on a database of its own (`{DB_PREFIX}_browser`, the demo county loaded and committed
  once per run). `live_server.url` is the base URL, `live_server.engine` reads what the pages wrote.
  Tests share it: none may assume it holds only what it wrote itself.
- `browser`: chromium driven by Playwright, from /usr/bin/chromium (or GRIDMAP_CHROMIUM); never
  downloaded. Missing or broken, every browser test FAILS (scripts/test installs it with apt).
- `demo_position`: a WGS84 point inside a demo grid, with the database's assignment of it.
- `new_context(**options)`: a browser context on the live server (relative URLs work) with a phone
  viewport, Chinese locale, China time and geolocation granted at `demo_position`; any Playwright
  `new_context` option overrides these (e.g. a desktop `viewport` for the map). Closed after the test.
- `context`, `page`: the default phone context and a page in it.
- `page_log`: every request URL, console message and uncaught page error of the test's contexts.
- `desktop_as(role, unit="411681")`: a desktop context (DESKTOP viewport) of a new user, signed in;
  `desktop`: a county dispatcher's. `user_of` and `sign_in` make and sign in users for other contexts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    WebError,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from access.roles import Role
from api.app import create_app
from geo.assignment import Assignment, Status
from geo.settings import Settings
from store.engine import SERVICE_CONNECT_ARGS
from store.locate import locate
from tests import accounts
from tests.databases import DB_PREFIX, demo_database
from tests.live import app_server

BROWSER_DATABASE = f"{DB_PREFIX}_browser"
CHROMIUM = Path(os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium"))
PHONE = {"width": 390, "height": 844}  # a common phone, in CSS pixels
TIMEOUT_MS = 10_000  # how long any single browser wait may take before the test fails
expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long (a busy CI machine is slow, not wrong)
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "browser-test-password"  # every user the browser tests make


@dataclass(frozen=True)
class LiveServer:
    """A running service: its base URL and an engine on its database."""

    url: str
    engine: Engine
    settings: Settings

    def is_local(self, url: str) -> bool:
        """Whether `url` is served by this server (blob: and data: URLs never leave the browser)."""
        if url.startswith(("blob:", "data:")):
            return True
        return urlsplit(url)[:2] == urlsplit(self.url)[:2]


@dataclass(frozen=True)
class DemoPosition:
    """A WGS84 point inside a demo grid and the database's answer for it."""

    lon: float
    lat: float
    assignment: Assignment


@dataclass
class PageLog:
    """What the browser did during a test."""

    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        """Record every request, console message and uncaught error in `context`."""
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("console", lambda message: self.console.append(_console_line(message)))
        context.on("weberror", lambda error: self.errors.append(_error_line(error)))

    def console_errors(self) -> list[str]:
        """Console messages of type error (failed loads, CSP violations, script errors)."""
        return [line for line in self.console if line.startswith("error:")]


def _console_line(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def _error_line(error: WebError) -> str:
    return str(error.error)


@pytest.fixture(scope="session")
def browser_database_url(settings: Settings) -> str:
    """A migrated database holding the demo county, committed once per run, for the live server."""
    return demo_database(settings, BROWSER_DATABASE)


@pytest.fixture(scope="session")
def live_server(settings: Settings, browser_database_url: str) -> Iterator[LiveServer]:
    """uvicorn serving the app on a free port of 127.0.0.1, in a background thread."""
    # No periodic jobs: tests drive the clock themselves where they need it.
    update = {"database_url": browser_database_url, "background_jobs": False}
    server_settings = settings.model_copy(update=update)
    engine = create_engine(
        browser_database_url, pool_size=10, max_overflow=10, connect_args=SERVICE_CONNECT_ARGS
    )
    app = create_app(server_settings, engine=engine)
    try:
        with app_server(app) as url:
            yield LiveServer(url=url, engine=engine, settings=server_settings)
    except RuntimeError as exc:  # it did not start: the tests cannot run, they fail
        pytest.fail(str(exc), pytrace=False)
    finally:
        engine.dispose()


# Per module, not per run: Playwright's sync API keeps an asyncio loop running in the thread while
# it is started, and with two workers a worker runs other modules (asyncio.run in tests/api) after a
# browser module; stopping it at the module's end leaves them a thread without a running loop.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver, for the module."""
    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless chromium; its absence fails the test, never skips it."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"no chromium at {CHROMIUM}: browser tests need Debian's chromium "
            "(apt-get install chromium, which scripts/test does via GRIDMAP_EXTRA_APT) "
            "or GRIDMAP_CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    try:
        # --no-sandbox: chromium's sandbox refuses to run as root, which CI and containers do.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    except PlaywrightError as exc:
        pytest.fail(f"chromium at {CHROMIUM} does not start: {exc}", pytrace=False)
    yield launched
    launched.close()


# Playwright evaluates a predicate written as a bare expression ("GridMap.x > 0") again with eval()
# on every poll, which the pages' CSP refuses: such a wait fails only when its first check is false
# (CI failed so once). A function ("() => ...") is evaluated once, then called (docs/testing.md).
@pytest.fixture(autouse=True)
def _predicates_are_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page.wait_for_function in a browser test is given a function, never a bare expression."""
    original = Page.wait_for_function

    def checked(self: Page, expression: str, **kwargs: object) -> object:
        if "=>" not in expression and not expression.lstrip().startswith("function"):
            raise AssertionError(f"wait_for_function needs a function, not an expression: {expression!r}")
        return original(self, expression, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Page, "wait_for_function", checked)


@pytest.fixture(scope="session")
def demo_position(live_server: LiveServer) -> DemoPosition:
    """A point inside the first demo grid (by code) whose point-on-surface that grid answers for."""
    rows_sql = text(
        """
        SELECT v.code, ST_X(p.g) AS lon, ST_Y(p.g) AS lat
        FROM unit_versions v
        JOIN units u ON u.code = v.code
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(v.geom) AS g) p
        WHERE u.level = 'grid' AND v.valid_to IS NULL
        ORDER BY v.code
        LIMIT 50
        """
    )
    tolerance = live_server.settings.snap_tolerance_m
    with Session(live_server.engine) as session:
        for row in session.execute(rows_sql):
            answer = locate(session, row.lon, row.lat, tolerance_m=tolerance)
            if answer.status == Status.ASSIGNED and answer.grid is not None and answer.grid.code == row.code:
                return DemoPosition(lon=row.lon, lat=row.lat, assignment=answer)
    pytest.fail("no demo grid answers for its own point on surface", pytrace=False)


@pytest.fixture
def page_log() -> PageLog:
    """Requests, console messages and page errors of this test's browser contexts."""
    return PageLog()


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, demo_position: DemoPosition, page_log: PageLog
) -> Iterator[Callable[..., BrowserContext]]:
    """A factory of browser contexts on the live server; phone defaults, any option overridable."""
    contexts: list[BrowserContext] = []

    def make(**options: object) -> BrowserContext:
        """A new context: Playwright `new_context` options override the phone defaults."""
        defaults: dict[str, object] = {
            "base_url": live_server.url,
            "viewport": PHONE,
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
            "locale": "zh-CN",
            "timezone_id": "Asia/Shanghai",
            "geolocation": {"longitude": demo_position.lon, "latitude": demo_position.lat, "accuracy": 8},
            "permissions": ["geolocation"],
        }
        context = browser.new_context(**{**defaults, **options})
        context.set_default_timeout(TIMEOUT_MS)
        page_log.watch(context)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    """The default phone context."""
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page in the default phone context."""
    return context.new_page()


def user_of(engine: Engine, role: Role, unit: str, department: str | None = None) -> str:
    """A new user of `role` in `unit`, made in `engine`'s database (the live server's); their name."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    with Session(engine) as session, session.begin():
        accounts.add_user(session, name, PASSWORD, role, unit, department)
    return name


def log_in(context: BrowserContext, name: str, next_path: str = "/") -> BrowserContext:
    """Sign `context` in as `name` through the login form's endpoint (the cookie stays in it)."""
    form = {"username": name, "password": PASSWORD, "next": next_path}
    answer = context.request.post("/auth/login", form=form, max_redirects=0)
    assert answer.status == 303 and "failed" not in answer.headers["location"], answer.headers
    return context


def sign_in(context: BrowserContext, live_server: LiveServer, role: Role, unit: str) -> BrowserContext:
    """Sign `context` in as a new user of `role` in `unit`."""
    return log_in(context, user_of(live_server.engine, role, unit))


def bearer(base_url: str, name: str) -> dict[str, str]:
    """The Authorization header of user `name`, for API calls a test makes itself."""
    answer = httpx.post(f"{base_url}/auth/token", data={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture
def desktop_as(
    new_context: Callable[..., BrowserContext], live_server: LiveServer
) -> Callable[..., BrowserContext]:
    """A factory of signed-in desktop contexts: `desktop_as(role, unit="411681")`."""

    def make(role: Role, unit: str = "411681") -> BrowserContext:
        context = new_context(viewport=DESKTOP, device_scale_factor=1, is_mobile=False, has_touch=False)
        return sign_in(context, live_server, role, unit)

    return make


@pytest.fixture
def desktop(desktop_as: Callable[..., BrowserContext]) -> BrowserContext:
    """A county dispatcher's desktop browser, signed in (the other contexts' defaults are a phone)."""
    return desktop_as(Role.DISPATCHER, "411681")
