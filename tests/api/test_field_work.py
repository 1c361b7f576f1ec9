"""A handler's tasks and moves from the phone: task list, idempotent moves, 处置后 photos."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from access.roles import Role
from store import users
from tests import factories as f
from tests.photos import jpeg_bytes

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)  # grid 001
INSIDE_004 = (f.X0 + 0.03, f.Y0 + 0.01)  # grid 004
PASSWORD = "password-123"


def new_case(client, where=INSIDE_001, upto: str = "dispatched") -> int:
    """A case reported at `where` and moved by the admin up to `upto`."""
    case = client.post(
        "/cases", json={"lon": where[0], "lat": where[1], "category": "0101", "description": "垃圾"}
    ).json()
    for to in ("verified", "filed", "dispatched"):
        assert client.post(f"/cases/{case['id']}/transitions", json={"to": to}).status_code == 200
        if to == upto:
            break
    return case["id"]


@pytest.fixture
def worker(client, session, county) -> dict[str, str]:
    """A field worker of grid 001, signed in: the Authorization header."""
    users.add_user(session, "worker.one", PASSWORD, Role.FIELD_WORKER, f.grid_code(1), None)
    token = client.post("/auth/token", data={"username": "worker.one", "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_tasks_list_the_workers_cases_overdue_first_with_their_moves(client, session, worker):
    mine, later, other = new_case(client), new_case(client), new_case(client, INSIDE_004)
    unverified = new_case(client, upto="verified")
    overdue = """UPDATE cases SET stage_due_at = now() - interval '1 hour',
                 stage_yellow_at = now() - interval '2 hours' WHERE id = :id"""
    session.execute(text(overdue), {"id": later})  # the second case is overdue: it comes first
    answer = client.get("/tasks/list", headers=worker)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [t["id"] for t in items] == [later, mine]  # not grid 004's, not one still being verified
    assert other not in [t["id"] for t in items] and unverified not in [t["id"] for t in items]
    assert items[0]["overdue"] and items[0]["light"] == "red" and not items[1]["overdue"]
    assert set(items[1]["moves"]) == {"accepted", "returned"}  # a handler may not reassign
    detail = client.get(f"/tasks/{mine}", headers=worker).json()
    assert set(detail["moves"]) == {"accepted", "returned"} and detail["case"]["id"] == mine
    # The case exactly as GET /cases/{id} shows it to the worker: its suggested duplicates (the other
    # reports at the same place) without the fields that decide who may see them.
    assert detail["case"] == client.get(f"/cases/{mine}", headers=worker).json()
    assert later in [d["id"] for d in detail["case"]["duplicates"]]
    assert all("unit_code" not in d for d in detail["case"]["duplicates"])
    assert client.get(f"/tasks/{other}", headers=worker).status_code == 404  # as absent as a missing case


def test_a_move_sent_twice_with_one_key_is_made_once(client, worker):
    case_id = new_case(client)
    key = str(uuid.uuid4())
    url = f"/cases/{case_id}/transitions"
    first = client.post(url, json={"to": "accepted"}, headers={**worker, "Idempotency-Key": key})
    again = client.post(url, json={"to": "accepted"}, headers={**worker, "Idempotency-Key": key})
    assert first.status_code == 200 and again.status_code == 200, again.text
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    history = client.get(f"/cases/{case_id}").json()["history"]
    assert [h["to_status"] for h in history].count("accepted") == 1
    other = client.post(url, json={"to": "in_progress"}, headers={**worker, "Idempotency-Key": key})
    assert other.status_code == 422 and "another move" in other.json()["detail"]
    illegal = client.post(
        url, json={"to": "accepted"}, headers={**worker, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert illegal.status_code == 409 and "in_progress" in illegal.json()["allowed"]
    bad_key = client.post(url, json={"to": "in_progress"}, headers={**worker, "Idempotency-Key": "nope"})
    assert bad_key.status_code == 422


def test_handled_takes_after_photos_kept_apart_from_the_reports(client, worker):
    before = client.post(
        "/cases",
        data={"case": json.dumps({"lon": INSIDE_001[0], "lat": INSIDE_001[1], "category": "0101",
                                  "description": "垃圾"})},
        files=[("photos", ("before.jpg", jpeg_bytes(), "image/jpeg"))],
    ).json()  # fmt: skip
    case_id = before["id"]
    for to in ("verified", "filed", "dispatched"):
        client.post(f"/cases/{case_id}/transitions", json={"to": to})
    for to in ("accepted", "in_progress"):
        assert (
            client.post(f"/cases/{case_id}/transitions", json={"to": to}, headers=worker).status_code == 200
        )
    handled = client.post(
        f"/cases/{case_id}/transitions",
        data={"move": json.dumps({"to": "handled", "note": "已清运"})},
        files=[("photos", ("after.jpg", jpeg_bytes(size=(80, 60)), "image/jpeg"))],
        headers={**worker, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert handled.status_code == 200, handled.text
    photos = client.get(f"/cases/{case_id}").json()["photos"]  # the dispatcher's view
    assert [(p["seq"], p["stage"], p["width"]) for p in photos] == [(1, "before", 64), (2, "after", 80)]
    detail = client.get(f"/tasks/{case_id}", headers=worker).json()
    assert [p["seq"] for p in detail["photos_before"]] == [1] and [
        p["seq"] for p in detail["photos_after"]
    ] == [2]
    assert client.get(f"/cases/{case_id}/photos/2").content[:2] == b"\xff\xd8"
    # Handled, the case waits for the check: sending it back to work is not the handler's move.
    assert "in_progress" not in detail["moves"]
    rework = {"to": "in_progress", "reason": "再做"}
    back = client.post(f"/cases/{case_id}/transitions", json=rework, headers=worker)
    assert back.status_code == 403 and "from handled" in back.json()["detail"]


def test_photos_only_go_with_handled_and_garbage_is_refused(client, worker):
    case_id = new_case(client)
    url = f"/cases/{case_id}/transitions"
    with_photo = client.post(
        url, data={"move": json.dumps({"to": "accepted"})},
        files=[("photos", ("a.jpg", jpeg_bytes(), "image/jpeg"))], headers=worker,
    )  # fmt: skip
    assert with_photo.status_code == 422 and "handled" in with_photo.json()["detail"]
    assert (
        client.post(url, content=b"to=accepted", headers={**worker, "content-type": "text/plain"}).status_code
        == 415
    )
    assert client.post(url, files={"nomove": (None, "x")}, headers=worker).status_code == 422
    assert client.post(url, json={"to": "nowhere"}, headers=worker).status_code == 422
    assert client.post(url, json={"to": "verified"}, headers=worker).status_code == 403


def test_a_report_says_how_its_point_was_placed(client, county):
    where = {"lon": INSIDE_001[0], "lat": INSIDE_001[1], "category": "0101", "description": "垃圾"}
    pinned = client.post("/cases", json={**where, "location_method": "pin"}).json()
    assert pinned["location_method"] == "pin" and pinned["location_source"] == "report"
    assert client.post("/cases", json=where).json()["location_method"] is None  # older clients say nothing
    assert client.post("/cases", json={**where, "location_method": "guess"}).status_code == 422
