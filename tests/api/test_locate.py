"""GET /locate: the answer's shape, coordinate systems and bad input."""

from __future__ import annotations

import pytest

from geo import crs
from tests import factories as f

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)


def test_answer_has_the_documented_shape(client, county):
    body = client.get("/locate", params={"lon": INSIDE_001[0], "lat": INSIDE_001[1]}).json()
    assert {"status", "rule", "grid", "distance_m", "units", "nearest"} <= body.keys()
    assert body["status"] == "assigned" and body["rule"] == "covers"
    assert body["grid"] == {
        "code": f.grid_code(1),
        "name": f"单元{f.grid_code(1)}",
        "kind": "urban",
        "version": 1,
    }
    assert body["units"][0] == {"code": f.COUNTY, "name": "测试县", "level": "county"}
    assert body["nearest"] is None and body["distance_m"] == 0.0


def test_gcj02_and_bd09_points_are_converted_first(client, county):
    gx, gy = crs.wgs84_to_gcj02([INSIDE_001[0]], [INSIDE_001[1]])
    bx, by = crs.wgs84_to_bd09([INSIDE_001[0]], [INSIDE_001[1]])
    for params in ({"lon": gx[0], "lat": gy[0], "crs": "gcj02"}, {"lon": bx[0], "lat": by[0], "crs": "bd09"}):
        assert client.get("/locate", params=params).json()["grid"]["code"] == f.grid_code(1)


def test_projected_cgcs2000_point_is_accepted(client, county):
    x, y = crs.transformer(crs.STORAGE_CRS, "EPSG:4547").transform(*INSIDE_001)
    body = client.get("/locate", params={"lon": x, "lat": y, "crs": "EPSG:4547"}).json()
    assert body["grid"]["code"] == f.grid_code(1)


def test_as_of_date(client, county):
    params = {"lon": INSIDE_001[0], "lat": INSIDE_001[1], "at": "2023-06-01"}
    assert client.get("/locate", params=params).json()["status"] == "unassigned"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"lon": "nan", "lat": 33.4}, "finite"),
        ({"lon": 114.9, "lat": 95}, "outside the service area"),
        ({"lon": 33.41, "lat": 114.91}, "swapped"),
        ({"lon": 500000, "lat": 3700000}, "projected metres"),
        ({"lon": 114.9, "lat": 33.4, "crs": "mars2000"}, "unknown coordinate system"),
        ({"lon": 114.9, "lat": 33.4, "crs": "EPSG:999999"}, "unknown coordinate system"),
        ({"lon": "east", "lat": 33.4}, "lon"),
        ({"lat": 33.4}, "lon"),
    ],
)
def test_bad_coordinates_are_422_with_the_reason(client, county, params, needle):
    response = client.get("/locate", params=params)
    assert response.status_code == 422, response.text
    assert needle in response.text
