"""Every GeoJSON answer as RFC 7946 readers expect it: `application/geo+json`, valid for a validator
nobody on this project wrote (geojson-pydantic), right-hand winding, one precision rule everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from geojson_pydantic import Feature, FeatureCollection
from shapely.geometry import LineString, mapping, shape
from sqlalchemy import text

from access.roles import Role
from api.live import event_json
from geo import crs
from services.units import export_units
from store import users
from tests import factories as f
from tests.gdal import check_gdal_reads

PASSWORD = "password-123"
GEOPACKAGE = "application/geopackage+sqlite3"
# A place in grid 001 with more digits than any answer may carry (a phone's float, unrounded).
LON, LAT = f.X0 + 0.0123456789123, f.Y0 + 0.0234567891234
CUT_001 = LineString([(f.X0 + 0.006, f.Y0 + f.SIZE / 2 - 0.001), (f.X0 + 0.006, f.Y0 + f.SIZE + 0.001)])


def decimals(value: float) -> int:
    """How many decimals a JSON number carries as written."""
    text = repr(float(value))
    assert "e" not in text, text
    return len(text.partition(".")[2].rstrip("0"))


def positions(geometry: dict | None) -> list[list[float]]:
    """Every position of a GeoJSON geometry."""
    if geometry is None:
        return []
    found: list[list[float]] = []

    def walk(node):
        if isinstance(node[0], int | float):
            found.append(node)
        else:
            for child in node:
                walk(child)

    for part in geometry.get("geometries", [geometry]):
        walk(part["coordinates"])
    return found


def check_geojson(answer, *, kind=FeatureCollection) -> dict:
    """The answer is GeoJSON as RFC 7946 says: its media type, a valid document, CCW exteriors, the
    one precision."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/geo+json", answer.request.url
    body = answer.json()
    kind.model_validate(body)  # a third-party validator: types, positions, closed rings
    for feature in body.get("features", [body]):
        geometry = feature["geometry"]
        assert all(decimals(c) <= crs.GEOJSON_DECIMALS for p in positions(geometry) for c in p)
        if geometry and geometry["type"] in ("Polygon", "MultiPolygon"):
            for polygon in getattr(shape(geometry), "geoms", [shape(geometry)]):
                assert shapely.is_ccw(polygon.exterior), answer.request.url
    return body


@pytest.fixture
def world(client, session, county) -> dict:
    """The test county with an unrounded case, a patrol, a draft plan and a later version of a grid."""
    case = client.post("/cases", json={"lon": LON, "lat": LAT, "category": "0101", "description": "垃圾"})
    assert case.status_code == 201, case.text
    users.add_user(session, "walker.geo", PASSWORD, Role.FIELD_WORKER, f.grid_code(1), None)
    token = client.post("/auth/token", data={"username": "walker.geo", "password": PASSWORD}).json()
    walker = {"Authorization": f"Bearer {token['access_token']}"}
    start = datetime.now(UTC) - timedelta(hours=1)
    points = [
        {"t": (start + timedelta(seconds=5 * i)).isoformat(), "lon": f.X0 + 0.01,
         "lat": f.Y0 + 0.022 + i * 6 / 111_000, "accuracy_m": 6}
        for i in range(40)
    ]  # fmt: skip
    assert client.post("/patrols", json={"points": points}, headers=walker).status_code == 201
    plan = client.post("/plans", json={"unit": f.COMMUNITY, "title": "GeoJSON"}).json()["id"]
    return {"case": case.json(), "walker": walker, "plan": plan}


def test_every_geojson_route_answers_valid_geo_json(client, world):
    code = f.grid_code(1)
    for url in (
        "/grids?level=grid",
        "/export?level=grid",
        "/cases?format=geojson",
        "/map/cases",
        f"/map/party?unit={f.COMMUNITY}",
        f"/stats/dashboard/map?unit={f.COMMUNITY}",
        f"/units/{f.COMMUNITY}/diff?from=2023-01-01",
    ):
        body = check_geojson(client.get(url))
        assert body["type"] == "FeatureCollection", url
    assert check_geojson(client.get("/patrols", headers=world["walker"]))["features"]
    edit = {"operation": "split", "code": code, "geometry": mapping(CUT_001)}
    assert check_geojson(client.post(f"/plans/{world['plan']}/preview", json=edit))["features"]
    check_geojson(client.get(f"/grids/{code}"), kind=Feature)
    # The plain JSON list stays JSON.
    assert client.get("/cases").headers["content-type"] == "application/json"


def test_a_case_has_the_same_rounded_place_in_every_answer_and_event(client, session, world):
    place = [round(LON, crs.GEOJSON_DECIMALS), round(LAT, crs.GEOJSON_DECIMALS)]
    case_id = world["case"]["id"]
    assert [world["case"]["lon"], world["case"]["lat"]] == place  # the intake's answer
    listed = next(c for c in client.get("/cases").json()["items"] if c["id"] == case_id)
    assert [listed["lon"], listed["lat"]] == place
    detail = client.get(f"/cases/{case_id}").json()
    assert [detail["lon"], detail["lat"]] == place
    for url in ("/cases?format=geojson", "/map/cases"):
        feature = next(x for x in client.get(url).json()["features"] if x["id"] == case_id)
        assert feature["geometry"]["coordinates"] == place, url
    # The live feed's event as the stream sends it: the trigger logs the place unrounded. (The log is
    # read directly: the feed reads only below the oldest running transaction, this test's own.)
    first_event = "SELECT at, kind, body FROM case_events WHERE case_id = :id ORDER BY id LIMIT 1"
    row = session.execute(text(first_event), {"id": case_id}).one()
    assert row.body["lon"] != place[0]
    sent = json.loads(event_json({"kind": row.kind, "at": row.at, "body": row.body}))
    assert [sent["lon"], sent["lat"]] == place


def test_exports_write_the_same_positions_as_the_answers(client, session, tmp_path, world):
    listed = {x["id"]: x["geometry"] for x in check_geojson(client.get("/grids?level=grid"))["features"]}
    answer = check_geojson(client.get("/export?level=grid"))
    assert {x["id"]: x["geometry"] for x in answer["features"]} == listed
    assert answer["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4490"
    out = tmp_path / "grid.geojson"
    assert export_units(session, "grid", "geojson", out) == 4  # what `gridmap export` writes
    written = json.loads(out.read_text(encoding="utf-8"))
    assert {x["id"]: x["geometry"] for x in written["features"]} == listed



@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_gdal_reads_the_apis_export_without_warnings(client, county, tmp_path, fmt):
    answer = client.get(f"/export?level=grid&format={fmt}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == {"gpkg": GEOPACKAGE, "geojson": "application/geo+json"}[fmt]
    assert answer.headers["content-disposition"] == f'attachment; filename="grid.{fmt}"'
    path = tmp_path / f"grid.{fmt}"
    path.write_bytes(answer.content)
    check_gdal_reads(path, "grid", 4)
