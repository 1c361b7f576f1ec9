"""GET /map/cases by box and zoom (issue 19 §2, the map's first view): clusters far out count every
open case the user may see, across a month boundary of the cases' partitions; a county user's
clusters hold none of another county's cases; a bad box or zoom is a 422 with a reason.
On the tiny synthetic province (2 cities × 2 counties), committed, with real tokens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.roles import Role
from api.app import create_app
from benchmarks.province import SIZES, make_province, write_province
from cases.model import Intake, Reporter
from cases.partitions import month_bounds, month_of
from services import intake as intake_service
from services.imports import import_units
from store import cases as store
from store import users
from store.case_partitions import partition_of_case
from tests.accounts import auth_header
from tests.conftest import DB_PREFIX, fresh_database

PASSWORD = "password-123"
MINE, OTHER = "410101", "410201"  # two counties of different cities
PROVINCE_BOX = "110,30,113,33"  # holds the whole tiny province
PER_COUNTY = 12


@pytest.fixture(scope="module")
def province(settings, tmp_path_factory) -> Iterator[dict]:
    """The tiny province, a province and a county dispatcher, open cases in two counties reported
    on both sides of the month boundary before now (two partitions), one case closed."""
    url = fresh_database(settings, f"{DB_PREFIX}_clusters")
    engine = create_engine(url)
    frame = make_province(SIZES["tiny"], seed=3)
    path = write_province(frame, tmp_path_factory.mktemp("province") / "province.gpkg")
    rules = store.Rules.load(settings)
    cases: dict[str, list[int]] = {MINE: [], OTHER: []}
    with Session(engine) as session, session.begin():
        import_units(session, path, valid_from=store.db_now(session) - timedelta(days=400), settings=settings)
        users.add_user(session, "p.dispatcher", PASSWORD, Role.DISPATCHER, "41", None)
        users.add_user(session, "c.dispatcher", PASSWORD, Role.DISPATCHER, MINE, None)
        boundary = month_bounds(month_of(store.db_now(session)))[0]  # this month's first instant
        grids = frame[(frame.code.str.len() == 15) & (frame.kind != "special")].set_index("code").geometry
        for county in (MINE, OTHER):
            mine = sorted(code for code in grids.index if code.startswith(county))[:PER_COUNTY]
            for n, code in enumerate(mine):
                point = grids[code].representative_point()
                at = boundary - timedelta(seconds=1) if n % 2 else boundary + timedelta(seconds=1)
                intake = Intake(point.x, point.y, "wgs84", point.x, point.y, 5.0, "report", "0101",
                                f"case {n} in {code}", reporter=Reporter("李四", "13812345678"))  # fmt: skip
                case_id, _ = intake_service.create_case(session, intake, rules, actor="test", now=at)
                cases[county].append(case_id)
        closed = cases[OTHER].pop()
        session.execute(text("UPDATE cases SET status = 'closed' WHERE id = :id"), {"id": closed})
    yield {"url": url, "engine": engine, "cases": cases}
    engine.dispose()


@pytest.fixture(scope="module")
def client(province, settings) -> Iterator[TestClient]:
    served = settings.model_copy(update={"database_url": province["url"], "map_case_clusters_above": 0})
    app = create_app(served, engine=province["engine"])
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def auth(client: TestClient, name: str) -> dict[str, str]:
    return auth_header(client, name, PASSWORD)


def in_view(client: TestClient, name: str, zoom: int, bbox: str = PROVINCE_BOX) -> dict:
    answer = client.get("/map/cases", params={"bbox": bbox, "zoom": zoom}, headers=auth(client, name))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    return answer.json()


def counted(body: dict) -> int:
    """Cases the features stand for: a cluster its count, a case one."""
    return sum(f["properties"]["count"] if f["properties"].get("cluster") else 1 for f in body["features"])


def test_clusters_count_every_open_case_the_province_sees_across_the_month_boundary(client, province):
    with province["engine"].connect() as conn:
        months = {partition_of_case(Session(conn), i) for ids in province["cases"].values() for i in ids}
    assert len(months) == 2  # the cases lie in two monthly partitions
    open_cases = sum(len(ids) for ids in province["cases"].values())  # the closed one is not drawn
    far = in_view(client, "p.dispatcher", zoom=7)
    assert far["clustered"] is True and far["total"] == open_cases
    clusters = [f for f in far["features"] if f["properties"].get("cluster")]
    assert clusters and all(f["properties"]["count"] >= 2 for f in clusters)
    assert counted(far) == open_cases
    for f in clusters:  # each cluster's counts add up, and its extent holds its centre
        p = f["properties"]
        assert sum(p["lights"].values()) == sum(p["statuses"].values()) == p["count"]
        lon, lat = f["geometry"]["coordinates"]
        assert p["bbox"][0] <= lon <= p["bbox"][2] and p["bbox"][1] <= lat <= p["bbox"][3]
    near = in_view(client, "p.dispatcher", zoom=16)  # a street's zoom: every case, one by one
    assert near["clustered"] is False and near["total"] == open_cases
    ids = {f["id"] for f in near["features"]}
    assert ids == set(province["cases"][MINE]) | set(province["cases"][OTHER])
    # The clusters' lights are the cases' lights (one rule, in SQL and in Python).
    lights = Counter(f["properties"]["light"] or "none" for f in near["features"])
    summed: Counter = Counter()
    for f in far["features"]:
        p = f["properties"]
        summed.update(p["lights"] if p.get("cluster") else {p["light"] or "none": 1})
    assert +summed == +lights


def test_a_county_dispatcher_clusters_only_the_countys_cases(client, province):
    mine = set(province["cases"][MINE])
    far = in_view(client, "c.dispatcher", zoom=7)
    assert far["total"] == counted(far) == len(mine)
    assert far["clustered"] is True
    near = in_view(client, "c.dispatcher", zoom=16)
    assert {f["id"] for f in near["features"]} == mine
    # Another county's box is empty for them, not the other county's cases.
    other = in_view(client, "p.dispatcher", zoom=16)
    theirs = [f["geometry"]["coordinates"] for f in other["features"] if f["id"] in province["cases"][OTHER]]
    xs, ys = [c[0] for c in theirs], [c[1] for c in theirs]
    box = f"{min(xs) - 0.001},{min(ys) - 0.001},{max(xs) + 0.001},{max(ys) + 0.001}"
    assert in_view(client, "p.dispatcher", zoom=7, bbox=box)["total"] == len(province["cases"][OTHER])
    assert in_view(client, "c.dispatcher", zoom=7, bbox=box) == {
        "type": "FeatureCollection", "total": 0, "overdue": 0, "clustered": False, "features": []
    }  # fmt: skip


def test_a_small_box_sends_its_cases_alone(client, province):
    """A box around one case: that case, nothing from outside the box."""
    near = in_view(client, "p.dispatcher", zoom=16)
    one = near["features"][0]
    lon, lat = one["geometry"]["coordinates"]
    box = f"{lon - 0.0001},{lat - 0.0001},{lon + 0.0001},{lat + 0.0001}"
    body = in_view(client, "p.dispatcher", zoom=7, bbox=box)
    assert [f["id"] for f in body["features"]] == [one["id"]] and body["total"] == 1


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"bbox": PROVINCE_BOX}, "bbox and zoom go together"),
        ({"zoom": "7"}, "bbox and zoom go together"),
        ({"bbox": PROVINCE_BOX, "zoom": "-1"}, "zoom=-1"),
        ({"bbox": PROVINCE_BOX, "zoom": "23"}, "zoom=23"),
        ({"bbox": PROVINCE_BOX, "zoom": "seven"}, "integer"),
        ({"bbox": "110,30,113", "zoom": "7"}, "bbox must be"),
        ({"bbox": "113,30,110,33", "zoom": "7"}, "min < max"),
        ({"bbox": "110,30,113,nan", "zoom": "7"}, "min < max"),
        ({"bbox": PROVINCE_BOX, "zoom": "7", "near": "410101001001001"}, "no bbox"),
    ],
)
def test_a_bad_box_or_zoom_is_a_422_with_a_reason(client, params, reason):
    answer = client.get("/map/cases", params=params, headers=auth(client, "p.dispatcher"))
    assert answer.status_code == 422, answer.text
    assert reason in answer.text


def test_the_map_of_a_province_lists_its_province_and_city_levels(client):
    """The layer control's levels are those stored (tests/browser/test_map_clusters.py: a county's)."""
    page = client.get("/map", headers=auth(client, "p.dispatcher"))
    assert page.status_code == 200
    for level in ("province", "city", "county", "grid"):
        assert f'["{level}", ' in page.text, level
