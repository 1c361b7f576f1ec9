"""The JSON intake route (api.routes.cases.JsonReports): POST /cases with a JSON body is served
without FastAPI's per-request work, and must answer exactly as post_case, the documented route, does."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text
from starlette.routing import Match

from api.reports import JSON_LIMIT, JsonReports
from tests import factories as f

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)
REPORT = {"lon": INSIDE_001[0], "lat": INSIDE_001[1], "category": "0101", "description": "路边有一堆垃圾"}


def scope(method: str, path: str, content_type: str | None) -> dict:
    """An HTTP request's ASGI scope, as the router sees it."""
    headers = [(b"content-type", content_type.encode())] if content_type else []
    return {"type": "http", "method": method, "path": path, "headers": headers, "path_params": {}}


def first_match(client, request_scope: dict):
    """The route the app's router picks: the first that matches in full."""
    return next(r for r in client.app.router.routes if r.matches(request_scope)[0] is Match.FULL)


def test_json_reports_take_the_json_route_and_every_other_request_the_documented_one(client):
    for content_type in ("application/json", "Application/JSON; charset=utf-8"):
        assert isinstance(first_match(client, scope("POST", "/cases", content_type)), JsonReports)
    for method, path, content_type in [
        ("POST", "/cases", "multipart/form-data; boundary=x"),  # photos
        ("POST", "/cases", "text/plain"),  # 415 from post_case
        ("POST", "/cases", None),
        ("GET", "/cases", "application/json"),
        ("POST", "/cases/1/transitions", "application/json"),
    ]:
        assert not isinstance(first_match(client, scope(method, path, content_type)), JsonReports)
    # The documentation is post_case's: one POST /cases with its header, its 201 and its 200.
    post = client.get("/openapi.json").json()["paths"]["/cases"]["post"]
    assert {"201", "200"} <= set(post["responses"])
    assert [(p["name"], p["in"]) for p in post["parameters"]] == [("idempotency-key", "header")]


def test_a_json_report_is_answered_byte_for_byte_as_the_documented_route_answers_it(client, county):
    """The same report and key, as JSON (this route: 201), then as multipart (post_case: 200)."""
    key = {"Idempotency-Key": str(uuid.uuid4())}
    fast = client.post("/cases", json=REPORT, headers=key)
    slow = client.post("/cases", files={"case": (None, json.dumps(REPORT))}, headers=key)  # multipart
    assert (fast.status_code, slow.status_code) == (201, 200), fast.text
    assert fast.content == slow.content  # the same case, serialized the same way
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in fast.headers and slow.headers["idempotent-replayed"] == "true"
    again = client.post("/cases", json=REPORT, headers=key)  # a retry on this route
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == slow.content
    # Every middleware applies: hardening headers, timing.
    for answer in (fast, again):
        assert answer.headers["x-content-type-options"] == "nosniff" and "server-timing" in answer.headers
    # The actor is the signed-in user (the test client's admin), as on every route.
    assert fast.json()["history"][0]["actor"] == "test-admin"


def test_json_errors_are_the_apps_errors(client, session, county):
    json_type = {"content-type": "application/json"}
    bad_json = client.post("/cases", content=b'{"lon": 114.9,', headers=json_type)
    assert bad_json.status_code == 422 and bad_json.json()["detail"][0]["type"] == "json_invalid"
    too_long = client.post("/cases", content=b" " * (JSON_LIMIT + 1), headers=json_type)
    assert too_long.status_code == 413 and "a JSON report is at most" in too_long.json()["detail"]
    bad_key = client.post("/cases", json=REPORT, headers={"Idempotency-Key": "not-a-uuid"})
    assert bad_key.status_code == 422 and "must be a UUID" in bad_key.json()["detail"]
    top_class = client.post("/cases", json={**REPORT, "category": "01"})
    assert top_class.status_code == 422 and "top class" in top_class.json()["detail"]
    unknown_token = client.post("/cases", json=REPORT, headers={"Authorization": "Bearer not-a-token"})
    assert unknown_token.status_code == 401 and "log in again" in unknown_token.json()["detail"]
    assert unknown_token.headers["www-authenticate"] == "Bearer"
    wrong_type = client.post("/cases", content=json.dumps(REPORT), headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415 and "application/json" in wrong_type.json()["detail"]
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
