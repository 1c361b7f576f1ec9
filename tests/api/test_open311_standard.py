"""Open311 as standard clients expect it (issue 17 §4): reading requests without a token (the public
view, no personal data; a setting turns it off), every error under /open311/ in the spec's format and
the path's, the discovery document, and the intake fixes (media_url beside a full description, a
404 for unknown services, a notice that names the queue once). The third-party client (georeport,
from PyPI) against a real server is in test_open311.py, beside the plain HTTP client's round trip."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.app import create_app
from geo.settings import Settings
from tests.api.test_open311 import (
    API,
    INSIDE_001,
    PHONE,
    RUBBISH,
    WALK_TO_CLOSED,
    assert_open311_error,
    count_cases,
    get_one,
    hotline,
    move,
    post,
    xml_items,
)
from tests.conftest import use_session
from tests.photos import png_bytes

ANON = {"Authorization": ""}  # what a standard client sends: no token
XML = "text/xml; charset=utf-8"
ID_CARD = "110101199003071234"


def anonymous(client: TestClient, path: str, **params) -> object:
    """A GET as a standard client makes it, without credentials."""
    return client.get(f"{API}{path}", params=params, headers=ANON)


def assert_xml_error(answer, status: int, needle: str = "") -> None:
    """The spec's XML error list, served as text/xml."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == XML
    (error,) = xml_items(answer.content, "errors", "error")
    assert error["code"] == str(status) and needle in error["description"], error


@pytest.fixture
def app_with(session: Session, settings: Settings, engine: Engine) -> Iterator:
    """Clients of apps with other settings, from an address of their own (limits count per address)."""
    opened: list[TestClient] = []

    def make(**changes) -> TestClient:
        app = create_app(settings.model_copy(update=changes), engine=engine)
        use_session(app, session)
        peer = (f"198.51.100.{uuid.uuid4().int % 250 + 1}", 40000)
        client = TestClient(app, base_url="https://testserver", client=peer)
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


# ---------------------------------------------------------------- public read


def test_requests_are_read_without_a_token_in_the_public_view(client, county):
    said = f"井盖缺失，请联系{PHONE}，身份证{ID_CARD}"
    body = {"lon": INSIDE_001[0], "lat": INSIDE_001[1], "category": RUBBISH, "description": said}
    case = client.post(
        "/cases", data={"case": json.dumps(body)}, files=[("photos", ("p.png", png_bytes(), "image/png"))]
    ).json()
    request_id = str(case["id"])
    for to, carried in WALK_TO_CLOSED[:6]:  # up to handled, with its note 已清运
        move(client, request_id, to, **carried)
    staff = get_one(client, request_id)  # signed in: as today
    assert staff["status_notes"] == "handled: 已清运" and staff["media_url"] and PHONE in staff["description"]

    answer = anonymous(client, f"/requests/{request_id}.json")
    assert answer.status_code == 200, answer.text
    (public,) = answer.json()
    assert public == {
        **staff,
        "status_notes": "handled",  # no staff notes
        "media_url": None,  # photos need a sign-in
        "description": "井盖缺失，请联系138******78，身份证110" + "*" * 13 + "34",
    }
    listed = anonymous(client, "/requests.json", status="open", service_code=RUBBISH)
    assert listed.status_code == 200 and listed.json() == [public]
    by_id = anonymous(client, "/requests.json", service_request_id=request_id).json()
    assert by_id == [public]
    in_xml = anonymous(client, f"/requests/{request_id}.xml")
    assert in_xml.headers["content-type"] == XML
    (from_xml,) = xml_items(in_xml.content, "service_requests", "request")
    assert from_xml["description"] == public["description"] and from_xml["media_url"] is None
    for text_ in (answer.text, listed.text, in_xml.text):
        assert PHONE not in text_ and ID_CARD not in text_ and "已清运" not in text_


def test_public_read_can_be_turned_off_and_then_needs_a_token(app_with, county):
    closed = app_with(open311_public_read=False)
    assert_open311_error(closed.get(f"{API}/requests.json"), 401, "sign in first")
    refused = closed.get(f"{API}/requests/1.xml")
    assert_xml_error(refused, 401, "sign in first")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert closed.get(f"{API}/services.json").status_code == 200  # the rest stays public


def test_a_bad_token_is_401_in_the_format_of_the_path(client, county):
    bad = {"Authorization": "Bearer not-a-token"}
    assert_xml_error(client.get(f"{API}/requests.xml", headers=bad), 401, "log in again")
    assert_open311_error(client.get(f"{API}/requests.json", headers=bad), 401, "log in again")


def test_anonymous_reads_are_rate_limited_in_the_open311_format(app_with, county):
    limited = app_with(open311_public_reads_per_minute=2)
    assert [limited.get(f"{API}/requests.json").status_code for _ in range(2)] == [200, 200]
    refused = limited.get(f"{API}/requests/1.xml")
    assert_xml_error(refused, 429, "too many requests")
    assert int(refused.headers["retry-after"]) > 0


# ---------------------------------------------------------------- errors in the spec's format


def test_unknown_paths_and_methods_answer_in_the_spec_format(client):
    assert_xml_error(client.get(f"{API}/nothing.xml"), 404, "Not Found")
    assert_open311_error(client.get(f"{API}/nothing.json"), 404, "Not Found")
    assert_open311_error(client.get("/open311/v3/services.json"), 404)
    assert_xml_error(client.get(f"{API}/requests/1/notes.xml"), 404)
    wrong = client.delete(f"{API}/requests.xml")
    assert_xml_error(wrong, 405, "Method Not Allowed")
    assert "GET" in wrong.headers["allow"] and "POST" in wrong.headers["allow"]
    assert_open311_error(client.put(f"{API}/services.json"), 405)
    assert client.get("/nothing").json() == {"detail": "Not Found"}  # the rest of the API as before


def test_bodies_over_the_limits_and_nul_are_answered_as_the_spec_says(app_with, county):
    strict = app_with(max_request_bytes=100_000)
    huge = strict.post(f"{API}/requests.xml", content=b"x" * 200_000, headers={"content-type": "text/plain"})
    assert_xml_error(huge, 413, "over the limit")  # the server's own limit, before any route
    big_form = strict.post(f"{API}/requests.json", data={**hotline(), "description": "x" * 70_000})
    assert_open311_error(big_form, 413, "at most")  # the route's limit
    nul = strict.post(f"{API}/requests.xml", data=hotline(description="a\x00b"))
    assert_xml_error(nul, 400, "NUL")  # 422 elsewhere: the spec knows 400 for bad parameters


def test_unknown_service_codes_on_post_are_404_and_nothing_is_stored(client, session, county):
    assert_open311_error(post(client, hotline(service_code="9999")), 404, "no service '9999'")
    assert_xml_error(post(client, hotline(service_code="01"), fmt="xml"), 404, "services.json")  # a group
    assert count_cases(session) == 0


# ---------------------------------------------------------------- discovery


def test_the_discovery_document_in_json_and_xml(client):
    answer = client.get("/open311/discovery.json", headers=ANON)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert set(document) == {"changeset", "contact", "key_service", "endpoints"}
    assert "12345" in document["contact"]
    (endpoint,) = document["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "https://testserver/open311/v2"
    assert endpoint["formats"] == ["text/xml", "application/json"] and endpoint["type"] == "production"
    services = client.get(endpoint["url"].removeprefix("https://testserver") + "/services.json", headers=ANON)
    assert services.status_code == 200  # the url it names answers

    in_xml = client.get("/open311/discovery.xml", headers=ANON)
    assert in_xml.headers["content-type"] == XML
    root = ET.fromstring(in_xml.content)
    assert root.tag == "discovery" and root.findtext("changeset") == document["changeset"]
    (xml_endpoint,) = root.find("endpoints")
    assert xml_endpoint.tag == "endpoint" and xml_endpoint.findtext("url") == endpoint["url"]
    assert [f.text for f in xml_endpoint.find("formats")] == endpoint["formats"]
    assert_xml_error(client.get("/open311/discovery.xml", params={"x": "\x00"}), 400, "NUL")


# ---------------------------------------------------------------- intake


def test_a_description_at_the_limit_is_taken_with_a_media_url(client, county):
    full = "满" * 4000  # CaseIn's limit
    link = "https://12345.example.cn/photo/1.jpg"
    answer = post(client, hotline(description=full, media_url=link))
    assert answer.status_code == 201, answer.text
    stored = get_one(client, answer.json()[0]["service_request_id"])["description"]
    assert stored == f"{full}\n附件 media_url: {link}"
    assert_open311_error(post(client, hotline(description=full + "满", media_url=link)), 400, "description")
