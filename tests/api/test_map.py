"""The map page and its data endpoints, on the demo county (no browser: see tests/browser/test_map.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api.app import create_app
from cases.vocabulary import STATUS_LABELS
from geo.codes import Level
from geo.crs import wgs84_to_gcj02
from geo.settings import Settings
from maps.assets import external_urls
from store import tiles
from tests.conftest import act_as_admin, use_session

STATIC = Path(__file__).resolve().parents[2] / "api" / "static" / "map"


@pytest.fixture
def tiled_client(demo_session: Session, settings: Settings, demo_engine: Engine) -> Iterator[TestClient]:
    """The demo county served with an Amap-style (GCJ-02) background tile source configured."""
    configured = settings.model_copy(
        update={
            "map_tile_url": "https://webrd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=8",
            "map_tile_attribution": "© 高德地图",
            "map_tile_crs": "gcj02",
            "map_tile_subdomains": "1234",
        }
    )
    app = create_app(configured, engine=demo_engine)
    use_session(app, demo_session)
    with TestClient(app, base_url="https://testserver", headers=act_as_admin(app)) as client:
        yield client


def test_the_page_names_no_outside_url_and_allows_only_its_own_scripts(demo_client: TestClient):
    answer = demo_client.get("/map")
    assert answer.status_code == 200
    html = answer.text
    assert external_urls(html) == []
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy.split(";")[1]
    assert "connect-src 'self'" in policy
    for asset in re.findall(r'(?:src|href)="(/static/map/[^"]+)"', html):
        fetched = demo_client.get(asset)
        assert fetched.status_code == 200, asset
        folder = STATIC / Path(asset).relative_to("/static/map").parent
        if folder != STATIC:  # vendored: its licence travels with it
            assert any(p.name.upper().startswith(("LICENSE", "MIT-LICENCE")) for p in folder.iterdir()), (
                folder
            )


def test_every_grid_of_the_county_is_in_the_tiles_of_its_view(demo_client: TestClient, demo_session: Session):
    extent = demo_session.execute(
        text("SELECT ST_Extent(geom) FROM unit_versions WHERE code = '411681' AND valid_to IS NULL")
    ).scalar_one()
    minx, miny, maxx, maxy = map(float, re.findall(r"[-\d.]+", extent))
    z = 10
    x0, y0 = tiles.tile_of(minx, maxy, z)
    x1, y1 = tiles.tile_of(maxx, miny, z)
    total = 0
    codes = demo_session.execute(
        text("""SELECT v.code FROM unit_versions v JOIN units u USING (code)
                WHERE u.level = 'grid' AND v.valid_to IS NULL""")
    ).scalars()
    data = b""
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            answer = demo_client.get(f"/map/tiles/{z}/{x}/{y}.pbf")
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
            counts = dict(kv.split("=") for kv in answer.headers["x-tile-features"].split(", "))
            total += int(counts["grid"])
            data += answer.content
    missing = [c for c in codes if c.encode() not in data]
    assert missing == []
    assert total >= 2619  # grids on a tile edge are in both tiles


def test_tiles_outside_the_data_are_empty_and_impossible_ones_404(demo_client: TestClient):
    empty = demo_client.get("/map/tiles/10/0/0.pbf")
    assert empty.status_code == 200 and empty.content == b""
    assert demo_client.get("/map/tiles/3/8/0.pbf").status_code == 404
    assert demo_client.get("/map/tiles/0/0/0.pbf?size=512").status_code == 404


def test_gcj02_tiles_carry_the_units_where_amap_draws_them(demo_session: Session):
    row = demo_session.execute(
        text("""SELECT v.code, ST_X(ST_PointOnSurface(v.geom)) AS lon, ST_Y(ST_PointOnSurface(v.geom)) AS lat
                FROM unit_versions v JOIN units u USING (code)
                WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.kind = 'urban'
                ORDER BY ST_Area(v.geom) LIMIT 1""")
    ).one()
    z = 18  # ~130 m tiles: the GCJ-02 shift (~500 m here) moves the grid several tiles away
    plain = tiles.unit_tile(demo_session, Level.GRID, z, *tiles.tile_of(row.lon, row.lat, z))
    assert row.code.encode() in plain.data
    gx, gy = wgs84_to_gcj02(row.lon, row.lat)
    shifted_xy = tiles.tile_of(float(gx), float(gy), z)
    assert shifted_xy != tiles.tile_of(row.lon, row.lat, z)
    shifted = tiles.unit_tile(demo_session, Level.GRID, z, *shifted_xy, gcj02=True)
    assert row.code.encode() in shifted.data
    unshifted = tiles.unit_tile(demo_session, Level.GRID, z, *tiles.tile_of(row.lon, row.lat, z), gcj02=True)
    assert row.code.encode() not in unshifted.data


def test_a_tile_source_setting_brings_its_tiles_and_crs(tiled_client: TestClient):
    answer = tiled_client.get("/map")
    assert "https://webrd0{s}.is.autonavi.com/appmaptile" in answer.text
    assert "L.CRS.GCJ02" in answer.text and '"crs": "gcj02"' in answer.text
    assert "\\u00a9 \\u9ad8\\u5fb7" in answer.text  # the attribution, escaped for the script
    assert "https://webrd0*.is.autonavi.com" in answer.headers["content-security-policy"]


def test_a_unit_popup_counts_people_without_naming_them(demo_client: TestClient, demo_session: Session):
    code = demo_session.execute(text("SELECT unit_code FROM staff ORDER BY unit_code LIMIT 1")).scalar_one()
    answer = demo_client.get(f"/map/units/{code}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["code"] == code and body["parents"][0]["code"] == "411681"
    assert sum(body["staff_counts"].values()) > 0
    assert {"open_cases", "overdue_cases", "party_cell_counts", "households"} <= body.keys()
    names = demo_session.execute(
        text("SELECT name, phone FROM staff WHERE unit_code = :c"), {"c": code}
    ).all()
    for name, phone in names:
        assert name not in answer.text and (not phone or phone not in answer.text)
    assert demo_client.get("/map/units/411681999999999").status_code == 404
    assert demo_client.get("/map/units/12").status_code == 404


def test_search_by_code_prefix_or_name(demo_client: TestClient):
    by_code = demo_client.get("/map/search", params={"q": "411681001"}).json()["units"]
    assert by_code[0]["code"] == "411681001" and len(by_code[0]["bbox"]) == 4
    by_name = demo_client.get("/map/search", params={"q": "花园"}).json()["units"]
    assert any("花园" in u["name"] for u in by_name)
    assert demo_client.get("/map/search", params={"q": "%_"}).json()["units"] == []


def test_labels_are_the_units_meeting_the_box_with_a_point_inside_each(
    demo_client: TestClient, demo_session: Session
):
    box = demo_client.get("/map/search", params={"q": "411681001"}).json()["units"][0]["bbox"]
    answer = demo_client.get(
        "/map/labels", params={"bbox": ",".join(map(str, box)), "level": ["community", "grid"]}
    )
    assert answer.status_code == 200, answer.text
    labels = answer.json()["labels"]
    assert labels and {u["level"] for u in labels} == {"community", "grid"}
    widths = [u["bbox"][2] - u["bbox"][0] for u in labels]
    assert widths == sorted(widths, reverse=True)  # largest first: a cut-off list keeps those that fit
    inside = demo_session.execute(
        text(
            """SELECT bool_and(ST_Intersects(v.geom, ST_SetSRID(ST_MakePoint(l.lon, l.lat), 4490)))
               FROM unit_versions v JOIN unnest(CAST(:codes AS text[]), CAST(:lons AS float8[]),
                                                CAST(:lats AS float8[])) AS l(code, lon, lat)
                 ON l.code = v.code WHERE v.valid_to IS NULL"""
        ),
        {"codes": [u["code"] for u in labels], "lons": [u["lon"] for u in labels],
         "lats": [u["lat"] for u in labels]},
    ).scalar()  # fmt: skip
    assert inside
    for bad in (
        {"bbox": "1,2,3"},
        {"bbox": "3,2,1,4"},
        {"bbox": "a,b,c,d"},
        {"bbox": "1,2,3,4", "level": "county"},
    ):
        refused = demo_client.get("/map/labels", params=bad)
        assert refused.status_code == 422 and refused.json()["detail"], (bad, refused.text)


def test_the_page_gets_the_chinese_status_names_of_the_one_vocabulary(demo_client: TestClient):
    html = demo_client.get("/map").text
    config = json.loads(re.search(r"config: (\{.*\})\s*\}\);", html).group(1))
    assert config["statusNames"] == {str(k): v for k, v in STATUS_LABELS.items()}
    assert config["statusNames"]["dispatched"] == "已派遣"


def test_party_cells_are_points_without_names(demo_client: TestClient, demo_session: Session):
    body = demo_client.get("/map/party", params={"unit": "411681001"}).json()
    kinds = {f["properties"]["kind"] for f in body["features"]}
    assert kinds == {"central_household", "organisation"}
    household_names = demo_session.execute(
        text("SELECT name FROM party_cells WHERE kind = 'central_household' AND unit_code LIKE '411681001%'")
    ).scalars()
    text_ = str(body)
    assert not any(n in text_ for n in household_names)


def test_views_refuse_unknown_units(demo_client: TestClient):
    assert demo_client.get("/map?grid=411681999999999").status_code == 404
    assert demo_client.get("/map?unit=411681999").status_code == 404
    assert demo_client.get("/map?view=field").status_code == 422
    for impossible in ("/map?unit=4116810", "/map/cases?unit=41168100101", "/map?grid=411681001001001001"):
        assert demo_client.get(impossible).status_code == 422, impossible  # no level has that length
    assert demo_client.get("/plans?unit=4116810").status_code == 422
    assert demo_client.get("/map?view=planner").status_code == 200


def test_cases_near_a_grid_are_those_of_its_neighbourhood_however_many_are_around(
    demo_client: TestClient, demo_session: Session, monkeypatch
):
    """near= selects by grid in the database: other grids' cases in the same box take no place."""
    grid, near, other = demo_session.execute(
        text(
            """WITH g AS (SELECT v.code, v.geom FROM unit_versions v JOIN units u USING (code)
                          WHERE u.level = 'grid' AND v.valid_to IS NULL),
                    n AS (SELECT me.code, array_agg(o.code) AS near, ST_Extent(o.geom) AS box
                          FROM g me JOIN g o ON ST_Intersects(o.geom, me.geom)
                          WHERE me.code = (SELECT min(code) FROM g) GROUP BY me.code)
               SELECT n.code, n.near, c.code FROM n JOIN g c ON c.code <> ALL(n.near)
                 AND ST_Within(ST_PointOnSurface(c.geom), ST_SetSRID(n.box::geometry, 4490))
               ORDER BY n.code, c.code LIMIT 1"""
        )
    ).one()  # a grid, its neighbours, and a grid beyond them inside their bounding box

    def report(code: str) -> int:
        lon, lat = demo_session.execute(
            text(
                """SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Difference(me.geom, coalesce(
                       (SELECT ST_Union(o.geom) FROM unit_versions o JOIN units u USING (code)
                        WHERE u.level = 'grid' AND o.valid_to IS NULL AND o.code <> me.code
                          AND ST_Intersects(o.geom, me.geom)),
                       ST_SetSRID('POLYGON EMPTY'::geometry, 4490)))) AS p
                   FROM unit_versions me WHERE me.code = :code AND me.valid_to IS NULL) s"""
            ),
            {"code": code},
        ).one()  # a point of the grid that no other grid (a special one, say) covers
        body = {"lon": lon, "lat": lat, "crs": "cgcs2000", "category": "0101", "description": code}
        answer = demo_client.post("/cases", json=body)
        assert answer.status_code == 201 and answer.json()["grid_code"] == code, answer.text
        return answer.json()["id"]

    mine = report(grid)
    for _ in range(3):
        report(other)  # newer, and as many as the map draws at once
    monkeypatch.setattr("services.map_cases.MAX_CASES", 2)
    shown = demo_client.get("/map/cases", params={"near": grid}).json()
    assert [c["id"] for c in shown["features"]] == [mine] and shown["total"] == 1
    assert {c["properties"]["grid_code"] for c in shown["features"]} <= set(near)
    everywhere = demo_client.get("/map/cases").json()
    assert everywhere["total"] == 4 and len(everywhere["features"]) == 2  # the cap, and the true count
    assert demo_client.get("/map/cases", params={"near": "411681001001999"}).status_code == 404
