"""Draft plans through the API on real PostGIS: publish moves exactly the right cases; conflicts; shapes."""

from __future__ import annotations

import json
import re

import pytest
from shapely.geometry import LineString, box, mapping
from sqlalchemy import text

from geo import crs
from tests import factories as f
from tests.conftest import TEST_ADMIN

HALF = f.SIZE / 2
PLANNER = {}  # the test client acts as TEST_ADMIN (tests/conftest.py)
ACTOR = TEST_ADMIN.username
WEST_OF_001 = (f.X0 + 0.003, f.Y0 + 0.03)  # in the strip the split gives to a new grid
EAST_OF_001 = (f.X0 + 0.015, f.Y0 + 0.03)  # stays in 001
IN_002 = (f.X0 + 0.03, f.Y0 + 0.03)
CUT_001 = LineString([(f.X0 + 0.006, f.Y0 + HALF - 0.001), (f.X0 + 0.006, f.Y0 + f.SIZE + 0.001)])


def report(client, point) -> dict:
    body = {"lon": point[0], "lat": point[1], "category": "0101", "description": "路边有垃圾"}
    answer = client.post("/cases", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def open_plan(client, title="调整网格") -> int:
    answer = client.post("/plans", json={"unit": f.COMMUNITY, "title": title}, headers=PLANNER)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def add(client, plan_id, **edit) -> dict:
    answer = client.post(f"/plans/{plan_id}/edits", json=edit, headers=PLANNER)
    assert answer.status_code == 201, answer.text
    return answer.json()


def snapshot(session) -> tuple:
    """Every unit version and every case's assignment and history length."""
    versions = session.execute(
        text("SELECT code, version, valid_to IS NULL AS current FROM unit_versions ORDER BY code, version")
    ).all()
    cases = session.execute(
        text(
            """SELECT c.id, c.grid_code, c.grid_version, c.unit_code,
                      (SELECT count(*) FROM case_history h WHERE h.case_id = c.id) AS entries
               FROM cases c ORDER BY c.id"""
        )
    ).all()
    return [tuple(v) for v in versions], [tuple(c) for c in cases]


def test_a_published_split_moves_exactly_the_open_cases_whose_grid_changes(client, session, county):
    west, east, other = report(client, WEST_OF_001), report(client, EAST_OF_001), report(client, IN_002)
    voided = report(client, WEST_OF_001)
    client.post(f"/cases/{voided['id']}/transitions", json={"to": "voided", "reason": "重复"})
    plan = open_plan(client)
    detail = add(client, plan, operation="split", code=f.grid_code(1), geometry=mapping(CUT_001))
    assert [c["properties"]["change"] for c in detail["changes"]["features"]] == ["changed", "created"]
    new_grid = f.grid_code(5)

    impact = client.get(f"/plans/{plan}/impact").json()
    assert [c["id"] for c in impact["cases"]] == [west["id"]]
    # The case's place as every case answer gives it (one precision rule, geo.geojson).
    assert (impact["cases"][0]["lon"], impact["cases"][0]["lat"]) == (west["lon"], west["lat"])
    units = {u["code"]: u for u in impact["units"]}
    assert units[new_grid]["open_cases"] == {"before": 0, "after": 1}
    assert units[f.grid_code(1)]["open_cases"] == {"before": 2, "after": 1}
    assert units[new_grid]["households"] == {"before": None, "after": 120} and units[new_grid]["estimated"]
    assert "area share" in impact["note"]
    [moved_area] = impact["transfers"]["features"]
    assert moved_area["properties"]["from"] == f.grid_code(1) and moved_area["properties"]["to"] == new_grid

    published = client.post(f"/plans/{plan}/publish", headers=PLANNER)
    assert published.status_code == 200, published.text
    result = published.json()
    assert result["created"] == [new_grid] and result["changed"] == [f.grid_code(1)]
    assert [c["id"] for c in result["cases"]] == [west["id"]]
    assert result["cases"][0]["from"]["grid"] == f.grid_code(1) and result["cases"][0]["to"]["version"] == 1
    audited = client.get("/audit", params={"action": "plan_publish"}).json()
    assert audited[0]["target"] == f"plan {plan}" and audited[0]["details"]["cases"] == 1

    moved = client.get(f"/cases/{west['id']}").json()
    assert moved["grid_code"] == new_grid and moved["unit_code"] == new_grid and moved["grid_version"] == 1
    last = moved["history"][-1]
    assert last["action"] == "redraw" and last["actor"] == ACTOR
    assert last["details"]["from"] == {
        "grid": f.grid_code(1),
        "version": 1,
        "tier": "grid",
        "unit": f.grid_code(1),
    }
    assert last["details"]["to"]["grid"] == new_grid and last["details"]["plan_id"] == plan
    for untouched in (east, other, voided):
        after = client.get(f"/cases/{untouched['id']}").json()
        assert after["grid_code"] == untouched["grid_code"] and after["grid_version"] == 1
        assert "redraw" not in [h["action"] for h in after["history"]]

    # History: the point's grid before the publish, the case's assignments, the unit diff.
    then = client.get(
        "/locate", params={"lon": WEST_OF_001[0], "lat": WEST_OF_001[1], "at": "2024-06-01"}
    ).json()
    assert then["grid"]["code"] == f.grid_code(1)
    assignments = client.get(f"/cases/{west['id']}/assignments").json()
    assert [(a["grid"], a["version"]) for a in assignments] == [(f.grid_code(1), 1), (new_grid, 1)]
    diff = client.get(f"/units/{f.COMMUNITY}/diff", params={"from": "2024-06-01"}).json()
    changed = {feat["id"]: feat["properties"] for feat in diff["features"]}
    assert changed[new_grid]["change"] == "created" and changed[new_grid]["plan"] == plan
    assert changed[f.grid_code(1)]["change"] == "changed" and changed[f.grid_code(1)]["changed_area_m2"] > 0
    assert set(changed) == {f.grid_code(1), new_grid}


def test_the_second_of_two_drafts_on_one_grid_is_refused_with_409_and_nothing_changes(
    client, session, county
):
    report(client, WEST_OF_001)
    x = f.X0 + HALF - 0.004  # first draft: 001 gives a strip to 002
    first = open_plan(client, "东移边界")
    add(
        client,
        first,
        operation="replace",
        code=f.grid_code(1),
        geometry=mapping(box(f.X0, f.Y0 + HALF, x, f.Y0 + f.SIZE)),
    )
    add(
        client,
        first,
        operation="replace",
        code=f.grid_code(2),
        geometry=mapping(box(x, f.Y0 + HALF, f.X0 + f.SIZE, f.Y0 + f.SIZE)),
    )
    second = open_plan(client, "拆分网格")
    add(client, second, operation="split", code=f.grid_code(1), geometry=mapping(CUT_001))
    assert client.post(f"/plans/{first}/publish", headers=PLANNER).status_code == 200

    before = snapshot(session)
    refused = client.post(f"/plans/{second}/publish", headers=PLANNER)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert f.grid_code(1) in body["detail"] and f"plan {first}" in body["detail"]
    assert {c["code"] for c in body["conflicts"]} == {f.grid_code(1)}
    assert body["conflicts"][0]["by_plan"] == first and body["conflicts"][0]["current_version"] == 2
    assert snapshot(session) == before
    assert client.get(f"/plans/{second}").json()["status"] == "draft"
    problems = client.get(f"/plans/{second}/validate").json()
    assert not problems["ok"] and problems["problems"]["features"][0]["properties"]["kind"] == "conflict"


def test_validation_through_the_api_reports_problems_with_geometry(client, county):
    plan = open_plan(client)
    shrunk = box(f.X0 + 0.005, f.Y0 + HALF, f.X0 + HALF, f.Y0 + f.SIZE)  # leaves a strip nobody covers
    add(client, plan, operation="replace", code=f.grid_code(1), geometry=mapping(shrunk))
    answer = client.get(f"/plans/{plan}/validate").json()
    assert answer["ok"] is False and answer["errors"] == 1
    [gap] = [p for p in answer["problems"]["features"] if p["properties"]["kind"] == "gap"]
    assert gap["geometry"]["type"] in ("Polygon", "MultiPolygon") and gap["properties"]["area_m2"] > 900_000
    refused = client.post(f"/plans/{plan}/publish", headers=PLANNER)
    assert refused.status_code == 422 and refused.json()["problems"]["features"]


def test_plan_api_shapes_edits_in_another_crs_deletion_abandon_and_errors(client, county):
    plan = open_plan(client)
    assert client.get("/plans", params={"unit": f.COMMUNITY}).json()[0]["id"] == plan
    wx, wy = crs.from_storage(
        [f.X0 + 0.006, f.X0 + 0.006], [f.Y0 + HALF - 0.001, f.Y0 + f.SIZE + 0.001], "gcj02"
    )
    line = {"type": "LineString", "coordinates": [[wx[0], wy[0]], [wx[1], wy[1]]]}
    detail = add(client, plan, operation="split", code=f.grid_code(1), geometry=line, crs="gcj02")
    assert detail["edits"][0]["params"]["allocated"] == [f.grid_code(5)]
    assert detail["edits"][0]["author"] == ACTOR and detail["conflicts"] == []
    created = add(client, plan, operation="replace", code=f.grid_code(5), name="新网格")
    # the first edit made 005, which the second one names: it cannot go first
    refused = client.delete(f"/plans/{plan}/edits/{detail['edit_id']}")
    assert refused.status_code == 422 and "cannot be removed" in refused.json()["detail"]
    assert client.delete(f"/plans/{plan}/edits/{created['edit_id']}").status_code == 200
    bad = client.post(f"/plans/{plan}/edits", json={"operation": "merge", "codes": [f.grid_code(1)]})
    assert bad.status_code == 422 and "two or more" in bad.json()["detail"]
    unknown = client.post(f"/plans/{plan}/edits", json={"operation": "retire", "code": f.grid_code(9)})
    assert unknown.status_code == 422 and f.grid_code(9) in unknown.json()["detail"]
    assert client.post(f"/plans/{plan}/abandon", headers=PLANNER).json()["status"] == "abandoned"
    assert client.post(f"/plans/{plan}/publish").status_code == 409
    assert client.get("/plans/999999").status_code == 404
    assert client.post("/plans", json={"unit": "419999009009", "title": "x"}).status_code == 404


def test_merge_then_retired_code_is_never_allocated_again(client, session, county):
    plan = open_plan(client)
    add(client, plan, operation="merge", codes=[f.grid_code(3), f.grid_code(4)])
    result = client.post(f"/plans/{plan}/publish", headers=PLANNER).json()
    assert result["retired"] == [f.grid_code(4)] and result["changed"] == [f.grid_code(3)]
    after = open_plan(client)
    detail = add(client, after, operation="split", code=f.grid_code(1), geometry=mapping(CUT_001))
    assert detail["edits"][0]["params"]["allocated"] == [f.grid_code(5)]  # not the retired 004
    retired = session.execute(text("SELECT code, plan_id FROM retired_codes")).all()
    assert [tuple(r) for r in retired] == [(f.grid_code(4), plan)]
    # An import cannot bring the retired code back either.
    with pytest.raises(Exception, match="retired"), session.begin_nested():
        session.execute(
            text(
                """INSERT INTO unit_versions (code, version, name, kind, geom, valid_from)
                   SELECT code, version + 1, name, kind, geom, now() FROM unit_versions
                   WHERE code = :code AND version = 1"""
            ),
            {"code": f.grid_code(4)},
        )


def test_the_planner_map_overlays_the_changes_of_its_plan(client, county):
    plan = open_plan(client)
    add(client, plan, operation="split", code=f.grid_code(1), geometry=mapping(CUT_001))
    page = client.get(f"/map?view=planner&plan={plan}")
    assert page.status_code == 200
    config = json.loads(re.search(r"config: (\{.*\})$", page.text, re.MULTILINE).group(1))
    assert config["overlays"]["plan"] == f"/plans/{plan}"
    overlay = client.get(config["overlays"]["plan"]).json()  # what gridmap.js draws: `changes`
    changes = [(c["properties"]["code"], c["properties"]["change"]) for c in overlay["changes"]["features"]]
    assert changes == [(f.grid_code(1), "changed"), (f.grid_code(5), "created")]
