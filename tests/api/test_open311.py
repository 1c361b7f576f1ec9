"""Open311 GeoReport v2: services, requests in and out (JSON and XML), errors in the spec's format,
and a round trip with the standard library's HTTP client against a real server process."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from georeport import GeoReport
from sqlalchemy import text

from cases.categories import CategoryTable
from cases.worktime import SHANGHAI
from geo import crs
from tests import factories as f
from tests.conftest import DB_PREFIX, county_database
from tests.live import server
from tests.photos import png_bytes

API = "/open311/v2"
INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)  # grid 001 (north-west)
INSIDE_004 = (f.X0 + 0.03, f.Y0 + 0.01)  # grid 004 (south-east)
RUBBISH = "0101"  # 暴露垃圾
PHONE = "13812345678"
WALK_TO_CLOSED = f.LIFECYCLE_WALK[:-1]  # up to closed
UNASSIGNED_NOTICE = "no grid covers the location: it waits in the county command centre's unassigned queue"


def hotline(**overrides) -> dict:
    """A 12345 hotline request at INSIDE_001, as its form fields."""
    return {
        "service_code": RUBBISH,
        "lat": str(INSIDE_001[1]),
        "long": str(INSIDE_001[0]),
        "address_string": "测试路1号",
        "description": "路边有一堆垃圾",
        "first_name": "三",
        "last_name": "张",
        "phone": PHONE,
        "email": "zhang@example.com",
        "device_id": "hotline-pc-7",
        "api_key": "not-checked-yet",
        **overrides,
    }


def post(client, form: dict, fmt: str = "json", key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"{API}/requests.{fmt}", data=form, headers=headers)


def get_one(client, request_id: str) -> dict:
    answer = client.get(f"{API}/requests/{request_id}.json")
    assert answer.status_code == 200, answer.text
    (request,) = answer.json()
    return request


def move(client, case_id: str, to: str, **carried) -> None:
    answer = client.post(f"/cases/{case_id}/transitions", json={"to": to, **carried})
    assert answer.status_code == 200, answer.text


def xml_items(body: bytes, root: str, item: str) -> list[dict[str, str | None]]:
    """The spec's XML as a list of {child tag: text}, checking the root and item element names."""
    tree = ET.fromstring(body)
    assert tree.tag == root
    assert all(child.tag == item for child in tree)
    return [{field.tag: field.text for field in child} for child in tree]


def as_xml_text(value) -> str | None:
    """A JSON value as the XML carries it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def assert_open311_error(answer, status: int, needle: str = "") -> None:
    assert answer.status_code == status, answer.text
    (error,) = answer.json()
    assert error["code"] == status and needle in error["description"], error


def count_cases(session) -> int:
    return session.execute(text("SELECT count(*) FROM cases")).scalar_one()


# ---------------------------------------------------------------- services


def test_services_are_the_assignable_subclasses_grouped_by_top_class(client):
    services = client.get(f"{API}/services.json").json()
    table = CategoryTable.default()
    assert [s["service_code"] for s in services] == [c.code for c in table if not c.is_top_class]
    rubbish = next(s for s in services if s["service_code"] == RUBBISH)
    assert rubbish == {
        "service_code": RUBBISH,
        "service_name": "暴露垃圾",
        "description": "Exposed rubbish",
        "metadata": False,
        "type": "realtime",
        "keywords": "暴露垃圾, 市容环境, exposed rubbish",
        "group": "市容环境",
    }
    answer = client.get(f"{API}/services.xml")
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    in_xml = xml_items(answer.content, "services", "service")
    assert in_xml == [{k: as_xml_text(v) for k, v in s.items()} for s in services]


def test_a_service_definition_and_unknown_codes(client):
    assert client.get(f"{API}/services/{RUBBISH}.json").json() == {"service_code": RUBBISH, "attributes": []}
    definition = ET.fromstring(client.get(f"{API}/services/{RUBBISH}.xml").content)
    assert definition.tag == "service_definition"
    assert definition.findtext("service_code") == RUBBISH and len(definition.find("attributes")) == 0
    assert_open311_error(client.get(f"{API}/services/9999.json"), 404, "no service '9999'")
    assert_open311_error(client.get(f"{API}/services/01.json"), 404, "services.json")  # a group
    errors = xml_items(client.get(f"{API}/services/9999.xml").content, "errors", "error")
    assert errors[0]["code"] == "404" and "9999" in errors[0]["description"]
    assert_open311_error(client.get(f"{API}/services.csv"), 404, ".json or .xml")


# ---------------------------------------------------------------- requests


def test_a_form_encoded_request_round_trip_from_open_to_closed(client, county):
    answer = post(client, hotline())
    assert answer.status_code == 201, answer.text
    (created,) = answer.json()
    request_id = created["service_request_id"]
    grid = f.grid_code(1)
    assert created["account_id"] is None
    assert f"assigned to 单元{grid} ({grid})" in created["service_notice"]

    request = get_one(client, request_id)
    assert request["status"] == "open" and request["status_notes"].startswith("reported: assigned by rule")
    assert (request["service_code"], request["service_name"]) == (RUBBISH, "暴露垃圾")
    assert request["description"] == "路边有一堆垃圾" and request["address"] == "测试路1号"
    assert request["agency_responsible"] == f"单元{grid} ({grid})"
    assert request["service_notice"] == created["service_notice"]
    assert (request["long"], request["lat"]) == pytest.approx(INSIDE_001, abs=1e-7)
    requested = datetime.fromisoformat(request["requested_datetime"])
    assert requested.utcoffset() == timedelta(hours=8)
    assert abs(datetime.now(UTC) - requested) < timedelta(minutes=5)
    assert datetime.fromisoformat(request["expected_datetime"]) > requested  # the verify stage's due time
    assert request["media_url"] is None

    case = client.get(f"/cases/{request_id}").json()  # the same case the dispatchers see
    assert case["source"] == "hotline_12345" and case["history"][0]["actor"] == "test-admin"  # signed in
    assert case["reporter"] == {"name": "张三", "phone": PHONE, "confidential": False}  # an admin may see it

    for to, carried in WALK_TO_CLOSED:
        move(client, request_id, to, **carried)
    closed = get_one(client, request_id)
    assert closed["status"] == "closed" and closed["status_notes"] == "closed: 已清运"
    assert closed["updated_datetime"] >= closed["requested_datetime"]  # W3C, to the second
    assert closed["expected_datetime"] is not None  # the revisit is due next

    in_xml = xml_items(client.get(f"{API}/requests/{request_id}.xml").content, "service_requests", "request")
    assert in_xml == [{k: as_xml_text(v) for k, v in closed.items()}]


def test_agency_responsible_follows_the_case_up_to_a_summoned_department(client, county):
    request_id = post(client, hotline()).json()[0]["service_request_id"]
    for to, carried in WALK_TO_CLOSED[:3]:
        move(client, request_id, to, **carried)
    move(client, request_id, "reassigned", reason="需街道协调", unit=f.STREET)
    assert get_one(client, request_id)["agency_responsible"] == f"测试街道 ({f.STREET})"
    move(client, request_id, "reassigned", reason="街道吹哨", unit="cgj")
    request = get_one(client, request_id)
    assert request["agency_responsible"] == "城市管理局" and request["status"] == "open"
    assert "assigned to 城市管理局" in request["service_notice"]


def test_a_request_outside_every_grid_goes_to_the_unassigned_queue(client, county):
    far = (f.X0 + f.SIZE + 0.5, f.Y0 + 0.01)
    (created,) = post(client, hotline(long=str(far[0]), lat=str(far[1]))).json()
    request = get_one(client, created["service_request_id"])
    assert request["agency_responsible"] == "county command centre (unassigned queue)"
    for notice in (created["service_notice"], request["service_notice"]):  # the queue named once
        assert notice.endswith(UNASSIGNED_NOTICE)
        assert notice.count("unassigned queue") == 1 and notice.count("(") == 0, notice


def test_filters_by_id_code_status_and_date(client, county):
    a = post(client, hotline()).json()[0]["service_request_id"]
    b = post(client, hotline(service_code="0301", long=str(INSIDE_004[0]), lat=str(INSIDE_004[1]))).json()
    b = b[0]["service_request_id"]
    for to, carried in WALK_TO_CLOSED:
        move(client, b, to, **carried)

    def ids(**params) -> list[str]:
        answer = client.get(f"{API}/requests.json", params=params)
        assert answer.status_code == 200, answer.text
        return [r["service_request_id"] for r in answer.json()]

    assert ids() == [b, a]  # newest first, default window: the last 90 days
    assert ids(status="open") == [a] and ids(status="closed") == [b] and ids(status="open,closed") == [b, a]
    assert ids(service_code=RUBBISH) == [a] and ids(service_code="0301,0101") == [b, a]
    assert ids(service_request_id=f"{a},999999,{b}") == [a, b]
    assert ids(service_request_id=a, status="closed") == [a]  # ids given: other filters ignored
    today = datetime.now(SHANGHAI).date()
    assert ids(start_date=str(today - timedelta(days=1)), end_date=str(today)) == [b, a]
    assert ids(start_date="2024-01-01T00:00:00+08:00", end_date="2024-03-01T00:00:00+08:00") == []
    assert ids(start_date="2024-01-01T00:00:00 08:00") == []  # an unescaped + arrives as a space
    assert ids(end_date=str(today - timedelta(days=2))) == []
    in_xml = xml_items(client.get(f"{API}/requests.xml").content, "service_requests", "request")
    assert [r["service_request_id"] for r in in_xml] == [b, a]
    in_json = client.get(f"{API}/requests.json").json()
    assert in_xml == [{k: as_xml_text(v) for k, v in r.items()} for r in in_json]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "pending"}, "status="),
        ({"service_code": "9999"}, "unknown category '9999'"),
        ({"start_date": "yesterday"}, "start_date='yesterday' is not a W3C date"),
        ({"start_date": "2024-01-01", "end_date": "2024-06-01"}, "90 days"),
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "must be before"),
        ({"service_request_id": "1,x"}, "comma-separated request ids"),
    ],
)
def test_bad_filters_are_400_in_the_open311_format(client, params, needle):
    assert_open311_error(client.get(f"{API}/requests.json", params=params), 400, needle)


def test_unknown_request_ids_are_404(client, county):
    assert_open311_error(client.get(f"{API}/requests/999999.json"), 404, "no case 999999")
    assert_open311_error(client.get(f"{API}/requests/abc.json"), 404, "'abc'")
    errors = xml_items(client.get(f"{API}/requests/999999.xml").content, "errors", "error")
    assert errors == [{"code": "404", "description": "no case 999999"}]
    assert client.get("/cases/999999").json() == {"detail": "no case 999999"}  # the rest of the API as before


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"service_code": None}, "service_code is required"),
        ({"lat": "95"}, "outside the service area"),
        ({"lat": str(INSIDE_001[0]), "long": str(INSIDE_001[1])}, "swapped"),
        ({"lat": None}, "lat and long are required"),
        ({"long": "east"}, "long: Input should be a valid number"),
        ({"crs": "mars"}, "mars"),
        ({"crs": "EPSG:4547"}, "crs='EPSG:4547'"),
        ({"confidential": "perhaps"}, "confidential"),
        ({"phone": "call me"}, "phone"),
        ({"media_url": "file:///etc/passwd"}, "media_url"),
        ({"description": "x" * 5000}, "description"),
    ],
)
def test_bad_requests_are_400_with_a_reason_and_nothing_is_stored(client, session, county, overrides, needle):
    form = {k: v for k, v in hotline(**overrides).items() if v is not None}
    assert_open311_error(post(client, form), 400, needle)
    assert count_cases(session) == 0


def test_errors_come_as_xml_from_the_xml_path_and_bad_bodies_are_refused(client, session, county):
    errors = xml_items(post(client, hotline(lat="95"), fmt="xml").content, "errors", "error")
    assert errors[0]["code"] == "400" and "outside the service area" in errors[0]["description"]
    wrong_type = client.post(f"{API}/requests.json", content=b"<x/>", headers={"content-type": "text/xml"})
    assert_open311_error(wrong_type, 415, "x-www-form-urlencoded")
    assert_open311_error(post(client, hotline(), key="not-a-uuid"), 400, "Idempotency-Key")
    not_an_object = client.post(f"{API}/requests.json", json=[1, 2])
    assert_open311_error(not_an_object, 400, "object")
    assert count_cases(session) == 0


def test_gcj02_coordinates_are_converted_with_the_crs_parameter(client, county):
    gx, gy = crs.wgs84_to_gcj02([INSIDE_001[0]], [INSIDE_001[1]])
    (created,) = post(client, hotline(long=str(gx[0]), lat=str(gy[0]), crs="gcj02")).json()
    request = get_one(client, created["service_request_id"])
    assert request["agency_responsible"] == f"单元{f.grid_code(1)} ({f.grid_code(1)})"
    assert (request["long"], request["lat"]) == pytest.approx(INSIDE_001, abs=1e-6)  # WGS84 again
    case = client.get(f"/cases/{created['service_request_id']}").json()
    assert case["input"]["crs"] == "gcj02"


def test_json_bodies_xml_answers_media_links_and_gbk_forms(client, county):
    as_json = {**hotline(), "lat": INSIDE_001[1], "long": INSIDE_001[0]}  # numbers, not text
    answer = client.post(f"{API}/requests.xml", json=as_json)
    assert answer.status_code == 201, answer.text
    (created,) = xml_items(answer.content, "service_requests", "request")
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert created["account_id"] is None
    linked = post(client, hotline(media_url="https://12345.example.cn/a.jpg?x=1&y=<2>")).json()[0]
    described = get_one(client, linked["service_request_id"])["description"]
    assert described.endswith("media_url: https://12345.example.cn/a.jpg?x=1&y=<2>")
    xml = client.get(f"{API}/requests/{linked['service_request_id']}.xml").content
    assert b"&amp;y=&lt;2&gt;" in xml  # escaped, and parses back to the same text
    assert xml_items(xml, "service_requests", "request")[0]["description"] == described
    gbk = urllib.parse.urlencode(hotline(description="井盖缺失"), encoding="gbk")
    answer = client.post(
        f"{API}/requests.json",
        content=gbk,
        headers={"content-type": "application/x-www-form-urlencoded; charset=GBK"},
    )
    assert get_one(client, answer.json()[0]["service_request_id"])["description"] == "井盖缺失"


def test_media_url_is_the_first_photo_of_a_case(client, county):
    body = {"lon": INSIDE_001[0], "lat": INSIDE_001[1], "category": RUBBISH, "description": "有照片"}
    case = client.post(
        "/cases", data={"case": json.dumps(body)}, files=[("photos", ("p.png", png_bytes(), "image/png"))]
    ).json()
    request = get_one(client, str(case["id"]))
    assert request["media_url"] == f"https://testserver/cases/{case['id']}/photos/1"
    assert client.get(request["media_url"]).content == png_bytes()


def test_a_retry_with_the_same_idempotency_key_creates_nothing(client, session, county):
    key = str(uuid.uuid4())
    first, again = post(client, hotline(), key=key), post(client, hotline(), key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    other = post(client, hotline(description="另一件事"), key=key)
    assert_open311_error(other, 400, "different report")
    assert count_cases(session) == 1


def test_no_reporter_data_appears_in_any_answer_and_confidential_is_honoured(client, county):
    (created,) = post(client, hotline(confidential="true")).json()
    request_id = created["service_request_id"]
    answers = [
        client.get(f"{API}/requests/{request_id}.json"),
        client.get(f"{API}/requests/{request_id}.xml"),
        client.get(f"{API}/requests.json"),
        client.get(f"{API}/requests.xml"),
        client.get(f"{API}/requests.json", params={"service_request_id": request_id}),
    ]
    for text_ in [json.dumps(created, ensure_ascii=False)] + [a.text for a in answers]:
        assert not any(secret in text_ for secret in (PHONE, "5678", "张三", "example.com")), text_
    case = client.get(f"/cases/{request_id}").json()
    assert case["reporter"] == {"name": "***", "phone": "***", "confidential": True}
    western = post(client, hotline(first_name="Li", last_name="Wei", confidential="false")).json()[0]
    assert client.get(f"/cases/{western['service_request_id']}").json()["reporter"]["name"] == "Li Wei"


# ---------------------------------------------------------------- a real server, a plain HTTP client


@pytest.fixture(scope="module")
def live_base(settings) -> Iterator[str]:
    """A server process on a committed database of its own holding the test county."""
    with server(county_database(settings, f"{DB_PREFIX}_open311")) as base:
        yield base


def fetch(url: str, form: dict | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, or of a form-encoded POST when `form` is given: as a
    standard client makes them, without a token (reading requests is public by default)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        request = urllib.request.Request(url, data=data)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_round_trip_with_a_plain_http_client(live_base):
    status, kind, body = fetch(f"{live_base}{API}/services.json")
    assert status == 200 and kind == "application/json"
    assert RUBBISH in [s["service_code"] for s in json.loads(body)]

    status, _, body = fetch(f"{live_base}{API}/requests.json", hotline())  # urlencoded, as the spec says
    assert status == 201, body
    (created,) = json.loads(body)
    request_id = created["service_request_id"]

    status, _, body = fetch(f"{live_base}{API}/requests/{request_id}.json")
    (request,) = json.loads(body)
    assert status == 200 and request["status"] == "open" and request["service_code"] == RUBBISH
    assert request["agency_responsible"] == f"单元{f.grid_code(1)} ({f.grid_code(1)})"

    status, kind, body = fetch(f"{live_base}{API}/requests/{request_id}.xml")
    assert status == 200 and kind == "text/xml; charset=utf-8"
    assert xml_items(body, "service_requests", "request") == [{k: as_xml_text(v) for k, v in request.items()}]

    listed = json.loads(fetch(f"{live_base}{API}/requests.json?status=open&service_code={RUBBISH}")[2])
    assert request_id in [r["service_request_id"] for r in listed]
    assert PHONE.encode() not in body

    status, _, body = fetch(f"{live_base}{API}/requests.json", hotline(lat="95"))
    assert status == 400 and "outside the service area" in json.loads(body)[0]["description"]


def test_a_third_party_open311_client_works_unchanged(live_base):
    """georeport (PyPI), as any city's client uses it: services, a definition, requests read without
    a key, in JSON and XML. It cannot post; the post is form-encoded as the spec says."""
    status, _, body = fetch(f"{live_base}{API}/requests.json", hotline(description=f"垃圾，电话{PHONE}"))
    assert status == 201, body
    request_id = json.loads(body)[0]["service_request_id"]
    for fmt in ("json", "xml"):
        client = GeoReport(f"{live_base}{API}", output_format=fmt)
        services = client.get_service_list()
        assert RUBBISH in [s["service_code"] for s in services]
        rubbish = next(s for s in services if s["service_code"] == RUBBISH)
        assert rubbish["service_name"] == "暴露垃圾" and rubbish["group"] == "市容环境"
        assert client.get_service_definition(RUBBISH)["service_code"] == RUBBISH
        one = client.get_service_request(request_id)
        assert one["service_request_id"] == request_id and one["status"] == "open"
        assert one["description"] == "垃圾，电话138******78"  # the public view
        listed = client.get_service_requests(service_code=RUBBISH, status="open")
        listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one item is no list
        assert request_id in [r["service_request_id"] for r in listed]
        by_ids = client.get_service_requests(service_request_id=request_id)
        by_ids = by_ids if isinstance(by_ids, list) else [by_ids]
        assert [r["service_request_id"] for r in by_ids] == [request_id]
        with pytest.raises(requests.HTTPError) as refused:
            client.get_service_definition("9999")
        assert refused.value.response.status_code == 404
