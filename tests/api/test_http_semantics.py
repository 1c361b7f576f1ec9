"""Small HTTP promises: OPTIONS and 405 name the allowed methods, logout answers as documented,
an unknown coordinate system is refused with what may be passed instead."""

from __future__ import annotations


def test_options_lists_every_method_of_the_path(client):
    answer = client.options("/cases")
    assert answer.status_code == 204
    assert answer.headers["allow"] == "GET, HEAD, OPTIONS, POST"  # GET and POST are two routes
    assert client.options("/cases/1/transitions").headers["allow"] == "OPTIONS, POST"
    assert client.options("/static/map/").headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/no/such/path").status_code == 404


def test_a_405_names_every_method_the_path_takes(client):
    answer = client.delete("/cases")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_logout_answers_204_as_documented(client):
    documented = client.get("/openapi.json").json()["paths"]["/auth/logout"]["post"]["responses"]
    answer = client.post("/auth/logout")
    assert answer.status_code == 204 and [code for code in documented if code < "300"] == ["204"]


def test_an_unknown_epsg_code_is_refused_with_what_may_be_passed(client):
    answer = client.get("/locate", params={"lon": 114.9, "lat": 33.4, "crs": "EPSG:999999"})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "use wgs84, gcj02, bd09, cgcs2000 or an EPSG code PROJ knows" in detail
    assert "proj_create" not in detail and "Internal" not in detail
