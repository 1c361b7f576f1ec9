"""Users at the province and city levels (issue 19 §1): jurisdiction by code prefix in every view,
on the tiny synthetic province (2 cities × 2 counties), with real tokens on a committed database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from access.roles import Role
from api.app import create_app
from benchmarks.province import SIZES, make_province, write_province
from cases.model import Intake, Reporter
from services import intake as intake_service
from services.imports import import_units
from store import cases as store
from store import tiles
from tests import accounts
from tests.accounts import auth_header
from tests.conftest import DB_PREFIX, fresh_database

PASSWORD = "password-123"
USERS = {
    "province.admin": (Role.ADMIN, "41"),
    "province.planner": (Role.PLANNER, "41"),
    "province.dispatcher": (Role.DISPATCHER, "41"),
    "province.viewer": (Role.VIEWER, "41"),
    "city.dispatcher": (Role.DISPATCHER, "4101"),
    "city.viewer": (Role.VIEWER, "4101"),
    "city.planner": (Role.PLANNER, "4101"),
}
GRIDS = {"4101": "410101001001001", "4102": "410202001001001"}


@pytest.fixture(scope="module")
def province(settings, tmp_path_factory) -> Iterator[dict]:
    """A committed database: the tiny province, a user per role above, a case in each city."""
    url = fresh_database(settings, f"{DB_PREFIX}_province")
    engine = create_engine(url)
    frame = make_province(SIZES["tiny"], seed=3)
    path = write_province(frame, tmp_path_factory.mktemp("province") / "province.gpkg")
    centres = {city: frame.set_index("code").geometry[grid].centroid for city, grid in GRIDS.items()}
    rules = store.Rules.load(settings)
    cases = {}
    with Session(engine) as session, session.begin():
        import_units(session, path, valid_from=datetime(2024, 1, 1, tzinfo=UTC), settings=settings)
        for name, (role, unit) in USERS.items():
            accounts.add_user(session, name, PASSWORD, role, unit, None)
        for city, point in centres.items():
            intake = Intake(point.x, point.y, "wgs84", point.x, point.y, 5.0, "report", "0101",
                            f"case in {city}", reporter=Reporter("李四", "13812345678"))  # fmt: skip
            cases[city], _ = intake_service.create_case(session, intake, rules, actor="test")
    yield {"url": url, "engine": engine, "cases": cases, "frame": frame}
    engine.dispose()


@pytest.fixture(scope="module")
def client(province, settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"database_url": province["url"]}), engine=province["engine"])
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def auth(client: TestClient, name: str) -> dict[str, str]:
    return auth_header(client, name, PASSWORD)


def listed(client: TestClient, name: str, **params: str) -> set[int]:
    answer = client.get("/cases", headers=auth(client, name), params=params)
    assert answer.status_code == 200, answer.text
    return {c["id"] for c in answer.json()["items"]}


def test_cases_are_assigned_to_grids_of_their_city(client, province):
    for city, case in province["cases"].items():
        detail = client.get(f"/cases/{case}", headers=auth(client, "province.dispatcher")).json()
        assert detail["grid_code"] == GRIDS[city]


def test_a_province_user_sees_every_city_and_a_city_user_only_its_own(client, province):
    mine, other = province["cases"]["4101"], province["cases"]["4102"]
    for name in ("province.dispatcher", "province.viewer", "province.planner", "province.admin"):
        assert listed(client, name) == {mine, other}, name
        assert listed(client, name, unit="4102") == {other}
    for name in ("city.dispatcher", "city.viewer", "city.planner"):
        assert listed(client, name) == {mine}, name
    city = auth(client, "city.dispatcher")
    assert client.get(f"/cases/{mine}", headers=city).status_code == 200
    assert client.get(f"/cases/{other}", headers=city).status_code == 404  # not even said to exist
    assert listed(client, "city.dispatcher", unit="4102") == set()  # another city: nothing of it
    move = client.post(f"/cases/{other}/transitions", json={"to": "verified"}, headers=city)
    assert move.status_code == 404  # as for reading it
    assert client.post(f"/cases/{mine}/transitions", json={"to": "verified"}, headers=city).status_code == 200


def test_stats_dashboard_and_coverage_at_province_and_city(client, province):
    whole = client.get("/stats", headers=auth(client, "province.viewer"), params={"unit": "41"})
    assert whole.status_code == 200 and whole.json()["received"] == 2
    city = client.get("/stats", headers=auth(client, "city.viewer"))
    assert city.status_code == 200 and city.json()["received"] == 1
    assert (
        client.get("/stats", headers=auth(client, "city.viewer"), params={"unit": "4102"}).status_code == 403
    )
    board = client.get("/stats/dashboard", headers=auth(client, "province.dispatcher"))
    assert board.status_code == 200, board.text
    assert "4102" in board.text  # the province's board ranks its cities
    cov = client.get("/coverage", headers=auth(client, "province.planner"), params={"unit": "4101"})
    assert cov.status_code == 200 and cov.json()["unit"] == "4101"
    refused = client.get("/coverage", headers=auth(client, "city.planner"), params={"unit": "4102"})
    assert refused.status_code == 403


def test_lists_and_map_work_at_the_province_and_city_levels(client):
    admin = auth(client, "province.admin")
    cities = client.get("/grids", headers=admin, params={"level": "city"}).json()["features"]
    assert sorted(c["properties"]["code"] for c in cities) == ["4101", "4102"]
    detail = client.get("/grids/410101001001001", headers=admin).json()
    assert [p["code"] for p in detail["properties"]["parents"]] == ["41", "4101", "410101", "410101001",
                                                                     "410101001001"]  # fmt: skip
    page = client.get("/map", headers=auth(client, "city.dispatcher"))
    assert page.status_code == 200 and "?unit=4101" in page.text  # the city's map draws its own units
    x, y = tiles.tile_of(111.16, 31.64, 7)  # one tile holds the whole tiny province
    tile = client.get(f"/map/tiles/7/{x}/{y}.pbf", headers=auth(client, "province.dispatcher"))
    assert tile.status_code == 200
    assert "province=1, city=2, county=4" in tile.headers["X-Tile-Features"]


def test_a_seven_digit_unit_is_refused_everywhere(client):
    headers = auth(client, "province.admin")
    for path in ("/cases", "/stats", "/stats/dashboard", "/queue"):
        answer = client.get(path, headers=headers, params={"unit": "4101010"})
        assert answer.status_code == 422, (path, answer.text)


def test_locate_names_the_province_and_city(client, province):
    point = shapely.centroid(province["frame"].set_index("code").geometry[GRIDS["4102"]])
    answer = client.get("/locate", params={"lon": point.x, "lat": point.y}).json()
    assert [u["code"] for u in answer["units"]][:3] == ["41", "4102", "410202"]


def test_a_plan_of_a_city_refuses_to_create_a_unit_right_under_it(client):
    headers = auth(client, "city.planner")
    plan = client.post("/plans", json={"unit": "4101", "title": "市级调整"}, headers=headers)
    assert plan.status_code == 201, plan.text
    square = {"type": "Polygon", "coordinates": [[[111.01, 31.61], [111.02, 31.61], [111.02, 31.62],
                                                  [111.01, 31.62], [111.01, 31.61]]]}  # fmt: skip
    edit = {"operation": "create", "name": "新县", "geometry": square}
    answer = client.post(f"/plans/{plan.json()['id']}/edits", json=edit, headers=headers)
    assert answer.status_code == 422 and "not units under the city 4101" in answer.text
