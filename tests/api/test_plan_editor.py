"""The editor's JSON beyond the plan API, on real PostGIS: an edit's preview, the balance, the
same-name warning, the boundary generation and the tiles' caching."""

from __future__ import annotations

from shapely.geometry import LineString, box, mapping
from sqlalchemy import text

from tests import factories as f

HALF = f.SIZE / 2
CUT_001 = LineString([(f.X0 + 0.006, f.Y0 + HALF - 0.001), (f.X0 + 0.006, f.Y0 + f.SIZE + 0.001)])


def open_plan(client) -> int:
    answer = client.post("/plans", json={"unit": f.COMMUNITY, "title": "编辑器"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def edits(session, plan_id: int) -> int:
    return session.execute(
        text("SELECT count(*) FROM plan_edits WHERE plan_id = :p"), {"p": plan_id}
    ).scalar()


def test_a_preview_shows_the_pieces_of_a_split_in_order_and_stores_nothing(client, session, county):
    plan = open_plan(client)
    edit = {"operation": "split", "code": f.grid_code(1), "geometry": mapping(CUT_001)}
    answer = client.post(f"/plans/{plan}/preview", json=edit)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [x["properties"]["code"] for x in body["features"]] == [f.grid_code(1), f.grid_code(5)]
    assert [x["properties"]["change"] for x in body["features"]] == ["changed", "created"]
    assert body["allocated"] == [f.grid_code(5)]
    assert edits(session, plan) == 0
    # The split then names every piece: the one that keeps its code too.
    named = {**edit, "name": "东片", "names": ["西片"]}
    detail = client.post(f"/plans/{plan}/edits", json=named).json()
    names = {x["properties"]["code"]: x["properties"]["name"] for x in detail["changes"]["features"]}
    assert names == {f.grid_code(1): "东片", f.grid_code(5): "西片"}


def test_a_preview_of_an_edit_that_cannot_apply_is_a_422_with_the_reason(client, county):
    plan = open_plan(client)
    away = LineString([(f.X0 - 1, f.Y0 - 1), (f.X0 - 0.9, f.Y0 - 0.9)])
    answer = client.post(
        f"/plans/{plan}/preview",
        json={"operation": "split", "code": f.grid_code(1), "geometry": mapping(away)},
    )
    assert answer.status_code == 422 and "does not cut" in answer.json()["detail"]


def test_balance_puts_each_grid_against_the_norm_of_its_kind(client, county, settings):
    plan = open_plan(client)
    client.post(
        f"/plans/{plan}/edits", json={"operation": "replace", "code": f.grid_code(2), "households": 20}
    )
    body = client.get(f"/plans/{plan}/balance").json()
    grids = {g["code"]: g for g in body["grids"]}
    assert set(grids) == {f.grid_code(i) for i in range(1, 5)}
    norm = [settings.size_norm_urban_min, settings.size_norm_urban_max]
    assert body["norms"]["urban"] == norm
    assert grids[f.grid_code(2)]["status"] == "below" and grids[f.grid_code(2)]["changed"]
    assert grids[f.grid_code(1)]["status"] == ("within" if norm[0] <= 400 <= norm[1] else "above")
    [spread] = body["spread"]
    assert (
        spread["kind"] == "urban" and spread["min"] == 20 and spread["max"] == 400 and spread["ratio"] == 20
    )


def test_two_siblings_with_one_name_are_a_warning_that_does_not_block_publish(client, county):
    plan = open_plan(client)
    name = client.get(f"/grids/{f.grid_code(1)}").json()["properties"]["name"]
    client.post(f"/plans/{plan}/edits", json={"operation": "replace", "code": f.grid_code(2), "name": name})
    body = client.get(f"/plans/{plan}/validate").json()
    [same] = [p["properties"] for p in body["problems"]["features"] if p["properties"]["kind"] == "same_name"]
    assert same["severity"] == "warning" and same["units"] == [f.grid_code(1), f.grid_code(2)]
    assert body["ok"]
    assert client.post(f"/plans/{plan}/publish").status_code == 200


def test_the_boundary_generation_moves_on_with_a_publish_and_tiles_are_private(client, county):
    before = client.get("/map/boundaries")
    assert before.status_code == 200 and before.headers["cache-control"] == "no-store"
    plan = open_plan(client)
    client.post(
        f"/plans/{plan}/edits",
        json={"operation": "split", "code": f.grid_code(1), "geometry": mapping(CUT_001)},
    )
    assert client.get("/map/boundaries").json()["generation"] == before.json()["generation"]
    assert client.post(f"/plans/{plan}/publish").status_code == 200
    assert client.get("/map/boundaries").json()["generation"] > before.json()["generation"]
    tile = client.get("/map/tiles/10/843/414.pbf", params={"g": 3})
    assert tile.status_code == 200
    assert tile.headers["cache-control"].startswith("private") and "Cookie" in tile.headers["vary"]


def test_the_editor_pages_run_under_a_self_only_policy(client, county):
    for path in ("/plan", f"/plan/{open_plan(client)}"):
        page = client.get(path)
        assert page.status_code == 200 and 'data-panel="validation"' in page.text
        policy = page.headers["content-security-policy"]
        assert (
            "script-src 'self'" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        assert "<script>" not in page.text  # no inline code


def test_reshaping_a_shared_boundary_moves_area_between_both_neighbours_without_gap_or_overlap(
    client, session, county
):
    plan = open_plan(client)
    x = f.X0 + HALF  # 001 (north-west) and 002 (north-east) share x = X0 + HALF, north half
    bump = LineString([(x, f.Y0 + HALF + 0.005), (x + 0.004, f.Y0 + HALF + 0.01), (x, f.Y0 + HALF + 0.015)])
    answer = client.post(
        f"/plans/{plan}/edits",
        json={"operation": "reshape", "codes": [f.grid_code(1), f.grid_code(2)], "geometry": mapping(bump)},
    )
    assert answer.status_code == 201, answer.text
    changed = {x["properties"]["code"]: x for x in answer.json()["changes"]["features"]}
    assert set(changed) == {f.grid_code(1), f.grid_code(2)}
    validation = client.get(f"/plans/{plan}/validate").json()
    assert validation["errors"] == 0, validation
    impact = client.get(f"/plans/{plan}/impact").json()
    [moved] = impact["transfers"]["features"]
    assert (moved["properties"]["from"], moved["properties"]["to"]) == (f.grid_code(2), f.grid_code(1))
    triangle_m2 = moved["properties"]["area_m2"]
    assert 195_000 < triangle_m2 < 215_000  # 372 m × 1,109 m / 2 at 33.4° N: about 0.21 km²
    assert client.post(f"/plans/{plan}/publish").status_code == 200
    findings = client.get("/coverage", params={"unit": f.COMMUNITY}).json()["findings"]["features"]
    assert not [x for x in findings if x["properties"]["kind"] in ("gap", "overlap")]


def test_a_reshape_whose_course_does_not_start_on_the_shared_boundary_is_refused(client, county):
    plan = open_plan(client)
    away = LineString([(f.X0 + 0.002, f.Y0 + HALF + 0.005), (f.X0 + HALF, f.Y0 + HALF + 0.015)])
    answer = client.post(
        f"/plans/{plan}/edits",
        json={"operation": "reshape", "codes": [f.grid_code(1), f.grid_code(2)], "geometry": mapping(away)},
    )
    assert answer.status_code == 422 and "shared boundary" in answer.json()["detail"]
    not_neighbours = client.post(
        f"/plans/{plan}/edits",
        json={"operation": "reshape", "codes": [f.grid_code(1), f.grid_code(4)], "geometry": mapping(away)},
    )
    assert not_neighbours.status_code == 422 and "share no boundary" in not_neighbours.json()["detail"]


def test_a_special_zone_needs_a_known_special_type(client, county):
    plan = open_plan(client)
    zone = mapping(box_in_001())
    bad = client.post(
        f"/plans/{plan}/edits",
        json={
            "operation": "create",
            "geometry": zone,
            "name": "学校",
            "kind": "special",
            "special_type": "学校",
        },
    )
    assert bad.status_code == 422 and "special_type" in bad.text
    made = client.post(
        f"/plans/{plan}/edits",
        json={"operation": "create", "geometry": zone, "name": "学校", "kind": "special"},
    )
    assert made.status_code == 201, made.text
    body = client.get(f"/plans/{plan}/validate").json()
    kinds = {p["properties"]["kind"]: p["properties"]["severity"] for p in body["problems"]["features"]}
    assert kinds.get("special_type") == "error" and not body["ok"]
    assert client.post(f"/plans/{plan}/publish").status_code == 422


def box_in_001():
    """A small square inside grid 001."""
    return box(f.X0 + 0.002, f.Y0 + HALF + 0.002, f.X0 + 0.006, f.Y0 + HALF + 0.006)
