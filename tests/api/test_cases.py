"""Cases through the API: intake, the whole lifecycle, illegal moves, side paths and bad input."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from api.app import expire_receipts_once
from cases.lifecycle import TRANSITIONS, CaseStatus
from geo import crs
from tests import factories as f
from tests.photos import exif_with_gps, jpeg_bytes, jpeg_with_gps, png_bytes

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)  # grid 001 (north-west)
RUBBISH = "0101"  # 暴露垃圾: handle within 1 working day


def report(**overrides) -> dict:
    """A valid report at INSIDE_001."""
    return {
        "lon": INSIDE_001[0],
        "lat": INSIDE_001[1],
        "accuracy_m": 8,
        "category": RUBBISH,
        "description": "路边有一堆垃圾",
        **overrides,
    }


def post(client, body: dict, key: str | None = None, **kwargs):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/cases", json=body, headers=headers, **kwargs)


def count_cases(session) -> int:
    return session.execute(text("SELECT count(*) FROM cases")).scalar_one()


def move(client, case_id: int, to: str, **carried):
    return client.post(f"/cases/{case_id}/transitions", json={"to": to, **carried})


def test_a_report_is_assigned_to_its_grid_and_explains_why(client, county):
    answer = post(client, report(reporter={"name": "李四", "phone": "13812345678"}))
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert case["status"] == "reported" and case["location_source"] == "report"
    assert case["number"].endswith(f"-{case['id']:06d}")
    assert (
        case["grid_code"] == f.grid_code(1) and case["tier"] == "grid" and case["unit_code"] == f.grid_code(1)
    )
    assert case["assignment"]["rule"] == "covers" and "covers the point" in case["assignment"]["explanation"]
    assert case["grid_version"] == 1
    assert case["stage"] == "verify" and case["light"] == "green" and not case["overdue"]
    # The test client acts as an admin, entitled to personal data (masking: tests/api/test_access.py).
    assert case["reporter"] == {"name": "李四", "phone": "13812345678", "confidential": False}
    assert [h["to_status"] for h in case["history"]] == ["reported"]
    assert case["history"][0]["actor"] == "test-admin"
    assert set(case["allowed_moves"]) == {"verified", "voided", "merged"}


def test_a_confidential_reporter_is_hidden_even_in_part(client, county):
    case = post(
        client, report(reporter={"name": "王五", "phone": "13900001111", "confidential": True})
    ).json()
    assert case["reporter"] == {"name": "***", "phone": "***", "confidential": True}
    assert "王" not in json.dumps(client.get(f"/cases/{case['id']}").json(), ensure_ascii=False)


def test_gcj02_report_is_converted_before_assignment(client, county):
    gx, gy = crs.wgs84_to_gcj02([INSIDE_001[0]], [INSIDE_001[1]])
    case = post(client, report(lon=gx[0], lat=gy[0], crs="gcj02")).json()
    assert case["grid_code"] == f.grid_code(1)
    assert case["input"] == {"crs": "gcj02", "lon": gx[0], "lat": gy[0]}
    assert case["lon"] == pytest.approx(INSIDE_001[0], abs=1e-7)


def test_a_report_outside_every_grid_goes_to_the_unassigned_queue_of_the_lowest_unit(client, session, county):
    far = (f.X0 + f.SIZE + 0.5, f.Y0 + 0.01)  # 47 km east: outside the test county
    case = post(client, report(lon=far[0], lat=far[1])).json()
    assert case["assign_status"] == "unassigned" and case["grid_code"] is None
    assert case["tier"] == "county" and case["unit_code"] is None
    listed = client.get("/cases", params={"status": "reported"}).json()
    assert case["id"] in [c["id"] for c in listed["items"]]


WALK = f.LIFECYCLE_WALK


def test_the_whole_lifecycle_with_every_illegal_move_rejected(client, session, county):
    case = post(client, report()).json()
    current = CaseStatus.REPORTED
    for to, carried in WALK:
        for illegal in set(CaseStatus) - set(TRANSITIONS[current]):
            refused = move(
                client, case["id"], illegal.value, reason="x", unit=f.grid_code(2), rating="satisfied"
            )
            assert refused.status_code == 409, (current, illegal, refused.text)
            assert refused.json()["allowed"] == sorted(TRANSITIONS[current])
            assert f"from {current} to {illegal}" in refused.json()["detail"]
        answer = move(client, case["id"], to, **carried)
        assert answer.status_code == 200, answer.text
        current = CaseStatus(to)
        assert answer.json()["status"] == to
    final = client.get(f"/cases/{case['id']}").json()
    history = final["history"]
    assert [h["to_status"] for h in history] == ["reported"] + [to for to, _ in WALK]
    assert [h["from_status"] for h in history] == [None, "reported"] + [to for to, _ in WALK[:-1]]
    assert all(h["actor"] == "test-admin" for h in history[1:])
    assert history[6]["note"] == "已清运"
    assert [h["stage"] for h in history[1:]] == [
        "verify", "file", "dispatch", "accept", "handle", "handle", "check", "close", "revisit"
    ]  # fmt: skip
    assert all(h["on_time"] for h in history[1:])
    assert final["rating"] == "satisfied" and final["closed_at"] is not None
    assert final["allowed_moves"] == {} and final["stage"] is None and final["light"] is None


def test_history_cannot_be_rewritten(client, session, county):
    case = post(client, report()).json()
    with pytest.raises(Exception, match="append-only"), session.begin_nested():
        session.execute(text("UPDATE case_history SET note = 'x' WHERE case_id = :id"), {"id": case["id"]})


def advance(client, case_id: int, upto: str) -> None:
    for to, carried in WALK:
        assert move(client, case_id, to, **carried).status_code == 200
        if to == upto:
            return


def test_side_paths_need_their_reason_and_targets(client, county):
    case_id = post(client, report()).json()["id"]
    advance(client, case_id, "dispatched")
    missing = move(client, case_id, "returned")
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    assert move(client, case_id, "returned", reason="不属于本网格").json()["status"] == "returned"
    unknown = move(client, case_id, "reassigned", reason="改派", unit="999")
    assert unknown.status_code == 422 and "departments" in unknown.json()["detail"]
    # A grid-tier case cannot summon a department; a street can.
    whistle = move(client, case_id, "reassigned", reason="需执法", unit="cgj")
    assert whistle.status_code == 422 and "street" in whistle.json()["detail"]
    to_street = move(client, case_id, "reassigned", reason="需街道协调", unit=f.STREET).json()
    assert (to_street["tier"], to_street["unit_code"]) == ("street", f.STREET)
    summoned = move(client, case_id, "reassigned", reason="街道吹哨", unit="cgj").json()
    assert (summoned["tier"], summoned["department"], summoned["department_name"]) == (
        "department",
        "cgj",
        "城市管理局",
    )
    assert move(client, case_id, "accepted").json()["status"] == "accepted"


def test_extension_pushes_the_due_time_back(client, county):
    case_id = post(client, report()).json()["id"]
    advance(client, case_id, "in_progress")
    before = client.get(f"/cases/{case_id}").json()
    assert move(client, case_id, "extended", reason="等待配件").status_code == 422
    assert move(client, case_id, "extended", reason="等待配件", extend_by="soon").status_code == 422
    after = move(client, case_id, "extended", reason="等待配件", extend_by="2d").json()
    assert after["stage"] == "handle" and after["stage_started_at"] == before["stage_started_at"]
    assert after["stage_due_at"] > before["stage_due_at"]
    assert after["history"][-1]["details"] == {"reason": "等待配件", "extend_by": "2d"}


def test_suspend_resume_void_and_merge(client, county):
    first = post(client, report()).json()["id"]
    second = post(client, report(description="同一堆垃圾")).json()
    assert [d["id"] for d in second["duplicates"]] == [first]  # same category, same place, same day
    merged = move(client, second["id"], "merged", into=second["id"])
    assert merged.status_code == 422
    merged = move(client, second["id"], "merged", into=first).json()
    assert merged["status"] == "merged" and merged["merged_into"] == first
    assert (
        post(client, report(description="第三次")).json()["duplicates"][0]["id"] == first
    )  # merged is closed
    advance(client, first, "accepted")
    assert move(client, first, "suspended", reason="雨天").json()["stage"] is None
    assert move(client, first, "in_progress").json()["stage"] == "handle"
    third = post(client, report(category="0102")).json()
    assert third["duplicates"] == []  # another category
    assert move(client, third["id"], "voided", reason="重复上报").json()["allowed_moves"] == {}


def test_an_unsatisfied_revisit_reopens_the_case(client, county):
    case_id = post(client, report()).json()["id"]
    advance(client, case_id, "closed")
    case = move(client, case_id, "revisited", rating="unsatisfied").json()
    assert case["status"] == "in_progress" and case["closed_at"] is None and case["stage"] == "handle"
    assert [h["action"] for h in case["history"][-2:]] == ["revisited", "reopen"]


def test_a_retry_with_the_same_key_returns_the_same_case(client, session, county):
    key = str(uuid.uuid4())
    first = post(client, report(), key)
    again = post(client, report(), key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert count_cases(session) == 1
    reused = post(client, report(description="另一件事"), key)
    assert reused.status_code == 422 and "different report" in reused.json()["detail"]
    assert post(client, report(), "not-a-uuid").status_code == 422
    assert count_cases(session) == 1


def test_receipts_past_retention_are_deleted_and_a_retry_then_gets_the_case_id_alone(client, session, county):
    old_key, new_key = str(uuid.uuid4()), str(uuid.uuid4())
    old = post(client, report(description="一个月前"), old_key).json()
    new = post(client, report(description="今天"), new_key).json()
    days = client.app.state.settings.receipt_retention_days
    session.execute(
        text("UPDATE case_receipts SET stored_at = now() - make_interval(days => :d) WHERE case_id = :id"),
        {"d": days + 1, "id": old["id"]},
    )
    assert expire_receipts_once(client.app) == 1
    kept = session.execute(text("SELECT case_id FROM case_receipts")).scalars().all()
    assert old["id"] not in kept and new["id"] in kept
    late = post(client, report(description="一个月前"), old_key)
    assert late.status_code == 200 and late.json() == {"id": old["id"]}  # the case, not its first answer
    assert post(client, report(description="今天"), new_key).json() == new  # still the first answer


def test_a_photo_with_gps_locates_a_report_without_coordinates(client, county):
    photo = jpeg_with_gps(*INSIDE_001)
    body = {k: v for k, v in report().items() if k not in ("lon", "lat")}
    answer = client.post(
        "/cases",
        data={"case": json.dumps(body)},
        files=[("photos", ("p.jpg", photo, "image/jpeg")), ("photos", ("q.png", png_bytes(), "image/png"))],
    )
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert case["location_source"] == "photo_exif" and case["grid_code"] == f.grid_code(1)
    assert case["input"]["lon"] == pytest.approx(INSIDE_001[0], abs=1e-6)
    assert [(p["content_type"], p["has_gps"]) for p in case["photos"]] == [
        ("image/jpeg", True),
        ("image/png", False),
    ]
    served = client.get(case["photos"][0]["url"])
    assert served.content == photo and served.headers["content-type"] == "image/jpeg"


def test_a_photos_ignored_gps_is_flagged_on_the_case(client, county):
    no_fix = jpeg_bytes(exif=exif_with_gps(0.0, 0.0))  # 0, 0: a camera without a fix
    answer = client.post(
        "/cases", data={"case": json.dumps(report())}, files=[("photos", ("p.jpg", no_fix, "image/jpeg"))]
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["flags"] == ["EXIF GPS ignored: 0, 0 means no fix"]
    first = client.get(f"/cases/{answer.json()['id']}").json()["history"][0]
    assert first["details"]["flags"] == ["EXIF GPS ignored: 0, 0 means no fix"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (report(lon=114.9, lat=95), 422, "outside the service area"),
        (report(lon=33.41, lat=114.91), 422, "swapped"),
        (report(lon=float("nan")), 422, ""),
        (report(category="9999"), 422, "category"),
        (report(category="01"), 422, "top class"),
        (report(description=""), 422, "description"),
        ({k: v for k, v in report().items() if k != "category"}, 422, "category"),
        (report(lon=None), 422, "both lon and lat"),
        (report(lon=None, lat=None), 422, "no location"),
        (report(crs="mars"), 422, "mars"),
        (report(colour="red"), 422, "colour"),
    ],
)
def test_bad_reports_are_refused_with_a_reason_and_nothing_is_stored(
    client, session, county, body, status, needle
):
    answer = client.post(
        "/cases", content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert needle in json.dumps(answer.json(), ensure_ascii=False)
    assert count_cases(session) == 0


def test_bad_uploads_are_refused(client, session, settings, county):
    body = json.dumps(report())
    wrong_type = client.post("/cases", content=b"lon=1", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415 and "multipart" in wrong_type.json()["detail"]
    not_an_image = client.post(
        "/cases", data={"case": body}, files=[("photos", ("x.jpg", b"hello, not a photo", "image/jpeg"))]
    )
    assert not_an_image.status_code == 415 and "image" in not_an_image.json()["detail"].lower()
    too_many = client.post(
        "/cases", data={"case": body},
        files=[("photos", (f"{i}.png", png_bytes(), "image/png")) for i in range(settings.max_photos + 1)],
    )  # fmt: skip
    assert too_many.status_code == 422 and str(settings.max_photos) in too_many.json()["detail"]
    huge = png_bytes() + b"\0" * settings.max_photo_bytes
    oversized = client.post("/cases", data={"case": body}, files=[("photos", ("big.png", huge, "image/png"))])
    assert oversized.status_code == 413 and "bytes" in oversized.json()["detail"]
    photo = [("photos", ("p.png", png_bytes(), "image/png"))]
    no_case = client.post("/cases", data={"report": body}, files=photo)
    assert no_case.status_code == 422 and "`case`" in no_case.json()["detail"]
    assert count_cases(session) == 0


def test_unknown_case_and_photo_are_404(client, county):
    assert client.get("/cases/999999").status_code == 404
    assert move(client, 999999, "verified").status_code == 404
    case_id = post(client, report()).json()["id"]
    assert client.get(f"/cases/{case_id}/photos/1").status_code == 404


def test_list_filters_and_geojson(client, county):
    a = post(client, report()).json()
    b = post(client, report(lon=f.X0 + 0.03, lat=f.Y0 + 0.01, category="0301")).json()  # grid 004
    advance(client, b["id"], "dispatched")

    def ids(**params):
        return sorted(c["id"] for c in client.get("/cases", params=params).json()["items"])

    assert ids() == sorted([a["id"], b["id"]])
    assert ids(status="reported") == [a["id"]]
    assert ids(status=["reported", "dispatched"]) == sorted([a["id"], b["id"]])
    assert ids(grid=f.grid_code(4)) == [b["id"]]
    assert ids(unit=f.COMMUNITY) == sorted([a["id"], b["id"]])
    assert ids(unit="419998") == []
    assert ids(category="03") == [b["id"]] and ids(category="0101") == [a["id"]]
    assert ids(light="green") == sorted([a["id"], b["id"]]) and ids(overdue=True) == []
    assert ids(bbox=f"{f.X0},{f.Y0 + 0.02},{f.X0 + 0.02},{f.Y0 + 0.04}") == [a["id"]]
    assert ids(**{"from": "2000-01-01", "to": "2001-01-01"}) == []
    geo = client.get("/cases", params={"format": "geojson"}).json()
    assert geo["type"] == "FeatureCollection" and geo["total"] == 2
    assert geo["features"][0]["geometry"]["type"] == "Point"
    assert client.get("/cases", params={"light": "blue"}).status_code == 422
    assert client.get("/cases", params={"status": "lost"}).status_code == 422


def test_categories_and_departments_are_listed(client):
    tops = client.get("/categories").json()
    rubbish = next(c for top in tops for c in top["children"] if c["code"] == RUBBISH)
    assert rubbish["name"] == "暴露垃圾" and rubbish["limits"]["handle"] == "1d"
    assert {t["name"] for t in tops} >= {"市容环境", "宣传广告", "施工管理", "街面秩序", "突发事件"}
    assert {"code": "cgj", "name": "城市管理局"} in client.get("/departments").json()


def test_statistics_per_unit_and_period(client, county):
    a = post(client, report()).json()["id"]
    advance(client, a, "revisited")  # resolved by the grid, satisfied
    b = post(client, report(category="0102")).json()["id"]
    advance(client, b, "dispatched")
    move(client, b, "reassigned", reason="网格无法处置", unit=f.STREET)
    for to, carried in WALK[3:8]:
        move(client, b, to, **carried)
    move(client, b, "revisited", rating="unsatisfied")  # resolved by the street, reopened
    post(client, report(category="0103"))
    stats = client.get("/stats", params={"unit": f.COMMUNITY}).json()
    assert (stats["received"], stats["closed"], stats["reopened"]) == (3, 1, 1)
    assert stats["on_time"]["verify"] == {"done": 2, "on_time": 2, "rate": 1.0}
    assert stats["on_time"]["accept"]["done"] == 3
    assert stats["resolved_by_tier"]["counts"] == {
        "grid": 1, "community": 0, "street": 1, "county": 0, "department": 0
    }  # fmt: skip
    assert stats["resolved_by_tier"]["local_share"] == 0.5
    assert stats["satisfaction"]["counts"]["unsatisfied"] == 1 and stats["satisfaction"]["rate"] == 0.5
    assert 0 <= stats["avg_handling_hours"] < 0.1  # every move in this test took moments
    assert client.get("/stats", params={"unit": "419998"}).json()["received"] == 0
    assert client.get("/stats", params={"from": "2030-01-01", "to": "2029-01-01"}).status_code == 422


def test_a_case_outside_every_unit_counts_for_the_county_everywhere(client, county):
    far = post(client, report(lon=113.0, lat=30.0)).json()  # in China, in no unit of the test county
    assert (far["grid_code"], far["unit_code"]) == (None, None)
    listed = client.get("/cases", params={"unit": f.COUNTY}).json()
    assert far["id"] in [c["id"] for c in listed["items"]]
    assert client.get("/stats", params={"unit": f.COUNTY}).json()["received"] == 1
    assert client.get("/stats", params={"unit": f.STREET}).json()["received"] == 0
