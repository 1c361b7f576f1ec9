"""Bad input is a 4xx with a reason, never a 500: one test per class of input that once was a 500
(docs/errors.md lists what the service refuses and how)."""

from __future__ import annotations

import json

import pytest

from tests import factories as f
from tests.photos import flat_png

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)
REPORT = {"lon": INSIDE_001[0], "lat": INSIDE_001[1], "category": "0101", "description": "路边有一堆垃圾"}
NUL = "a\x00b"


def new_case(client) -> int:
    answer = client.post("/cases", json=REPORT)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def new_plan(client) -> int:
    answer = client.post("/plans", json={"unit": f.COMMUNITY, "title": "调整网格"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def refused(answer, status: int = 422) -> str:
    """The reason of a refusal with `status` (never a 500)."""
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    return detail if isinstance(detail, str) else str(detail)


def test_a_nul_character_in_any_text_is_refused_with_422(client, county):
    case = new_case(client)
    plan = new_plan(client)
    for answer in [
        client.post("/cases", json={**REPORT, "description": NUL}),
        client.post("/cases", files={"case": (None, '{"lon": 114.91, "lat": 33.43, "category": "0101", '
                                             '"description": "a\\u0000b"}')}),
        client.post(f"/cases/{case}/transitions", json={"to": "verified", "note": NUL}),
        client.post("/plans", json={"unit": f.COMMUNITY, "title": NUL}),
        client.post(f"/plans/{plan}/edits", json={"operation": "replace", "code": f.grid_code(1),
                                                  "name": NUL}),
        client.post("/open311/v2/requests.json", data={"service_code": "0101", "lat": INSIDE_001[1],
                                                      "long": INSIDE_001[0], "description": NUL}),
        client.get("/map/search", params={"q": NUL}),
        client.get("/audit", params={"actor": NUL}),
        client.get(f"/grids/{f.grid_code(1)}%00"),
        client.post("/auth/token", data={"username": NUL, "password": "x"}),
        # Raw NUL in a multipart text field: not looked for in multipart bodies (photos hold NUL
        # bytes); PostgreSQL's refusal is answered 422 by the error map.
        client.post("/auth/token", files={"username": (None, NUL), "password": (None, "x")}),
    ]:  # fmt: skip
        status = 400 if answer.request.url.path.startswith("/open311") else 422
        assert answer.status_code in (422, status), (answer.request.url, answer.text)
        assert "NUL" in answer.text, answer.text
    # Text without NUL still goes through: the refusal is of the character, not of the route.
    assert client.post("/cases", json={**REPORT, "description": "a\\u0000b as typed"}).status_code == 201


def test_invalid_utf8_in_a_json_report_is_a_422_naming_the_problem(client, county):
    body = b'{"lon": 114.91, "lat": 33.43, "category": "0101", "description": "\xff\xfe bad"}'
    answer = client.post("/cases", content=body, headers={"content-type": "application/json"})
    assert "Invalid JSON: invalid unicode" in refused(answer)
    assert r"\xff\xfe bad" in answer.json()["detail"][0]["input"]  # the bytes, shown escaped


@pytest.mark.parametrize("path", ["/cases", "/audit"])
def test_an_offset_beyond_the_databases_integers_is_refused(client, county, path):
    reason = refused(client.get(path, params={"offset": 2**63}))
    assert "offset" in reason
    assert client.get(path, params={"offset": 2**63 - 1}).status_code == 200


def test_an_empty_required_date_is_refused(client, county):
    assert "from" in refused(client.get(f"/units/{f.COMMUNITY}/diff", params={"from": ""}))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/stats", {"to": "0001-01-05"}),
        ("/stats", {"from": "9999-12-31"}),
        ("/cases", {"from": "0001-01-01"}),
        ("/grids/" + f.grid_code(1), {"at": "0001-01-01T00:00:00+14:00"}),
        ("/open311/v2/requests.json", {"end_date": "0001-01-01T00:00:00Z"}),
        ("/open311/v2/requests.json", {"start_date": "9999-12-31T00:00:00-14:00"}),
        ("/open311/v2/requests.json", {"end_date": "9999-12-31"}),
    ],
)
def test_dates_outside_the_calendar_the_service_keeps_are_refused(client, county, path, params):
    answer = client.get(path, params=params)
    status = 400 if path.startswith("/open311") else 422
    assert answer.status_code == status, answer.text
    assert "between" in answer.text, answer.text


def test_a_decompression_bomb_photo_is_refused_with_413_and_the_reason(client, county):
    bomb = flat_png(10_000, 9_999)  # the report's: a ~290 KB PNG, 370 MB once decoded
    case = json.dumps(REPORT)
    answer = client.post("/cases", files={"case": (None, case), "photos": ("bomb.png", bomb, "image/png")})
    assert "10000×9999 pixels" in refused(answer, 413)
