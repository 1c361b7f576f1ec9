"""Users, roles, jurisdiction and audit, with real tokens on a committed database.

The route × role × jurisdiction matrix is generated from the app's route table: a route without
an access rule fails it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.roles import Permission, Role, User
from api.access import RULES, SESSION_COOKIE, TokenCache, UnitIn
from api.app import create_app
from cases.lifecycle import CaseStatus, Move
from cases.model import Intake, Reporter
from geo.settings import ConfigError, Settings
from services import cases as case_service
from services import intake as intake_service
from store import cases as store
from store import users
from tests import accounts
from tests import factories as f
from tests.accounts import auth_header
from tests.conftest import DB_PREFIX, county_database

PASSWORD = "password-123"
UNITS = [f.COUNTY, f.STREET, f.COMMUNITY, *(f.grid_code(i) for i in range(1, 5))]
CENTRES = {
    i: (f.X0 + (0.01 if i in (1, 3) else 0.03), f.Y0 + (0.03 if i in (1, 2) else 0.01)) for i in range(1, 5)
}


@pytest.fixture(scope="module")
def world(settings) -> dict:
    """A committed database: the test county, a user per role and unit, cases in grids 1 and 4."""
    url = county_database(settings, f"{DB_PREFIX}_access")
    engine = create_engine(url)
    rules = store.Rules.load(settings)
    cases: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        for role in Role:
            for unit in UNITS:
                department = "cgj" if role == Role.DEPARTMENT else None
                accounts.add_user(session, f"{role}.{unit}", PASSWORD, role, unit, department)
        for name, grid in (("in", 1), ("out", 4), ("summoned", 4)):
            lon, lat = CENTRES[grid]
            intake = Intake(lon, lat, "wgs84", lon, lat, 5.0, "report", "0101", f"{name} case",
                            reporter=Reporter("李四", "13812345678"))  # fmt: skip
            cases[name], _ = intake_service.create_case(session, intake, rules, actor="test")
        for to, unit in (("verified", None), ("filed", None), ("dispatched", None), ("reassigned", f.STREET)):
            move = Move(CaseStatus(to), reason="x" if unit else None, unit=unit)
            case_service.move_case(session, cases["summoned"], move, rules, actor="test")
        whistle = Move(CaseStatus.REASSIGNED, reason="吹哨", unit="cgj")
        case_service.move_case(session, cases["summoned"], whistle, rules, actor="test")
    yield {"url": url, "engine": engine, "cases": cases}
    engine.dispose()


@pytest.fixture(scope="module")
def app_client(world, settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"database_url": world["url"]}), engine=world["engine"])
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def auth(client: TestClient, role: Role, unit: str) -> dict[str, str]:
    """The Authorization header of the user of `role` in `unit` (signed in once per run)."""
    return auth_header(client, f"{role}.{unit}", PASSWORD)


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route, those of included routers too: FastAPI 0.16x keeps an
    included router whole in app.routes (its routes are not APIRoutes there)."""
    found = set()
    for route in client.app.routes:
        if isinstance(route, APIRoute):
            found |= {(method, route.path_format) for method in route.methods}
        for context in getattr(route, "effective_route_contexts", list)():
            if isinstance(context.original_route, APIRoute):
                found |= {(method, context.path) for method in context.original_route.methods}
    assert len(found) > 60, f"only {len(found)} routes found: the walk missed the routers"
    return sorted(found)


def test_every_route_has_an_access_rule(app_client):
    missing = [r for r in api_routes(app_client) if r not in RULES]
    assert missing == [], f"routes without an access rule in api/access.py: {missing}"


def concrete(path: str, world: dict, target: str) -> str:
    """A request path for a route: ids of a case in or out of the user's grid, a plan that is absent."""
    case = world["cases"][target]
    values = {
        "case_id": case, "service_request_id": case, "code": f.grid_code(1 if target == "in" else 4),
        "seq": 1, "plan_id": 999999, "edit_id": 1, "z": 10, "x": 843, "y": 410, "format": "json",
        "service_code": "0101",
    }  # fmt: skip
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path


@pytest.mark.parametrize("role", list(Role))
def test_route_role_jurisdiction_matrix(app_client, world, role):
    """Each route, for a user of `role` in grid 1, on things in grid 1 and in grid 4."""
    headers = auth(app_client, role, f.grid_code(1))
    user = User(0, "x", role, f.grid_code(1), "cgj" if role == Role.DEPARTMENT else None)
    for method, path in api_routes(app_client):
        if path in ("/cases/stream", "/auth/logout"):  # an endless stream; logging out ends the token
            continue
        rule = RULES[(method, path)]
        for target in ("in", "out"):
            url = concrete(path, world, target)
            answer = app_client.request(method, url, headers=headers, json={}, follow_redirects=False)
            assert answer.status_code < 500, (method, url, role, answer.text)
            allowed = rule.permission is None or user.can(rule.permission)
            hidden = False  # a case outside the jurisdiction is answered as a missing one: 404
            if allowed and rule.scope == "case":
                case = world["cases"][target]
                row = _case_units(world, case)
                hidden = not user.may_see_case(*row)
            # A unit the path names outside the user's unit: refused by the rule's scope.
            outside = allowed and rule.scope == UnitIn("path", "code") and target == "out"
            if outside and not user.covers(f.grid_code(4)):
                assert answer.status_code == 403, (method, url, role, answer.status_code)
            elif hidden:
                assert answer.status_code == 404, (method, url, role, answer.status_code)
            elif allowed:
                assert answer.status_code not in (401, 403), (method, url, role, answer.text)
            else:
                assert answer.status_code == 403, (method, url, role, answer.status_code)


# Hand-written: the routes whose request names a unit (path, query string or JSON body) that the
# permission check holds to the user's jurisdiction; no route checks it itself.
UNIT_SCOPED = {
    ("GET", "/stats"), ("GET", "/stats/dashboard"), ("GET", "/stats/dashboard/map"), ("GET", "/plans"),
    ("POST", "/plans"), ("GET", "/coverage"), ("GET", "/coverage/reports"), ("GET", "/map/party"),
    ("GET", "/patrols/coverage/{code}"),
}  # fmt: skip


def test_a_unit_named_in_the_path_query_or_body_is_held_to_the_jurisdiction(app_client):
    assert {key for key, rule in RULES.items() if isinstance(rule.scope, UnitIn)} == UNIT_SCOPED
    mine = f.grid_code(1)
    admin = auth(app_client, Role.ADMIN, mine)  # every permission; the jurisdiction of grid 1
    for method, path in sorted(UNIT_SCOPED):
        scope = RULES[(method, path)].scope
        for unit, inside in ((mine, True), (f.grid_code(4), False), (f.COMMUNITY, False)):
            params = {"unit": unit} if scope.place == "query" else {}
            body = {"unit": unit, "title": ""} if scope.place == "body" else None  # "": no plan is made
            url = path.replace("{code}", unit)
            answer = app_client.request(method, url, params=params, json=body, headers=admin)
            if inside:
                assert answer.status_code not in (401, 403) and answer.status_code < 500, (url, answer.text)
            else:
                assert answer.status_code == 403, (method, url, params, answer.text)
                assert answer.json()["detail"] == f"unit {unit} is outside your unit {mine}"
    # Every value of a repeated parameter is checked, whichever one the route reads.
    twice = app_client.get("/stats", params=[("unit", f.grid_code(4)), ("unit", mine)], headers=admin)
    assert twice.status_code == 403
    # A malformed code outside the jurisdiction is refused as invalid, not read as a prefix.
    prefix = app_client.get("/stats", params={"unit": mine[:7]}, headers=admin)
    assert prefix.status_code == 422 and prefix.json()["detail"].startswith("unit: ")
    not_json = app_client.post("/plans", content=b"{", headers={**admin, "content-type": "application/json"})
    assert not_json.status_code == 422


def _case_units(world: dict, case_id: int) -> tuple:
    with world["engine"].connect() as conn:
        return tuple(
            conn.execute(
                text("SELECT unit_code, grid_code, department FROM cases WHERE id = :id"), {"id": case_id}
            ).one()
        )


def test_roles_can_do_what_their_job_needs_and_no_more(app_client, world):
    """The table in access/roles.py, spelt out: a few moves that matter, by hand."""
    case = world["cases"]["in"]
    move = {"to": "verified"}
    viewer = app_client.post(
        f"/cases/{case}/transitions", json=move, headers=auth(app_client, Role.VIEWER, f.COUNTY)
    )
    assert viewer.status_code == 403
    worker = app_client.post(
        f"/cases/{case}/transitions", json=move, headers=auth(app_client, Role.FIELD_WORKER, f.grid_code(1))
    )
    assert worker.status_code == 403 and "may not move a case to verified" in worker.json()["detail"]
    planner_moves = app_client.post(f"/cases/{case}/transitions", json=move,
                                    headers=auth(app_client, Role.PLANNER, f.COUNTY))  # fmt: skip
    assert planner_moves.status_code == 403
    assert app_client.get("/audit", headers=auth(app_client, Role.DISPATCHER, f.COUNTY)).status_code == 403
    assert app_client.get("/audit", headers=auth(app_client, Role.ADMIN, f.COUNTY)).status_code == 200
    assert app_client.get("/cases").status_code == 401
    assert app_client.get("/map", follow_redirects=False).headers["location"].startswith("/login?next=/map")
    assert app_client.get("/locate", params={"lon": 114.91, "lat": 33.43}).status_code == 200  # public
    # A stale page cookie (revoked, or the database reloaded) is no login: back to /login, not a 401.
    app_client.cookies.set(SESSION_COOKIE, "no-such-session")
    assert app_client.get("/map", follow_redirects=False).headers["location"].startswith("/login?next=/map")
    assert app_client.get("/locate", params={"lon": 114.91, "lat": 33.43}).status_code == 200
    app_client.cookies.clear()
    bad = {"Authorization": "Bearer no-such-token"}
    assert app_client.get("/locate", params={"lon": 114.91, "lat": 33.43}, headers=bad).status_code == 401


def test_department_handlers_see_only_cases_summoned_to_them(app_client, world):
    listed = app_client.get("/cases", headers=auth(app_client, Role.DEPARTMENT, f.COUNTY)).json()
    assert [c["id"] for c in listed["items"]] == [world["cases"]["summoned"]]
    accept = app_client.post(f"/cases/{world['cases']['summoned']}/transitions", json={"to": "accepted"},
                             headers=auth(app_client, Role.DEPARTMENT, f.grid_code(2)))  # fmt: skip
    assert accept.status_code == 200 and accept.json()["status"] == "accepted"


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.sampled_from(list(Role)), unit=st.sampled_from(UNITS))
def test_random_users_never_receive_a_case_or_personal_field_outside_their_rights(
    app_client, world, role, unit
):
    user = User(0, "x", role, unit, "cgj" if role == Role.DEPARTMENT else None)
    headers = auth(app_client, role, unit)
    listed = app_client.get("/cases", headers=headers, params={"limit": 5000})
    if not user.can(Permission.READ_CASES):
        assert listed.status_code == 403
        return
    seen = {c["id"] for c in listed.json()["items"]}
    for case_id in world["cases"].values():
        visible = user.may_see_case(*_case_units(world, case_id))
        assert (case_id in seen) == visible, (role, unit, case_id)
        detail = app_client.get(f"/cases/{case_id}", headers=headers)
        assert detail.status_code == (200 if visible else 404)
        if visible:
            phone = detail.json()["reporter"]["phone"]
            assert (phone == "13812345678") == user.can(Permission.READ_PERSONAL), (role, phone)


def test_tokens_expire_refresh_and_are_revoked(app_client, world):
    login = app_client.post(
        "/auth/token", data={"username": f"viewer.{f.COUNTY}", "password": PASSWORD}
    ).json()
    assert login["token_type"] == "bearer" and login["expires_in"] == 900
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    assert app_client.get("/auth/me", headers=bearer).json()["role"] == "viewer"
    renewed = app_client.post("/auth/refresh", data={"refresh_token": login["refresh_token"]}).json()
    assert app_client.post("/auth/refresh", data={"refresh_token": login["refresh_token"]}).status_code == 401
    assert app_client.get("/auth/me", headers=bearer).status_code == 401  # the old login is used up
    fresh = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert app_client.get("/auth/me", headers=fresh).status_code == 200
    with world["engine"].begin() as conn:  # time passes
        conn.execute(text("UPDATE auth_tokens SET expires_at = now() - interval '1 s' WHERE kind = 'access'"
                          " AND revoked_at IS NULL AND user_id = (SELECT id FROM users WHERE username = :u)"),
                     {"u": f"viewer.{f.COUNTY}"})  # fmt: skip
    expired = app_client.get("/auth/me", headers=fresh)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    again = app_client.post(
        "/auth/token", data={"username": f"viewer.{f.COUNTY}", "password": PASSWORD}
    ).json()
    bearer = {"Authorization": f"Bearer {again['access_token']}"}
    assert app_client.post("/auth/logout", headers=bearer).status_code == 204
    assert app_client.get("/auth/me", headers=bearer).status_code == 401
    assert app_client.get("/auth/me", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_a_served_app_honours_a_checked_token_for_its_cache_time_only(world, settings):
    app = create_app(
        settings.model_copy(update={"database_url": world["url"]}), engine=world["engine"], token_cache_s=0.5
    )
    with TestClient(app, base_url="https://testserver") as client:

        def login() -> dict[str, str]:
            answer = client.post("/auth/token", data={"username": f"viewer.{f.COUNTY}", "password": PASSWORD})
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        bearer = login()
        assert client.get("/auth/me", headers=bearer).status_code == 200
        with Session(world["engine"]) as session, session.begin():  # revoked by another process
            users.revoke(session, bearer["Authorization"][7:], app.state.secret, datetime.now(UTC))
        assert client.get("/auth/me", headers=bearer).status_code == 200  # still within the cache time
        time.sleep(0.6)
        assert client.get("/auth/me", headers=bearer).status_code == 401
        bearer = login()  # a logout in this process takes effect at once
        assert client.get("/auth/me", headers=bearer).status_code == 200
        assert client.post("/auth/logout", headers=bearer).status_code == 204
        assert client.get("/auth/me", headers=bearer).status_code == 401


def test_a_token_is_looked_up_once_for_the_requests_asking_together_and_never_past_a_logout():
    cache = TokenCache(5.0)
    holders = [User(n, f"worker{n}", Role.FIELD_WORKER, f.grid_code(1)) for n in range(3)]
    calls: list[int] = []

    def lookup() -> tuple[User, datetime]:
        calls.append(1)
        holder = holders[len(calls) - 1]  # each lookup finds another user: which answer is which
        time.sleep((0.05, 0.15, 0.02)[len(calls) - 1])  # requests keep arriving meanwhile
        return holder, datetime.now(UTC) + timedelta(hours=1)

    async def together() -> list:
        return await asyncio.gather(*(cache.look_up("access", "t", lookup) for _ in range(20)))

    assert {user for user, _ in asyncio.run(together())} == {holders[0]} and len(calls) == 1
    assert cache.get("access", "t") == holders[0]

    async def logout_meanwhile() -> tuple:
        cache.clear()
        before = asyncio.ensure_future(cache.look_up("access", "t", lookup))
        while len(calls) < 2:  # its lookup is under way (a fixed sleep was too short on a busy machine)
            await asyncio.sleep(0.001)
        cache.clear()  # a logout in this process
        after = await cache.look_up("access", "t", lookup)  # not the lookup begun before
        return await before, after

    (before, _), (after, _) = asyncio.run(logout_meanwhile())
    assert (before, after) == (holders[1], holders[2]) and len(calls) == 3
    assert cache.get("access", "t") == holders[2]  # the answer begun before it (and ended later) is not kept


def test_failed_logins_are_audited_with_their_reason(app_client, world):
    name = f"planner.{f.STREET}"
    for _ in range(3):
        assert app_client.post("/auth/token", data={"username": name, "password": "wrong"}).status_code == 401
    log = app_client.get(
        "/audit", headers=auth(app_client, Role.ADMIN, f.COUNTY), params={"actor": name}
    ).json()
    got = [(e["action"], e["details"]["reason"]) for e in log[:3]]
    assert got == [("login_failed", "wrong password")] * 3


def test_the_audit_log_records_moves_and_personal_data_and_cannot_be_changed(app_client, world):
    dispatcher = auth(app_client, Role.DISPATCHER, f.COUNTY)
    case = world["cases"]["in"]
    app_client.get(f"/cases/{case}", headers=dispatcher)
    app_client.post(f"/cases/{case}/transitions", json={"to": "voided", "reason": "测试"}, headers=dispatcher)
    log = app_client.get("/audit", headers=auth(app_client, Role.ADMIN, f.COUNTY),
                         params={"actor": f"dispatcher.{f.COUNTY}"}).json()  # fmt: skip
    actions = {(e["action"], e["target"]) for e in log}
    assert {
        ("personal_data", f"case {case}"),
        ("case_transition", f"case {case}"),
        ("login", None),
    } <= actions
    assert all(e["ip"] for e in log)
    with pytest.raises(Exception, match="append-only"), world["engine"].begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))


def test_users_are_checked_when_made(world):
    with Session(world["engine"]) as session:
        for args, needle in [
            (("x1", "short", Role.VIEWER, f.COUNTY), "at least 8"),
            (("x2", PASSWORD, Role.VIEWER, "419998"), "no current unit"),
            (("x3", PASSWORD, Role.DEPARTMENT, f.COUNTY), "department"),
            ((f"viewer.{f.COUNTY}", PASSWORD, Role.VIEWER, f.COUNTY), "exists"),
            (("bad name!", PASSWORD, Role.VIEWER, f.COUNTY), "valid user name"),
        ]:
            with pytest.raises(users.UserError, match=needle):
                users.add_user(session, *args)
        session.rollback()


def test_no_service_without_a_secret_outside_demo_mode(tmp_path):
    with pytest.raises(ConfigError, match="GRIDMAP_SECRET_KEY"):
        create_app(Settings(database_url=None, secret_key=None, home=tmp_path))
    with pytest.raises(ConfigError):
        create_app(Settings(database_url=None, secret_key="too-short", home=tmp_path))
    create_app(
        Settings(database_url=None, secret_key=None, demo=True, home=tmp_path)
    )  # demo: a generated key
    assert len((tmp_path / "demo-secret").read_text()) >= 32


def test_hardening_headers_limits_and_no_cors(world, settings):
    strict = settings.model_copy(
        update={"public_intake_per_minute": 2, "max_request_bytes": 200_000, "login_per_minute": 2}
    )
    # An address of its own: the limits count per address in the database, over every app.
    peer = (f"192.0.2.{uuid.uuid4().int % 250 + 1}", 50000)
    app = create_app(strict, engine=world["engine"])
    with TestClient(app, base_url="https://testserver", client=peer) as client:
        answer = client.get("/health", headers={"Origin": "https://evil.example"})
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "access-control-allow-origin" not in answer.headers
        body = {"lon": CENTRES[2][0], "lat": CENTRES[2][1], "category": "0101", "description": "匿名"}
        codes = [client.post("/cases", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}).status_code
                 for _ in range(3)]  # fmt: skip
        assert codes == [201, 201, 429]
        huge = client.post("/cases", content=b"x" * 300_000, headers={"content-type": "application/json"})
        assert huge.status_code == 413
        assert "Traceback" not in client.get("/cases/1/photos/x").text
        logins = [client.post("/auth/token", data={"username": "nobody", "password": "x" * 8}).status_code
                  for _ in range(3)]  # fmt: skip
        assert logins == [401, 401, 429]


def test_a_field_worker_reporting_outside_their_grid_is_accepted_and_flagged(app_client):
    worker = auth(app_client, Role.FIELD_WORKER, f.grid_code(1))
    inside = {"lon": CENTRES[1][0], "lat": CENTRES[1][1], "category": "0102", "description": "网格内"}
    outside = {**inside, "lon": CENTRES[4][0], "lat": CENTRES[4][1], "description": "网格外"}
    assert app_client.post("/cases", json=inside, headers=worker).json()["flags"] == []
    flagged = app_client.post("/cases", json=outside, headers=worker)
    assert flagged.status_code == 201 and "outside their unit" in flagged.json()["flags"][0]
    assert flagged.json()["history"][0]["actor"] == f"field_worker.{f.grid_code(1)}"
