"""GET /coverage and /coverage/reports: answer shapes, saving reports, errors."""

from __future__ import annotations

from shapely.geometry import box
from sqlalchemy import text

from access.roles import Role, User
from services.imports import import_units
from tests import factories as f
from tests.api.test_information import as_user, make_client
from tests.store.test_coverage_db import T1, T2, _settings, _with_hole

HOLE = box(f.X0 + 0.005, f.Y0 + 0.025, f.X0 + 0.006, f.Y0 + 0.026)


def _county_with_a_hole(session, tmp_path):
    path = f.write_geojson(tmp_path / "county.geojson", _with_hole(f.hierarchy(), 1, HOLE))
    import_units(session, path, valid_from=T1, settings=_settings())


def test_coverage_answers_a_summary_and_a_feature_collection(client, session, tmp_path):
    _county_with_a_hole(session, tmp_path)
    answer = client.get("/coverage", params={"unit": f.COUNTY})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["summary"]["gap"]["count"] == 1 and body["summary"]["gap"]["area_m2"] > 9000
    assert body["summary"]["no_staff"]["count"] == 4  # factory grids have nobody
    assert body["findings"]["type"] == "FeatureCollection"
    [gap] = [x for x in body["findings"]["features"] if x["properties"]["kind"] == "gap"]
    assert gap["properties"]["units"] == [f.COMMUNITY] and gap["properties"]["new"] is True
    assert gap["geometry"]["type"] == "Polygon" and gap["properties"]["area_m2"] > 9000
    staff = next(x for x in body["findings"]["features"] if x["properties"]["kind"] == "no_staff")
    assert staff["geometry"] is None and staff["properties"]["area_m2"] is None


def test_saved_reports_are_listed_and_make_findings_known(client, session, tmp_path):
    _county_with_a_hole(session, tmp_path)
    saved = client.get("/coverage", params={"unit": f.COUNTY, "save": "true"}).json()
    assert saved["report_id"] is not None
    again = client.get("/coverage", params={"unit": f.COUNTY}).json()
    assert again["previous_report"] == saved["report_id"]
    assert not any(x["properties"]["new"] for x in again["findings"]["features"])
    reports = client.get("/coverage/reports", params={"unit": f.COUNTY}).json()
    assert [r["id"] for r in reports] == [saved["report_id"]]
    assert reports[0]["summary"]["gap"]["count"] == 1
    # Saving is audited (services.coverage): who, which unit, which report; a plain run is not.
    entries = session.execute(
        text("SELECT actor, target, details FROM audit_log WHERE action = 'coverage_report' ORDER BY id")
    ).all()
    assert [(e.actor, e.target, e.details["report_id"]) for e in entries] == [
        ("test-admin", f.COUNTY, saved["report_id"])
    ]


def test_a_gap_fixed_by_a_corrected_import_is_resolved_and_saved_reports_compare(client, session, tmp_path):
    _county_with_a_hole(session, tmp_path)
    first = client.get("/coverage", params={"unit": f.COUNTY, "save": "true"}).json()
    assert first["resolved"] == {"type": "FeatureCollection", "features": []}
    [gap] = [x for x in first["findings"]["features"] if x["properties"]["kind"] == "gap"]

    # The corrected grid layer: grid 001 whole again, in a new version.
    path = f.write_geojson(tmp_path / "corrected.geojson", f.hierarchy())
    import_units(session, path, valid_from=T2, settings=_settings())
    second = client.get("/coverage", params={"unit": f.COUNTY, "save": "true"}).json()
    assert second["previous_report"] == first["report_id"]
    assert second["summary"]["gap"] == {"count": 0, "new": 0, "resolved": 1, "area_m2": 0.0}
    assert second["summary"]["no_staff"]["resolved"] == 0  # still nobody in the factory grids
    [resolved] = second["resolved"]["features"]
    assert resolved["properties"]["kind"] == "gap" and resolved["properties"]["units"] == [f.COMMUNITY]
    assert resolved["geometry"] == gap["geometry"] and resolved["properties"]["area_m2"] > 9000

    # The saved second report against the first: the same answer, kept.
    compared = client.get(f"/coverage/reports/{second['report_id']}/compare")
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert (body["report_id"], body["previous_report"]) == (second["report_id"], first["report_id"])
    assert [x["properties"]["kind"] for x in body["resolved"]["features"]] == ["gap"]
    assert body["new"]["features"] == [] and body["unchanged"] == len(second["findings"]["features"])
    assert body["summary"]["gap"]["resolved"] == 1
    reports = client.get("/coverage/reports", params={"unit": f.COUNTY}).json()
    assert reports[0]["summary"]["gap"]["resolved"] == 1
    oldest = client.get(f"/coverage/reports/{first['report_id']}/compare").json()
    assert oldest["previous_report"] is None and oldest["resolved"]["features"] == []
    assert len(oldest["new"]["features"]) == len(first["findings"]["features"])
    assert client.get("/coverage/reports/999999/compare").status_code == 404
    assert client.get("/coverage/reports/abc/compare").status_code == 422


def test_unknown_units_are_404_and_bad_parameters_422(client, session, tmp_path):
    _county_with_a_hole(session, tmp_path)
    assert client.get("/coverage", params={"unit": "419998"}).status_code == 404
    assert client.get("/coverage/reports", params={"unit": "419998"}).status_code == 404
    assert client.get("/coverage", params={"unit": "41999"}).status_code == 422
    assert client.get("/coverage").status_code == 422
    assert client.get("/coverage", params={"unit": f.COUNTY, "at": "yesterday"}).status_code == 422
    assert client.get("/coverage", params={"unit": f.COUNTY, "at": "2020-01-01"}).status_code == 404


def test_a_report_outside_the_callers_unit_is_403(client, session, settings, engine, tmp_path):
    _county_with_a_hole(session, tmp_path)
    saved = client.get("/coverage", params={"unit": f.COUNTY, "save": "true"}).json()
    users = {
        "here": User(1, "planner.here", Role.PLANNER, f.COUNTY),
        "there": User(2, "planner.there", Role.PLANNER, "419998"),
    }
    url = f"/coverage/reports/{saved['report_id']}/compare"
    with make_client(session, settings, engine, users) as api:
        assert api.get(url, headers=as_user("here")).status_code == 200
        refused = api.get(url, headers=as_user("there"))
        assert refused.status_code == 403 and "outside your unit" in refused.text
