"""The vector tiles for clients other than the map page (issue 17 §5): private caching with an ETag,
404 for an unknown view, a TileJSON document valid against TileJSON 3.0.0 whose tiles a real MVT
decoder (mapbox-vector-tile, PyPI) reads, on the demo county."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.demo import COUNTY_CODE
from store import tiles

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "tilejson-3.0.0.schema.json").read_text())


def grid_row(session: Session):
    """A current grid of the demo county with a point inside it."""
    return session.execute(
        text(
            """SELECT v.code, left(v.code, 12) AS community, ST_X(p) AS lon, ST_Y(p) AS lat
               FROM unit_versions v JOIN units u USING (code), ST_PointOnSurface(v.geom) p
               WHERE u.level = 'grid' AND v.valid_to IS NULL ORDER BY v.code LIMIT 1"""
        )
    ).one()


def tile_url(session: Session, z: int = 15, query: str = "") -> str:
    row = grid_row(session)
    x, y = tiles.tile_of(row.lon, row.lat, z)
    return f"/map/tiles/{z}/{x}/{y}.pbf{query}"


def test_a_tile_is_private_per_credentials_and_revalidated_by_its_etag(demo_client, demo_session):
    url = tile_url(demo_session)
    first = demo_client.get(url)
    assert first.status_code == 200 and first.content
    assert first.headers["cache-control"].startswith("private")
    vary = {v.strip().lower() for v in first.headers["vary"].split(",")}
    assert {"authorization", "cookie", "x-api-key"} <= vary
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    again = demo_client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == first.headers["cache-control"]
    # A list of tags, one of them ours (a cache holding several versions), and the strong form.
    assert demo_client.get(url, headers={"If-None-Match": f'W/"0", {etag}'}).status_code == 304
    assert demo_client.get(url, headers={"If-None-Match": etag[2:]}).status_code == 304
    other = demo_client.get(url, headers={"If-None-Match": 'W/"0123"'})
    assert other.status_code == 200 and other.content == first.content
    # Another tile (other content) has another tag: the client's copy of this one does not pass for it.
    neighbour = demo_client.get(tile_url(demo_session, z=12), headers={"If-None-Match": etag})
    assert neighbour.status_code == 200 and neighbour.headers["etag"] != etag
    anonymous = TestClient(demo_client.app, base_url="https://testserver")
    assert anonymous.get(url).status_code == 401


def test_an_unknown_unit_is_404_with_a_reason_and_a_malformed_one_422(demo_client, demo_session):
    url = tile_url(demo_session)
    unknown = demo_client.get(url + f"?unit={COUNTY_CODE}999")
    assert unknown.status_code == 404 and f"{COUNTY_CODE}999" in unknown.json()["detail"]
    no_grid = demo_client.get(url + f"?near={COUNTY_CODE}999999999")
    assert no_grid.status_code == 404 and "no current grid" in no_grid.json()["detail"]
    assert demo_client.get(url + "?unit=41168x").status_code == 422
    assert demo_client.get(url + "?near=4116").status_code == 422
    assert demo_client.get("/map/tiles.json?unit=411681999").status_code == 404
    community = grid_row(demo_session).community
    known = demo_client.get(url + f"?unit={community}")
    assert known.status_code == 200 and known.content


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def test_tilejson_is_valid_and_its_tiles_decode_into_the_layers_it_lists(demo_client, demo_session):
    answer = demo_client.get("/map/tiles.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    doc = answer.json()
    errors = [e.message for e in jsonschema_rs.validator_for(SCHEMA).iter_errors(doc)]
    assert errors == []
    assert doc["tilejson"] == "3.0.0"
    # The rules across keys that a schema cannot state (TileJSON 3.0.0 §3.3.4, §3.6).
    minx, miny, maxx, maxy = doc["bounds"]
    lon, lat, zoom = doc["center"]
    assert minx <= lon <= maxx and miny <= lat <= maxy and doc["minzoom"] <= zoom <= doc["maxzoom"]
    extent = demo_session.execute(
        text("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e
                FROM unit_versions WHERE code = :c AND valid_to IS NULL) s"""),
        {"c": COUNTY_CODE},
    ).one()
    assert doc["bounds"] == pytest.approx(list(extent), abs=1e-6)  # the county's extent
    assert all(doc["minzoom"] <= layer["minzoom"] <= layer["maxzoom"] <= doc["maxzoom"]
               for layer in doc["vector_layers"])  # fmt: skip
    layers = {layer["id"]: layer for layer in doc["vector_layers"]}
    assert set(layers) == {"province", "city", "county", "street", "community", "grid", "micro_grid"}
    template = doc["tiles"][0]
    assert template.startswith("https://testserver/map/tiles/{z}/{x}/{y}.pbf")
    row = grid_row(demo_session)
    z = 15
    x, y = tiles.tile_of(row.lon, row.lat, z)
    tile = demo_client.get(template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)))
    assert tile.status_code == 200
    decoded = decode(tile.content)
    assert {"county", "street", "community", "grid"} <= set(decoded) <= set(layers)
    for name, layer in decoded.items():
        assert layer["extent"] == tiles.EXTENT
        for feature in layer["features"]:
            assert set(feature["properties"]) <= set(layers[name]["fields"]), name
            assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert row.code in {f["properties"]["code"] for f in decoded["grid"]["features"]}
    # The document is revalidated like a tile.
    unchanged = demo_client.get("/map/tiles.json", headers={"If-None-Match": answer.headers["etag"]})
    assert unchanged.status_code == 304


def test_tilejson_of_a_view_carries_the_view_and_the_crs_into_its_tiles(demo_client, demo_session):
    row = grid_row(demo_session)
    whole = demo_client.get("/map/tiles.json").json()
    near = demo_client.get(f"/map/tiles.json?near={row.code}").json()
    query = parse_qs(urlsplit(near["tiles"][0]).query)
    assert query["near"] == [row.code] and "g" in query
    # The neighbourhood's bounds lie inside the county's and hold the grid.
    assert whole["bounds"][0] <= near["bounds"][0] <= row.lon <= near["bounds"][2] <= whole["bounds"][2]
    assert near["center"][2] > whole["center"][2]
    shifted = demo_client.get(f"/map/tiles.json?near={row.code}&crs=gcj02").json()
    assert parse_qs(urlsplit(shifted["tiles"][0]).query)["crs"] == ["gcj02"]
    assert shifted["bounds"][0] - near["bounds"][0] == pytest.approx(0.005, abs=0.003)  # GCJ-02: ~500 m east
    assert demo_client.get("/map/tiles.json?crs=bd09").status_code == 422
