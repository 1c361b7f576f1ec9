"""GET /grids, /grids/{code} and /export on a hand-made county."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.imports import import_units
from store.migrate import head_revision
from tests import factories as f


@pytest.fixture
def county(session, settings, tmp_path):
    path = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    import_units(session, path, valid_from=datetime(2024, 1, 1, tzinfo=UTC), settings=settings)
    session.execute(
        text(
            "INSERT INTO staff (unit_code, role, name, phone)"
            " VALUES (:c, 'grid_chief', '张三', '13800000000')"
        ),
        {"c": f.grid_code(1)},
    )
    return session


def test_grids_is_a_feature_collection_of_the_current_grids(client, county):
    response = client.get("/grids")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert [x["properties"]["code"] for x in body["features"]] == [f.grid_code(i) for i in range(1, 5)]
    assert body["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert "crs" not in body["features"][0]["geometry"]  # RFC 7946: lon/lat, no per-geometry CRS


def test_grids_filters_by_level_parent_kind_and_bbox(client, county):
    assert len(client.get("/grids", params={"level": "community"}).json()["features"]) == 1
    assert len(client.get("/grids", params={"parent": f.STREET}).json()["features"]) == 4
    assert client.get("/grids", params={"kind": "rural"}).json()["features"] == []
    west = f"{f.X0 - 0.01},{f.Y0 - 0.01},{f.X0 + 0.005},{f.Y0 + 0.005}"
    codes = [x["id"] for x in client.get("/grids", params={"bbox": west}).json()["features"]]
    assert codes == [f.grid_code(3)]


def test_grids_as_of_a_date_before_they_existed_is_empty(client, county):
    assert client.get("/grids", params={"at": "2023-12-31"}).json()["features"] == []
    assert len(client.get("/grids", params={"at": "2024-01-02"}).json()["features"]) == 4


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bbox": "1,2,3"}, "four numbers"),
        ({"bbox": "115,34,114,33"}, "minlon < maxlon"),
        ({"at": "yesterday"}, "not a date"),
        ({"parent": "12ab"}, "must be digits only"),
        ({"parent": "4116810"}, "has 7 digits"),
        ({"level": "planet"}, "micro_grid"),  # the answer lists the levels there are
    ],
)
def test_bad_filters_are_422_with_a_reason(client, county, params, needle):
    response = client.get("/grids", params=params)
    assert response.status_code == 422
    assert needle in response.text


def test_grid_detail_has_parents_counts_and_no_phone(client, county):
    response = client.get(f"/grids/{f.grid_code(1)}")
    assert response.status_code == 200
    props = response.json()["properties"]
    assert [p["code"] for p in props["parents"]] == [f.COUNTY, f.STREET, f.COMMUNITY]
    assert props["staff_counts"] == {"grid_chief": 1} and props["party_cell_counts"] == {}
    assert props["kind"] == "urban" and props["version"] == 1 and props["households"] == 400
    assert "13800000000" not in response.text
    assert client.get(f"/grids/{f.COMMUNITY}").json()["properties"]["children_count"] == 4


@pytest.mark.parametrize("code", ["419999001001099", "nonsense", "4199990010010011"])
def test_unknown_or_impossible_codes_are_404(client, county, code):
    response = client.get(f"/grids/{code}")
    assert response.status_code == 404 and "no unit with code" in response.json()["detail"]


def test_export_is_a_downloadable_geojson(client, county):
    response = client.get("/export", params={"level": "grid"})
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert len(response.json()["features"]) == 4


def test_health_reports_schema_and_postgis(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["schema"] == head_revision() and body["postgis"].startswith("3")


def test_every_response_says_how_long_the_server_took(client):
    timing = client.get("/health").headers["server-timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) > 0


def test_versions_of_a_redrawn_grid(client, county, settings, tmp_path):
    from shapely.geometry import box, mapping

    features = f.hierarchy()
    features[3]["geometry"] = mapping(box(f.X0, f.Y0 + 0.02, f.X0 + 0.021, f.Y0 + f.SIZE))
    features[4]["geometry"] = mapping(box(f.X0 + 0.021, f.Y0 + 0.02, f.X0 + f.SIZE, f.Y0 + f.SIZE))
    path = f.write_geojson(tmp_path / "redraw.geojson", features)
    import_units(county, path, valid_from=datetime(2025, 1, 1, tzinfo=UTC), settings=settings)
    versions = client.get(f"/grids/{f.grid_code(1)}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["valid_to"] == versions[1]["valid_from"] and versions[1]["valid_to"] is None
    assert versions[1]["area_m2"] > versions[0]["area_m2"]
    old = client.get(f"/grids/{f.grid_code(1)}", params={"at": "2024-06-01"}).json()["properties"]
    assert old["version"] == 1
    assert client.get("/grids/419999001001099/versions").status_code == 404
